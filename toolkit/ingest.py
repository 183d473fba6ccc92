"""Read the business's sources into the canonical tables, keeping every reject.

``load_tables`` reads orders (required unless a campaign results export
stands alone), events, costs, contacts, campaigns, balances and commitments
(optional) from the sources named in the run configuration -- CSV or other delimited text
(whitespace-separated included), Parquet, a DuckDB database file or any SQL
database SQLAlchemy can reach -- maps their columns to the canonical names
(``toolkit.schema``), converts and checks every row, and derives what the
source does not carry.

One engine checks every source: each source is scanned by DuckDB (files
directly, database results as a registered frame) and the row rules of
``RULES`` -- one table, one line per rule -- run over it as SQL. The same
engine serves ``load_tables`` (the accepted rows come back to pandas) and
``toolkit.warehouse`` (the rows stay in DuckDB, for sources too large for
pandas), so both paths accept, reject and count exactly alike.

Nothing is dropped silently. A problem with a whole file (missing, empty,
unreadable, wrong delimiter, a required column absent, dates whose day and
month cannot be told apart) is an ``IngestError`` that names the file. A
problem with a row puts the row in ``Ingested.rejects`` with its file, row
number, column, value and reason, and keeps it out of the canonical tables.
For text files the row number is the line number (the header is line 1; a
quoted value spanning several lines counts as one line); for other sources it
is the 1-based position in the result. Input files are opened read-only and
never modified. ``Ingested.reject_share_error`` says when too many rows were
rejected to trust the rest (``Config.max_reject_share``).

Decisions a reader of the results should know:

* Only columns the mapping names, or that carry a canonical name already
  (case-insensitive), are read; a canonical name the mapping gives to one
  column is never taken from another column that merely looks like it.
* Orders are order lines: the rows sharing an ``order_id`` are one order. A
  line's ``amount`` is quantity x unit price when the source has no amount,
  and its ``unit_price`` is amount / quantity when it has none. Without an
  ``order_id`` column, a customer's lines at one timestamp are one order
  (``<customer>@<timestamp>``) and a guest's line is an order of its own.
* A line repeated exactly (every column read equal, in a source that has
  order ids) is rejected as a duplicate of its first appearance; map a line
  number column to ``line_id`` when an export repeats identical lines on
  purpose.
* A line with a negative amount or quantity, or whose order id starts with
  ``Source.cancellation_prefix``, is a refund or cancellation: its amount and
  quantity are made negative, its status is ``refunded`` unless the source
  says ``cancelled``, and ``refund_of`` names the order it reverses when that
  order id (without the prefix) is in the data. Such lines are never rejected.
* A line without a customer id is a guest checkout: kept, with ``customer_id``
  missing and ``order_type`` ``guest``.
* Timestamps without an offset are business-local time. Values with a UTC
  offset (``...Z``, ``...+02:00``) are converted to ``Config.timezone`` and made
  naive. In a column where some values carry an offset and others do not, the
  ones without are rejected: their zone is unknown, and guessing would shift
  them by hours. Timestamps before ``EARLIEST_TS`` are rejected, and so are
  those after now but in commitments and campaigns, which may be planned.
* ``orders.status``, when the source has none, is ``refunded`` for refund
  lines and ``completed`` otherwise. A source status is normalised
  (``canceled``/``void`` -> cancelled, ``refund``/``returned`` -> refunded, ...).
* ``orders.order_type``, when the source has none, see ``derive_order_types``.
* A cost with no stage (no stage column, or a blank value) belongs to
  ``operations``: the cash position must still carry it.
* ``Source.values`` gives a canonical column the source lacks one value for
  every row (a results export's campaign id and send date), read as if the
  file had it.
* A contact's group is read from a ``group`` column (treatment/control, or
  test/holdout) or else from its variant (``Source.control_variant`` rows are
  the control group). A contact without a customer id is ``row <n>``, its
  line, and cannot be linked to orders. A contacts export's further columns
  pass through: float64 when every value given is a number, else text as is.
* Without orders, a data set of contacts with outcomes (converted or revenue)
  is still read, with an empty orders table; without either, nothing is.
* Text files are read with a stated dialect (the header parsed here, ``"``
  quoting), never a sniffed one. A line whose quote never closes is rejected
  and the file read again without it, so the lines it swallowed are rows of
  their own and keep their line numbers.
* Two source columns that could be read as one (a name given twice, names
  differing only in case, two mapped to one canonical name) are an error.
* Ids are normalised by the rule in ``toolkit.schema`` (NFC, Unicode blanks
  stripped). An error shows the offending value, never a file's first line.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import mmap
import re
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pandera.errors
import sqlglot
from sqlglot import expressions as sql_tree

from toolkit.config import Config, Source
from toolkit.errors import JourneycastError
from toolkit.schema import (
    BUSINESS_DAY_RULES,
    CONTACT_GROUPS,
    COST_STAGES,
    DEFAULT_RESPONSE_WINDOW_DAYS,
    DIRECTIONS,
    EARLIEST_TS,
    FREQUENCIES,
    ID_COLUMNS,
    MAX_ABS_AMOUNT,
    ORDER_STATUSES,
    ORDER_TYPES,
    PLANNED_TABLES,
    REQUIRED_COLUMNS,
    SCHEMAS,
    STAGES,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["FUTURE_REASON", "IngestError", "Ingested", "REJECT_COLUMNS", "RULES", "RejectShareError", "Rule",
           "checked_sources", "derive_order_types", "load_tables", "reject_share_error", "source_stamp",
           "split_data_path"]

#: How a reject for a timestamp after now starts (such a row may be valid by the next read).
FUTURE_REASON = "timestamp after now"

#: Columns of ``Ingested.rejects``.
REJECT_COLUMNS = ("table", "file", "row", "column", "value", "reason")

#: A later order is an upsell when its unit price is at least this multiple of
#: the highest unit price the customer paid before.
UPSELL_PRICE_RATIO = 1.2

#: A source column mapped to this name tells identical lines apart (a line
#: number); it is read for the duplicate check only.
LINE_ID = "line_id"

_STATUS_WORDS = {
    "completed": "completed", "complete": "completed", "paid": "completed",
    "fulfilled": "completed", "shipped": "completed", "delivered": "completed",
    "cancelled": "cancelled", "canceled": "cancelled", "void": "cancelled",
    "voided": "cancelled",
    "refunded": "refunded", "refund": "refunded", "returned": "refunded", "return": "refunded",
}
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "iso8859-1": "latin-1"}
_DELIMITERS = (",", ";", "\t", "|")
#: ``delimiter: whitespace``: fields separated by runs of spaces or tabs (fixed-width-like exports).
WHITESPACE = "whitespace"
#: Statements that change a database or reach outside it; none may appear anywhere in a source query.
_WRITING_SQL = (sql_tree.DML, sql_tree.DDL, sql_tree.Into, sql_tree.Command, sql_tree.Copy, sql_tree.Pragma,
                sql_tree.Set, sql_tree.Use, sql_tree.Transaction, sql_tree.Commit, sql_tree.Rollback,
                sql_tree.Lock)
#: sqlglot's dialect for each SQLAlchemy backend whose name differs from it.
_SQLGLOT_DIALECTS = {"postgresql": "postgres", "mssql": "tsql", "mariadb": "mysql"}
#: DuckDB settings for opening a source file: nothing written, no other file or URL read, no extension loaded.
_DUCKDB_SOURCE_SETTINGS = {"enable_external_access": False,
                           "autoinstall_known_extensions": False, "autoload_known_extensions": False}
_TABLES = tuple(SCHEMAS)
_DATE_SAMPLE = 100_000  # values the day/month check reads
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_FLOATS = ("FLOAT", "DOUBLE", "DECIMAL")
_NAIVE_TIMES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")
# what str.strip() removes, as DuckDB trim() characters
_BLANKS = "' \t\n\x0b\x0c\r'"
# and the Unicode blanks an id may carry from a spreadsheet or a web form (no-break, thin, zero-width spaces, BOM)
_UNICODE_BLANKS = "' \t\n\x0b\x0c\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff'"


def _iso(text: str, kind: str) -> str:
    """SQL: ``text`` as an ISO 8601 timestamp of DuckDB type ``kind``, NULL when it is not one.

    DuckDB's cast alone also reads '03/01/19' (as the year 19): the shape is checked first.
    """
    return f"CASE WHEN regexp_matches({text}, '^\\d{{4}}-\\d\\d?-\\d\\d?') THEN TRY_CAST({text} AS {kind}) END"


class IngestError(JourneycastError):
    """A source cannot be read as a whole (missing, empty, unreadable, wrong layout)."""


class RejectShareError(IngestError):
    """More of a table's rows were rejected than ``Config.max_reject_share`` allows."""


# --------------------------------------------------------------------------- the rules

#: How each source column is read: ``text`` (stripped, blank is missing),
#: ``number``, ``time`` (the row's timestamp ``ts``) or ``date`` (a further
#: date, same format). Columns a table does not list are not read, but for
#: contacts, whose further columns pass through unchanged.
COLUMN_KINDS: dict[str, dict[str, str]] = {
    "orders": {"order_id": "text", "customer_id": "text", "ts": "time", "amount": "number", "sku": "text",
               "quantity": "number", "unit_price": "number", "status": "text", "order_type": "text",
               LINE_ID: "text"},
    "events": {"customer_id": "text", "ts": "time", "event_type": "text", "stage": "text", "channel": "text",
               "value": "number"},
    "costs": {"ts": "time", "stage": "text", "category": "text", "channel": "text", "amount": "number"},
    "contacts": {"campaign_id": "text", "customer_id": "text", "ts": "time", "group": "text", "variant": "text",
                 "converted": "number", "revenue": "number"},
    "campaigns": {"campaign_id": "text", "name": "text", "channel": "text", "ts": "time", "variant": "text",
                  "offer": "text", "discount": "number", "cost_per_contact": "number", "fixed_cost": "number",
                  "response_window_days": "number", "control_share": "number"},
    "balances": {"ts": "time", "account": "text", "balance": "number"},
    "commitments": {"ts": "time", "amount": "number", "direction": "text", "category": "text", "stage": "text",
                    "description": "text", "frequency": "text", "until": "date", "business_day": "text"},
}

#: Group words of a contacts export and the canonical group each means (case-insensitive).
_GROUP_WORDS = {"treatment": "treatment", "test": "treatment", "control": "control", "holdout": "control"}


@dataclass(frozen=True)
class Rule:
    """One row rule: a row for which ``test`` (SQL, true = problem) holds is rejected with ``reason``.

    ``column`` is the canonical column the problem is reported on (its source
    value goes to the rejects); the rule applies only when the source has the
    column ``needs`` (None: always). ``test`` reads the converted row: text
    columns by name (``order_id``), numbers as ``_n_<column>`` with
    ``_blank_<column>`` and ``_nan_<column>`` (given but not a number), the
    timestamp as ``ts`` with ``_ts_text``, and the derived columns of the table.
    ``{now}``, ``{hint}`` and the like in ``reason`` and ``test`` are filled in
    per run.
    """

    table: str
    column: str
    reason: str
    test: str
    needs: str | None = None


def _timestamp_rules(table: str) -> tuple[Rule, ...]:
    """The rules of a row's ``ts``; only tables of plans (``PLANNED_TABLES``) may hold dates after now."""
    rules = (
        Rule(table, "ts", "missing ts", "_ts_text IS NULL AND _ts_missing"),
        Rule(table, "ts", "timestamp without UTC offset in a column whose other timestamps have one "
                          "(its time zone is unknown)", "_ts_text IS NOT NULL AND {offsets} AND NOT _offset"),
        Rule(table, "ts", "unparseable timestamp (expected {hint})",
             "_ts_text IS NOT NULL AND _offset = {offsets} AND ts IS NULL"),
        Rule(table, "ts", f"timestamp before {EARLIEST_TS} (entry error?)", f"ts < TIMESTAMP '{EARLIEST_TS}'"),
    )
    if table in PLANNED_TABLES:
        return rules
    return (*rules, Rule(table, "ts", FUTURE_REASON + " ({now:%Y-%m-%d %H:%M})",
                         "ts > TIMESTAMP '{now:%Y-%m-%d %H:%M:%S.%f}'"))


def _number_rules(table: str, column: str, required: bool = False) -> tuple[Rule, ...]:
    rules = [Rule(table, column, f"{column} is not a number", f"_nan_{column}", needs=column)]
    if required:
        rules.append(Rule(table, column, f"missing {column}", f"_blank_{column}", needs=column))
    rules.append(Rule(table, column, f"{column} beyond {MAX_ABS_AMOUNT:,.0f} in absolute value (unit or entry error?)",
                      f"abs(_n_{column}) > {MAX_ABS_AMOUNT}", needs=column))
    return tuple(rules)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _one_of(values) -> str:
    return ", ".join(values)


def _in(values) -> str:
    return "(" + ", ".join(_sql_string(v) for v in values) + ")"


def _word_rule(table: str, column: str, words: tuple[str, ...]) -> Rule:
    """A text column whose (lower-cased) value must be one of ``words``."""
    return Rule(table, column, f"unknown {column} (expected one of {_one_of(words)})",
                f"{column} NOT IN {_in(words)}", needs=column)


def _share_rule(table: str, column: str, upper: str) -> Rule:
    """A share: from 0 up to 1 (``upper`` "<" excludes 1, "<=" includes it)."""
    bound = "[0, 1)" if upper == "<" else "[0, 1]"
    return Rule(table, column, f"{column} outside {bound}", f"_n_{column} < 0 OR NOT (_n_{column} {upper} 1)",
                needs=column)


#: Every row rule of every table, in the order problems are reported.
RULES: tuple[Rule, ...] = (
    Rule("orders", "order_id", "missing order_id", "order_id IS NULL", needs="order_id"),
    *_timestamp_rules("orders"),
    *_number_rules("orders", "amount", required=True),
    # without an amount column, the amount is quantity x unit_price
    Rule("orders", "unit_price", "missing unit_price (no amount to take instead)",
         "amount IS NULL AND _blank_unit_price AND NOT _nan_quantity", needs="unit_price"),
    *_number_rules("orders", "quantity"),
    Rule("orders", "quantity", "quantity is not a whole number", "_n_quantity % 1 <> 0", needs="quantity"),
    *_number_rules("orders", "unit_price"),
    Rule("orders", "status", f"unknown status (expected one of {_one_of(ORDER_STATUSES)})",
         "_status IS NOT NULL AND _status_word IS NULL", needs="status"),
    Rule("orders", "order_type", f"unknown order_type (expected one of {_one_of(ORDER_TYPES)})",
         "order_type IS NOT NULL AND order_type NOT IN {order_types}", needs="order_type"),
    Rule("events", "customer_id", "missing customer_id", "customer_id IS NULL"),
    *_timestamp_rules("events"),
    Rule("events", "event_type", "missing event_type", "event_type IS NULL"),
    Rule("events", "stage", f"unknown stage (expected one of {_one_of(STAGES)})",
         "_stage IS NOT NULL AND _stage NOT IN {stages}", needs="stage"),
    Rule("events", "event_type", "unknown event_type (add it to stage_map in journeycast.yml)",
         "event_type IS NOT NULL AND stage IS NULL"),
    *_number_rules("events", "value"),
    *_timestamp_rules("costs"),
    *_number_rules("costs", "amount", required=True),
    Rule("costs", "stage", f"unknown cost stage (expected one of {_one_of(COST_STAGES)})",
         "stage NOT IN {cost_stages}"),
    Rule("contacts", "campaign_id", "missing campaign_id", "campaign_id IS NULL"),
    *_timestamp_rules("contacts"),
    Rule("contacts", "group", "group is neither treatment nor control (test and holdout are read as such)",
         '"group" IS NULL', needs="group"),
    Rule("contacts", "variant", "missing variant (the group is read from it)", '"group" IS NULL AND variant IS NULL',
         needs="variant"),
    Rule("contacts", "converted", "converted is not 0 or 1", "_nan_converted OR _n_converted NOT IN (0, 1)",
         needs="converted"),
    *_number_rules("contacts", "revenue"),
    Rule("campaigns", "campaign_id", "missing campaign_id", "campaign_id IS NULL"),
    *_timestamp_rules("campaigns"),
    *_number_rules("campaigns", "discount"),
    _share_rule("campaigns", "discount", "<"),
    *(rule for cost in ("cost_per_contact", "fixed_cost") for rule in (
        *_number_rules("campaigns", cost),
        Rule("campaigns", cost, f"negative {cost}", f"_n_{cost} < 0", needs=cost))),
    *_number_rules("campaigns", "response_window_days"),
    Rule("campaigns", "response_window_days", "response_window_days is not a whole number of days from 1",
         "_n_response_window_days % 1 <> 0 OR _n_response_window_days < 1", needs="response_window_days"),
    *_number_rules("campaigns", "control_share"),
    _share_rule("campaigns", "control_share", "<="),
    *_timestamp_rules("balances"),
    *_number_rules("balances", "balance", required=True),
    *_timestamp_rules("commitments"),
    *_number_rules("commitments", "amount", required=True),
    Rule("commitments", "amount", "amount is not above 0 (direction says whether money goes out or in)",
         "_n_amount <= 0", needs="amount"),
    _word_rule("commitments", "direction", DIRECTIONS),
    _word_rule("commitments", "frequency", FREQUENCIES),
    _word_rule("commitments", "business_day", BUSINESS_DAY_RULES),
    Rule("commitments", "stage", f"unknown stage (expected one of {_one_of(COST_STAGES)})",
         "stage NOT IN {cost_stages}", needs="stage"),
    Rule("commitments", "until", "unparseable until date (expected {hint})", "_until_text IS NOT NULL AND until IS NULL",
         needs="until"),
    Rule("commitments", "until", "until is before ts", "until < ts", needs="until"),
    # a quote that opens a value and is closed by a stray one lines later joins those lines into one value
    *(Rule(table, column, f"line break inside {column} (an unclosed quote may have joined lines)",
           f"contains({column}, chr(10))", needs=column)
      for table, kinds in COLUMN_KINDS.items() for column in kinds if column in ID_COLUMNS),
)

#: Reason of a line repeated exactly; checked across rows, after ``RULES``.
DUPLICATE_LINE = "duplicate line (same as line {line})"


# --------------------------------------------------------------------------- results


@dataclass
class Ingested:
    """The canonical tables of one data directory, the rejected rows, and the counts.

    ``counts[table]`` has ``rows_in``, ``accepted`` and ``rejected``;
    ``rows_in == accepted + rejected`` always. ``rejects`` may hold several
    problems for one row, one line each. ``has_outcomes``: the contacts carry
    campaign outcomes, so the data are worth analysing without orders (whose
    table is then empty). ``generated_ids``: contacts whose customer id was
    missing and is ``row <n>``.
    """

    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    counts: dict[str, dict] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    has_outcomes: bool = False
    generated_ids: int = 0

    def rejects_by_reason(self) -> pd.DataFrame:
        """Problems per table and reason (details in parentheses dropped), most frequent first."""
        return _by_reason(self.rejects)

    def summary(self) -> dict:
        """Per table: file, counts, date range, customers, orders, guests and rejects by reason."""
        out = {}
        by_reason = self.rejects_by_reason()
        for name, frame in self.tables.items():
            info = {"file": self.files[name], **self.counts[name]}
            info["first"] = frame.ts.min() if len(frame) else None
            info["last"] = frame.ts.max() if len(frame) else None
            if "customer_id" in frame:
                info["customers"] = int(frame.customer_id.nunique())
            if name == "orders":
                info |= _order_summary(frame)
            if name == "contacts":
                info |= {"campaigns": int(frame.campaign_id.nunique()),
                         "groups": {g: int((frame.group == g).sum()) for g in CONTACT_GROUPS},
                         "generated_ids": self.generated_ids}
            reasons = by_reason[by_reason.table == name]
            info["rejects_by_reason"] = dict(zip(reasons.reason, reasons.problems.astype(int)))
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
            lines.append(line + (_details(name, info) if info["accepted"] else ""))
            lines += [f"          {count:>8,}  {reason}" for reason, count in info["rejects_by_reason"].items()]
        return "\n".join(lines)

    def reject_share_error(self, limit: float) -> str | None:
        """The message when a table lost more than ``limit`` of its rows, else None."""
        return reject_share_error(self.counts, self.rejects_by_reason(), self.files, limit)


def _details(name: str, info: dict) -> str:
    """What a summary line says about a table's accepted rows beyond the counts."""
    text = f"; {info['customers']:,} customers" if "customers" in info else ""
    if name == "orders":
        text += f"; {info['orders']:,} orders"
        if info["guest_lines"]:
            text += f"; {info['guest_lines']:,} guest lines ({info['guest_revenue_share']:.1%} of revenue)"
    if name == "contacts":
        text += f"; {info['campaigns']:,} campaigns; " + ", ".join(
            f"{count:,} {group}" for group, count in info["groups"].items())
        if info["generated_ids"]:
            text += f"; no customer id in {info['generated_ids']:,} rows: named 'row <line>', not linked to orders"
    return text


def _order_summary(orders: pd.DataFrame) -> dict:
    """Orders (distinct ids), guest lines and the guests' share of the revenue (completed sales)."""
    guest = orders.customer_id.isna()
    sales = orders.amount.where((orders.status == "completed") & (orders.amount > 0), 0.0)
    revenue = float(sales.sum())
    return {"orders": int(orders.order_id.nunique()), "guest_lines": int(guest.sum()),
            "guest_revenue_share": float(sales[guest].sum()) / revenue if revenue > 0 else 0.0}


def _by_reason(rejects: pd.DataFrame) -> pd.DataFrame:
    reasons = rejects.assign(reason=rejects.reason.str.replace(r" \(.*\)$", "", regex=True))
    counts = reasons.groupby(["table", "reason"]).size().rename("problems").reset_index()
    return counts.sort_values(["problems", "table", "reason"], ascending=[False, True, True], ignore_index=True)


def reject_share_error(counts: dict[str, dict], by_reason: pd.DataFrame, files: dict[str, str],
                       limit: float) -> str | None:
    """One line naming each table that lost more than ``limit`` of its rows, its share and top reasons.

    ``by_reason`` has columns table, reason, problems. None when every table is within the limit.
    """
    found = []
    for name, count in counts.items():
        if not count["rows_in"] or count["rejected"] <= limit * count["rows_in"]:
            continue
        reasons = by_reason[by_reason["table"] == name].head(3)
        top = ", ".join(f"{r.reason} ({r.problems:,})" for r in reasons.itertuples())
        found.append(f"{name} ({files[name]}): {count['rejected'] / count['rows_in']:.1%} of "
                     f"{count['rows_in']:,} rows rejected, above max_reject_share {limit:.0%}; "
                     f"top reasons: {top}")
    if not found:
        return None
    return ("; ".join(found) + ". Fix the mapping in journeycast.yml (see the rejects), or accept the "
            "loss with --accept-rejects (accept_rejects=True)")


# --------------------------------------------------------------------------- loading


def split_data_path(data_path: str | Path) -> tuple[Path, str | None]:
    """The data directory, and the orders file's name when ``data_path`` is a file rather than a folder."""
    data_path = Path(data_path)
    if data_path.is_file():
        return data_path.parent, data_path.name
    return data_path, None


def _with_orders_file(config: Config, name: str) -> Config:
    """The configuration with the orders read from the file ``name`` (its column mapping kept)."""
    orders = config.sources["orders"].model_copy(update={"path": name, "database": None, "table": None,
                                                         "query": None})
    return config.model_copy(update={"sources": {**config.sources, "orders": orders}})


def source_stamp(data_dir: str | Path, config: Config) -> tuple | None:
    """Every file the configured sources read, with its size and modification time; None for a database server.

    Two reads with equal stamps (and equal configurations) read the same
    rows, so their result can be kept and served again; a database server's
    rows change with no file to show it, so it has no stamp.
    """
    data_dir, orders_file = split_data_path(data_dir)
    if orders_file:
        config = _with_orders_file(config, orders_file)
    stamp = []
    for name in _TABLES:
        source = config.sources.get(name)
        location = source and (source.database or source.path)
        if not location:
            continue
        if "://" in location:
            return None
        path = (data_dir / location).resolve()
        found = path.stat() if path.exists() else None
        stamp.append((name, str(path), found and (found.st_size, found.st_mtime_ns)))
    return tuple(stamp)


def load_tables(data_dir: str | Path, config: Config, now: pd.Timestamp | None = None) -> Ingested:
    """Read, check and convert every configured source into the canonical tables.

    Parameters
    ----------
    data_dir
        Directory that relative source paths (and DuckDB/sqlite files) are read
        from, or the orders file itself (CSV, text or Parquet; the other
        sources are then read from its folder).
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
    with tempfile.TemporaryDirectory(prefix="journeycast-") as scratch, duckdb.connect() as con:
        checked = checked_sources(con, data_dir, config, now, Path(scratch))
        tables = {}
        for name in checked.files:
            table = _fetch(con, name, checked.extras.get(name, {}))
            try:
                tables[name] = SCHEMAS[name].validate(table)
            except pandera.errors.SchemaError as exc:
                raise IngestError(f"{checked.files[name]}: canonical {name} table failed validation: {exc}") from None
        rejects = con.sql(f"SELECT {', '.join(chr(34) + c + chr(34) for c in REJECT_COLUMNS)} FROM rejects").df()
    rejects = rejects.astype({"table": "str", "file": "str", "row": "int64", "column": "str", "value": "str",
                              "reason": "str"})
    return Ingested(tables=tables, rejects=rejects, counts=checked.counts, files=checked.files,
                    has_outcomes=checked.outcomes, generated_ids=checked.generated_ids)


def _fetch(con: duckdb.DuckDBPyConnection, name: str, extras: dict[str, str]) -> pd.DataFrame:
    """The accepted rows of one table as the canonical pandas frame, in source order.

    ``extras``: further columns passed through (contacts), with their dtype.
    """
    dtypes = {column: str(spec.dtype) for column, spec in SCHEMAS[name].columns.items()} | extras
    # through Arrow: about twice as fast as .df() for text columns
    frame = con.sql(f"SELECT {', '.join(map(_quoted, dtypes))} FROM {name}_ok ORDER BY idx"
                    ).to_arrow_table().to_pandas()
    for column, dtype in dtypes.items():
        frame[column] = frame[column].astype("datetime64[ns]" if column == "ts" else
                                             "str" if dtype in ("str", "string") else dtype)
    return frame


@dataclass
class Checked:
    """What ``checked_sources`` left in its DuckDB connection.

    Views ``<table>_ok`` hold the accepted rows of each table read (the
    canonical columns plus ``idx``, the 0-based source position), the table
    ``rejects`` every problem (``REJECT_COLUMNS``, in file order);
    ``counts`` and ``files`` as in ``Ingested``.
    """

    counts: dict[str, dict]
    files: dict[str, str]
    extras: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> passed-through column -> dtype
    outcomes: bool = False  # the contacts carry campaign outcomes (converted or revenue)
    generated_ids: int = 0  # accepted contacts without a customer id


def _business_now(now: pd.Timestamp | None, timezone: str) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz=timezone).tz_localize(None)
    now = pd.Timestamp(now)
    return now.tz_convert(timezone).tz_localize(None) if now.tzinfo else now


def checked_sources(con: duckdb.DuckDBPyConnection, data_dir: str | Path, config: Config,
                    now: pd.Timestamp | None, scratch: Path) -> Checked:
    """Scan every configured source into ``con`` and run ``RULES`` over it (see ``Checked``).

    ``scratch`` holds transcoded copies of text files DuckDB cannot read as
    they are. Raises ``IngestError`` for a source unusable as a whole.
    """
    data_dir, orders_file = split_data_path(data_dir)
    if orders_file:
        config = _with_orders_file(config, orders_file)
    now = _business_now(now, config.timezone)
    tables: dict[str, _Table] = {}
    for name in _TABLES:
        source = config.sources.get(name)
        if source is not None:
            table = _load(con, name, source, data_dir, config, now, scratch)
            if table is not None:
                tables[name] = table
    contacts = tables.get("contacts")
    outcomes = contacts is not None and bool({"converted", "revenue"} & set(contacts.columns))
    extras = {}
    if "orders" in tables:
        _mark_duplicate_lines(con, tables["orders"])
        _order_view(con, tables["orders"].source.cancellation_prefix)
    elif not outcomes:
        raise IngestError(f"{_location(config.sources['orders'])}: no orders source found, and no contacts with "
                          "outcomes (converted or revenue) to analyse instead; set sources.orders in journeycast.yml")
    for name, table in tables.items():
        if name == "contacts":
            extras[name] = _contact_view(con, table)
        elif name != "orders":
            con.sql(f"CREATE TEMP VIEW {name}_ok AS SELECT * FROM {name}_rows WHERE NOT bad")
    _rejects_table(con, list(tables.values()))
    counts = {name: _counts(con, name) for name in tables}
    files = {name: table.label for name, table in tables.items()}
    if "orders" not in tables:
        _no_orders(con)
        counts = {"orders": {"rows_in": 0, "accepted": 0, "rejected": 0}, **counts}
        files = {"orders": f"{_location(config.sources['orders'])} (none)", **files}
    generated = (con.sql("SELECT count(*) FROM contacts_rows WHERE NOT bad AND customer_id IS NULL").fetchall()[0][0]
                 if contacts is not None else 0)
    return Checked(counts=counts, files=files, extras=extras, outcomes=outcomes, generated_ids=generated)


def _location(source: Source) -> str:
    """Where a source says its rows are, for messages."""
    return source.path or f"{source.database}:{source.table or 'query'}"


def _no_orders(con: duckdb.DuckDBPyConnection) -> None:
    """An empty ``orders_ok``: a results export alone has no orders, and readers still find the table."""
    types = {"ts": "TIMESTAMP", "amount": "DOUBLE", "unit_price": "DOUBLE", "quantity": "BIGINT"}
    columns = ", ".join(f"NULL::{types.get(c, 'VARCHAR')} AS {c}" for c in SCHEMAS["orders"].columns)
    con.sql(f"CREATE TEMP TABLE orders_ok AS SELECT {columns}, NULL::BIGINT AS idx LIMIT 0")


def _contact_view(con: duckdb.DuckDBPyConnection, table: _Table) -> dict[str, str]:
    """``contacts_ok``: the accepted contacts, ids generated where missing, passed-through columns typed.

    A further column whose every given value is a number is a number
    (float64); any other stays text as it was. Returns each such column's dtype.
    """
    casts, dtypes = [], {}
    if table.extras:
        numeric = con.sql("SELECT " + ", ".join(
            f"count(_extra_{i}) > 0 AND count(_extra_{i}) FILTER ("
            f"TRY_CAST(trim(CAST(_extra_{i} AS VARCHAR)) AS DOUBLE) IS NULL) = 0"
            for i in range(len(table.extras))) + " FROM contacts_rows WHERE NOT bad").fetchall()[0]
        for i, (name, is_number) in enumerate(zip(table.extras, numeric)):
            cast = (f"TRY_CAST(trim(CAST(_extra_{i} AS VARCHAR)) AS DOUBLE)" if is_number
                    else f"CAST(_extra_{i} AS VARCHAR)")
            casts.append(f"{cast} AS {_quoted(name)}")
            dtypes[name] = "float64" if is_number else "str"
    canonical = ", ".join(f'"{c}"' for c in SCHEMAS["contacts"].columns if c != "customer_id")
    con.sql(f"""
        CREATE TEMP VIEW contacts_ok AS
        SELECT idx, {canonical}, coalesce(customer_id, 'row ' || {table.line}) AS customer_id
               {''.join(', ' + c for c in casts)}
        FROM contacts_rows WHERE NOT bad
    """)
    return dtypes


# --------------------------------------------------------------------------- reading


@dataclass
class _Table:
    """One source as scanned into DuckDB: where it came from and how to number its rows."""

    name: str
    label: str
    source: Source
    columns: dict[str, str]  # canonical -> source column
    rules: list[Rule]
    line: str = "idx + 1"  # SQL: the reported row number of 0-based position ``idx``
    extras: dict[str, str] = field(default_factory=dict)  # contacts: passed-through column -> source column


def _load(con: duckdb.DuckDBPyConnection, name: str, source: Source, data_dir: Path, config: Config,
          now: pd.Timestamp, scratch: Path) -> _Table | None:
    """Check one source into the DuckDB table ``<name>_rows``; None when an optional one is absent."""
    text_file = None
    if source.database:
        found = _database_frame(name, source, data_dir, source.required)
        if found is None:
            return None
        frame, label = found
        con.register(f"{name}_frame", frame.assign(idx=np.arange(len(frame))))
        scan = f"{name}_frame"
    else:
        path = data_dir / source.path
        if not path.exists():
            if source.required:
                raise IngestError(f"{path}: {name} file not found (set sources.{name} in journeycast.yml)")
            return None
        label = source.path
        if path.suffix.lower() in (".parquet", ".pq"):
            scan = (f"(SELECT * EXCLUDE (file_row_number), file_row_number AS idx "
                    f"FROM read_parquet({_sql_string(str(path))}, file_row_number=true))")
        else:
            text_file = _text_file(name, path, label, config, scratch)
            scan = text_file.scan(name)
    for repair in range(_QUOTE_REPAIRS + 1):
        table = _check_rows(con, name, scan, source, label, config, now, text_file is not None)
        broken = _unterminated_quote(con, name) if text_file is not None and repair < _QUOTE_REPAIRS else None
        repaired = broken and text_file.without(*broken, scratch / f"{name}-{repair}.csv")
        if not repaired:
            break
        # read again without the broken line: the lines its quote swallowed are rows of their own
        text_file, scan = repaired, repaired.scan(name)
        con.sql(f"DROP TABLE {name}_reject_errors; DROP TABLE {name}_reject_scans")
    if text_file is not None:
        table.line = _text_lines(con, name, text_file, label, config)
    else:
        con.sql(f"CREATE TEMP TABLE {name}_unreadable (line BIGINT, csv_line VARCHAR, error_message VARCHAR)")
    rows = con.sql(f"SELECT (SELECT count(*) FROM {name}_rows) + (SELECT count(*) FROM {name}_unreadable)"
                   ).fetchall()[0][0]
    if rows == 0:
        raise IngestError(f"{label}: the file has a header but no rows" if text_file else f"{label}: no rows")
    return table


def _check_rows(con: duckdb.DuckDBPyConnection, name: str, scan: str, source: Source, label: str, config: Config,
                now: pd.Timestamp, text: bool) -> _Table:
    """Map the columns of the source ``scan`` and check its rows into ``<name>_rows``."""
    try:
        types = {row[0]: row[1] for row in con.sql(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    except duckdb.Error as exc:
        raise _read_error(exc, label, config, text) from None
    found = [c for c in types if c != "idx"]
    columns = _column_sources(name, found, source, label)
    table = _Table(name=name, label=label, source=source, columns=columns,
                   rules=[r for r in RULES if r.table == name and (r.needs is None or r.needs in columns)],
                   extras=_passed_through(name, found, columns))
    q = _Columns(columns, types, source.values, list(table.extras.values()))
    try:
        if "ts" in columns and q.is_text("ts"):
            _check_date_format(con, scan, q, config, label)
        fixed = bool(config.date_format and ("%z" in config.date_format or "%Z" in config.date_format))
        offsets = _create_rows(con, table, scan, q, config, now, fixed)
        if offsets and not fixed:
            # some timestamps carry a UTC offset: read again, converting those and rejecting the rest
            _create_rows(con, table, scan, q, config, now, True)
    except duckdb.Error as exc:
        raise _read_error(exc, label, config, text) from None
    return table


def _read_error(exc: duckdb.Error, label: str, config: Config, text: bool) -> IngestError:
    message = str(exc)
    if text and "unicode" in message.lower():
        line = re.search(r"[Ll]ine:? (\d+)", message)
        return _encoding_error(label, line.group(1) if line else "?", config.encoding)
    return IngestError(f"{label}: cannot read the file: {message.splitlines()[0]}")


def _csv_encoding(path: Path, label: str, config: Config) -> str:
    """The configured encoding's canonical name; an error for an empty file or an unknown encoding."""
    if path.stat().st_size == 0:
        raise IngestError(f"{label}: the file is empty (expected a header line and rows)")
    try:
        return codecs.lookup(config.encoding).name
    except LookupError:
        raise IngestError(f"encoding '{config.encoding}' in journeycast.yml is not a known encoding") from None


#: A column name an error may repeat: a word or a few, not a number, path or line of another kind of file.
_COLUMN_NAME = re.compile(r"[^\W\d][\w .#%()-]{0,63}")

#: How many times a text file is read again without a line whose quote never closes (one a time).
_QUOTE_REPAIRS = 20
_UNTERMINATED_QUOTE = "unterminated quote: read without it, the lines after it are rows of their own"


@dataclass(frozen=True)
class _TextFile:
    """A delimited text file as DuckDB reads it: the dialect is stated, never sniffed.

    A sniffer that meets one unclosed quote picks "no quoting" for the whole
    file, and every valid quoted comma after it splits a value; so the header
    is parsed here and the quote character fixed. ``broken``: line -> text of
    the lines left out of ``path`` (blank there) because their quote never closed.
    """

    path: Path
    delimiter: str
    encoding: str  # DuckDB's name
    names: tuple[str, ...]
    quote: str
    broken: dict[int, str] = field(default_factory=dict)

    def scan(self, name: str) -> str:
        """SQL scanning the file as text columns plus ``idx``; unreadable lines go to ``<name>_reject_errors``."""
        columns = "{" + ", ".join(f"{_sql_string(c)}: 'VARCHAR'" for c in self.names) + "}"
        # row_number() OVER () streams: file order without holding the file
        return (f"(SELECT row_number() OVER () - 1 AS idx, * FROM read_csv({_sql_string(str(self.path))}, "
                f"header=true, auto_detect=false, columns={columns}, delim={_sql_string(self.delimiter)}, "
                f"quote={_sql_string(self.quote)}, escape={_sql_string(self.quote)}, strict_mode=true, "
                f"encoding={_sql_string(self.encoding)}, store_rejects=true, "
                f"rejects_table='{name}_reject_errors', rejects_scan='{name}_reject_scans'))")

    def without(self, line: int, near: int, text: str, target: Path) -> "_TextFile | None":
        """A copy with the broken line ``line`` blank, line numbers kept; None when it cannot be found.

        ``near``: DuckDB's byte position of the line (it may count from 1);
        ``text``: the line as DuckDB read it, checked before the line is left out.
        """
        if self.encoding == "utf-16":  # a newline is two bytes there
            return None
        data = self.path.read_bytes()
        start = data.rfind(b"\n", 0, near) + 1
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end - (data[end - 1:end] == b"\r")
        if data[start:end].decode(self.encoding, errors="replace") != text:
            return None
        target.write_bytes(data[:start] + data[end:])
        return dataclasses.replace(self, path=target, broken={**self.broken, line: text})


def _text_file(name: str, path: Path, label: str, config: Config, scratch: Path) -> _TextFile:
    """How to read a delimited text file (see ``_TextFile``).

    Files in an encoding DuckDB does not read, and whitespace-separated
    files, are read from a UTF-8, tab-separated copy in ``scratch`` with the same lines.
    """
    encoding = _csv_encoding(path, label, config)
    delimiter = config.delimiter or _header_delimiter(path, encoding)
    quote = '"'
    if delimiter == WHITESPACE:
        path = _whitespace_to_tabs(path, label, encoding, scratch / f"{name}.tsv")
        delimiter, encoding, quote = "\t", "utf-8", ""  # blanks split the fields: a quote is a character
    elif encoding not in _DUCKDB_ENCODINGS:
        path = _transcode(path, label, encoding, scratch / f"{name}.csv")
        encoding = "utf-8"
    names = _header_names(path, encoding, delimiter, quote, label)
    return _TextFile(path, delimiter, _DUCKDB_ENCODINGS[encoding], names, quote)


def _header_names(path: Path, encoding: str, delimiter: str, quote: str, label: str) -> tuple[str, ...]:
    """The column names of the header line (a blank name is ``column<n>``); a name given twice is an error."""
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        if encoding.startswith("utf-16"):  # a newline is two bytes: let the codec find it
            with path.open("r", encoding=codec, newline="") as handle:
                header = handle.readline(1 << 20)
        else:  # only the header's bytes: a bad byte further down is a reject of its own line
            with path.open("rb") as handle:
                header = handle.readline(1 << 20).decode(codec)
    except UnicodeDecodeError:
        raise _encoding_error(label, 1, encoding) from None
    header = header.rstrip("\r\n")
    dialect = {"quotechar": quote} if quote else {"quoting": csv.QUOTE_NONE}
    names = next(csv.reader([header], delimiter=delimiter, **dialect), [])
    names = [name or f"column{i}" for i, name in enumerate(names, start=1)]
    _refuse_repeated_names(names, label)
    return tuple(names)


def _refuse_repeated_names(names: list[str], label: str) -> None:
    """A column name given twice is an error: which of the two is meant is unknown.

    Case and blanks around a name are ignored, as when a column is found by
    its canonical name (and as SQL names are compared).
    """
    seen: dict[str, tuple[int, str]] = {}
    for i, name in enumerate(names, start=1):
        key = str(name).strip().lower()
        if key in seen:
            first, before = seen[key]
            same = (f"column {before.strip()!r} appears twice" if before.strip() == str(name).strip()
                    else f"columns {before!r} and {name!r} differ only in case")
            raise IngestError(f"{label}: {same} (columns {first} and {i}); rename or drop one of them")
        seen[key] = (i, str(name))


def _unterminated_quote(con: duckdb.DuckDBPyConnection, name: str) -> tuple[int, int, str] | None:
    """The first line whose quoted value never closed and swallowed the lines after it: line, byte position, text.

    Only the first: the lines it swallowed count as one, so the line numbers
    DuckDB gives the problems after it are off until it is left out.
    """
    found = con.sql(f"""
        SELECT line, line_byte_position, split_part(ltrim(csv_line, chr(13) || chr(10)), chr(10), 1)
        FROM {name}_reject_errors WHERE contains(csv_line, chr(10)) ORDER BY line LIMIT 1""").fetchall()
    return (int(found[0][0]), int(found[0][1]), found[0][2].rstrip("\r")) if found else None


def _header_delimiter(path: Path, encoding: str) -> str:
    """The candidate delimiter that splits the header line most often; else whitespace or ','.

    Column names rarely contain delimiters, so the header is a surer guide than
    sniffing data lines, which ragged rows or decimal commas can mislead. A
    header of several words with none of the candidates is whitespace-separated.
    """
    with path.open("rb") as handle:
        header = handle.readline(1 << 16).decode(encoding, errors="replace")
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best]:
        return best
    return WHITESPACE if len(header.split()) > 1 else ","


def _text_lines(con: duckdb.DuckDBPyConnection, name: str, text: _TextFile, label: str, config: Config) -> str:
    """Store the unreadable lines; the SQL giving the line number of row position ``idx``.

    A row's line is the idx-th line after the header that is neither
    unreadable nor blank. With ``t_1 < t_2 < ...`` those skipped lines and
    ``u_j = t_j - (j - 1)``, row ``idx`` is on line ``idx + 2 + #{j: u_j <= idx + 2}``.
    Lines left out for an unterminated quote (``text.broken``) are unreadable ones.
    """
    con.sql(f"CREATE TEMP TABLE {name}_unreadable AS SELECT DISTINCT ON (line) line, error_type, "
            f"trim(csv_line, {_BLANKS}) AS csv_line, error_message FROM {name}_reject_errors ORDER BY line")
    if text.broken:
        con.sql(f"INSERT INTO {name}_unreadable SELECT unnest(?::BIGINT[]), NULL, unnest(?::VARCHAR[]), ?",
                params=[list(text.broken), list(text.broken.values()), _UNTERMINATED_QUOTE])
    encoding = con.sql(f"SELECT min(line) FROM {name}_unreadable WHERE error_type = 'INVALID ENCODING'"
                       ).fetchall()[0][0]
    if encoding is not None:
        raise _encoding_error(label, encoding, config.encoding)
    unreadable = [row[0] for row in con.sql(f"SELECT line FROM {name}_unreadable").fetchall()]
    skipped = sorted({*unreadable, *(int(line) for line in _blank_lines(text.path))})
    shifts = [line - j for j, line in enumerate(skipped)]
    con.sql(f"CREATE TEMP TABLE {name}_skipped AS SELECT unnest(?::BIGINT[]) AS u", params=[shifts])
    return f"(idx + 2 + (SELECT count(*) FROM {name}_skipped WHERE u <= idx + 2))"


def _encoding_error(label: str, line: int | str, encoding: str) -> IngestError:
    return IngestError(f"{label}: line {line} has bytes that are not valid {encoding}; "
                       "set `encoding:` in journeycast.yml to the file's encoding (e.g. cp1252, latin-1)")


def _blank_lines(path: Path) -> np.ndarray:
    """Line numbers of empty lines (the CSV reader skips them), found by a byte scan."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if re.search(rb"\n\r?\n", data) is None:  # one pass: three times faster than two finds
            return np.empty(0, dtype=np.int64)
        lines, position, line = [], 0, 1
        for match in re.finditer(rb"\n(?=\r?\n)", data):
            line += data[position:match.start()].count(b"\n") + 1
            position = match.start() + 1
            lines.append(line)
        return np.asarray(lines, dtype=np.int64)


def _transcode(path: Path, label: str, encoding: str, target: Path, line=lambda text: text) -> Path:
    """Write a UTF-8 copy of a text file, each line passed through ``line``, line for line.

    A second pass over the file, paid only where DuckDB cannot read the file
    as it is (encodings other than UTF-8, UTF-16 and Latin-1; whitespace-separated fields).
    """
    try:
        with path.open("r", encoding=encoding, newline="") as src, \
                target.open("w", encoding="utf-8", newline="") as dst:
            for text in src:
                dst.write(line(text))
    except UnicodeDecodeError:
        with path.open("rb") as src:
            bad = next(n for n, raw in enumerate(src, start=1) if not _decodes(raw, encoding))
        raise _encoding_error(label, bad, encoding) from None
    return target


def _whitespace_to_tabs(path: Path, label: str, encoding: str, target: Path) -> Path:
    """A tab-separated copy of a file whose fields are separated by runs of blanks (leading ones dropped)."""
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    return _transcode(path, label, encoding, target, line=lambda text: "\t".join(text.split()) + "\n")


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _database_frame(name: str, source: Source, data_dir: Path, required: bool) -> tuple[pd.DataFrame, str] | None:
    """The rows of a database source (DuckDB file or SQLAlchemy URL) and its label."""
    if "://" in source.database:
        return _read_sql(source, data_dir)
    path = data_dir / source.database
    if not path.exists():
        if required:
            raise IngestError(f"{path}: {name} database not found")
        return None
    return _read_duckdb(path, source)


def _result(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, str]:
    if len(frame) == 0:
        raise IngestError(f"{label}: no rows")
    return frame, label


def _checked_query(query: str, label: str, dialect: str | None) -> str:
    """The query itself when it is exactly one read-only SELECT (a WITH whose body is a SELECT).

    The query is parsed, not pattern-matched: ``WITH x AS (SELECT 1) DELETE ...``
    starts like a SELECT but writes.
    """
    refused = (f"{label}: only a single SELECT or WITH query is allowed (a WITH whose body is a SELECT), "
               f"got: {query.strip()[:60]!r}")
    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise IngestError(f"{refused} ({str(exc).splitlines()[0]})") from None
    if len(statements) != 1 or not isinstance(statements[0], sql_tree.Query):
        raise IngestError(refused)
    if any(isinstance(node, _WRITING_SQL) for node in statements[0].walk()):
        raise IngestError(refused)
    return query.strip().rstrip(";").strip()


def _quoted_table(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))


def _read_duckdb(path: Path, source: Source) -> tuple[pd.DataFrame, str]:
    label = f"{source.database}:{source.table or 'query'}"
    query = (_checked_query(source.query, label, "duckdb") if source.query
             else f"SELECT * FROM {_quoted_table(source.table)}")
    try:
        con = duckdb.connect(str(path), read_only=True, config=_DUCKDB_SOURCE_SETTINGS)
    except duckdb.Error as exc:
        raise IngestError(f"{source.database}: cannot open the DuckDB file: {str(exc).splitlines()[0]}") from None
    try:
        frame = con.sql(query).df()
    except duckdb.Error as exc:
        raise IngestError(f"{label}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return _result(frame, label)


def _read_sql(source: Source, data_dir: Path) -> tuple[pd.DataFrame, str]:
    """The rows of a SQLAlchemy source, read so that nothing can be written.

    A SQLite file is opened read-only whatever options its URL carries; a
    PostgreSQL or MySQL query runs in a read-only transaction; every
    transaction is rolled back.
    """
    import sqlalchemy as sa  # on use: only these sources need it, and it takes 0.15 s to import

    url = sa.make_url(source.database)
    backend = url.get_backend_name()
    options = {}
    if backend == "sqlite":
        url, options = _read_only_sqlite(url, data_dir)
    label = f"{url.render_as_string(hide_password=True)}:{source.table or 'query'}"
    try:
        engine = sa.create_engine(url, **options)
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise IngestError(f"{label}: cannot open the database: {str(exc).splitlines()[0]}") from None
    try:
        if source.query:
            statement = _checked_query(source.query, label, _SQLGLOT_DIALECTS.get(backend, backend))
        else:
            statement = "SELECT * FROM " + ".".join(
                engine.dialect.identifier_preparer.quote(part) for part in source.table.split("."))
        with engine.connect() as conn:
            if backend in _READ_ONLY_TRANSACTION:
                conn.exec_driver_sql(_READ_ONLY_TRANSACTION[backend])
            frame = pd.read_sql_query(sa.text(statement), conn)
            conn.rollback()
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        raise IngestError(f"{label}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return _result(frame, label)


#: The statement that makes the transaction a query runs in read-only, for databases that have one.
_READ_ONLY_TRANSACTION = {"postgresql": "SET TRANSACTION READ ONLY",
                          "mysql": "SET SESSION TRANSACTION READ ONLY",
                          "mariadb": "SET SESSION TRANSACTION READ ONLY"}


def _read_only_sqlite(url: sa.URL, data_dir: Path) -> tuple[sa.URL, dict]:
    """A URL and engine options that open the SQLite file read-only.

    The URL's own options (``?mode=rw``, ``uri=true``, a ``file:`` name) are
    dropped: the file is opened through a ``file:`` URI with ``mode=ro`` built
    here, and ``query_only`` refuses writes even if that were bypassed.
    Relative paths are relative to the data directory.
    """
    name = (url.database or "").removeprefix("file:").split("?")[0]
    if name in ("", ":memory:"):
        raise IngestError(f"{url.render_as_string(hide_password=True)}: name the SQLite file to read")
    file = Path(name) if Path(name).is_absolute() else data_dir / name
    uri = file.resolve().as_uri() + "?mode=ro"

    def connect():
        con = sqlite3.connect(uri, uri=True)
        con.execute("PRAGMA query_only = ON")
        return con

    return url.set(database=str(file), query={}), {"creator": connect}


def _column_sources(name: str, source_columns: list[str], source: Source, label: str) -> dict[str, str]:
    """Canonical column -> the source column it is read from.

    A column is read when the mapping names it or when its own name is a
    canonical one (case and surrounding blanks ignored); a canonical name the
    mapping gives to one column is never taken from another. A required
    column absent is an error that names what was found. Two columns that
    could both be read as one (a name given twice, names that differ only in
    case, two columns mapped to one canonical name) are an error: reading
    either would be a guess.
    """
    kinds = COLUMN_KINDS[name]
    _refuse_repeated_names(source_columns, label)
    stripped = {str(c).strip(): c for c in source_columns}
    unknown = sorted(t for t in source.columns.values() if t not in kinds)
    if unknown:
        raise IngestError(f"{label}: sources.{name}.columns maps to {unknown[0]!r}, which is not a "
                          f"{name} column (expected one of {', '.join(kinds)})")
    candidates: dict[str, list[str]] = {}
    for column, target in source.columns.items():
        if column in stripped:
            candidates.setdefault(target, []).append(stripped[column])
    for target, found in candidates.items():
        if len(found) > 1:
            raise IngestError(f"{label}: columns {found[0]!r} and {found[1]!r} are both mapped to {target!r} "
                              f"under sources.{name}.columns; map only one")
    picked = {target: found[0] for target, found in candidates.items()}
    mapped = set(source.columns)
    for column, original in stripped.items():
        target = column.lower()
        if target in kinds and target not in picked and column not in mapped:
            picked[target] = original
    for target in source.values:
        if target not in kinds:
            raise IngestError(f"{label}: sources.{name}.values sets {target!r}, which is not a {name} column "
                              f"(expected one of {', '.join(kinds)})")
        if target in picked:
            raise IngestError(f"{label}: sources.{name}.values sets {target!r}, but the source has it already "
                              f"(column {picked[target]!r}); drop one of them")
        picked[target] = f"values.{target}"
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in picked
               and not (name == "orders" and c == "amount" and "unit_price" in picked)]
    if missing:
        found = list(stripped)
        expected = ", ".join(REQUIRED_COLUMNS[name])
        if len(found) == 1 and any(d in found[0] for d in _DELIMITERS):
            raise IngestError(
                f"{label}: the header did not split into columns (one column, its name holding "
                f"{' and '.join(repr(d) for d in _DELIMITERS if d in found[0])}); expected columns {expected}. "
                "Check the file's delimiter or set `delimiter:` in journeycast.yml")
        also = " (or quantity and unit_price)" if missing[0] == "amount" else ""
        raise IngestError(f"{label}: required column '{missing[0]}'{also} missing ({_found_columns(found)}); "
                          f"expected at least {expected}, or map yours under sources.{name}.columns")
    return picked


def _found_columns(found: list[str]) -> str:
    """The column names a source has, for an error -- when they look like names.

    A file that is not a table (a system file, a binary) has one long "name",
    or fields of data (numbers, paths) as names: its first line, which an
    error must not show.
    """
    if len(found) > 1 and all(_COLUMN_NAME.fullmatch(c) for c in found):
        return "found: " + ", ".join(found)
    if len(found) == 1:
        return "found one column, whose name does not look like a header"
    return f"found {len(found)} columns whose names do not look like a header"


def _passed_through(name: str, found: list[str], columns: dict[str, str]) -> dict[str, str]:
    """Contacts: the source columns not read as canonical ones, by their (stripped) names.

    A results export's customer attributes and further outcomes (Hillstrom's
    ``visit``) stay with each contact, for uplift models to read. A column
    whose name is a canonical one the mapping gave to another column is left
    out, as for every table.
    """
    if name != "contacts":
        return {}
    used = set(columns.values())
    return {str(c).strip(): c for c in found if c not in used and str(c).strip().lower() not in COLUMN_KINDS[name]}


# --------------------------------------------------------------------------- dates


def _check_date_format(con: duckdb.DuckDBPyConnection, scan: str, q: _Columns, config: Config,
                       label: str) -> None:
    """Refuse dates whose day and month the configured format (or ISO 8601) would read the wrong way.

    With a format that has both ``%d`` and ``%m``: when the swapped format
    reads more of the values, the file is the other way round. Without a
    format, when most values are not ISO 8601 but read as day-first or
    month-first dates, the file needs a ``date_format``; which one is said
    when only one reading fits, and the ambiguity when both do.
    """
    where = f"column '{q.columns['ts']}'"
    # the first rows decide: a wrong day/month order shows within days of data
    values = (f"(SELECT {q.text('ts')} AS t FROM (SELECT {q.source()} FROM {scan}) WHERE t IS NOT NULL "
              f"LIMIT {_DATE_SAMPLE})")
    fmt = config.date_format
    if fmt:
        if "%d" not in fmt or "%m" not in fmt:
            return
        swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
        total, given, other = con.sql(
            f"SELECT count(*), count(try_strptime(t, {_sql_string(fmt)})), "
            f"count(try_strptime(t, {_sql_string(swapped)})) FROM {values}").fetchall()[0]
        if other > given:
            raise IngestError(
                f"{label}: {where}: only {given / total:.0%} of the dates read as date_format '{fmt}' but "
                f"{other / total:.0%} read as '{swapped}' (day and month the other way round); "
                f"set date_format: '{swapped}'")
        return
    total, iso = con.sql(f"SELECT count(*), count({_iso('t', 'TIMESTAMPTZ')}) FROM {values}").fetchall()[0]
    if iso * 2 >= total:
        return
    sample = f"(SELECT t FROM {values} WHERE {_iso('t', 'TIMESTAMPTZ')} IS NULL LIMIT 10000)"
    candidates = [f"{a}{sep}{b}{sep}{year}{time}" for sep in "/.-" for year in ("%Y", "%y")
                  for a, b in (("%d", "%m"), ("%m", "%d")) for time in ("", " %H:%M", " %H:%M:%S")]
    counts = con.sql("SELECT count(*), " + ", ".join(
        # a year read as 0019 is not a fit
        f"count(*) FILTER (try_strptime(t, {_sql_string(c)}) >= TIMESTAMP '{EARLIEST_TS}')" for c in candidates)
        + f" FROM {sample}").fetchall()[0]
    fitting = [c for c, n in zip(candidates, counts[1:]) if n == counts[0]]
    example = con.sql(f"SELECT t FROM {sample} LIMIT 1").fetchall()[0][0]
    if len(fitting) > 1:
        raise IngestError(f"{label}: {where}: dates like '{example}' are not ISO 8601 and read both as "
                          f"'{fitting[0]}' and as '{fitting[1]}' (no day above 12); set date_format: to "
                          "the one the export uses")
    if fitting:
        raise IngestError(f"{label}: {where}: dates like '{example}' are not ISO 8601; "
                          f"set date_format: '{fitting[0]}'")


# --------------------------------------------------------------------------- checking


class _Columns:
    """SQL for the source columns of one table: raw, as text, as numbers."""

    def __init__(self, columns: dict[str, str], types: dict[str, str], constants: dict[str, str] | None = None,
                 extras: list[str] | None = None):
        self.columns, self.types = columns, types
        self.constants, self.extras = constants or {}, extras or []

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    def source(self) -> str:
        """The source columns under the names ``raw`` uses (constants of ``Source.values`` among them),
        the passed-through ones as ``_extra_<i>``, and ``idx``."""
        return ", ".join([
            "idx",
            *(f"{_sql_string(self.constants[column]) if column in self.constants else _quoted(source)} "
              f"AS _raw_{column}" for column, source in self.columns.items()),
            *(f"{_quoted(source)} AS _extra_{i}" for i, source in enumerate(self.extras))])

    def raw(self, column: str) -> str:
        return f"_raw_{column}" if column in self.columns else "NULL"

    def type(self, column: str) -> str:
        return self.types.get(self.columns.get(column, ""), "VARCHAR")

    def value(self, column: str) -> str:
        """The value as reported in the rejects file."""
        return f"CAST({self.raw(column)} AS VARCHAR)"

    def text(self, column: str) -> str:
        """Stripped text; blank is NULL (``trim`` only where an end is blank: it is slow).

        Whole numbers stored as floats (ids in a database result) read without ``.0``.
        Identifiers (``schema.ID_COLUMNS``) follow the schema's rule: Unicode NFC,
        Unicode blanks (non-breaking spaces among them) stripped as well.
        """
        if self.type(column).startswith(_FLOATS):
            raw = self.raw(column)
            return (f"CASE WHEN isnan({raw}) THEN NULL WHEN {raw} = trunc({raw}) "
                    f"THEN CAST(CAST({raw} AS HUGEINT) AS VARCHAR) ELSE CAST({raw} AS VARCHAR) END")
        value = self.value(column)
        if column in ID_COLUMNS:
            # nfc_normalize returns ASCII text as it is, at no cost
            return (f"NULLIF(CASE WHEN ascii({value}) <= 32 OR ascii({value}) > 126 OR ascii({value}[-1]) <= 32 "
                    f"OR ascii({value}[-1]) > 126 THEN trim(nfc_normalize({value}), {_UNICODE_BLANKS}) "
                    f"ELSE nfc_normalize({value}) END, '')")
        return (f"NULLIF(CASE WHEN ascii({value}) <= 32 OR ascii({value}[-1]) <= 32 "
                f"THEN trim({value}, {_BLANKS}) ELSE {value} END, '')")

    def is_text(self, column: str) -> bool:
        return not self.type(column).startswith(_NUMERIC)

    def number(self, column: str) -> str:
        converted = (f"TRY_CAST({self.text(column)} AS DOUBLE)" if self.is_text(column)
                     else f"CAST({self.raw(column)} AS DOUBLE)")
        return f"NULLIF({converted}, 'NaN'::DOUBLE)"  # NaN is missing, as in pandas


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _lookup(expression: str, table: dict[str, str]) -> str:
    cases = " ".join(f"WHEN {_sql_string(k)} THEN {_sql_string(v)}" for k, v in table.items())
    return f"(CASE {expression} {cases} END)" if table else "NULL"


def _base(q: _Columns, name: str, config: Config) -> dict[str, str]:
    """The source columns of one table converted by kind (``COLUMN_KINDS``); absent ones as missing."""
    base = {}
    for column, kind in COLUMN_KINDS[name].items():
        if kind == "date":
            base[f"_{column}_text"] = q.text(column) if column in q and q.is_text(column) else "NULL::VARCHAR"
            base[column] = _date(q, column, config) if column in q else "NULL::TIMESTAMP"
        elif kind == "text":
            base[column] = q.text(column) if column in q else "NULL::VARCHAR"
        elif kind == "number":
            present = column in q
            base[f"_n_{column}"] = q.number(column) if present else "NULL::DOUBLE"
            blank = (f"{q.text(column)} IS NULL" if q.is_text(column) else f"{q.raw(column)} IS NULL")
            base[f"_blank_{column}"] = blank if present else "true"
            base[f"_nan_{column}"] = (f"NOT {blank} AND _n_{column} IS NULL"
                                      if present and q.is_text(column) else "false")
    return base


def _date(q: _Columns, column: str, config: Config) -> str:
    """SQL: a further date column (``until``) as a naive timestamp, read like ``ts`` but without UTC offsets."""
    kind = q.type(column)
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone({_sql_string(config.timezone)}, {q.raw(column)})"
    if kind in _NAIVE_TIMES:
        return f"CAST({q.raw(column)} AS TIMESTAMP)"
    if config.date_format:
        return f"CAST(try_strptime({q.text(column)}, {_sql_string(config.date_format)}) AS TIMESTAMP)"
    return _iso(q.text(column), "TIMESTAMP")


def _timestamp(q: _Columns, config: Config, offsets: bool) -> tuple[dict[str, str], str, str]:
    """Base columns, the converted ``ts`` expression and the format hint of unparseable values.

    ``offsets``: timestamps with a UTC offset are converted to the business
    zone and those without one rejected; otherwise none is expected to carry one.
    """
    zone = _sql_string(config.timezone)
    kind = q.type("ts")
    typed = {"_ts_text": "NULL::VARCHAR", "_offset": str(offsets).lower(), "_ts_missing": f"{q.raw('ts')} IS NULL"}
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return typed, f"timezone({zone}, {q.raw('ts')})", ""
    if kind in _NAIVE_TIMES:
        return typed, f"CAST({q.raw('ts')} AS TIMESTAMP)", ""
    base = {"_ts_text": q.text("ts"), "_ts_missing": "true"}
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
        aware = f"timezone({zone}, {_iso('_ts_text', 'TIMESTAMPTZ')})"
        naive = _iso("_ts_text", "TIMESTAMP")
        hint = "ISO 8601; set `date_format:`"
    converted = f"CASE WHEN _offset THEN {aware} END" if offsets else f"CASE WHEN NOT _offset THEN {naive} END"
    return base, converted, hint


def _derived(name: str, q: _Columns, config: Config, source: Source) -> dict[str, str]:
    """The canonical columns computed from the converted source columns."""
    if name == "contacts":
        group = _contact_group(q, source.control_variant)
        return {"group": group, "variant": f"coalesce(variant, {group})", "converted": "_n_converted",
                "revenue": "_n_revenue"}
    if name == "campaigns":
        return {"name": "coalesce(name, campaign_id)", "channel": "coalesce(channel, 'unknown')",
                "discount": "_n_discount", "cost_per_contact": "_n_cost_per_contact", "fixed_cost": "_n_fixed_cost",
                "response_window_days": f"CAST(coalesce(_n_response_window_days, {DEFAULT_RESPONSE_WINDOW_DAYS}) "
                                        "AS BIGINT)",
                "control_share": "_n_control_share"}
    if name == "balances":
        return {"account": "coalesce(account, 'main')", "balance": "_n_balance"}
    if name == "commitments":
        return {"amount": "_n_amount", "direction": "lower(coalesce(direction, 'out'))",
                "category": "coalesce(category, 'other')", "stage": "lower(coalesce(stage, 'operations'))",
                "description": "coalesce(description, '')", "frequency": "lower(coalesce(frequency, 'once'))",
                "business_day": "lower(coalesce(business_day, 'none'))"}
    prefix = source.cancellation_prefix
    if name == "events":
        stage = _lookup("event_type", config.stage_map)
        if "stage" in q:
            stage = f"coalesce(_stage, {stage})"
        return {"stage": stage, "channel": "coalesce(channel, 'unknown')", "value": "_n_value"}
    if name == "costs":
        return {"amount": "_n_amount", "stage": "lower(coalesce(stage, 'operations'))",
                "category": "coalesce(category, 'other')", "channel": "coalesce(channel, 'unknown')"}
    cancelled = f"coalesce(starts_with(order_id, {_sql_string(prefix)}), false)" if prefix else "false"
    units = "coalesce(_n_quantity, 1)"
    amount = "_n_amount" if "amount" in q else f"{units} * _n_unit_price"
    order_id = ("order_id" if "order_id" in q else
                "coalesce(customer_id, 'guest line ' || (idx + 1)) || '@' || strftime(ts, '%Y-%m-%d %H:%M:%S')")
    return {
        # computed a layer earlier: the columns below read it
        "_first": {"_refund": f"(coalesce(_n_amount < 0, false) OR coalesce(_n_quantity < 0, false) OR {cancelled})"},
        "order_id": order_id,
        "amount": f"CASE WHEN _refund THEN -abs({amount}) ELSE {amount} END",
        "quantity": f"CAST(CASE WHEN _refund THEN -abs({units}) ELSE {units} END AS BIGINT)",
        "unit_price": f"coalesce(abs(_n_unit_price), abs({amount}) / CASE WHEN {units} = 0 THEN 1 "
                      f"ELSE abs({units}) END)",
        "sku": "coalesce(sku, 'unknown')",
        "status": "CASE WHEN _status_word IS NULL THEN (CASE WHEN _refund THEN 'refunded' ELSE 'completed' END) "
                  "WHEN _refund AND _status_word = 'completed' THEN 'refunded' ELSE _status_word END",
    }


def _contact_group(q: _Columns, control_variant: str | None) -> str:
    """SQL: a contact's group, from the group column or else from the variant.

    Without a group column the ``control_variant`` rows (case-insensitive) are
    the control group and every other variant is treatment; without either,
    every contact was reached (a campaign without a hold-out).
    """
    if "group" in q:
        return _lookup("_group", _GROUP_WORDS)
    if "variant" in q and control_variant:
        return (f"CASE WHEN lower(variant) = {_sql_string(control_variant.strip().lower())} THEN 'control' "
                "WHEN variant IS NOT NULL THEN 'treatment' END")
    return "'treatment'"


def _create_rows(con: duckdb.DuckDBPyConnection, table: _Table, scan: str, q: _Columns, config: Config,
                 now: pd.Timestamp, offsets: bool) -> bool:
    """Convert and check every row into ``<table>_rows``; whether any timestamp had a UTC offset.

    Columns: ``idx``, the source values (``_raw_<column>``), the canonical
    columns, ``_offset``, ``bad`` and, for bad rows, ``problems``: the broken
    rules (position in ``table.rules``) with the source value. The other
    columns the rules read (``_n_amount``, ``_ts_text``, ...) are not kept:
    writing them would cost more than computing them.
    """
    name = table.name
    base = _base(q, name, config)
    ts_base, ts, hint = _timestamp(q, config, offsets)
    base |= ts_base
    extra = {}
    if name == "orders":
        base["order_type"] = f"lower({base['order_type']})"
        base["_status"] = f"lower({base['status']})"
        extra["_status_word"] = _lookup("_status", _STATUS_WORDS)
    if name == "events":
        base["_stage"] = f"lower({base['stage']})"
    if name == "contacts":
        base["_group"] = f"lower({base['group']})"
    derived = _derived(name, q, config, table.source)
    context = {"now": now, "hint": hint, "offsets": str(offsets).lower(), "order_types": _in(ORDER_TYPES),
               "stages": _in(STAGES), "cost_stages": _in(COST_STAGES)}
    tests = [f"coalesce({rule.test.format(**context)}, false)" for rule in table.rules]
    table.rules = [Rule(r.table, r.column, r.reason.format(**context), r.test, r.needs) for r in table.rules]
    problems = ", ".join(
        f"CASE WHEN {test} THEN {{'rule': {i}, 'value': {q.value(rule.column)}}} END"
        for i, (test, rule) in enumerate(zip(tests, table.rules)))
    layers = [base | extra, {"ts": ts, **derived.pop("_first", {})}, derived]
    select, known = f"SELECT {q.source()} FROM {scan}", set()
    for layer in layers:
        replaced = ", ".join(f'{v} AS "{k}"' for k, v in layer.items() if k in known)
        added = "".join(f', {v} AS "{k}"' for k, v in layer.items() if k not in known)
        select = f"SELECT *{f' REPLACE ({replaced})' if replaced else ''}{added} FROM ({select})"
        known |= set(layer)
    helpers = ", ".join(sorted(k for k in known if k.startswith("_") and k != "_offset"))
    con.sql(f"""
        CREATE OR REPLACE TEMP TABLE {name}_rows AS
        SELECT * EXCLUDE ({helpers}),
               CASE WHEN bad THEN list_filter([{problems}], lambda p: p IS NOT NULL) END AS problems
        FROM (SELECT *, ({' OR '.join(tests) or 'false'}) AS bad FROM ({select}))
    """)
    return (not offsets and q.is_text("ts") and not config.date_format and con.sql(
        f"SELECT coalesce(bool_or(_offset), false) FROM {name}_rows").fetchall()[0][0])


def _mark_duplicate_lines(con: duckdb.DuckDBPyConnection, table: _Table) -> None:
    """``orders_duplicates``: ``idx`` of each later usable copy of a line and ``first_idx``, its first.

    Only sources with order ids: without them a row is a purchase of its own,
    and two equal purchases on one day are plausible (CDNOW has hundreds).
    A small table: the rejects, the counts and the accepted lines each read it
    instead of matching every row again.
    """
    if "order_id" not in table.columns:
        con.sql("CREATE TEMP TABLE orders_duplicates (idx BIGINT, first_idx BIGINT)")
        return
    same = [f"_raw_{column}" for column in table.columns]
    match = " AND ".join(f"r.{c} IS NOT DISTINCT FROM d.{c}" for c in same)
    # the repeated lines are few: group them aside, then a join against that small table
    con.sql(f"""
        CREATE TEMP TABLE orders_duplicates AS
        WITH repeated AS MATERIALIZED (
            SELECT {', '.join(same)}, min(idx) AS first FROM orders_rows WHERE NOT bad
            GROUP BY ALL HAVING count(*) > 1)
        SELECT r.idx, d.first AS first_idx FROM orders_rows r JOIN repeated d ON {match}
        WHERE NOT r.bad AND r.idx <> d.first
    """)


def _order_view(con: duckdb.DuckDBPyConnection, prefix: str | None) -> None:
    """``orders_ok``: the accepted lines, each with ``refund_of`` and its order's type.

    A view: order types and refund links are computed by what reads them
    (``load_tables``, the DuckDB flows), not by a check that only counts.
    """
    refund_of = "refund_of"
    if prefix:
        original = f"substr(order_id, {len(prefix) + 1})"
        refund_of = (f"CASE WHEN starts_with(order_id, {_sql_string(prefix)}) AND {original} IN "
                     f"(SELECT order_id FROM grouped) THEN {original} END")
    con.sql("""CREATE TEMP VIEW orders_accepted AS SELECT *, NULL::VARCHAR AS refund_of FROM orders_rows
               WHERE NOT bad AND idx NOT IN (SELECT idx FROM orders_duplicates)""")
    con.sql(f"""
        CREATE TEMP VIEW orders_ok AS
        SELECT l.* REPLACE (CASE WHEN l.customer_id IS NULL THEN 'guest'
                                 ELSE coalesce(l.order_type, t.order_type) END AS order_type,
                            t.refund_of AS refund_of)
        FROM orders_accepted l LEFT JOIN ({_order_types_sql('orders_accepted', refund_of)}) t USING (order_id)
    """)


def _order_types_sql(lines: str, refund_of: str = "refund_of") -> str:
    """SQL: each order (``order_id``) of the lines ``lines``, the order it reverses and its type.

    Columns ``order_id, refund_of, order_type``; see ``derive_order_types``
    (an order without a customer id is ``guest``). ``refund_of`` is SQL over
    one order's ``order_id`` and ``refund_of`` (its lines' largest) and the
    CTE ``grouped`` of every order (with its ``order_id``); the default keeps
    the lines' own.
    """
    history = "PARTITION BY customer_id ORDER BY ts, idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    return f"""
        WITH grouped AS (
            SELECT order_id, max(customer_id) AS customer_id, min(ts) AS ts, min(idx) AS idx,
                   bool_or(status = 'completed' AND amount > 0) AS sale,
                   bool_and(status = 'refunded') AS refund,
                   max(CASE WHEN amount >= 0 THEN unit_price END) AS unit, max(refund_of) AS refund_of
            FROM {lines} GROUP BY order_id),
        orders AS (SELECT * REPLACE ({refund_of} AS refund_of) FROM grouped),
        labelled AS (
            -- guests share the NULL partition, but have no history and no kind
            SELECT *, CASE WHEN customer_id IS NULL THEN NULL
                           WHEN best_before IS NULL THEN 'new'
                           WHEN unit >= {UPSELL_PRICE_RATIO} * best_before THEN 'upsell'
                           ELSE 'repeat' END AS kind
            FROM (SELECT *, max(CASE WHEN sale THEN unit END) OVER ({history}) AS best_before
                  FROM orders)),
        with_last AS (
            SELECT *, last_value(CASE WHEN sale THEN kind END IGNORE NULLS) OVER ({history}) AS last_sale
            FROM labelled)
        SELECT o.order_id, o.refund_of,
               CASE WHEN o.customer_id IS NULL THEN 'guest'
                    WHEN o.refund THEN coalesce(r.kind, o.last_sale, 'repeat') ELSE o.kind END AS order_type
        FROM with_last o LEFT JOIN labelled r ON r.order_id = o.refund_of
    """


def derive_order_types(orders: pd.DataFrame) -> pd.Series:
    """Label each order line new, repeat, upsell or guest from its order and the customer's history.

    The lines sharing an ``order_id`` are one order and share its label. A
    customer's history is their orders with a completed sale line, in time
    order (file order breaks ties). An order placed before any such order is
    ``new``; a later one is ``upsell`` when its highest line unit price is at
    least ``UPSELL_PRICE_RATIO`` times the highest unit price the customer
    paid before, else ``repeat``. Cancelled orders are labelled by the same
    rule but do not enter the history. A refund takes the label of the order
    it reverses (``refund_of``) or else of the customer's latest sale before
    it, or ``repeat`` when the refunded sale is older than the data. A line
    without a customer id is ``guest``: there is no history to place it in.
    """
    units = orders["quantity"].abs().clip(lower=1) if "quantity" in orders else 1
    lines = pd.DataFrame({
        "order_id": orders["order_id"].to_numpy(), "customer_id": orders["customer_id"].to_numpy(),
        "ts": orders["ts"].to_numpy(), "idx": np.arange(len(orders)), "amount": orders["amount"].to_numpy(),
        "status": orders["status"].to_numpy(),
        "unit_price": (orders["unit_price"] if "unit_price" in orders else orders["amount"].abs() / units).to_numpy(),
        "refund_of": (orders["refund_of"] if "refund_of" in orders
                      else pd.Series(pd.NA, index=orders.index, dtype="str")).to_numpy(),
    })
    with duckdb.connect() as con:
        con.register("lines", lines)
        types = con.sql(_order_types_sql("lines")).df()
    labels = orders["order_id"].map(pd.Series(types["order_type"].to_numpy(), index=types["order_id"]))
    return labels.where(orders["customer_id"].notna(), "guest").astype("str")


def _rejects_table(con: duckdb.DuckDBPyConnection, tables: list[_Table]) -> None:
    """The table ``rejects``: every rejected row's problems (``REJECT_COLUMNS``), in file order."""
    parts = []
    for order, table in enumerate(tables):
        name = table.name
        rules = ", ".join(f"({i}, {_sql_string(r.column)}, {_sql_string(r.reason)})"
                          for i, r in enumerate(table.rules))
        parts.append(f"""
            SELECT {order} AS part, {table.line} AS "row", r."column", p.value, r.reason, r.rule AS position
            FROM (SELECT idx, unnest(problems) AS p FROM {name}_rows WHERE bad)
            JOIN (VALUES {rules}) r(rule, "column", reason) ON r.rule = p.rule""")
        parts.append(f"""
            SELECT {order}, line, NULL, csv_line, 'unreadable line (' || error_message || ')', 0
            FROM {name}_unreadable""")
        if name == "orders":
            first = table.line.replace("idx", "first_idx")
            reason = DUPLICATE_LINE.replace("{line}", "' || " + first + " || '")
            parts.append(f"""
                SELECT {order}, {table.line}, 'order_id', order_id, '{reason}', {len(table.rules)}
                FROM orders_duplicates JOIN orders_rows USING (idx)""")
    names = ", ".join(f"({i}, {_sql_string(t.name)}, {_sql_string(t.label)})" for i, t in enumerate(tables))
    columns = ", ".join(f'CAST("{c}" AS BIGINT) AS "{c}"' if c == "row" else f'"{c}"' for c in REJECT_COLUMNS)
    con.sql(f"""
        CREATE TEMP TABLE rejects AS
        SELECT {columns}
        FROM ({' UNION ALL '.join(parts)}) found JOIN (VALUES {names}) tables(part, "table", file) USING (part)
        ORDER BY part, "row", "column" NULLS LAST, position
    """)


def _counts(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    """rows_in, accepted and rejected of one table (``rows_in = accepted + rejected``)."""
    duplicates = "(SELECT count(*) FROM orders_duplicates)" if name == "orders" else "0"
    rows_in, rejected = con.sql(
        f"SELECT count(*) + (SELECT count(*) FROM {name}_unreadable), "
        f"count(*) FILTER (WHERE bad) + {duplicates} + (SELECT count(*) FROM {name}_unreadable) "
        f"FROM {name}_rows").fetchall()[0]
    return {"rows_in": int(rows_in), "accepted": int(rows_in - rejected), "rejected": int(rejected)}
