"""Sources checked inside a memory-capped DuckDB connection, for files too large for pandas.

``load_tables`` brings every accepted row into pandas, which needs several GB
for event logs of tens of millions of rows. ``checked_warehouse`` runs the same
engine -- ``toolkit.ingest.checked_sources``, the one rule table ``RULES``
over every source -- in a DuckDB connection with a memory limit (spilling to
``.cache/warehouse/`` beyond it) and keeps the checked rows there, so counts,
rejects, order lines, guests, refunds and order types are exactly those of
``load_tables``. DuckDB writes the rejects (columns ``ingest.REJECT_COLUMNS``)
to a Parquet or CSV file; input files are only read.

This is the data layer: what is built from the checked rows (stage series,
``toolkit.flows.flows_in_duckdb``) reads them from the connection it yields.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from toolkit.config import Config
from toolkit.export import atomic_path, neutralised_sql
from toolkit.ingest import REJECT_COLUMNS, IngestError, _sql_string, checked_sources

__all__ = ["WarehouseCheck", "WarehouseLimits", "check_in_duckdb", "checked_warehouse"]


@dataclass(frozen=True)
class WarehouseLimits:
    """How much of the machine DuckDB may use.

    ``memory_limit`` is DuckDB's setting (e.g. ``"1GB"``); beyond it DuckDB
    spills to a fresh directory under ``spill_dir``, removed afterwards.
    """

    memory_limit: str = "1GB"
    threads: int = 2
    spill_dir: Path = Path(".cache") / "warehouse"


@dataclass
class WarehouseCheck:
    """The accounting of every source row checked inside DuckDB.

    ``counts[table]`` has ``rows_in``, ``accepted`` and ``rejected``;
    ``rejects_by_reason`` counts problems per table and reason (details in
    parentheses dropped); the rejects themselves (columns
    ``ingest.REJECT_COLUMNS``) are in ``rejects_file``.
    """

    counts: dict[str, dict]
    files: dict[str, str]
    rejects_file: Path
    rejects_by_reason: pd.DataFrame


@contextmanager
def checked_warehouse(data_dir: str | Path, config: Config, rejects_file: str | Path | None = None,
                      now: pd.Timestamp | None = None, limits: WarehouseLimits = WarehouseLimits()
                      ) -> Iterator[tuple[duckdb.DuckDBPyConnection, WarehouseCheck]]:
    """Check the configured sources inside DuckDB and write their rejects; yield the connection.

    While the block runs, the connection holds the views ``<table>_ok``: the
    accepted rows, canonical columns plus ``idx`` (see ``toolkit.ingest.Checked``).

    Parameters
    ----------
    data_dir, config, now
        As for ``toolkit.ingest.load_tables`` (``data_dir`` may be the orders file).
    rejects_file
        Where DuckDB writes the rejected rows: Parquet, or CSV when the name
        ends in ``.csv``; default ``<limits.spill_dir>/rejects.parquet``.
    limits
        DuckDB's memory limit, threads and spill directory.

    Raises
    ------
    IngestError
        When a whole source is unusable (as ``load_tables``), or when no order
        is accepted (the rejects are written first: they say why) and the
        contacts carry no campaign outcomes to analyse instead.
    """
    rejects_file = Path(rejects_file) if rejects_file else limits.spill_dir / "rejects.parquet"
    with _connection(limits) as (con, scratch):
        checked = checked_sources(con, data_dir, config, now, scratch)
        rejects_file.parent.mkdir(parents=True, exist_ok=True)
        by_reason = _write_rejects(con, rejects_file)
        if not checked.counts["orders"]["accepted"] and not checked.outcomes:
            raise IngestError(f"{checked.files['orders']}: no usable orders remain; "
                              f"the rejects in {rejects_file} say why")
        yield con, WarehouseCheck(counts=checked.counts, files=checked.files, rejects_file=rejects_file,
                                  rejects_by_reason=by_reason)


def check_in_duckdb(data_dir: str | Path, config: Config, rejects_file: str | Path | None = None,
                    now: pd.Timestamp | None = None, limits: WarehouseLimits = WarehouseLimits()
                    ) -> WarehouseCheck:
    """Counts and rejects of the configured sources, checked inside DuckDB (``checked_warehouse``).

    Only what the checks need is computed: order types and refund links,
    which nothing here reads, are left undone.
    """
    with checked_warehouse(data_dir, config, rejects_file, now, limits) as (_, check):
        return check


@contextmanager
def _connection(limits: WarehouseLimits) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    limits.spill_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=limits.spill_dir))
    con = duckdb.connect(config={"memory_limit": limits.memory_limit, "threads": limits.threads,
                                 "temp_directory": str(scratch / "spill")})
    try:
        yield con, scratch
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _write_rejects(con: duckdb.DuckDBPyConnection, path: Path) -> pd.DataFrame:
    """DuckDB writes the ``rejects`` table to ``path`` (CSV when the name ends in .csv, else Parquet).

    Returns the number of problems per table and reason (details in parentheses dropped).
    """
    fmt = "csv, header true" if path.suffix.lower() == ".csv" else "parquet"
    # a CSV opened in a spreadsheet must not run a value as a formula
    text = ("table", "file", "column", "value", "reason") if fmt.startswith("csv") else ()
    columns = ", ".join(neutralised_sql(f'"{c}"') + f' AS "{c}"' if c in text else f'"{c}"' for c in REJECT_COLUMNS)
    with atomic_path(path) as partial:
        con.sql(f"COPY (SELECT {columns} FROM rejects) TO {_sql_string(str(partial))} (FORMAT {fmt})")
    return con.sql("""
        SELECT "table", regexp_replace(reason, ' \\(.*\\)$', '') AS reason, count(*) AS problems
        FROM rejects GROUP BY ALL ORDER BY problems DESC, "table", reason""").df()
