"""Stage series straight from large source files: checked and totalled inside DuckDB.

``load_tables`` brings every accepted row into pandas, which needs several GB
for event logs of tens of millions of rows. ``warehouse_flows`` runs the same
engine -- ``toolkit.ingest.checked_sources``, the one rule table ``RULES``
over every source -- in a DuckDB connection with a memory limit (spilling to
``.cache/warehouse/`` beyond it), keeps the checked rows there and hands
pandas only daily totals. So counts, rejects, order lines, guests, refunds and
order types are exactly those of ``load_tables``. The totals go through
``toolkit.flows.stage_flows`` itself (shaped as canonical rows: one order row
per day, customer channel, order type, status and sign; one cost row per day,
stage, channel and sign), so sales, refunds, stages, directions, period labels
and the grid have one definition; the series equal
``stage_flows(load_tables(...).tables, freq, segment)`` up to float rounding
of the daily subtotals (sums are taken with ``fsum``).

The rejects (columns ``ingest.REJECT_COLUMNS``) are written by DuckDB to a
Parquet or CSV file. Input files are only read.
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

from toolkit.config import Config
from toolkit.flows import DEFAULT_MAPPING, SEGMENT_DIMENSIONS, FlowMapping, FlowsError, stage_flows
from toolkit.ingest import IngestError, _sql_string, checked_sources
from toolkit.journey import period_grid, period_label
from toolkit.schema import STAGES

__all__ = ["TOUCHPOINT_COLUMNS", "WarehouseFlows", "WarehouseLimits", "warehouse_flows"]

#: Columns of ``WarehouseFlows.touchpoints``.
TOUCHPOINT_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y", "stage")


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


def warehouse_flows(data_dir: str | Path, config: Config, freq: str = "D", segment: str | None = None,
                    mapping: FlowMapping = DEFAULT_MAPPING, rejects_file: str | Path | None = None,
                    now: pd.Timestamp | None = None,
                    limits: WarehouseLimits = WarehouseLimits()) -> WarehouseFlows:
    """Check the configured sources and total them into stage series, inside DuckDB.

    Parameters
    ----------
    data_dir, config, now
        As for ``toolkit.ingest.load_tables`` (``data_dir`` may be the orders file).
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
    rejects_file = Path(rejects_file) if rejects_file else limits.spill_dir / "rejects.parquet"
    with _connection(limits) as (con, scratch):
        checked = checked_sources(con, data_dir, config, now, scratch)
        rejects_file.parent.mkdir(parents=True, exist_ok=True)
        by_reason = _write_rejects(con, rejects_file)
        if not checked.counts["orders"]["accepted"]:
            raise IngestError(f"{checked.files['orders']}: no usable orders remain; "
                              f"the rejects in {rejects_file} say why")
        totals = _daily_totals(con, checked.files, segment is not None)
        touch = (con.sql("SELECT date_trunc('day', ts) AS ts, stage, count(*) AS y FROM events_ok "
                         "GROUP BY ALL").df() if "events" in checked.files else None)
    series = stage_flows(totals, freq, segment, mapping)
    return WarehouseFlows(
        series=series, touchpoints=_touchpoints(touch, totals["events"], freq),
        counts=checked.counts, rejects_file=rejects_file, rejects_by_reason=by_reason, files=checked.files)


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
    con.sql(f"COPY rejects TO {_sql_string(str(path))} (FORMAT {fmt})")
    return con.sql("""
        SELECT "table", regexp_replace(reason, ' \\(.*\\)$', '') AS reason, count(*) AS problems
        FROM rejects GROUP BY ALL ORDER BY problems DESC, "table", reason""").df()


def _daily_totals(con: duckdb.DuckDBPyConnection, tables: dict[str, str], by_channel: bool
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
