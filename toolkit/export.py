"""Writing results: Parquet for analysts and tools, CSV for stakeholders' spreadsheets.

CSV meant for sharing is made safe to open in a spreadsheet: a text cell that
starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) would be run
as a formula, so it is prefixed with an apostrophe. Customer ids can be
replaced by keyed pseudonyms (HMAC-SHA256), stable across runs with the same
key, so lists can be shared and joined back by whoever holds the key.

Every file is written atomically: into a temporary file beside it, then
renamed over it, so a reader (or a run killed half-way) never leaves a
truncated table behind.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FORMULA_PREFIXES",
    "atomic_path",
    "jsonable",
    "neutralise_formulas",
    "neutralised_sql",
    "plain",
    "pseudonymise",
    "write_shareable_csv",
    "write_summary",
    "write_tables",
]

#: First characters that make a spreadsheet treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot start a spreadsheet formula (numbers are left alone)."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            text = values.astype("str")
            risky = values.notna() & text.str.startswith(FORMULA_PREFIXES)
            out[column] = values.where(~risky, "'" + text)
    return out


def neutralised_sql(column: str) -> str:
    """DuckDB SQL for the text column ``column`` (a quoted name) made as safe as ``neutralise_formulas`` makes it."""
    risky = ", ".join(f"chr({ord(prefix)})" for prefix in FORMULA_PREFIXES)
    return f"CASE WHEN left({column}, 1) IN ({risky}) THEN concat(chr(39), {column}) ELSE {column} END"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block succeeds.

    On failure (a full disk, an error in the writer) the temporary file is
    removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def pseudonymise(frame: pd.DataFrame, key: str, column: str = "customer_id") -> pd.DataFrame:
    """A copy with ``column`` replaced by a keyed pseudonym such as ``cust-3f9a1c0b2d4e``."""
    secret = key.encode("utf-8")

    def alias(value: Any) -> str:
        digest = hmac.new(secret, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return f"cust-{digest[:12]}"

    out = frame.copy()
    out[column] = out[column].map(alias, na_action="ignore").astype("str")  # a guest stays without an id
    return out


def write_shareable_csv(frame: pd.DataFrame, path: str | Path,
                        pseudonym_key: str | None = None) -> Path:
    """Write a CSV for stakeholders: formulas neutralised, ids pseudonymised when a key is given."""
    if pseudonym_key is not None and "customer_id" in frame.columns:
        frame = pseudonymise(frame, pseudonym_key)
    path = Path(path)
    with atomic_path(path) as partial:
        neutralise_formulas(frame).to_csv(partial, index=False, lineterminator="\n")
    return path


def write_tables(out_dir: str | Path, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """Write each table as ``<out_dir>/<name>.parquet``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = out / f"{name}.parquet"
        with atomic_path(path) as partial:
            frame.to_parquet(partial, index=False)
        paths.append(path)
    return paths


def plain(value: Any) -> Any:
    """A JSON-ready version of a number, date or missing value."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, np.generic):
        return value.item()
    return value


def jsonable(value: Any) -> Any:
    """``value`` with every nested number, date and missing value made JSON-ready."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return plain(value)


def write_summary(out_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json``: dates as ISO strings, missing values as null."""
    path = Path(out_dir) / "summary.json"
    text = json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return path
