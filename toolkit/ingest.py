"""Read the business's sources into the canonical tables, keeping every reject.

``load_tables`` reads orders (required), events and costs (optional) from the
sources named in the run configuration -- CSV, Parquet, a DuckDB database file
or any SQL database SQLAlchemy can reach -- maps their columns to the canonical
names (``toolkit.schema``), coerces types in one vectorised pass, derives what
the source does not carry, and validates the result with pandera.

Nothing is dropped silently. A problem with a whole file (missing, empty,
unreadable, wrong delimiter, a required column absent) is an ``IngestError``
that names the file. A problem with a row puts the row in ``Ingested.rejects``
with its file, row number, column, value and the reason, and keeps it out of
the canonical tables. For CSV files the row number is the line number (the
header is line 1; a quoted value spanning several lines counts as one line);
for other sources it is the 1-based position in the result. Input files are
opened read-only and never modified.

Decisions a reader of the results should know:

* Timestamps without an offset are business-local time. Values with a UTC
  offset (``...Z``, ``...+02:00``) are converted to ``Config.timezone`` and made
  naive. In a column where some values carry an offset and others do not, the
  ones without are rejected: their zone is unknown, and guessing would shift
  them by hours.
* ``orders.status``, when the source has none, is ``refunded`` for negative
  amounts and ``completed`` otherwise. A source status is normalised
  (``canceled``/``void`` -> cancelled, ``refund``/``returned`` -> refunded, ...).
* ``orders.order_type``, when the source has none, see ``derive_order_types``.
* A cost with no stage (no stage column, or a blank value) belongs to
  ``operations``: the cash position must still carry it.
"""

from __future__ import annotations

import codecs
import mmap
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pandera.errors
import sqlalchemy as sa

from toolkit.config import Config, Source
from toolkit.errors import JourneycastError
from toolkit.schema import (
    COST_STAGES,
    MAX_ABS_AMOUNT,
    ORDER_STATUSES,
    ORDER_TYPES,
    REQUIRED_COLUMNS,
    SCHEMAS,
    STAGES,
)

__all__ = ["IngestError", "Ingested", "REJECT_COLUMNS", "derive_order_types", "load_tables"]

#: Columns of ``Ingested.rejects``.
REJECT_COLUMNS = ("table", "file", "row", "column", "value", "reason")

#: A later order is an upsell when its unit price is at least this multiple of
#: the highest unit price the customer paid before.
UPSELL_PRICE_RATIO = 1.2

_STATUS_WORDS = {
    "completed": "completed", "complete": "completed", "paid": "completed",
    "fulfilled": "completed", "shipped": "completed", "delivered": "completed",
    "cancelled": "cancelled", "canceled": "cancelled", "void": "cancelled",
    "voided": "cancelled",
    "refunded": "refunded", "refund": "refunded", "returned": "refunded", "return": "refunded",
}
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "iso8859-1": "latin-1"}
_DELIMITERS = (",", ";", "\t", "|")
_READ_ONLY_SQL = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(select|with)\b", re.I | re.S)


class IngestError(JourneycastError):
    """A source cannot be read as a whole (missing, empty, unreadable, wrong layout)."""


@dataclass
class Ingested:
    """The canonical tables of one data directory, the rejected rows, and the counts.

    ``counts[table]`` has ``rows_in``, ``accepted`` and ``rejected``;
    ``rows_in == accepted + rejected`` always. ``rejects`` may hold several
    problems for one row, one line each.
    """

    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    counts: dict[str, dict] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        """Per table: file, counts, date range, customers and rejects by reason."""
        out = {}
        reasons = self.rejects.assign(reason=self.rejects.reason.str.replace(r" \(.*\)$", "", regex=True))
        for name, frame in self.tables.items():
            info = {"file": self.files[name], **self.counts[name]}
            info["first"] = frame.ts.min() if len(frame) else None
            info["last"] = frame.ts.max() if len(frame) else None
            if "customer_id" in frame:
                info["customers"] = int(frame.customer_id.nunique())
            by_reason = reasons[reasons.table == name].groupby("reason").size()
            info["rejects_by_reason"] = {k: int(v) for k, v in by_reason.sort_values(ascending=False).items()}
            out[name] = info
        return out

    def format_summary(self) -> str:
        """The summary as a few lines for the terminal."""
        lines = []
        for name, info in self.summary().items():
            period = (f"{info['first']:%Y-%m-%d} .. {info['last']:%Y-%m-%d}"
                      if info["first"] is not None else "no rows")
            line = (f"{name:<7} {info['file']}: {info['rows_in']:,} rows in, "
                    f"{info['accepted']:,} accepted, {info['rejected']:,} rejected; {period}")
            if "customers" in info:
                line += f"; {info['customers']:,} customers"
            lines.append(line)
            lines += [f"          {count:>8,}  {reason}" for reason, count in info["rejects_by_reason"].items()]
        return "\n".join(lines)


@dataclass
class _Raw:
    """One source as read: its columns unconverted, the row numbers, structural rejects."""

    frame: pd.DataFrame
    rows: np.ndarray
    label: str
    unreadable: list[dict]


def load_tables(data_dir: str | Path, config: Config, now: pd.Timestamp | None = None) -> Ingested:
    """Read, check and convert every configured source into the canonical tables.

    Parameters
    ----------
    data_dir
        Directory that relative source paths (and DuckDB/sqlite files) are read from.
    config
        The run configuration: sources, column mapping, delimiter, encoding,
        date format, business time zone and stage map.
    now
        Timestamps after this (business-local) moment are rejected; default: the
        wall clock in ``config.timezone``.

    Raises
    ------
    IngestError
        When a whole source is unusable; rows with problems are rejects instead.
    """
    data_dir = Path(data_dir)
    now = _business_now(now, config.timezone)
    tables, counts, files, rejects = {}, {}, {}, []
    for name in ("orders", "events", "costs"):
        source = config.sources.get(name)
        if source is None:
            continue
        raw = _read_source(name, source, data_dir, config)
        if raw is None:
            continue
        frame = _canonical_names(name, raw.frame, source, raw.label)
        problems = _Problems(name, raw, frame)
        table = _BUILDERS[name](frame, problems, config, now)
        try:
            tables[name] = SCHEMAS[name].validate(table)
        except pandera.errors.SchemaError as exc:
            raise IngestError(f"{raw.label}: canonical {name} table failed validation: {exc}") from None
        found = problems.frame()
        rejected = len(raw.unreadable) + int(problems.bad.sum())
        counts[name] = {"rows_in": len(raw.frame) + len(raw.unreadable),
                        "accepted": len(table), "rejected": rejected}
        files[name] = raw.label
        rejects.append(found)
    rejects_frame = pd.concat(rejects, ignore_index=True) if rejects else _empty_rejects()
    return Ingested(tables=tables, rejects=rejects_frame, counts=counts, files=files)


def _business_now(now: pd.Timestamp | None, timezone: str) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz=timezone).tz_localize(None)
    now = pd.Timestamp(now)
    return now.tz_convert(timezone).tz_localize(None) if now.tzinfo else now


# --------------------------------------------------------------------------- reading


def _read_source(name: str, source: Source, data_dir: Path, config: Config) -> _Raw | None:
    """Read one source as it is, or None when an optional source is absent."""
    required = source.required or name == "orders"
    if source.database:
        if "://" in source.database:
            return _read_sql(source, data_dir)
        path = data_dir / source.database
        if not path.exists():
            if required:
                raise IngestError(f"{path}: {name} database not found")
            return None
        return _read_duckdb(path, source)
    path = data_dir / source.path
    if not path.exists():
        if required:
            raise IngestError(f"{path}: {name} file not found (set sources.{name} in journeycast.yml)")
        return None
    label = source.path
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, label)
    return _read_csv(path, label, config)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _csv_encoding(path: Path, label: str, config: Config) -> str:
    """The configured encoding's canonical name; an error for an empty file or an unknown encoding."""
    if path.stat().st_size == 0:
        raise IngestError(f"{label}: the file is empty (expected a header line and rows)")
    try:
        return codecs.lookup(config.encoding).name
    except LookupError:
        raise IngestError(f"encoding '{config.encoding}' in journeycast.yml is not a known encoding") from None


def _read_csv(path: Path, label: str, config: Config) -> _Raw:
    """Parse a delimited text file once with DuckDB, every value as text."""
    encoding = _csv_encoding(path, label, config)
    with tempfile.TemporaryDirectory(prefix="journeycast-") as scratch:
        read_path = path
        if encoding not in _DUCKDB_ENCODINGS:
            read_path = _transcode(path, label, encoding, Path(scratch) / "utf8.csv")
            encoding = "utf-8"
        con = duckdb.connect()
        try:
            return _scan_csv(con, read_path, label, config, _DUCKDB_ENCODINGS[encoding])
        finally:
            con.close()


def _scan_csv(con: duckdb.DuckDBPyConnection, path: Path, label: str, config: Config,
              encoding: str) -> _Raw:
    quoted = _sql_string(str(path))
    try:
        delimiter = config.delimiter or _header_delimiter(path)
        relation = con.sql(
            f"SELECT * FROM read_csv({quoted}, header=true, all_varchar=true, "
            f"delim={_sql_string(delimiter)}, encoding={_sql_string(encoding)}, store_rejects=true)"
        )
        columns = relation.columns
        # through Arrow: about twice as fast as .df() for text columns
        frame = relation.to_arrow_table().to_pandas()
        problems = con.sql(
            "SELECT line, column_name, error_type, csv_line, error_message "
            "FROM reject_errors ORDER BY line"
        ).df()
    except duckdb.Error as exc:
        message = str(exc)
        if "unicode" in message.lower():
            line = re.search(r"[Ll]ine:? (\d+)", message)
            raise _encoding_error(label, line.group(1) if line else "?", config.encoding) from None
        raise IngestError(f"{label}: cannot read the file: {message.splitlines()[0]}") from None
    frame.columns = columns
    encoding_errors = problems[problems.error_type == "INVALID ENCODING"]
    if len(encoding_errors):
        raise _encoding_error(label, int(encoding_errors.line.iloc[0]), config.encoding)
    if len(frame) == 0 and len(problems) == 0:
        raise IngestError(f"{label}: the file has a header but no rows")
    problems = problems.drop_duplicates("line")
    unreadable = [
        {"row": int(p.line), "column": None, "value": str(p.csv_line).strip(),
         "reason": f"unreadable line ({p.error_message})"}
        for p in problems.itertuples()
    ]
    rows = _data_line_numbers(path, len(frame), problems.line.to_numpy(dtype=np.int64))
    return _Raw(frame=frame, rows=rows, label=label, unreadable=unreadable)


def _encoding_error(label: str, line: int | str, encoding: str) -> IngestError:
    return IngestError(f"{label}: line {line} has bytes that are not valid {encoding}; "
                       "set `encoding:` in journeycast.yml to the file's encoding (e.g. cp1252, latin-1)")


def _header_delimiter(path: Path) -> str:
    """The candidate delimiter that splits the header line most often (',' if none does).

    Column names rarely contain delimiters, so the header is a surer guide than
    sniffing data lines, which ragged rows or decimal commas can mislead.
    """
    with path.open("rb") as handle:
        header = handle.readline(1 << 16)
    counts = {d: header.count(d.encode()) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _data_line_numbers(path: Path, n_rows: int, skipped: np.ndarray) -> np.ndarray:
    """Line numbers of the parsed rows: after the header, minus unreadable and blank lines."""
    blank = _blank_lines(path)
    taken = np.union1d(skipped, blank)
    candidates = np.arange(2, 2 + n_rows + len(taken), dtype=np.int64)
    return np.setdiff1d(candidates, taken, assume_unique=True)[:n_rows]


def _blank_lines(path: Path) -> np.ndarray:
    """Line numbers of empty lines (the CSV reader skips them), found by a byte scan."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b"\n\n") < 0 and data.find(b"\n\r\n") < 0:
            return np.empty(0, dtype=np.int64)
        lines, position, line = [], 0, 1
        for match in re.finditer(rb"\n(?=\r?\n)", data):
            line += data[position:match.start()].count(b"\n") + 1
            position = match.start() + 1
            lines.append(line)
        return np.asarray(lines, dtype=np.int64)


def _transcode(path: Path, label: str, encoding: str, target: Path) -> Path:
    """Write a UTF-8 copy of a file in an encoding DuckDB does not read itself.

    A second pass over the file, paid only for such encodings (DuckDB reads
    UTF-8, UTF-16 and Latin-1 directly).
    """
    try:
        with path.open("r", encoding=encoding, newline="") as src, \
                target.open("w", encoding="utf-8", newline="") as dst:
            for text in src:
                dst.write(text)
    except UnicodeDecodeError:
        with path.open("rb") as src:
            line = next(n for n, raw in enumerate(src, start=1) if not _decodes(raw, encoding))
        raise _encoding_error(label, line, encoding) from None
    return target


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _read_parquet(path: Path, label: str) -> _Raw:
    con = duckdb.connect()
    try:
        frame = con.sql(f"SELECT * FROM read_parquet({_sql_string(str(path))})").df()
    except duckdb.Error as exc:
        raise IngestError(f"{label}: cannot read the Parquet file: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return _result(frame, label)


def _result(frame: pd.DataFrame, label: str) -> _Raw:
    if len(frame) == 0:
        raise IngestError(f"{label}: no rows")
    return _Raw(frame=frame, rows=np.arange(1, len(frame) + 1), label=label, unreadable=[])


def _checked_query(query: str, label: str) -> str:
    """The query itself when it is one read-only SELECT/WITH statement."""
    statement = query.strip().rstrip(";").strip()
    if not _READ_ONLY_SQL.match(statement) or ";" in statement:
        raise IngestError(f"{label}: only a single SELECT or WITH query is allowed, got: {query.strip()[:60]!r}")
    return statement


def _quoted_table(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))


def _read_duckdb(path: Path, source: Source) -> _Raw:
    label = f"{source.database}:{source.table or 'query'}"
    query = (_checked_query(source.query, label) if source.query
             else f"SELECT * FROM {_quoted_table(source.table)}")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise IngestError(f"{source.database}: cannot open the DuckDB file: {str(exc).splitlines()[0]}") from None
    try:
        frame = con.sql(query).df()
    except duckdb.Error as exc:
        raise IngestError(f"{label}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return _result(frame, label)


def _read_sql(source: Source, data_dir: Path) -> _Raw:
    url = sa.make_url(source.database)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        # Open the file itself read-only; relative paths are relative to the data directory.
        file = Path(url.database) if Path(url.database).is_absolute() else data_dir / url.database
        url = url.set(database=f"file:{file}?mode=ro", query={"uri": "true"})
    label = f"{url.render_as_string(hide_password=True)}:{source.table or 'query'}"
    engine = sa.create_engine(url)
    try:
        if source.query:
            statement = _checked_query(source.query, label)
        else:
            statement = "SELECT * FROM " + ".".join(
                engine.dialect.identifier_preparer.quote(part) for part in source.table.split("."))
        with engine.connect() as conn:
            frame = pd.read_sql_query(sa.text(statement), conn)
            conn.rollback()
    except sa.exc.SQLAlchemyError as exc:
        raise IngestError(f"{label}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return _result(frame, label)


def _canonical_names(name: str, frame: pd.DataFrame, source: Source, label: str) -> pd.DataFrame:
    """Rename source columns to canonical ones; a missing required column is an error."""
    columns = [str(c).strip() for c in frame.columns]
    canonical = set(SCHEMAS[name].columns)
    renamed = []
    for column in columns:
        target = source.columns.get(column, column)
        if target not in canonical and target.lower() in canonical:
            target = target.lower()
        renamed.append(target)
    frame = frame.set_axis(renamed, axis=1)
    frame = frame.loc[:, [c in canonical for c in renamed]]
    frame = frame.loc[:, ~frame.columns.duplicated()]
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in frame.columns]
    if missing:
        expected = ", ".join(REQUIRED_COLUMNS[name])
        if any(d in column for column in columns for d in _DELIMITERS):
            raise IngestError(
                f"{label}: the header did not split into columns (found {columns[:3]}); "
                f"expected columns {expected}. Check the file's delimiter or set `delimiter:` "
                "in journeycast.yml")
        raise IngestError(f"{label}: required column '{missing[0]}' missing (found: {', '.join(columns)}); "
                          f"expected at least {expected}, or map yours under sources.{name}.columns")
    return frame


# --------------------------------------------------------------------------- checking


class _Problems:
    """Collects row problems of one table; a row with any problem is rejected."""

    def __init__(self, table: str, raw: _Raw, frame: pd.DataFrame):
        self.table, self.raw, self.source = table, raw, frame
        self.bad = np.zeros(len(frame), dtype=bool)
        self._found: list[pd.DataFrame] = []

    def add(self, mask: pd.Series | np.ndarray, column: str, reason: str | pd.Series) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        self.bad |= mask
        values = self.source[column] if column in self.source else pd.Series(pd.NA, index=self.source.index)
        reasons = reason[mask].to_numpy() if isinstance(reason, pd.Series) else reason
        self._found.append(pd.DataFrame({
            "table": self.table, "file": self.raw.label, "row": self.raw.rows[mask],
            "column": column, "value": values[mask].astype("str").to_numpy(), "reason": reasons,
        }))

    def frame(self) -> pd.DataFrame:
        unreadable = pd.DataFrame(self.raw.unreadable, columns=["row", "column", "value", "reason"])
        unreadable = unreadable.assign(table=self.table, file=self.raw.label)
        parts = [p for p in (unreadable, *self._found) if len(p)]
        if not parts:
            return _empty_rejects()
        found = pd.concat(parts, ignore_index=True)[list(REJECT_COLUMNS)]
        return found.sort_values(["row", "column"], kind="stable", ignore_index=True).astype(
            {"row": "int64", "column": "str", "value": "str", "reason": "str"})


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str") for c in REJECT_COLUMNS})


def _accepted(table: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows without problems (the table itself when all are fine: no copy)."""
    return table if keep.all() else table[keep].reset_index(drop=True)


def _text(series: pd.Series) -> pd.Series:
    """Values as stripped text; blanks become missing."""
    if pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all():
        series = series.astype("Int64")
    text = series.astype("str").str.strip()
    return text.mask(text == "")


def _required_text(frame: pd.DataFrame, column: str, problems: _Problems) -> pd.Series:
    text = _text(frame[column])
    problems.add(text.isna(), column, f"missing {column}")
    return text


def _optional_text(frame: pd.DataFrame, column: str, default: str) -> pd.Series:
    if column not in frame:
        return pd.Series(default, index=frame.index, dtype="str")
    return _text(frame[column]).fillna(default)


def _timestamps(frame: pd.DataFrame, problems: _Problems, config: Config, now: pd.Timestamp) -> pd.Series:
    """Business-local naive timestamps; unparseable, offset-less-among-offsets and future rows rejected."""
    values = frame["ts"]
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = values.dt.tz_convert(config.timezone).dt.tz_localize(None) if values.dt.tz else values
        problems.add(ts.isna(), "ts", "missing ts")
    else:
        text = _text(values)
        problems.add(text.isna(), "ts", "missing ts")
        if config.date_format:
            has_offset = pd.Series("%z" in config.date_format or "%Z" in config.date_format, index=text.index)
        else:
            # ISO 8601: after "YYYY-MM-DD", a "Z", "+" or "-" can only start a UTC offset
            tail = text.str.slice(start=10)
            has_offset = (tail.str.endswith("Z") | tail.str.contains("+", regex=False)
                          | tail.str.contains("-", regex=False)).fillna(False).astype(bool)
        fmt = config.date_format or "ISO8601"
        ts = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
        naive = text.notna() & ~has_offset
        if has_offset.any():
            aware = pd.to_datetime(text[has_offset], format=fmt, errors="coerce", utc=True)
            ts[has_offset] = aware.dt.tz_convert(config.timezone).dt.tz_localize(None)
            problems.add(naive, "ts", "timestamp without UTC offset in a column whose other "
                         "timestamps have one (its time zone is unknown)")
        else:
            ts[naive] = pd.to_datetime(text[naive], format=fmt, errors="coerce")
        hint = f"format {config.date_format}" if config.date_format else "ISO 8601; set `date_format:`"
        problems.add(text.notna() & ts.isna() & ~(naive & has_offset.any()), "ts",
                     f"unparseable timestamp (expected {hint})")
    ts = ts.astype("datetime64[ns]")
    problems.add(ts > now, "ts", f"timestamp after now ({now:%Y-%m-%d %H:%M})")
    return ts


def _amounts(frame: pd.DataFrame, column: str, problems: _Problems, required: bool) -> pd.Series:
    """Numbers; non-numeric and implausibly large values rejected."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        number = values.astype("float64")
        blank = number.isna()
    else:
        text = _text(values)
        blank = text.isna()
        number = pd.to_numeric(text, errors="coerce").astype("float64")
        problems.add(~blank & number.isna(), column, f"{column} is not a number")
    if required:
        problems.add(blank, column, f"missing {column}")
    problems.add(number.abs() > MAX_ABS_AMOUNT, column,
                 f"{column} beyond {MAX_ABS_AMOUNT:,.0f} in absolute value (unit or entry error?)")
    return number


# --------------------------------------------------------------------------- tables


def _orders(frame: pd.DataFrame, problems: _Problems, config: Config,
            now: pd.Timestamp) -> pd.DataFrame:
    order_id = _required_text(frame, "order_id", problems)
    customer_id = _required_text(frame, "customer_id", problems)
    ts = _timestamps(frame, problems, config, now)
    amount = _amounts(frame, "amount", problems, required=True)
    quantity = pd.Series(1.0, index=frame.index)
    if "quantity" in frame:
        quantity = _amounts(frame, "quantity", problems, required=False).fillna(1.0)
        problems.add((quantity < 0) | (quantity % 1 != 0), "quantity", "quantity is not a whole number >= 0")
    derived_status = pd.Series(np.where(amount < 0, "refunded", "completed"), index=frame.index, dtype="str")
    status = derived_status
    if "status" in frame:
        given = _text(frame["status"]).str.lower()
        status = given.map(_STATUS_WORDS).fillna(derived_status).astype("str")
        problems.add(given.notna() & ~given.isin(list(_STATUS_WORDS)), "status",
                     f"unknown status (expected one of {', '.join(ORDER_STATUSES)})")
    given_type = pd.Series(pd.NA, index=frame.index, dtype="str")
    if "order_type" in frame:
        given_type = _text(frame["order_type"]).str.lower()
        problems.add(given_type.notna() & ~given_type.isin(ORDER_TYPES), "order_type",
                     f"unknown order_type (expected one of {', '.join(ORDER_TYPES)})")
    usable = pd.Series(~problems.bad, index=frame.index)
    duplicate = usable & order_id.where(usable).duplicated()
    if duplicate.any():
        first = usable & ~duplicate & order_id.isin(order_id[duplicate])
        first_line = order_id[duplicate].map(pd.Series(problems.raw.rows[first], index=order_id[first]))
        first_line = first_line.reindex(frame.index).astype("Int64").astype("str")
        problems.add(duplicate, "order_id", "duplicate order_id (first at line " + first_line + ")")
    keep = ~problems.bad
    orders = _accepted(pd.DataFrame({
        "order_id": order_id, "customer_id": customer_id, "ts": ts, "amount": amount,
        "order_type": given_type,
        "sku": _optional_text(frame, "sku", "unknown"),
        "quantity": quantity, "status": status,
    }), keep)
    orders["quantity"] = orders.quantity.astype("int64")
    if orders.order_type.isna().any():
        orders["order_type"] = orders.order_type.fillna(derive_order_types(orders))
    orders["order_type"] = orders.order_type.astype("str")
    return orders


def derive_order_types(orders: pd.DataFrame) -> pd.Series:
    """Label each order new, repeat or upsell from the customer's own history.

    A customer's history is their completed sales with a positive amount, in
    time order (file order breaks ties). An order placed before any such sale
    is ``new``; a later one is ``upsell`` when its unit price (amount /
    quantity) is at least ``UPSELL_PRICE_RATIO`` times the highest unit price
    the customer paid before, else ``repeat``. Cancelled orders are labelled by
    the same rule but do not enter the history. A refund takes the label of the
    customer's latest sale before it, or ``repeat`` when the refunded sale is
    older than the data.
    """
    codes = pd.factorize(orders.customer_id)[0]
    order = np.lexsort((np.arange(len(orders)), orders.ts.to_numpy(), codes))
    customer = codes[order]
    sale = pd.Series(((orders.status == "completed") & (orders.amount > 0)).to_numpy()[order])
    unit = pd.Series((orders.amount / orders.quantity.clip(lower=1)).to_numpy()[order])
    best = unit.where(sale).groupby(customer).cummax().groupby(customer).ffill()
    best_before = best.groupby(customer).shift()
    kind = pd.Series(np.where(best_before.isna(), "new",
                              np.where(unit >= UPSELL_PRICE_RATIO * best_before, "upsell", "repeat")))
    latest_sale = kind.where(sale).groupby(customer).ffill()
    refund = (orders.status == "refunded").to_numpy()[order]
    kind[refund] = latest_sale[refund].fillna("repeat")
    labels = np.empty(len(orders), dtype=object)
    labels[order] = kind.to_numpy()
    return pd.Series(labels, index=orders.index, dtype="str")


def _events(frame: pd.DataFrame, problems: _Problems, config: Config,
            now: pd.Timestamp) -> pd.DataFrame:
    customer_id = _required_text(frame, "customer_id", problems)
    ts = _timestamps(frame, problems, config, now)
    event_type = _required_text(frame, "event_type", problems)
    stage = event_type.map(config.stage_map)
    if "stage" in frame:
        given = _text(frame["stage"]).str.lower()
        problems.add(given.notna() & ~given.isin(STAGES), "stage",
                     f"unknown stage (expected one of {', '.join(STAGES)})")
        stage = given.fillna(stage)
    problems.add(event_type.notna() & stage.isna(), "event_type",
                 "unknown event_type (add it to stage_map in journeycast.yml)")
    value = (_amounts(frame, "value", problems, required=False) if "value" in frame
             else pd.Series(np.nan, index=frame.index))
    keep = ~problems.bad
    events = _accepted(pd.DataFrame({
        "customer_id": customer_id, "ts": ts, "event_type": event_type,
        "stage": stage.astype("str"), "channel": _optional_text(frame, "channel", "unknown"),
        "value": value,
    }), keep)
    return events


def _costs(frame: pd.DataFrame, problems: _Problems, config: Config,
           now: pd.Timestamp) -> pd.DataFrame:
    ts = _timestamps(frame, problems, config, now)
    amount = _amounts(frame, "amount", problems, required=True)
    stage = _optional_text(frame, "stage", "operations").str.lower()
    problems.add(~stage.isin(COST_STAGES), "stage",
                 f"unknown cost stage (expected one of {', '.join(COST_STAGES)})")
    keep = ~problems.bad
    costs = _accepted(pd.DataFrame({
        "ts": ts, "stage": stage, "category": _optional_text(frame, "category", "other"),
        "channel": _optional_text(frame, "channel", "unknown"), "amount": amount,
    }), keep)
    return costs


_BUILDERS = {"orders": _orders, "events": _events, "costs": _costs}
