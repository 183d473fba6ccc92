"""The canonical tables as cash-flow series: one per journey stage, direction and segment.

Every amount of money in the data belongs to one stage of the journey and
flows one way. ``DEFAULT_MAPPING`` says which:

============= ============================================ =====================================
stage         inflow (money in)                            outflow (money out)
============= ============================================ =====================================
awareness                                                  acquisition and brand marketing
                                                           (costs of stage awareness)
consideration                                              promotions and discounts
                                                           (costs of stage consideration)
evaluation                                                 trials and demos (costs of stage evaluation)
purchase      first orders (order_type ``new``) and        fulfilment (costs of stage purchase);
              guest checkouts (``guest``: no customer id)  without costs, the estimated cost of
                                                           goods (see below)
post-purchase repeat and upsell orders                     refunds; retention, support and loyalty
                                                           (costs of stage post-purchase)
operations                                                 payroll, rent ... (costs of stage operations)
============= ============================================ =====================================

Money moves only on sales (completed, positive amount: money in) and refunds
(money out, the absolute amount); cancelled orders moved no money (see
``toolkit.journey.is_sale`` / ``is_refund``). Refunds are outflows rather than
negative inflows, so every series holds non-negative amounts and the direction
gives the sign. A negative cost (a rebate or credit note) is money coming back
to its stage: an inflow of that stage.

Guest money (order lines without a customer id) counts in every series like
any other sale; split by channel, it goes to the ``"unknown"`` channel, as a
guest has no first touch.

Without a costs table nothing says what the business pays out. Given the
share of a sale left after goods and shipping (``gross_margin``),
``stage_flows`` estimates the cost of goods as ``(1 - gross_margin) x sales``
on the day of each sale: the purchase-stage outflow series of segment
``"estimated"`` (``purchase|outflow|estimated``), so every table and chart
shows it is an estimate. Without both, only money in is known.

Money moves when the bank sees it (``PaymentTiming`` in the configuration):
card sales settle ``sales_days`` later (in business days if so set: no
weekends or public holidays), refunds leave ``refunds_days`` later, costs
(and the estimated cost of goods) are paid ``costs_days`` later. The default
is the same day. Money whose payment date falls after the last day of the data
is not in the series: ``money_in_transit`` gives it, dated, for the forecast
to add exactly (it is already owed).

Series are long format (``unique_id, ds, y`` plus ``stage, direction,
segment``), ``unique_id = "stage|direction|segment"``, on one full grid of
periods from the first to the last day of the data, zeros where no money moved.
Weekly and monthly periods are labelled like ``pandas.date_range`` steps (see
``toolkit.journey.period_label``); the first and last period can be partial.

Sources too large for pandas: ``flows_in_duckdb`` checks them inside a
memory-capped DuckDB connection (``toolkit.warehouse.checked_warehouse``, the
same rules and rejects as ``load_tables``) and hands pandas only daily totals,
shaped as canonical rows (one order row per day, segment, order type, status
and sign; one cost row per day, stage, channel and sign) and passed through
``stage_flows`` itself, so sales, refunds, guests, stages, directions, period
labels and the grid have one definition. Its series equal
``stage_flows(load_tables(...).tables, ...)`` up to float rounding of the daily
subtotals (sums are taken with ``fsum``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from toolkit.errors import JourneycastError, require_columns
from toolkit.journey import (UNKNOWN_CHANNEL, data_period, first_touch, is_refund, is_sale, period_grid,
                             period_label)
from toolkit.schema import COST_STAGES, STAGES

if TYPE_CHECKING:
    import duckdb

    from toolkit.config import Config, PaymentTiming
    from toolkit.warehouse import WarehouseLimits

__all__ = [
    "ALL",
    "DEFAULT_MAPPING",
    "DIRECTIONS",
    "ESTIMATED",
    "FLOW_TABLES",
    "SEGMENT_DIMENSIONS",
    "SERIES_COLUMNS",
    "TOUCHPOINT_COLUMNS",
    "DuckDBFlows",
    "FlowMapping",
    "FlowsError",
    "flows_in_duckdb",
    "has_costs",
    "money_in_transit",
    "net_flow",
    "paid_on",
    "stage_flows",
]

#: Directions of money, in the order series are listed.
DIRECTIONS: tuple[str, ...] = ("inflow", "outflow")

#: Segment label of unsegmented series.
ALL = "all"

#: Dimensions ``stage_flows`` can split series by.
SEGMENT_DIMENSIONS: tuple[str, ...] = ("channel",)

#: Segment label of the outflow series estimated from the gross margin (no costs in the data).
ESTIMATED = "estimated"

#: The tables that hold booked money: the series and the data's period come from these.
FLOW_TABLES: tuple[str, ...] = ("orders", "events", "costs")

#: Columns of every series frame.
SERIES_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y", "stage", "direction", "segment")

#: Columns of ``DuckDBFlows.touchpoints``.
TOUCHPOINT_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y", "stage")


class FlowsError(JourneycastError, ValueError):
    """Series cannot be built from the tables with the parameters given."""


@dataclass(frozen=True)
class FlowMapping:
    """Which stage each kind of money belongs to.

    Attributes
    ----------
    revenue
        Order type -> stage whose inflow a sale of that type is.
    refunds
        Stage whose outflow refunds are.
    costs
        Cost stage (``costs.stage``) -> stage whose outflow the cost is.
    """

    revenue: Mapping[str, str] = field(default_factory=lambda: {
        "new": "purchase", "guest": "purchase", "repeat": "post-purchase", "upsell": "post-purchase"})
    refunds: str = "post-purchase"
    costs: Mapping[str, str] = field(default_factory=lambda: {s: s for s in COST_STAGES})

    def __post_init__(self) -> None:
        targets = [*self.revenue.values(), self.refunds, *self.costs.values()]
        unknown = sorted({t for t in targets if t not in COST_STAGES})
        if unknown:
            raise FlowsError(f"flow mapping uses unknown stages {unknown}; stages are {list(COST_STAGES)}")
        if any("|" in str(t) for t in targets):
            raise FlowsError("stage names in the flow mapping must not contain '|'")


#: The mapping of money to stages described in the module docstring.
DEFAULT_MAPPING = FlowMapping()


def _stage_of(keys: pd.Series, table: Mapping[str, str], what: str) -> pd.Series:
    stage = keys.map(dict(table))
    unmapped = sorted(keys[stage.isna()].unique())
    if unmapped:
        raise FlowsError(f"no stage mapped for {what} {unmapped}; add them to the flow mapping")
    return stage


def has_costs(tables: dict[str, pd.DataFrame]) -> bool:
    """Whether the tables hold any cost booking (else outflows are unknown or estimated)."""
    costs = tables.get("costs")
    return costs is not None and len(costs) > 0


def _cost_of_goods(sales: pd.DataFrame, gross_margin: float) -> pd.DataFrame:
    """The estimated cost of goods of each sale: ``(1 - gross_margin) x amount``, as money out."""
    if not 0 < gross_margin <= 1:
        raise FlowsError(f"gross_margin is the share of a sale left after goods and must lie in (0, 1], "
                         f"got {gross_margin!r}")
    return pd.DataFrame({"ts": sales["ts"], "stage": "purchase", "direction": "outflow",
                         "customer_id": sales["customer_id"], "y": (1 - gross_margin) * sales["amount"],
                         "segment": ESTIMATED})


def paid_on(ts: pd.Series, days: int, business_days: bool, holidays: Iterable[pd.Timestamp]) -> pd.Series:
    """The day money booked on ``ts`` reaches the bank, ``days`` (business) days later."""
    if days == 0 and not business_days:
        return ts
    if not business_days:
        return ts.dt.normalize() + pd.Timedelta(days=days)
    closed = np.array([np.datetime64(pd.Timestamp(h).date()) for h in holidays], dtype="datetime64[D]")
    # a sale on a Saturday settles counted from Monday, as the card processor does
    paid = np.busday_offset(ts.to_numpy().astype("datetime64[D]"), days, roll="forward", holidays=closed)
    return pd.Series(paid.astype(ts.dtype), index=ts.index)


def _money_rows(tables: dict[str, pd.DataFrame], segment: str | None,
                mapping: FlowMapping, gross_margin: float | None,
                timing: PaymentTiming | None = None, holidays: Iterable[pd.Timestamp] = ()) -> pd.DataFrame:
    """Every movement of money as ``ts, stage, direction, segment, y`` (y >= 0), ``ts`` the day it is paid."""
    orders = tables["orders"]
    sales = orders[is_sale(orders)]
    refunds = orders[is_refund(orders)]
    parts = [
        pd.DataFrame({"ts": sales["ts"],
                      "stage": _stage_of(sales["order_type"], mapping.revenue, "order types"),
                      "direction": "inflow", "customer_id": sales["customer_id"], "y": sales["amount"]}),
        pd.DataFrame({"ts": refunds["ts"], "stage": mapping.refunds, "direction": "outflow",
                      "customer_id": refunds["customer_id"], "y": refunds["amount"].abs()}),
    ]
    channel = None
    if segment == "channel":
        channel = first_touch(tables)["channel"]
        for part in parts:
            # guests have no first touch, like customers without events
            part["segment"] = part["customer_id"].map(channel).fillna(UNKNOWN_CHANNEL)
    if has_costs(tables):
        costs = tables["costs"]
        costs = costs[costs["amount"] != 0]
        parts.append(pd.DataFrame({
            "ts": costs["ts"], "stage": _stage_of(costs["stage"], mapping.costs, "cost stages"),
            "direction": np.where(costs["amount"] > 0, "outflow", "inflow"),
            "y": costs["amount"].abs(),
            **({"segment": costs["channel"]} if channel is not None else {}),
        }))
    elif gross_margin is not None:
        parts.append(_cost_of_goods(sales, gross_margin))
    if timing is not None:
        holidays = list(holidays)
        # parts: sales, refunds, then costs or the estimated cost of goods (paid on the cost terms)
        lags = [(timing.sales_days, timing.sales_business_days), (timing.refunds_days, False)]
        lags += [(timing.costs_days, False)] * (len(parts) - 2)
        for part, (days, business_days) in zip(parts, lags):
            part["ts"] = paid_on(part["ts"], days, business_days, holidays)
    rows = pd.concat(parts, ignore_index=True).drop(columns="customer_id")
    if channel is None:
        rows["segment"] = rows["segment"].fillna(ALL) if "segment" in rows else ALL
    else:
        # '|' separates the parts of a series id
        rows["segment"] = rows["segment"].astype("str").str.replace("|", "/", regex=False)
    return rows


def _data_days(tables: dict[str, pd.DataFrame]) -> tuple[pd.Timestamp, pd.Timestamp]:
    # commitments run into the future and bank balances may start before the data: neither sets its period
    period = data_period({name: tables[name] for name in FLOW_TABLES if name in tables})
    if period is None:
        raise FlowsError("the tables hold no rows: there is no period to build series over")
    return pd.Timestamp(period[0]).normalize(), pd.Timestamp(period[1]).normalize()


def _check_segment(segment: str | None) -> None:
    if segment is not None and segment not in SEGMENT_DIMENSIONS:
        raise FlowsError(f"cannot split flows by {segment!r}; choose one of {list(SEGMENT_DIMENSIONS)}")


def stage_flows(tables: dict[str, pd.DataFrame], freq: str = "D", segment: str | None = None,
                mapping: FlowMapping = DEFAULT_MAPPING, gross_margin: float | None = None,
                timing: PaymentTiming | None = None, holidays: Iterable[pd.Timestamp] = ()) -> pd.DataFrame:
    """Money in and out per stage (and segment) and period, as long series.

    Parameters
    ----------
    tables
        The canonical tables: ``orders`` and optionally ``events`` and ``costs``.
    freq
        ``"D"`` (daily), ``"W"`` / ``"W-<day>"`` (weekly) or ``"MS"`` (monthly).
    segment
        None for one series per stage and direction (segment ``"all"``), or
        ``"channel"``: inflows and refunds by the customer's first-touch
        channel, costs by the cost row's channel (a ``|`` in a channel name
        becomes ``/``, as ``|`` separates the parts of a series id).
    mapping
        Which money belongs to which stage; ``DEFAULT_MAPPING`` by default.
    gross_margin
        Share of a sale left after goods and shipping. Used only when the
        tables hold no costs: the cost of goods is then estimated from it as
        the series ``purchase|outflow|estimated`` (see the module docstring).
    timing, holidays
        When money reaches the bank (``toolkit.config.PaymentTiming``; None:
        the day it is booked) and the public holidays business days skip.

    Returns
    -------
    Columns ``unique_id, ds, y, stage, direction, segment``; one series per
    combination that moved any money, each on the same full grid of periods
    from the first to the last day in the tables (events included), with
    zeros where no money moved. Sorted by stage (journey order), direction,
    segment and date.
    """
    if "orders" not in tables:
        raise FlowsError("the tables have no 'orders' table")
    _check_segment(segment)
    first, last = _data_days(tables)
    try:
        grid = period_grid(first, last, freq)
    except ValueError as exc:
        raise FlowsError(str(exc)) from None
    rows = _money_rows(tables, segment, mapping, gross_margin, timing, holidays)
    rows["ds"] = period_label(rows["ts"], freq)
    keys = ["stage", "direction", "segment"]
    wide = rows.groupby(["ds", *keys])["y"].sum().unstack(keys, fill_value=0.0)
    wide = wide.reindex(grid, fill_value=0.0).rename_axis("ds")
    order = sorted(wide.columns,
                   key=lambda key: (COST_STAGES.index(key[0]), DIRECTIONS.index(key[1]), key[2]))
    keys_of = np.array(order, dtype=object).reshape(len(order), 3)
    days = len(grid)
    out = pd.DataFrame({
        "unique_id": np.repeat(["|".join(key) for key in order], days),
        "ds": np.tile(grid.to_numpy(), len(order)),
        "y": wide[order].to_numpy().T.ravel(),
        "stage": np.repeat(keys_of[:, 0], days),
        "direction": np.repeat(keys_of[:, 1], days),
        "segment": np.repeat(keys_of[:, 2], days),
    })
    for column in ("unique_id", "stage", "direction", "segment"):
        out[column] = out[column].astype("str")
    return out[list(SERIES_COLUMNS)]


def money_in_transit(tables: dict[str, pd.DataFrame], timing: PaymentTiming,
                     holidays: Iterable[pd.Timestamp] = (), segment: str | None = None,
                     mapping: FlowMapping = DEFAULT_MAPPING, gross_margin: float | None = None) -> pd.DataFrame:
    """Money booked by the last day of the data but paid after it: ``unique_id, ds, y`` per series and day.

    Sales that settle two days later are owed to the business on its last
    day; they arrive in the first days of the forecast, the same in every
    future. Same parameters as ``stage_flows``; no rows when everything is paid.
    """
    _check_segment(segment)
    last = _data_days(tables)[1]
    rows = _money_rows(tables, segment, mapping, gross_margin, timing, holidays)
    rows = rows[rows["ts"].dt.normalize() > last]
    rows = rows.assign(ds=rows["ts"].dt.normalize().astype("datetime64[ns]"),
                       unique_id=rows["stage"] + "|" + rows["direction"] + "|" + rows["segment"])
    out = rows.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
    out["unique_id"] = out["unique_id"].astype("str")
    return out


def net_flow(series: pd.DataFrame) -> pd.DataFrame:
    """Actual net cash flow per period across series: ``ds, inflow, outflow, net``.

    ``series`` needs ``ds, y, direction`` (``stage_flows`` output); amounts are
    magnitudes and the direction gives the sign, so ``net = inflow - outflow``.
    """
    require_columns(series, ("ds", "y", "direction"), "series", FlowsError)
    bad = sorted(set(series["direction"].unique()) - set(DIRECTIONS))
    if bad:
        raise FlowsError(f"series: direction must be one of {list(DIRECTIONS)}, found {bad}")
    wide = (series.groupby(["ds", "direction"])["y"].sum().unstack("direction")
            .reindex(columns=list(DIRECTIONS)).fillna(0.0))
    wide["net"] = wide["inflow"] - wide["outflow"]
    wide.columns.name = None
    return wide.reset_index()


# --------------------------------------------------------------------------- sources too large for pandas


@dataclass
class DuckDBFlows:
    """Stage series, touchpoint volumes and the accounting of every source row.

    ``series`` is what ``stage_flows`` returns; ``touchpoints`` holds events per
    stage and period (columns ``TOUCHPOINT_COLUMNS``, ``unique_id =
    "<stage>|touchpoints"``, on the series' grid); ``counts``, ``files``,
    ``rejects_file`` and ``rejects_by_reason`` as in ``toolkit.warehouse.WarehouseCheck``.
    """

    series: pd.DataFrame
    touchpoints: pd.DataFrame
    counts: dict[str, dict]
    rejects_file: Path
    rejects_by_reason: pd.DataFrame
    files: dict[str, str] = field(default_factory=dict)


def flows_in_duckdb(data_dir: str | Path, config: Config, freq: str = "D", segment: str | None = None,
                    mapping: FlowMapping = DEFAULT_MAPPING, gross_margin: float | None = None,
                    rejects_file: str | Path | None = None, now: pd.Timestamp | None = None,
                    limits: WarehouseLimits | None = None) -> DuckDBFlows:
    """Check the configured sources inside DuckDB and total them into stage series.

    Parameters
    ----------
    data_dir, config, now
        As for ``toolkit.ingest.load_tables`` (``data_dir`` may be the orders file).
    freq, segment, mapping, gross_margin
        As for ``stage_flows``.
    rejects_file, limits
        As for ``toolkit.warehouse.checked_warehouse`` (default limits: 1 GB, 2 threads).

    Raises
    ------
    IngestError
        When a whole source is unusable, or no order is accepted.
    FlowsError
        When series cannot be built with the parameters given.
    """
    # the data layer loads on use: series-only callers (forecast workers) need no DuckDB
    from toolkit.warehouse import WarehouseLimits, checked_warehouse

    _check_segment(segment)
    with checked_warehouse(data_dir, config, rejects_file, now, limits or WarehouseLimits()) as (con, check):
        totals = _daily_totals(con, check.files, segment is not None)
        touch = (con.sql("SELECT date_trunc('day', ts) AS ts, stage, count(*) AS y FROM events_ok "
                         "GROUP BY ALL").df() if "events" in check.files else None)
    series = stage_flows(totals, freq, segment, mapping, gross_margin)
    return DuckDBFlows(series=series, touchpoints=_touchpoints(touch, totals["events"], freq),
                       counts=check.counts, rejects_file=check.rejects_file,
                       rejects_by_reason=check.rejects_by_reason, files=check.files)


def _daily_totals(con: duckdb.DuckDBPyConnection, tables: dict[str, str], by_channel: bool
                  ) -> dict[str, pd.DataFrame]:
    """Money per day as canonical-shaped rows, for ``stage_flows``.

    orders: one row per day, segment, order type, status and sign of the
    amount (``customer_id`` holds the segment: the customer's first-touch
    channel, or ``"all"``; guests have no first touch); costs: one per day,
    stage, channel and sign; events: each segment's own channel on the first
    and the last day of the data, which gives ``stage_flows`` the data's period
    and each segment's channel.
    """
    segment = "'all'"
    touch = ""
    if by_channel:
        segment = f"coalesce(touch.channel, '{UNKNOWN_CHANNEL}')"
        touch = ("LEFT JOIN (SELECT customer_id, min_by(channel, (ts, idx)) AS channel "
                 "FROM events_ok GROUP BY customer_id) touch USING (customer_id)"
                 if "events" in tables else "LEFT JOIN (SELECT NULL AS channel) touch ON false")
    orders = con.sql(f"""
        SELECT date_trunc('day', ts) AS ts, {segment} AS customer_id, order_type, status,
               fsum(amount) AS amount
        FROM orders_ok {touch} GROUP BY 1, 2, 3, 4, sign(amount) ORDER BY ALL""").df()
    out = {"orders": orders}
    if "costs" in tables:
        channel = "channel" if by_channel else f"'{ALL}'"
        out["costs"] = con.sql(f"""
            SELECT date_trunc('day', ts) AS ts, stage, {channel} AS channel, fsum(amount) AS amount
            FROM costs_ok GROUP BY 1, 2, 3, sign(amount) ORDER BY ALL""").df()
    period = " UNION ALL ".join(f"SELECT min(ts) AS first, max(ts) AS last FROM {name}_ok"
                                for name in tables if name in FLOW_TABLES)
    first, last = con.sql(f"SELECT date_trunc('day', min(first)), date_trunc('day', max(last)) "
                          f"FROM ({period})").fetchall()[0]
    segments = sorted({*orders["customer_id"], ALL}) if first is not None else []
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
