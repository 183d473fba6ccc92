"""Where customers are in their journey: stages, funnel, time to convert, retention and KPIs.

Pure functions over the canonical tables (``toolkit.schema``). Definitions a
reader of the numbers should know:

* Orders come as order lines: several rows may share an ``order_id`` and are
  one order, so orders are counted as distinct ``order_id``, never as rows.
* A **sale** is an order row with status ``completed`` and a positive amount; a
  **refund** is a row that is not cancelled and is either marked ``refunded``
  or has a negative amount (money out: its absolute amount). Cancelled orders
  moved no money and count for nothing but a customer's first touch.
* A **guest** row has no customer id (a guest checkout). Guest money counts in
  every money figure (revenue, sales, orders); the per-customer measures
  (customers, stages, funnel, repeat purchase, lifetime value) cannot follow a
  guest and leave guest rows out.
* A customer's **first touch** is their earliest event or order row; their
  **channel** is the channel of their earliest event (``"unknown"`` without
  events); their **cohort** is the month of the first touch.
* **Purchase** is the customer's first completed order, taken from orders, the
  ledger of money: a purchase event for a cancelled order is not a purchase,
  while a deal closed at zero is one (it brought no money, so it is no sale).
  **Post-purchase** is the earlier of the customer's second completed order (a
  repeat or upsell order) and their first post-purchase event at or after the
  purchase.
  The earlier stages come from the events of that stage.
* A stage no customer reached in the data is *absent*, not 0%: with orders
  alone only purchase and post-purchase are observed, and the funnel reports
  the earlier stages with ``observed = False`` and no counts.
* A customer who reached a later stage has passed the earlier ones even when
  the data holds no touch for them (a buyer who never asked for a demo has
  still gone through evaluation), so funnel counts never grow down the funnel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import Day, MonthBegin, Week

from toolkit.errors import JourneycastError
from toolkit.schema import PLANNED_TABLES, STAGES

__all__ = [
    "COMPARED",
    "FIGURE_NEEDS",
    "FIRST_TOUCH",
    "UNKNOWN_CHANNEL",
    "JourneyError",
    "MonthComparison",
    "TimeToConvert",
    "cohort_retention",
    "compare_months",
    "customer_stages",
    "first_touch",
    "funnel",
    "guest_sales",
    "is_guest",
    "is_purchase",
    "is_refund",
    "is_sale",
    "kpis",
    "data_period",
    "missing_figures",
    "period_coverage",
    "period_grid",
    "period_label",
    "time_to_convert",
    "zero_amount_orders",
]

#: Name of the moment a customer entered the journey, usable as a ``from_stage``.
FIRST_TOUCH = "first_touch"

#: Channel of a customer (or guest) without events.
UNKNOWN_CHANNEL = "unknown"

_DAY = pd.Timedelta(days=1)


class JourneyError(JourneycastError, ValueError):
    """Journey analytics were asked for something the data or the parameters cannot give."""


# --------------------------------------------------------------------------- building blocks


def _check_freq(freq: str) -> pd.DateOffset:
    try:
        offset = to_offset(freq)
    except ValueError:
        offset = None
    if not isinstance(offset, (Day, Week, MonthBegin)) or offset.n != 1 or (
        isinstance(offset, Week) and offset.weekday is None
    ):
        raise JourneyError(f"frequency {freq!r} is not supported; use 'D', 'W' (or 'W-MON' ...) or 'MS'")
    return offset


def period_label(ts: pd.Series, freq: str) -> pd.Series:
    """The period each timestamp falls in, labelled the way ``pandas.date_range(freq=freq)`` steps.

    ``"D"``: the day. ``"MS"``: the first day of the month. ``"W"`` (=
    ``"W-SUN"``) and other ``"W-<day>"``: the week that *ends* on the anchor
    day, labelled by that day (pandas' convention), so ``"W"`` groups Monday to
    Sunday under the Sunday. These labels line up with the forecast's
    ``date_range`` steps.
    """
    offset = _check_freq(freq)
    ts = pd.Series(ts)
    if isinstance(offset, Day):
        label = ts.dt.normalize()
    elif isinstance(offset, Week):
        label = ts.dt.to_period(offset.freqstr).dt.end_time.dt.normalize()
    else:
        label = ts.dt.to_period("M").dt.start_time
    return label.astype("datetime64[ns]")


def data_period(tables: dict[str, pd.DataFrame | None]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last ``ts`` across the non-empty tables of what happened; None when they are all empty.

    Plans (``schema.PLANNED_TABLES``: commitments, campaigns) may lie ahead, so
    they are left out: the data end where the records of what happened end,
    not at the last scheduled payment.
    """
    stamps = [t["ts"] for name, t in tables.items() if name not in PLANNED_TABLES and t is not None and len(t)]
    if not stamps:
        return None
    return min(s.min() for s in stamps), max(s.max() for s in stamps)


def period_grid(first: pd.Timestamp, last: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    """Every period label from the one holding ``first`` to the one holding ``last``."""
    ends = period_label(pd.Series([pd.Timestamp(first), pd.Timestamp(last)]), freq)
    return pd.date_range(ends.iloc[0], ends.iloc[1], freq=freq).astype("datetime64[ns]")


def is_sale(orders: pd.DataFrame) -> pd.Series:
    """Order rows that brought money in: completed, positive amount."""
    return (orders["status"] == "completed") & (orders["amount"] > 0)


def is_refund(orders: pd.DataFrame) -> pd.Series:
    """Order rows that sent money back: not cancelled, marked refunded or negative."""
    return (orders["status"] != "cancelled") & (
        (orders["status"] == "refunded") | (orders["amount"] < 0)
    ) & (orders["amount"] != 0)


def is_purchase(orders: pd.DataFrame) -> pd.Series:
    """Order rows that made a purchase: completed and not negative (a deal closed at 0 is one)."""
    return (orders["status"] == "completed") & (orders["amount"] >= 0)


def is_guest(orders: pd.DataFrame) -> pd.Series:
    """Order rows without a customer id: guest checkouts."""
    return orders["customer_id"].isna()


def guest_sales(orders: pd.DataFrame) -> tuple[float, float]:
    """Sales of guest rows and their share of all sales (0.0 when nothing was sold)."""
    sold = orders.loc[is_sale(orders)]
    guests = float(sold.loc[is_guest(sold), "amount"].sum())
    total = float(sold["amount"].sum())
    return guests, guests / total if total else 0.0


def zero_amount_orders(orders: pd.DataFrame) -> int:
    """Completed orders (distinct ``order_id``) whose lines add up to exactly zero: deals closed at 0."""
    completed = orders.loc[orders["status"] == "completed", ["order_id", "amount"]]
    totals = completed.groupby("order_id")["amount"].sum()
    return int((totals == 0).sum())


def _orders(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    if "orders" not in tables:
        raise JourneyError("the tables have no 'orders' table (the one table every analysis needs)")
    return tables["orders"]


def _customer_rows(orders: pd.DataFrame) -> pd.DataFrame:
    """The order rows of known customers (guest rows left out)."""
    return orders.loc[~is_guest(orders)]


def _events(tables: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    events = tables.get("events")
    return events if events is not None and len(events) else None


def first_touch(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per customer: when they entered the journey and through which channel.

    Indexed by ``customer_id``; columns ``first_touch`` (earliest event or
    order row) and ``channel`` (of the earliest event; ties go to the row that
    comes first in the table; ``"unknown"`` for customers without events).
    """
    orders = _customer_rows(_orders(tables))
    events = _events(tables)
    touches = [orders.groupby("customer_id")["ts"].min()]
    channel = pd.Series(dtype="str")
    if events is not None:
        earliest = events.loc[events.groupby("customer_id")["ts"].idxmin(), ["customer_id", "ts", "channel"]]
        touches.append(earliest.set_index("customer_id")["ts"])
        channel = earliest.set_index("customer_id")["channel"]
    when = pd.concat(touches, axis=1).min(axis=1).sort_index()
    return pd.DataFrame({
        FIRST_TOUCH: when.astype("datetime64[ns]"),
        "channel": channel.reindex(when.index).fillna(UNKNOWN_CHANNEL).astype("str"),
    }).rename_axis("customer_id")


def _purchases_in_order(orders: pd.DataFrame) -> pd.DataFrame:
    """Each customer's purchases (one row per order, at its first line) with their rank in time."""
    bought = _customer_rows(orders.loc[is_purchase(orders), ["order_id", "customer_id", "ts"]])
    # the lines of one order are one purchase, not several
    bought = bought.groupby(["customer_id", "order_id"], as_index=False)["ts"].min()
    bought = bought.sort_values(["customer_id", "ts"], kind="stable")
    return bought.assign(rank=bought.groupby("customer_id").cumcount())


# --------------------------------------------------------------------------- stages


def customer_stages(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per customer: when they first reached each stage (NaT if never).

    Columns: ``customer_id, first_touch, channel, cohort`` then one timestamp
    column per stage (``toolkit.schema.STAGES``). ``attrs["observed_stages"]``
    lists the stages the data can show (some customer reached them); the
    others are absent from the data, not skipped by every customer.
    """
    orders = _orders(tables)
    events = _events(tables)
    touch = first_touch(tables)
    reached = pd.DataFrame(index=touch.index, columns=list(STAGES), dtype="datetime64[ns]")

    bought = _purchases_in_order(orders)
    purchase = bought[bought["rank"] == 0].set_index("customer_id")["ts"]
    repeat = bought[bought["rank"] == 1].set_index("customer_id")["ts"]
    reached["purchase"] = purchase.reindex(touch.index)
    post = repeat.reindex(touch.index)

    if events is not None:
        events = events[["customer_id", "ts", "stage"]]
        before = events[events["stage"].isin(STAGES[:STAGES.index("purchase")])]
        firsts = before.groupby(["customer_id", "stage"])["ts"].min().unstack("stage")
        for stage in firsts.columns:
            reached[stage] = firsts[stage].reindex(touch.index)
        after = events[events["stage"] == "post-purchase"]
        after = after[after["ts"] >= after["customer_id"].map(purchase)]
        post = pd.concat([post, after.groupby("customer_id")["ts"].min().reindex(touch.index)],
                         axis=1).min(axis=1)
    reached["post-purchase"] = post

    frame = pd.concat([touch, reached.astype("datetime64[ns]")], axis=1).reset_index()
    frame.insert(3, "cohort", period_label(frame[FIRST_TOUCH], "MS"))
    frame.attrs["observed_stages"] = [s for s in STAGES if frame[s].notna().any()]
    return frame


def _stage_columns(stages_frame: pd.DataFrame) -> None:
    missing = [c for c in (FIRST_TOUCH, *STAGES) if c not in stages_frame.columns]
    if missing:
        raise JourneyError(f"the stages frame lacks columns {missing}; build it with customer_stages()")


def _observed(stages_frame: pd.DataFrame) -> list[str]:
    return [s for s in STAGES if stages_frame[s].notna().any()]


def funnel(stages_frame: pd.DataFrame, conversion_window_days: int,
           by: str | None = None) -> pd.DataFrame:
    """Customers per stage, conversion and drop-off, counting stages reached within the window.

    A customer counts at a stage when they reached it, or a later one, within
    ``conversion_window_days`` of their first touch.

    Parameters
    ----------
    stages_frame
        ``customer_stages`` output, possibly with extra columns to group by.
    conversion_window_days
        Days after the first touch in which a stage must be reached to count.
    by
        Optional column to split the funnel by (``"cohort"``, ``"channel"``
        or a segment column added to the frame).

    Returns
    -------
    One row per (group and) stage: ``observed`` (the data can show the stage),
    ``entered`` (customers in the group), ``customers`` (reached the stage),
    ``stage_conversion`` (share of the previous observed stage; of those who
    entered for the first observed stage), ``overall_conversion`` (share of
    those who entered) and ``drop_off`` (customers lost since the previous
    observed stage). Unobserved stages have no counts (NaN).
    """
    _stage_columns(stages_frame)
    if conversion_window_days < 0:
        raise JourneyError(f"conversion_window_days must be >= 0, got {conversion_window_days}")
    if by is not None and by not in stages_frame.columns:
        raise JourneyError(f"cannot split the funnel by {by!r}: no such column "
                           f"(columns: {', '.join(map(str, stages_frame.columns))})")
    observed = _observed(stages_frame)
    start = stages_frame[FIRST_TOUCH]
    within = np.column_stack([
        ((stages_frame[s] - start) <= pd.Timedelta(days=conversion_window_days)).to_numpy()
        for s in STAGES
    ])
    # reached this stage or any later one
    passed = np.logical_or.accumulate(within[:, ::-1], axis=1)[:, ::-1]
    keys = stages_frame[by] if by else pd.Series("all", index=stages_frame.index)
    counts = pd.DataFrame(passed.astype(np.int64), columns=list(STAGES), index=stages_frame.index)
    counts = counts.groupby(keys.to_numpy(), sort=True, dropna=False).sum()
    entered = keys.groupby(keys.to_numpy(), sort=True, dropna=False).size()

    seen = counts[observed].astype(float)
    previous = seen.shift(axis=1)
    if observed:
        previous[observed[0]] = entered.astype(float)
    wide = {
        "customers": seen.reindex(columns=list(STAGES)),
        "stage_conversion": (seen / previous).reindex(columns=list(STAGES)),
        "overall_conversion": seen.div(entered, axis=0).reindex(columns=list(STAGES)),
        "drop_off": (previous - seen).reindex(columns=list(STAGES)),
    }
    long = pd.concat({name: part.stack()
                      for name, part in wide.items()}, axis=1)
    long.index.names = [by or "group", "stage"]
    long = long.reset_index()
    long.insert(2, "observed", long["stage"].isin(observed))
    long.insert(3, "entered", long[by or "group"].map(entered).astype(np.int64))
    if by is None:
        long = long.drop(columns="group")
    return long


# --------------------------------------------------------------------------- time to convert


@dataclass(frozen=True)
class TimeToConvert:
    """How long customers took from one stage to another.

    ``days`` holds each converted customer's time in days (indexed by
    customer_id); ``quantiles`` the 10/25/50/75/90th percentiles;
    ``histogram`` the count and share of converted customers per bin of
    ``bin_days`` days (``from_day <= days < to_day``).
    """

    from_stage: str
    to_stage: str
    window_days: int | None
    started: int
    days: pd.Series
    quantiles: pd.Series
    histogram: pd.DataFrame

    @property
    def converted(self) -> int:
        return len(self.days)

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.started if self.started else float("nan")

    @property
    def median_days(self) -> float:
        return float(self.days.median()) if self.converted else float("nan")

    def summary(self) -> dict:
        """The headline figures as one flat mapping (for a table or a report)."""
        return {
            "from_stage": self.from_stage, "to_stage": self.to_stage, "window_days": self.window_days,
            "started": self.started, "converted": self.converted,
            "conversion_rate": self.conversion_rate, "median_days": self.median_days,
            "mean_days": float(self.days.mean()) if self.converted else float("nan"),
            **{f"p{round(q * 100)}_days": float(v) for q, v in self.quantiles.items()},
        }


_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def time_to_convert(stages_frame: pd.DataFrame, from_stage: str, to_stage: str,
                    window: int | None = None, bin_days: int = 1) -> TimeToConvert:
    """Days from ``from_stage`` (or ``"first_touch"``) to ``to_stage``, for customers who made it.

    A customer starts when they reached ``from_stage``; they convert when they
    reached ``to_stage`` at or after that moment and, if ``window`` is given,
    within ``window`` days of it.
    """
    _stage_columns(stages_frame)
    order = (FIRST_TOUCH, *STAGES)
    for name, value in (("from_stage", from_stage), ("to_stage", to_stage)):
        if value not in order:
            raise JourneyError(f"{name} {value!r} is not a stage; use one of {list(order)}")
    if order.index(to_stage) <= order.index(from_stage):
        raise JourneyError(f"to_stage {to_stage!r} must come after from_stage {from_stage!r} in the journey")
    if bin_days < 1:
        raise JourneyError(f"bin_days must be at least 1, got {bin_days}")
    start = stages_frame[from_stage]
    elapsed = (stages_frame[to_stage] - start) / _DAY
    converted = elapsed >= 0
    if window is not None:
        converted &= elapsed <= window
    days = pd.Series(elapsed[converted].to_numpy(), index=stages_frame.loc[converted, "customer_id"],
                     name="days")
    top = window if window is not None else (float(days.max()) if len(days) else 0.0)
    edges = np.arange(0, np.floor(top / bin_days) * bin_days + bin_days + 1, bin_days, dtype=float)
    # the last edge lies beyond every value, so every bin is half-open [from_day, to_day)
    counts, _ = np.histogram(days.to_numpy(), bins=edges)
    histogram = pd.DataFrame({"from_day": edges[:-1], "to_day": edges[1:], "customers": counts})
    histogram["share"] = histogram["customers"] / max(len(days), 1)
    quantiles = (days.quantile(list(_QUANTILES)) if len(days)
                 else pd.Series(np.nan, index=list(_QUANTILES)))
    return TimeToConvert(from_stage=from_stage, to_stage=to_stage, window_days=window,
                         started=int(start.notna().sum()), days=days,
                         quantiles=quantiles.rename_axis("quantile").rename("days"),
                         histogram=histogram)


# --------------------------------------------------------------------------- retention and KPIs


def cohort_retention(orders: pd.DataFrame, freq: str = "MS") -> pd.DataFrame:
    """Share of each cohort of buyers who bought again, period by period.

    A buyer's cohort is the period of their first sale; ``period`` counts
    periods since then (0 = the cohort's own period, always 1.0). Long format,
    ready for a heatmap: ``cohort, period, customers`` (cohort size),
    ``buyers`` (of them, bought in that period) and ``retention``
    (buyers / customers). Every cohort runs to the last period of the data.
    Guest rows are left out: a guest cannot be followed from one order to the next.
    """
    sales = _customer_rows(orders.loc[is_sale(orders), ["customer_id", "ts"]])
    if sales.empty:
        raise JourneyError("no completed sales to known customers in the orders: retention needs at "
                           "least one buyer with a customer id")
    label = period_label(sales["ts"], freq)
    grid = period_grid(sales["ts"].min(), sales["ts"].max(), freq)
    position = pd.Series(grid.get_indexer(label), index=sales.index)
    cohort_position = position.groupby(sales["customer_id"]).transform("min")
    activity = pd.DataFrame({"cohort": cohort_position, "period": position - cohort_position,
                             "customer_id": sales["customer_id"]}).drop_duplicates()
    buyers = activity.groupby(["cohort", "period"]).size()
    size = activity[activity["period"] == 0].groupby("cohort").size()
    cells = [(c, p) for c in size.index for p in range(len(grid) - c)]
    index = pd.MultiIndex.from_tuples(cells, names=["cohort", "period"])
    out = pd.DataFrame({"buyers": buyers.reindex(index, fill_value=0)}).reset_index()
    out["customers"] = out["cohort"].map(size)
    out["retention"] = out["buyers"] / out["customers"]
    out["cohort"] = grid[out["cohort"].to_numpy()]
    return out[["cohort", "period", "customers", "buyers", "retention"]]


def period_coverage(labels: pd.DatetimeIndex, freq: str, first: pd.Timestamp,
                    last: pd.Timestamp) -> pd.DataFrame:
    """How many days of each period the data covers, from its ``first`` to its ``last`` day.

    ``labels`` are period labels (``period_label``). Returns, indexed like
    ``labels``: ``days_in_period``, ``days_covered`` and ``complete`` (every
    day of the period lies within the data). Only the first and the last
    period of the data can be partial; comparing a 9-day month with a full
    one says nothing about the business.
    """
    offset = _check_freq(freq)
    labels = pd.DatetimeIndex(labels)
    if isinstance(offset, Day):
        start, end = labels, labels
    elif isinstance(offset, Week):
        # weeks are labelled by their last day
        start, end = labels - 6 * _DAY, labels
    else:
        start, end = labels, labels + pd.offsets.MonthEnd(1)
    first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
    in_period = np.asarray((end - start).days, dtype=np.int64) + 1
    overlap = end.where(end < last, last) - start.where(start > first, first)
    covered = np.clip(np.asarray(overlap.days, dtype=np.int64) + 1, 0, None)
    return pd.DataFrame({"days_in_period": in_period, "days_covered": covered,
                         "complete": covered == in_period}, index=labels)


def kpis(tables: dict[str, pd.DataFrame], freq: str = "MS",
         conversion_window_days: int = 90) -> pd.DataFrame:
    """The business's headline figures per period, on a full grid of periods.

    Columns (money in the orders' currency):

    * ``revenue``: sales minus refunds (cancelled orders moved no money);
      ``sales`` and ``refunds`` (positive) are given too; guest money counts;
    * ``orders``: number of orders with a sale (distinct ``order_id``: the
      lines of one order are one order); ``customers``: distinct buyers with a
      customer id; ``average_order_value``: sales / orders;
    * ``new_customers`` / ``returning_customers``: buyers whose first sale
      falls in / before the period; ``repeat_purchase_rate``: returning
      customers / customers; ``new_revenue`` / ``returning_revenue`` /
      ``guest_revenue``: revenue of the two groups and of guest checkouts
      (the three add up to ``revenue``);
    * ``entered``: people whose first touch falls in the period;
      ``conversion_rate``: of those, the share who made a first purchase within
      ``conversion_window_days`` of their first touch (NaN without events,
      where the first touch *is* the purchase; the latest periods have had less
      time to convert);
    * ``historical_clv``: revenue of known customers to the end of the period
      divided by the customers acquired to the end of the period, the average
      a customer has brought in so far (guests left out);
    * ``satisfaction``: mean rating of ``review`` events (NaN without any);
    * ``days_in_period``, ``days_covered``, ``complete``: how much of the
      period the data covers (``period_coverage``). The first and last period
      may be partial: compare periods only where ``complete`` is True.
    """
    orders = _orders(tables)
    events = _events(tables)
    _check_freq(freq)
    sale, refund = is_sale(orders), is_refund(orders)
    money = orders[sale | refund]
    if money.empty:
        raise JourneyError("no sales or refunds in the orders: there are no figures to report")
    stamps = [orders["ts"]] + ([events["ts"]] if events is not None else [])
    stamps = pd.concat(stamps)
    grid = period_grid(stamps.min(), stamps.max(), freq).rename("ds")

    period = period_label(money["ts"], freq)
    cash = money["amount"].where(sale[money.index], -money["amount"].abs())
    first_sale = _customer_rows(orders.loc[sale]).groupby("customer_id")["ts"].min()
    first_period = period_label(first_sale, freq).reindex(money["customer_id"]).to_numpy()
    guest = is_guest(money).to_numpy()
    # a refund of a customer with no sale in the data refunds a sale from before it: returning
    returning = pd.Series(~guest & ~(first_period >= period.to_numpy()), index=money.index)
    is_sold = sale[money.index]

    frame = pd.DataFrame({"ds": period, "cash": cash, "order_id": money["order_id"],
                          "customer_id": money["customer_id"], "guest": guest,
                          "returning": returning, "sale": is_sold})
    sold = frame[frame["sale"]]
    new = frame[~frame["returning"] & ~frame["guest"]]
    out = pd.DataFrame(index=grid)
    out["revenue"] = frame.groupby("ds")["cash"].sum()
    out["sales"] = sold.groupby("ds")["cash"].sum()
    out["refunds"] = -frame.loc[~frame["sale"]].groupby("ds")["cash"].sum()
    out["orders"] = sold.groupby("ds")["order_id"].nunique()
    out["customers"] = sold.groupby("ds")["customer_id"].nunique()
    out["new_customers"] = new[new["sale"]].groupby("ds")["customer_id"].nunique()
    out["returning_customers"] = sold[sold["returning"]].groupby("ds")["customer_id"].nunique()
    out["new_revenue"] = new.groupby("ds")["cash"].sum()
    out["returning_revenue"] = frame[frame["returning"]].groupby("ds")["cash"].sum()
    out["guest_revenue"] = frame[frame["guest"]].groupby("ds")["cash"].sum()
    out = out.fillna(0.0)
    for column in ("orders", "customers", "new_customers", "returning_customers"):
        out[column] = out[column].astype(np.int64)
    out["average_order_value"] = out["sales"] / out["orders"].replace(0, np.nan)
    out["repeat_purchase_rate"] = out["returning_customers"] / out["customers"].replace(0, np.nan)
    acquired = out["new_customers"].cumsum()
    customer_revenue = out["new_revenue"] + out["returning_revenue"]
    out["historical_clv"] = customer_revenue.cumsum() / acquired.replace(0, np.nan)

    stages = customer_stages(tables)
    entered_in = period_label(stages[FIRST_TOUCH], freq)
    out["entered"] = entered_in.value_counts().reindex(grid, fill_value=0).astype(np.int64)
    if events is not None:
        bought = ((stages["purchase"] - stages[FIRST_TOUCH])
                  <= pd.Timedelta(days=conversion_window_days))
        out["conversion_rate"] = (bought.groupby(entered_in.to_numpy()).sum().reindex(grid)
                                  / out["entered"].replace(0, np.nan))
        reviews = events[events["event_type"] == "review"]
        out["satisfaction"] = reviews.groupby(period_label(reviews["ts"], freq).to_numpy())[
            "value"].mean().reindex(grid)
    else:
        out["conversion_rate"] = np.nan
        out["satisfaction"] = np.nan
    out = out.join(period_coverage(grid, freq, stamps.min(), stamps.max()))
    return out.reset_index()


#: What the data must hold for a figure of ``kpis`` that stays empty without it.
FIGURE_NEEDS: dict[str, str] = {
    "conversion_rate": "touchpoint events before the purchase",
    "satisfaction": "review events with a rating",
}


def missing_figures(kpis_frame: pd.DataFrame) -> dict[str, str]:
    """The figures of ``kpis`` with no value in any period, each with what the data needs to give them.

    Without events the conversion rate is empty (the first touch *is* the
    purchase) and without reviews so is satisfaction: a page leaves such
    figures out and says why rather than drawing an empty chart.
    """
    return {figure: needs for figure, needs in FIGURE_NEEDS.items()
            if figure in kpis_frame.columns and kpis_frame[figure].isna().all()}


#: The figures ``compare_months`` compares by default.
COMPARED: tuple[str, ...] = ("revenue", "orders", "customers", "average_order_value")


@dataclass(frozen=True)
class MonthComparison:
    """The last complete month beside the month before and the same month a year before.

    ``figures`` is indexed by measure with columns ``month``,
    ``previous_month``, ``year_before`` (the values; NaN where that month is
    not fully covered by the data) and ``change_vs_previous_month``,
    ``change_vs_year_before`` (relative changes: 0.1 is +10%; NaN where there
    is nothing to compare with or it was zero).
    """

    month: pd.Timestamp
    previous_month: pd.Timestamp | None
    year_before: pd.Timestamp | None
    figures: pd.DataFrame

    def summary(self) -> dict:
        """The months and the figures as one flat mapping (for a report or summary.json)."""
        out: dict = {"month": self.month, "previous_month": self.previous_month,
                     "year_before": self.year_before}
        for measure, row in self.figures.iterrows():
            out |= {f"{measure}_{column}": float(value) for column, value in row.items()}
        return out


def compare_months(monthly_kpis: pd.DataFrame, measures: tuple[str, ...] = COMPARED) -> MonthComparison | None:
    """The headline comparison: the last complete month vs the month before and vs a year before.

    ``monthly_kpis`` is ``kpis(tables, freq="MS")``. Only months the data
    covers in full are compared (a month the export cut short is not a drop in
    sales); a month not covered in full is left out (NaN, its date None).
    Returns None when the data covers no month in full.
    """
    required = ["ds", "complete", *measures]
    missing = [c for c in required if c not in monthly_kpis.columns]
    if missing:
        raise JourneyError(f"monthly KPIs lack columns {missing}; build them with kpis(tables, freq='MS')")
    table = monthly_kpis.set_index("ds")
    if not (pd.DatetimeIndex(table.index) == period_label(pd.Series(table.index), "MS").to_numpy()).all():
        raise JourneyError("compare_months needs monthly KPIs: kpis(tables, freq='MS')")
    complete = table[table["complete"].astype(bool)]
    if complete.empty:
        return None
    month = complete.index.max()

    def covered(when: pd.Timestamp) -> pd.Timestamp | None:
        return when if when in complete.index else None

    previous = covered(month - pd.DateOffset(months=1))
    year_before = covered(month - pd.DateOffset(years=1))

    def values(when: pd.Timestamp | None) -> pd.Series:
        if when is None:
            return pd.Series(np.nan, index=list(measures))
        return complete.loc[when, list(measures)].astype(float)

    now = values(month)

    def change(before: pd.Series) -> pd.Series:
        return (now - before) / before.where(before != 0)

    figures = pd.DataFrame({"month": now, "previous_month": values(previous),
                            "year_before": values(year_before)}).rename_axis("measure")
    figures["change_vs_previous_month"] = change(figures["previous_month"])
    figures["change_vs_year_before"] = change(figures["year_before"])
    return MonthComparison(month=month, previous_month=previous, year_before=year_before, figures=figures)
