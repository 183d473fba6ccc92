"""Stage series straight from large source files: checked and totalled inside DuckDB.

``load_tables`` holds every source row in pandas, which needs several GB for
event logs of tens of millions of rows. ``warehouse_flows`` reads the same
configured CSV and Parquet sources (column mapping, delimiter, encoding,
``date_format``, ``timezone`` and ``stage_map`` of ``Config``) with DuckDB,
checks and converts every row there, keeps the checked rows in DuckDB (which
spills to ``.cache/warehouse/`` beyond its memory limit) and hands pandas only
daily totals. Those totals go through ``toolkit.flows.stage_flows`` itself
(shaped as canonical rows: one order row per day, customer channel, order type,
status and sign; one cost row per day, stage, channel and sign), so sales,
refunds, stages, directions, period labels and the grid have one definition;
the series equal ``stage_flows(load_tables(...).tables, freq, segment)`` up to
float rounding of the daily subtotals (sums are taken with ``fsum``).

Checked as ``load_tables`` checks, with the same reasons (rows_in = accepted +
rejected for every table, every reject in the rejects file):

* unreadable CSV lines (DuckDB's ``store_rejects``), with the line text;
* orders: missing order_id / customer_id / ts / amount; unparseable
  timestamps (ISO 8601 as DuckDB's cast reads it, or ``date_format`` through
  ``strptime``); timestamps after now; timestamps without a UTC offset in a
  column whose other timestamps have one; amount or quantity not a number or
  beyond ``MAX_ABS_AMOUNT``; quantity not a whole number >= 0; unknown status
  (normalised with ingest's status words) or order_type; duplicate order_id
  (the first usable row is kept); order types derived as
  ``ingest.derive_order_types`` derives them when the source has none;
* events: missing customer_id / ts / event_type, the timestamp rules, unknown
  stage, unknown event_type (not in ``stage_map``), value not a number or too large;
* costs: the timestamp rules, amount rules, unknown cost stage (blank: operations).

Not covered: database sources (``Source.database``; use ``load_tables``),
pandera's final validation (every rule it checks is one of the above), and
pandas' rendering of integral float ids (a Parquet float ``customer_id`` of
``7.0`` is the text ``"7.0"`` here, ``"7"`` there). CSV rows are numbered by
line as in ingest, Parquet rows by 1-based position. Input files are only read.
The limits, constants, status words, column mapping and CSV handling are
ingest's own; the SQL predicates and reason texts restate ingest's pandas
checks, and ``tests/test_warehouse.py`` holds both paths to identical rejects.

DuckDB works within ``WarehouseLimits`` (memory limit, threads), spilling to
disk beyond the limit, so peak memory stays near the limit however large the
sources are.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from toolkit.config import Config, Source
from toolkit.flows import DEFAULT_MAPPING, SEGMENT_DIMENSIONS, FlowMapping, FlowsError, stage_flows
from toolkit.ingest import (
    _DUCKDB_ENCODINGS,
    _STATUS_WORDS,
    REJECT_COLUMNS,
    UPSELL_PRICE_RATIO,
    IngestError,
    _blank_lines,
    _business_now,
    _canonical_names,
    _csv_encoding,
    _encoding_error,
    _header_delimiter,
    _sql_string,
    _transcode,
)
from toolkit.journey import period_grid, period_label
from toolkit.schema import COST_STAGES, MAX_ABS_AMOUNT, ORDER_STATUSES, ORDER_TYPES, STAGES

__all__ = ["TOUCHPOINT_COLUMNS", "WarehouseFlows", "WarehouseLimits", "warehouse_flows"]

#: Columns of ``WarehouseFlows.touchpoints``.
TOUCHPOINT_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y", "stage")

_TABLES = ("orders", "events", "costs")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_NAIVE_TIMES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")
# what str.strip() removes, as DuckDB trim() characters
_BLANKS = "' \t\n\x0b\x0c\r'"


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
class WarehouseFlows:
    """Stage series, touchpoint volumes and the accounting of every source row.

    ``series`` is what ``stage_flows`` returns; ``touchpoints`` holds events per
    stage and period (columns ``TOUCHPOINT_COLUMNS``, ``unique_id =
    "<stage>|touchpoints"``, on the series' grid); ``counts[table]`` has
    ``rows_in``, ``accepted`` and ``rejected``; ``rejects_by_reason`` counts
    problems per table and reason (details in parentheses dropped); the rejects
    themselves (columns ``ingest.REJECT_COLUMNS``) are in ``rejects_file``.
    """

    series: pd.DataFrame
    touchpoints: pd.DataFrame
    counts: dict[str, dict]
    rejects_file: Path
    rejects_by_reason: pd.DataFrame
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Rule:
    column: str
    reason: str
    test: str  # SQL predicate on the converted row; true = problem


@dataclass
class _Table:
    """One source as loaded into DuckDB: where it came from and how to number its rows."""

    name: str
    label: str
    line: str  # SQL expression: the reported row number of 0-based position ``idx``
    rules: list[_Rule]


def warehouse_flows(data_dir: str | Path, config: Config, freq: str = "D", segment: str | None = None,
                    mapping: FlowMapping = DEFAULT_MAPPING, rejects_file: str | Path | None = None,
                    now: pd.Timestamp | None = None,
                    limits: WarehouseLimits = WarehouseLimits()) -> WarehouseFlows:
    """Check the configured sources and total them into stage series, inside DuckDB.

    Parameters
    ----------
    data_dir, config, now
        As for ``toolkit.ingest.load_tables``.
    freq, segment, mapping
        As for ``toolkit.flows.stage_flows``.
    rejects_file
        Where DuckDB writes the rejected rows: Parquet, or CSV when the name
        ends in ``.csv``; default ``<limits.spill_dir>/rejects.parquet``.
    limits
        DuckDB's memory limit, threads and spill directory.

    Raises
    ------
    IngestError
        When a whole source is unusable (as ``load_tables``).
    FlowsError
        When series cannot be built with the parameters given.
    """
    if segment is not None and segment not in SEGMENT_DIMENSIONS:
        raise FlowsError(f"cannot split flows by {segment!r}; choose one of {list(SEGMENT_DIMENSIONS)}")
    data_dir = Path(data_dir)
    now = _business_now(now, config.timezone)
    rejects_file = Path(rejects_file) if rejects_file else limits.spill_dir / "rejects.parquet"
    with _connection(limits) as (con, scratch):
        tables = {}
        for name in _TABLES:
            source = config.sources.get(name)
            if source is not None:
                table = _load(con, name, source, data_dir, config, now, scratch)
                if table is not None:
                    tables[name] = table
        if "orders" in tables:
            _mark_duplicate_orders(con)
        for name in tables:
            _ok_view(con, name)
        counts = {name: _counts(con, name) for name in tables}
        rejects_file.parent.mkdir(parents=True, exist_ok=True)
        by_reason = _write_rejects(con, list(tables.values()), rejects_file)
        if not counts.get("orders", {}).get("accepted"):
            raise IngestError(f"{tables['orders'].label if 'orders' in tables else data_dir}: no usable "
                              f"orders remain; the rejects in {rejects_file} say why")
        totals = _daily_totals(con, tables, segment is not None)
        touch = (con.sql("SELECT date_trunc('day', ts) AS ts, stage, count(*) AS y FROM events_ok "
                         "GROUP BY ALL").df() if "events" in tables else None)
    series = stage_flows(totals, freq, segment, mapping)
    return WarehouseFlows(
        series=series, touchpoints=_touchpoints(touch, totals["events"], freq),
        counts=counts, rejects_file=rejects_file, rejects_by_reason=by_reason,
        files={name: table.label for name, table in tables.items()})


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


# --------------------------------------------------------------------------- reading


def _load(con: duckdb.DuckDBPyConnection, name: str, source: Source, data_dir: Path, config: Config,
          now: pd.Timestamp, scratch: Path) -> _Table | None:
    """Check one source into the DuckDB table ``<name>_rows``; None when an optional one is absent."""
    if source.database:
        raise IngestError(f"sources.{name}: the warehouse reads CSV and Parquet files only; "
                          "database sources go through load_tables")
    path = data_dir / source.path
    if not path.exists():
        if source.required or name == "orders":
            raise IngestError(f"{path}: {name} file not found (set sources.{name} in journeycast.yml)")
        return None
    label = source.path
    csv = path.suffix.lower() not in (".parquet", ".pq")
    scan = _csv_scan(name, path, label, config, scratch) if csv else _parquet_scan(path)
    try:
        types = {row[0]: row[1] for row in con.sql(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        columns = _column_sources(name, [c for c in types if c != "idx"], source, label)
        table = _Table(name=name, label=label, line="idx + 1", rules=[])
        fixed = bool(config.date_format and ("%z" in config.date_format or "%Z" in config.date_format))
        offsets = _create_rows(con, table, scan, columns, types, config, now, fixed)
        if offsets and not fixed:
            # some timestamps carry a UTC offset: read again, converting those and rejecting the rest
            _create_rows(con, table, scan, columns, types, config, now, True)
    except duckdb.Error as exc:
        message = str(exc)
        if csv and "unicode" in message.lower():
            raise _encoding_error(label, "?", config.encoding) from None
        raise IngestError(f"{label}: cannot read the file: {message.splitlines()[0]}") from None
    if csv:
        table.line = _csv_lines(con, name, path, label, config)
    else:
        con.sql(f"CREATE TEMP TABLE {name}_unreadable (line BIGINT, csv_line VARCHAR, error_message VARCHAR)")
    rows = con.sql(f"SELECT (SELECT count(*) FROM {name}_rows) + (SELECT count(*) FROM {name}_unreadable)"
                   ).fetchall()[0][0]
    if rows == 0:
        raise IngestError(f"{label}: the file has a header but no rows" if csv else f"{label}: no rows")
    return table


def _parquet_scan(path: Path) -> str:
    return (f"(SELECT * EXCLUDE (file_row_number), file_row_number AS idx "
            f"FROM read_parquet({_sql_string(str(path))}, file_row_number=true))")


def _csv_scan(name: str, path: Path, label: str, config: Config, scratch: Path) -> str:
    """The file as text columns plus ``idx`` (0-based row position); unreadable lines go aside."""
    encoding = _csv_encoding(path, label, config)
    if encoding not in _DUCKDB_ENCODINGS:
        path = _transcode(path, label, encoding, scratch / f"{name}.csv")
        encoding = "utf-8"
    delimiter = config.delimiter or _header_delimiter(path)
    # row_number() OVER () streams: file order without holding the file
    return (f"(SELECT row_number() OVER () - 1 AS idx, * FROM read_csv({_sql_string(str(path))}, "
            f"header=true, all_varchar=true, delim={_sql_string(delimiter)}, "
            f"encoding={_sql_string(_DUCKDB_ENCODINGS[encoding])}, store_rejects=true, "
            f"rejects_table='{name}_reject_errors', rejects_scan='{name}_reject_scans'))")


def _csv_lines(con: duckdb.DuckDBPyConnection, name: str, path: Path, label: str, config: Config) -> str:
    """Store the unreadable lines; the SQL giving the line number of row position ``idx``.

    A row's line is the idx-th line after the header that is neither
    unreadable nor blank. With ``t_1 < t_2 < ...`` those skipped lines and
    ``u_j = t_j - (j - 1)``, row ``idx`` is on line ``idx + 2 + #{j: u_j <= idx + 2}``.
    """
    con.sql(f"CREATE TEMP TABLE {name}_unreadable AS SELECT DISTINCT ON (line) line, error_type, "
            f"trim(csv_line, {_BLANKS}) AS csv_line, error_message FROM {name}_reject_errors ORDER BY line")
    encoding = con.sql(f"SELECT min(line) FROM {name}_unreadable WHERE error_type = 'INVALID ENCODING'"
                       ).fetchall()[0][0]
    if encoding is not None:
        raise _encoding_error(label, encoding, config.encoding)
    unreadable = [row[0] for row in con.sql(f"SELECT line FROM {name}_unreadable").fetchall()]
    skipped = sorted({*unreadable, *(int(line) for line in _blank_lines(path))})
    shifts = [line - j for j, line in enumerate(skipped)]
    con.sql(f"CREATE TEMP TABLE {name}_skipped AS SELECT unnest(?::BIGINT[]) AS u", params=[shifts])
    return f"(idx + 2 + (SELECT count(*) FROM {name}_skipped WHERE u <= idx + 2))"


def _column_sources(name: str, source_columns: list[str], source: Source, label: str) -> dict[str, str]:
    """Canonical column -> source column, by ingest's own mapping rule.

    ``_canonical_names`` renames and selects the columns of a frame; given one
    row holding each column's position, that row tells which source column
    each canonical one came from.
    """
    probe = pd.DataFrame([range(len(source_columns))], columns=source_columns)
    picked = _canonical_names(name, probe, source, label)
    return {column: source_columns[int(picked[column].iloc[0])] for column in picked.columns}


# --------------------------------------------------------------------------- checking


class _Columns:
    """SQL for the source columns of one table: raw, as text, as numbers, as timestamps."""

    def __init__(self, columns: dict[str, str], types: dict[str, str]):
        self.columns, self.types = columns, types

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    def source(self) -> str:
        """The source columns under the names ``raw`` uses."""
        return ", ".join('"' + source.replace('"', '""') + f'" AS _raw_{column}'
                         for column, source in self.columns.items())

    def raw(self, column: str) -> str:
        return f"_raw_{column}" if column in self.columns else "NULL"

    def type(self, column: str) -> str:
        return self.types.get(self.columns.get(column, ""), "VARCHAR")

    def value(self, column: str) -> str:
        """The value as reported in the rejects file."""
        return f"CAST({self.raw(column)} AS VARCHAR)"

    def text(self, column: str) -> str:
        """Stripped text; blank is NULL (``trim`` only where an end is blank: it is slow)."""
        value = self.value(column)
        return (f"NULLIF(CASE WHEN ascii({value}) <= 32 OR ascii({value}[-1]) <= 32 "
                f"THEN trim({value}, {_BLANKS}) ELSE {value} END, '')")

    def is_text(self, column: str) -> bool:
        return not self.type(column).startswith(_NUMERIC)

    def number(self, column: str) -> str:
        converted = (f"TRY_CAST({self.text(column)} AS DOUBLE)" if self.is_text(column)
                     else f"CAST({self.raw(column)} AS DOUBLE)")
        return f"NULLIF({converted}, 'NaN'::DOUBLE)"  # NaN is missing, as in pandas


def _in(values) -> str:
    return "(" + ", ".join(_sql_string(v) for v in values) + ")"


def _lookup(expression: str, table: dict[str, str]) -> str:
    cases = " ".join(f"WHEN {_sql_string(k)} THEN {_sql_string(v)}" for k, v in table.items())
    return f"(CASE {expression} {cases} END)" if table else "NULL"


def _timestamp(q: _Columns, config: Config, now: pd.Timestamp, offsets: bool
               ) -> tuple[dict[str, str], list[_Rule], str]:
    """Base columns, rules and the converted ``ts`` expression (ingest's ``_timestamps``).

    ``offsets``: timestamps with a UTC offset are converted to the business
    zone and those without one rejected; otherwise none is expected to carry one.
    """
    zone = _sql_string(config.timezone)
    kind = q.type("ts")
    future = _Rule("ts", f"timestamp after now ({now:%Y-%m-%d %H:%M})",
                   f"ts > TIMESTAMP '{now:%Y-%m-%d %H:%M:%S.%f}'")
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return {"_missing_ts": f"{q.raw('ts')} IS NULL"}, [
            _Rule("ts", "missing ts", "_missing_ts")], f"timezone({zone}, {q.raw('ts')})", future
    if kind in _NAIVE_TIMES:
        return {"_missing_ts": f"{q.raw('ts')} IS NULL"}, [
            _Rule("ts", "missing ts", "_missing_ts")], f"CAST({q.raw('ts')} AS TIMESTAMP)", future
    base = {"_ts_text": q.text("ts")}
    if config.date_format:
        base["_offset"] = "true" if offsets else "false"
        parsed = f"try_strptime(_ts_text, {_sql_string(config.date_format)})"
        aware, naive = f"timezone({zone}, {parsed})", f"CAST({parsed} AS TIMESTAMP)"
        hint = f"format {config.date_format}"
    else:
        # ISO 8601: after "YYYY-MM-DD", a "Z", "+" or "-" can only start a UTC offset
        tail = "substr(_ts_text, 11)"
        base["_offset"] = (f"coalesce(suffix({tail}, 'Z') OR contains({tail}, '+') "
                           f"OR contains({tail}, '-'), false)")
        aware = f"timezone({zone}, TRY_CAST(_ts_text AS TIMESTAMPTZ))"
        naive = "TRY_CAST(_ts_text AS TIMESTAMP)"
        hint = "ISO 8601; set `date_format:`"
    rules = [_Rule("ts", "missing ts", "_ts_text IS NULL")]
    if offsets:
        converted = f"CASE WHEN _offset THEN {aware} END"
        rules.append(_Rule("ts", "timestamp without UTC offset in a column whose other "
                           "timestamps have one (its time zone is unknown)",
                           "_ts_text IS NOT NULL AND NOT _offset"))
        unparseable = "_ts_text IS NOT NULL AND _offset AND ts IS NULL"
    else:
        converted = f"CASE WHEN NOT _offset THEN {naive} END"
        unparseable = "_ts_text IS NOT NULL AND NOT _offset AND ts IS NULL"
    rules.append(_Rule("ts", f"unparseable timestamp (expected {hint})", unparseable))
    return base, rules, converted, future


def _amount(q: _Columns, column: str, required: bool) -> tuple[dict[str, str], list[_Rule]]:
    """Base columns and rules of a number column (ingest's ``_amounts``); the number is ``_n_<column>``."""
    number, blank = f"_n_{column}", f"_blank_{column}"
    base = {number: q.number(column),
            blank: f"{q.text(column)} IS NULL" if q.is_text(column) else f"{q.raw(column)} IS NULL"}
    rules = []
    if q.is_text(column):
        rules.append(_Rule(column, f"{column} is not a number", f"NOT {blank} AND {number} IS NULL"))
    if required:
        rules.append(_Rule(column, f"missing {column}", blank))
    rules.append(_Rule(column, f"{column} beyond {MAX_ABS_AMOUNT:,.0f} in absolute value (unit or entry error?)",
                       f"abs({number}) > {MAX_ABS_AMOUNT}"))
    return base, rules


def _required_text(q: _Columns, column: str) -> tuple[dict[str, str], list[_Rule]]:
    return {column: q.text(column)}, [_Rule(column, f"missing {column}", f"{column} IS NULL")]


def _optional_text(q: _Columns, column: str, default: str) -> str:
    return f"coalesce({q.text(column)}, {_sql_string(default)})"


def _orders_spec(q: _Columns, config: Config, now: pd.Timestamp, offsets: bool):
    base, rules, derived = {}, [], {}
    for column in ("order_id", "customer_id"):
        more, checks = _required_text(q, column)
        base |= more
        rules += checks
    ts_base, ts_rules, ts, future = _timestamp(q, config, now, offsets)
    base |= ts_base
    amount_base, amount_rules = _amount(q, "amount", required=True)
    base |= amount_base
    derived["ts"], derived["amount"] = ts, "_n_amount"
    rules += [*ts_rules, future, *amount_rules]
    derived["quantity"] = "1.0"
    if "quantity" in q:
        quantity_base, quantity_rules = _amount(q, "quantity", required=False)
        base |= quantity_base
        derived["quantity"] = "coalesce(_n_quantity, 1.0)"
        rules += [*quantity_rules, _Rule("quantity", "quantity is not a whole number >= 0",
                                         "quantity < 0 OR quantity % 1 <> 0")]
    derived["status"] = "(CASE WHEN _n_amount < 0 THEN 'refunded' ELSE 'completed' END)"
    if "status" in q:
        base["_status"] = f"lower({q.text('status')})"
        derived["status"] = f"coalesce({_lookup('_status', _STATUS_WORDS)}, {derived['status']})"
        rules.append(_Rule("status", f"unknown status (expected one of {', '.join(ORDER_STATUSES)})",
                           f"_status IS NOT NULL AND _status NOT IN {_in(_STATUS_WORDS)}"))
    base["order_type"] = f"lower({q.text('order_type')})"
    if "order_type" in q:
        rules.append(_Rule("order_type", f"unknown order_type (expected one of {', '.join(ORDER_TYPES)})",
                           f"order_type IS NOT NULL AND order_type NOT IN {_in(ORDER_TYPES)}"))
    keep = ("order_id", "customer_id", "ts", "amount", "quantity", "status", "order_type")
    return base, derived, rules, keep


def _events_spec(q: _Columns, config: Config, now: pd.Timestamp, offsets: bool):
    base, rules = _required_text(q, "customer_id")
    ts_base, ts_rules, ts, future = _timestamp(q, config, now, offsets)
    event_base, event_rules = _required_text(q, "event_type")
    base |= ts_base | event_base
    rules += [*ts_rules, future, *event_rules]
    derived = {"ts": ts, "channel": _optional_text(q, "channel", "unknown")}
    stage = _lookup("event_type", config.stage_map)
    if "stage" in q:
        base["_stage"] = f"lower({q.text('stage')})"
        rules.append(_Rule("stage", f"unknown stage (expected one of {', '.join(STAGES)})",
                           f"_stage IS NOT NULL AND _stage NOT IN {_in(STAGES)}"))
        stage = f"coalesce(_stage, {stage})"
    derived["stage"] = stage
    rules.append(_Rule("event_type", "unknown event_type (add it to stage_map in journeycast.yml)",
                       "event_type IS NOT NULL AND stage IS NULL"))
    if "value" in q:
        value_base, value_rules = _amount(q, "value", required=False)
        base |= value_base
        rules += value_rules
    return base, derived, rules, ("customer_id", "ts", "stage", "channel")


def _costs_spec(q: _Columns, config: Config, now: pd.Timestamp, offsets: bool):
    base, rules, ts, future = _timestamp(q, config, now, offsets)
    amount_base, amount_rules = _amount(q, "amount", required=True)
    base |= amount_base
    rules += [future, *amount_rules]
    derived = {"ts": ts, "amount": "_n_amount", "channel": _optional_text(q, "channel", "unknown"),
               "stage": f"lower({_optional_text(q, 'stage', 'operations')})"}
    rules.append(_Rule("stage", f"unknown cost stage (expected one of {', '.join(COST_STAGES)})",
                       f"stage NOT IN {_in(COST_STAGES)}"))
    return base, derived, rules, ("ts", "stage", "channel", "amount")


_SPECS = {"orders": _orders_spec, "events": _events_spec, "costs": _costs_spec}


def _create_rows(con: duckdb.DuckDBPyConnection, table: _Table, scan: str, columns: dict[str, str],
                 types: dict[str, str], config: Config, now: pd.Timestamp, offsets: bool) -> bool:
    """Convert and check every row into ``<table>_rows``; whether any timestamp had a UTC offset.

    Columns: ``idx``, the converted columns the series need, ``bad`` and, for
    bad rows, ``problems``: the broken rules (position in ``table.rules``)
    with the source value.
    """
    q = _Columns(columns, types)
    base, derived, rules, keep = _SPECS[table.name](q, config, now, offsets)
    table.rules = rules
    tests = [f"coalesce({rule.test}, false)" for rule in rules]
    problems = ", ".join(
        f"CASE WHEN {test} THEN {{'rule': {i}, 'value': {q.value(rule.column)}}} END"
        for i, (test, rule) in enumerate(zip(tests, rules)))
    has_offset = "_offset" in base
    con.sql(f"""
        CREATE OR REPLACE TEMP TABLE {table.name}_rows AS
        SELECT idx, {', '.join(keep)}, bad,
               CASE WHEN bad THEN list_filter([{problems}], lambda p: p IS NOT NULL) END AS problems
               {', _offset' if has_offset else ''}
        FROM (SELECT *, ({' OR '.join(tests)}) AS bad
              FROM (SELECT *, {', '.join(f'{v} AS {k}' for k, v in derived.items())}
                    FROM (SELECT *, {', '.join(f'{v} AS {k}' for k, v in base.items())}
                          FROM (SELECT idx, {q.source()} FROM {scan}))))
    """)
    return has_offset and not offsets and con.sql(
        f"SELECT coalesce(bool_or(_offset), false) FROM {table.name}_rows").fetchall()[0][0]


def _mark_duplicate_orders(con: duckdb.DuckDBPyConnection) -> None:
    """``orders_checked``: the rows plus ``first_idx``, set on a later usable row of a used order_id.

    Then the view ``orders_ok`` of accepted orders, with the order types
    ``ingest.derive_order_types`` gives where the source has none: per
    customer in time (then file) order, ``new`` before any completed positive
    sale, ``upsell`` at a unit price of at least ``UPSELL_PRICE_RATIO`` times
    the highest one paid before, else ``repeat``; a refund takes the label of
    the latest sale before it (``repeat`` when there is none).
    """
    con.sql("""
        CREATE TEMP TABLE orders_checked AS
        SELECT *, CASE WHEN NOT bad AND row_number() OVER usable > 1 THEN first_value(idx) OVER usable END
                  AS first_idx
        FROM orders_rows WINDOW usable AS (PARTITION BY order_id, bad ORDER BY idx)
    """)
    accepted = "SELECT * FROM orders_checked WHERE NOT bad AND first_idx IS NULL"
    untyped = con.sql(f"SELECT count(*) FROM ({accepted}) WHERE order_type IS NULL").fetchall()[0][0]
    if not untyped:
        con.sql(f"CREATE TEMP VIEW orders_ok AS {accepted}")
        return
    history = "PARTITION BY customer_id ORDER BY ts, idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    con.sql(f"""
        CREATE TEMP VIEW orders_ok AS
        WITH sales AS (
            SELECT *, status = 'completed' AND amount > 0 AS sale, amount / greatest(quantity, 1) AS unit
            FROM ({accepted})),
        labelled AS (
            SELECT *, CASE WHEN best_before IS NULL THEN 'new'
                           WHEN unit >= {UPSELL_PRICE_RATIO} * best_before THEN 'upsell'
                           ELSE 'repeat' END AS kind
            FROM (SELECT *, max(CASE WHEN sale THEN unit END) OVER ({history}) AS best_before FROM sales))
        SELECT * REPLACE (coalesce(order_type, CASE WHEN status = 'refunded' THEN coalesce(
                   last_value(CASE WHEN sale THEN kind END IGNORE NULLS) OVER ({history}), 'repeat')
                   ELSE kind END) AS order_type)
        FROM labelled
    """)


def _checked(name: str) -> str:
    return "orders_checked" if name == "orders" else f"{name}_rows"


def _ok_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if name != "orders":
        con.sql(f"CREATE TEMP VIEW {name}_ok AS SELECT * FROM {name}_rows WHERE NOT bad")


def _counts(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    """rows_in, accepted and rejected of one table (``rows_in = accepted + rejected``)."""
    duplicate = "OR first_idx IS NOT NULL" if name == "orders" else ""
    rows_in, rejected = con.sql(
        f"SELECT count(*) + (SELECT count(*) FROM {name}_unreadable), "
        f"count(*) FILTER (WHERE bad {duplicate}) + (SELECT count(*) FROM {name}_unreadable) "
        f"FROM {_checked(name)}").fetchall()[0]
    return {"rows_in": int(rows_in), "accepted": int(rows_in - rejected), "rejected": int(rejected)}


def _write_rejects(con: duckdb.DuckDBPyConnection, tables: list[_Table], path: Path) -> pd.DataFrame:
    """DuckDB writes every rejected row's problems (``REJECT_COLUMNS``) to ``path``, in file order.

    Returns the number of problems per table and reason (details in parentheses dropped).
    """
    parts = []
    for order, table in enumerate(tables):
        name, label = table.name, _sql_string(table.label)
        rules = ", ".join(f"({i}, {_sql_string(r.column)}, {_sql_string(r.reason)})"
                          for i, r in enumerate(table.rules))
        parts.append(f"""
            SELECT {order} AS part, {table.line} AS "row", r."column", p.value, r.reason, r.rule AS position
            FROM (SELECT idx, unnest(problems) AS p FROM {_checked(name)} WHERE bad)
            JOIN (VALUES {rules}) r(rule, "column", reason) ON r.rule = p.rule""")
        parts.append(f"""
            SELECT {order}, line, NULL, csv_line, 'unreadable line (' || error_message || ')', 0
            FROM {name}_unreadable""")
        if name == "orders":
            first = table.line.replace("idx", "first_idx")
            parts.append(f"""
                SELECT {order}, {table.line}, 'order_id', order_id,
                       'duplicate order_id (first at line ' || {first} || ')', {len(table.rules)}
                FROM orders_checked WHERE first_idx IS NOT NULL""")
    names = ", ".join(f"({i}, {_sql_string(t.name)}, {_sql_string(t.label)})" for i, t in enumerate(tables))
    fmt = "csv, header true" if path.suffix.lower() == ".csv" else "parquet"
    columns = ", ".join(f'CAST("{c}" AS BIGINT) AS "{c}"' if c == "row" else f'"{c}"' for c in REJECT_COLUMNS)
    con.sql(f"""
        CREATE TEMP TABLE rejects AS
        SELECT {columns}
        FROM ({' UNION ALL '.join(parts)}) found JOIN (VALUES {names}) tables(part, "table", file) USING (part)
        ORDER BY part, "row", "column" NULLS LAST, position
    """)
    con.sql(f"COPY rejects TO {_sql_string(str(path))} (FORMAT {fmt})")
    return con.sql("""
        SELECT "table", regexp_replace(reason, ' \\(.*\\)$', '') AS reason, count(*) AS problems
        FROM rejects GROUP BY ALL ORDER BY problems DESC, "table", reason""").df()


def _daily_totals(con: duckdb.DuckDBPyConnection, tables: dict[str, _Table], by_channel: bool
                  ) -> dict[str, pd.DataFrame]:
    """Money per day as canonical-shaped rows, for ``stage_flows``.

    orders: one row per day, segment, order type, status and sign of the
    amount (``customer_id`` holds the segment: the customer's first-touch
    channel, or ``"all"``); costs: one per day, stage, channel and sign;
    events: each segment's own channel on the first and the last day of the
    data, which gives ``stage_flows`` the data's period and each segment's channel.
    """
    segment = "'all'"
    touch = ""
    if by_channel:
        segment = "coalesce(touch.channel, 'unknown')"
        touch = ("LEFT JOIN (SELECT customer_id, min_by(channel, (ts, idx)) AS channel "
                 "FROM events_ok GROUP BY customer_id) touch USING (customer_id)"
                 if "events" in tables else "LEFT JOIN (SELECT NULL AS channel) touch ON false")
    orders = con.sql(f"""
        SELECT date_trunc('day', ts) AS ts, {segment} AS customer_id, order_type, status,
               fsum(amount) AS amount
        FROM orders_ok {touch} GROUP BY 1, 2, 3, 4, sign(amount) ORDER BY ALL""").df()
    out = {"orders": orders}
    if "costs" in tables:
        channel = "channel" if by_channel else "'all'"
        out["costs"] = con.sql(f"""
            SELECT date_trunc('day', ts) AS ts, stage, {channel} AS channel, fsum(amount) AS amount
            FROM costs_ok GROUP BY 1, 2, 3, sign(amount) ORDER BY ALL""").df()
    period = " UNION ALL ".join(f"SELECT min(ts) AS first, max(ts) AS last FROM {name}_ok" for name in tables)
    first, last = con.sql(f"SELECT date_trunc('day', min(first)), date_trunc('day', max(last)) "
                          f"FROM ({period})").fetchall()[0]
    segments = sorted({*orders["customer_id"], "all"}) if first is not None else []
    out["events"] = pd.DataFrame({"customer_id": segments * 2, "ts": [first] * len(segments) + [last] * len(segments),
                                  "channel": segments * 2})
    for frame in out.values():
        frame["ts"] = frame["ts"].astype("datetime64[ns]")
    return out


def _touchpoints(counts: pd.DataFrame | None, extent: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Events per stage and period on the grid of the data's period (stages in journey order)."""
    grid = period_grid(extent["ts"].min(), extent["ts"].max(), freq)
    if counts is None or counts.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in TOUCHPOINT_COLUMNS}).assign(
            ds=pd.Series(dtype="datetime64[ns]"), y=pd.Series(dtype="int64"))
    counts = counts.assign(ds=period_label(counts["ts"].astype("datetime64[ns]"), freq))
    wide = counts.groupby(["ds", "stage"])["y"].sum().unstack("stage", fill_value=0).reindex(grid, fill_value=0)
    stages = [s for s in STAGES if s in wide.columns]
    out = wide[stages].rename_axis("ds").melt(ignore_index=False, var_name="stage", value_name="y").reset_index()
    out["unique_id"] = out["stage"] + "|touchpoints"
    out["y"] = out["y"].astype("int64")
    for column in ("unique_id", "stage"):
        out[column] = out[column].astype("str")
    return out[list(TOUCHPOINT_COLUMNS)]
