"""Known cash items: one-off and recurring commitments, and cost categories that are really schedules.

A commitment is money the business already knows it will pay (or receive):
payroll every Friday, rent on the 1st, a loan repayment every quarter, a stock
purchase before the holiday season. Such money is not forecast statistically:
its dates and amounts are known, so it enters every simulated future exactly,
the same in every draw, and shows as its own band in the cash charts.

A commitment row (the canonical ``commitments`` table) gives the first date
(``ts``), the ``amount`` (positive), the ``direction`` (``out`` or ``in``), the
``stage`` and ``category`` it belongs to, a ``frequency`` (``once``,
``weekly``, ``monthly``, ``month-end``, ``quarterly``, ``yearly``), an
optional last date (``until``) and how a date falling on a weekend or public
holiday moves (``business_day``: ``none``, ``following``, ``preceding``).
Recurring dates come from ``dateutil.rrule``: weekly on the weekday of ``ts``;
monthly and quarterly on the day of month of ``ts``, clipped to the month's
last day (a commitment on the 31st falls on 30 April and 28 or 29 February);
yearly on the month and day of ``ts`` (29 February falls on 28 February in
other years).

The costs table often already holds the past of a schedule (the payroll every
Friday). Where a category of costs is also a commitment, the recorded costs
stay its history -- what was actually paid -- and the commitment gives its
future; the category's costs leave the series that are forecast, so the
money is never counted twice. :func:`detect_schedules` finds cost categories
that look like schedules (same weekday or day of month, stable amount) and
writes them as commitment rows an analyst can copy into ``commitments.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import holidays as public_holidays
import numpy as np
import pandas as pd
from dateutil.rrule import MONTHLY, WEEKLY, YEARLY, rrule

from toolkit.errors import JourneycastError, require_columns
from toolkit.flows import FLOW_TABLES, money_in_transit, paid_on, stage_flows
from toolkit.journey import data_period, period_label
from toolkit.schema import BUSINESS_DAY_RULES, COST_STAGES, FREQUENCIES

if TYPE_CHECKING:
    from toolkit.config import PaymentTiming

__all__ = [
    "COMMITMENT_COLUMNS",
    "COMMITTED",
    "CashFlows",
    "CommitmentError",
    "cash_flows",
    "commitment_table",
    "committed_categories",
    "committed_flows",
    "committed_segment",
    "detect_schedules",
    "holiday_dates",
    "is_committed",
    "known_payments",
    "occurrences",
    "split_committed_costs",
]

#: Columns of a commitments table, in order.
COMMITMENT_COLUMNS: tuple[str, ...] = ("ts", "amount", "direction", "category", "stage", "description",
                                       "frequency", "until", "business_day")

#: Prefix of the segment of committed series: ``operations|outflow|committed:payroll``.
COMMITTED = "committed:"

_DEFAULTS = {"direction": "out", "category": "other", "stage": "operations", "description": "",
             "frequency": "once", "business_day": "none"}
_DIRECTIONS = {"out": "outflow", "in": "inflow"}


class CommitmentError(JourneycastError, ValueError):
    """A commitment cannot be scheduled as given."""


def committed_segment(category: str) -> str:
    """The series segment of a committed category (``|`` separates series parts, so it becomes ``/``)."""
    return COMMITTED + str(category).replace("|", "/")


def is_committed(unique_id: pd.Series) -> pd.Series:
    """Whether each series id is a committed series (known dates and amounts, not forecast)."""
    return unique_id.astype("str").str.split("|").str[2].str.startswith(COMMITTED)


def _bad_rows(frame: pd.DataFrame, mask: pd.Series, column: str, why: str) -> None:
    if mask.any():
        row = int(np.flatnonzero(mask.to_numpy())[0])
        raise CommitmentError(f"commitments row {row + 1}, column '{column}': {frame[column].iloc[row]!r} {why}")


def commitment_table(commitments: pd.DataFrame) -> pd.DataFrame:
    """The commitments with defaults filled in and every word checked.

    Accepts the canonical table or a hand-built frame with at least ``ts`` and
    ``amount``; missing optional columns take their defaults (see the module
    docstring). Raises ``CommitmentError`` naming the row and column of the
    first value that cannot be scheduled.
    """
    require_columns(commitments, ("ts", "amount"), "commitments", CommitmentError)
    table = commitments.reset_index(drop=True).copy()
    for column, default in _DEFAULTS.items():
        table[column] = table[column].fillna(default) if column in table else default
        table[column] = table[column].astype("str").str.strip().replace("", default)
    for column in ("direction", "frequency", "business_day"):
        table[column] = table[column].str.lower()
    table["ts"] = pd.to_datetime(table["ts"]).dt.normalize().astype("datetime64[ns]")
    until = table["until"] if "until" in table else pd.Series(pd.NaT, index=table.index)
    table["until"] = pd.to_datetime(until).dt.normalize().astype("datetime64[ns]")
    table["amount"] = pd.to_numeric(table["amount"]).astype("float64")
    _bad_rows(table, table["ts"].isna(), "ts", "is not a date")
    _bad_rows(table, ~(table["amount"] > 0), "amount", "must be a positive amount; direction gives the sign")
    _bad_rows(table, ~table["direction"].isin(list(_DIRECTIONS)), "direction", f"is not one of {list(_DIRECTIONS)}")
    _bad_rows(table, ~table["stage"].isin(COST_STAGES), "stage", f"is not a stage; stages are {list(COST_STAGES)}")
    _bad_rows(table, ~table["frequency"].isin(FREQUENCIES), "frequency", f"is not one of {list(FREQUENCIES)}")
    _bad_rows(table, ~table["business_day"].isin(BUSINESS_DAY_RULES), "business_day",
              f"is not one of {list(BUSINESS_DAY_RULES)}")
    _bad_rows(table, table["until"] < table["ts"], "until", "is before the first date (ts)")
    return table[list(COMMITMENT_COLUMNS)]


def holiday_dates(country: str | None, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """The public holidays of ``country`` between ``start`` and ``end`` (none without a country)."""
    if country is None:
        return []
    calendar = public_holidays.country_holidays(country, years=range(start.year, end.year + 1))
    return sorted(pd.Timestamp(day) for day in calendar if start <= pd.Timestamp(day) <= end)


def _month_days(day: int) -> tuple[int, ...]:
    # with bysetpos=-1 the last of these days a month has: the day itself, or the month's end when shorter
    return tuple(range(min(day, 28), day + 1))


def _dates(first: pd.Timestamp, frequency: str, last: pd.Timestamp) -> list[pd.Timestamp]:
    """Scheduled dates from ``first`` through ``last`` (before any business-day move)."""
    if frequency == "once":
        return [first] if first <= last else []
    rules = {
        "weekly": dict(freq=WEEKLY),
        "monthly": dict(freq=MONTHLY, bymonthday=_month_days(first.day), bysetpos=-1),
        "month-end": dict(freq=MONTHLY, bymonthday=-1),
        "quarterly": dict(freq=MONTHLY, interval=3, bymonthday=_month_days(first.day), bysetpos=-1),
        "yearly": dict(freq=YEARLY, bymonth=first.month, bymonthday=_month_days(first.day), bysetpos=-1),
    }
    return [pd.Timestamp(d) for d in rrule(dtstart=first.to_pydatetime(), until=last.to_pydatetime(),
                                            **rules[frequency])]


def _business_days(dates: pd.DatetimeIndex, rule: pd.Series, holidays: Iterable[pd.Timestamp]) -> pd.DatetimeIndex:
    """``dates`` moved off weekends and ``holidays`` by each row's rule (``none`` leaves them)."""
    days = dates.to_numpy().astype("datetime64[D]")
    closed = np.array([np.datetime64(pd.Timestamp(h).date()) for h in holidays], dtype="datetime64[D]")
    moved = days.copy()
    for name, roll in (("following", "forward"), ("preceding", "backward")):
        mask = (rule == name).to_numpy()
        if mask.any():
            moved[mask] = np.busday_offset(days[mask], 0, roll=roll, holidays=closed)
    return pd.DatetimeIndex(moved.astype("datetime64[ns]"))


def occurrences(commitments: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                holidays: Iterable[pd.Timestamp] = ()) -> pd.DataFrame:
    """Every payment of the commitments that falls between ``start`` and ``end`` (both included).

    Returns one row per payment: ``ds`` (the day the money moves, after the
    business-day rule), ``scheduled`` (the date before it), ``amount``
    (positive), ``direction`` (``inflow``/``outflow``), ``stage``,
    ``category``, ``description``, ``frequency`` and ``unique_id`` (the
    committed series it belongs to), sorted by date.
    """
    table = commitment_table(commitments)
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    # a payment moved to the following business day may come from a date a few days before start
    reach = pd.Timedelta(days=10)
    rows = []
    for position, item in table.iterrows():
        last = min(end + reach, item["until"]) if pd.notna(item["until"]) else end + reach
        for scheduled in _dates(item["ts"], item["frequency"], last):
            rows.append((position, scheduled))
    columns = ["ds", "scheduled", "amount", "direction", "stage", "category", "description", "frequency",
               "unique_id"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("ds", "scheduled") else
                                          "float64" if c == "amount" else "str") for c in columns})
    position, scheduled = zip(*rows)
    out = table.loc[list(position)].reset_index(drop=True)
    out["scheduled"] = pd.DatetimeIndex(scheduled).astype("datetime64[ns]")
    out["ds"] = _business_days(pd.DatetimeIndex(out["scheduled"]), out["business_day"], holidays)
    out["direction"] = out["direction"].map(_DIRECTIONS)
    out["unique_id"] = out["stage"] + "|" + out["direction"] + "|" + out["category"].map(committed_segment)
    out = out[(out["ds"] >= start) & (out["ds"] <= end)]
    for column in ("direction", "stage", "category", "description", "frequency", "unique_id"):
        out[column] = out[column].astype("str")
    return out.sort_values(["ds", "unique_id"], kind="stable").reset_index(drop=True)[columns]


def known_payments(known: pd.DataFrame) -> pd.DataFrame:
    """Money known ahead, for people: ``ds, what, stage, amount`` (money out negative), by day and item.

    ``known`` as ``CashFlows.known``; ``what`` is the commitment's category,
    or "owed: <stage>" for money booked but not yet paid.
    """
    parts = known["unique_id"].str.split("|", expand=True).reindex(columns=[0, 1, 2])
    what = np.where(parts[2].str.startswith(COMMITTED), parts[2].str.removeprefix(COMMITTED),
                    "owed: " + parts[0].astype("str"))
    sign = np.where(known["direction"] == "outflow", -1.0, 1.0)
    frame = pd.DataFrame({"ds": known["ds"], "what": what, "stage": parts[0].astype("str"),
                          "amount": sign * known["y"].to_numpy()})
    return frame.groupby(["ds", "what", "stage"], as_index=False, sort=True)["amount"].sum()


def committed_categories(commitments: pd.DataFrame | None) -> set[tuple[str, str]]:
    """The ``(stage, category)`` pairs the commitments schedule."""
    if commitments is None or commitments.empty:
        return set()
    table = commitment_table(commitments)
    return set(zip(table["stage"], table["category"]))


def split_committed_costs(costs: pd.DataFrame, commitments: pd.DataFrame | None
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The costs to forecast, and the costs of committed categories (their actual history).

    A cost row whose ``(stage, category)`` a commitment schedules is known
    money: it leaves the series that are forecast statistically.
    """
    pairs = committed_categories(commitments)
    committed = pd.Series([(s, c) in pairs for s, c in zip(costs["stage"], costs["category"])],
                          index=costs.index, dtype=bool)
    return costs[~committed], costs[committed]


def committed_flows(costs: pd.DataFrame | None, commitments: pd.DataFrame, start: pd.Timestamp,
                    end: pd.Timestamp, holidays: Iterable[pd.Timestamp] = (), costs_days: int = 0) -> pd.DataFrame:
    """The money of committed categories per series and day from ``start`` to ``end``: ``unique_id, ds, y, direction``.

    Up to the last day of the recorded costs (``costs``; the day before
    ``start`` when there are none) a category the costs record keeps its
    recorded payments (paid ``costs_days`` later, as every cost); its schedule
    counts from the next day on. A category the costs do not record follows
    its schedule throughout, so the past payments of a loan or the rent reach
    the balance history too. ``y`` is a magnitude; ``direction`` gives the sign.
    """
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    scheduled = occurrences(commitments, start, end, holidays)
    parts = [scheduled[["unique_id", "ds", "amount", "direction"]].rename(columns={"amount": "y"})]
    if costs is not None and not costs.empty:
        _, recorded = split_committed_costs(costs, commitments)
        recorded = recorded[recorded["amount"] != 0]
        last_recorded = pd.Timestamp(costs["ts"].max()).normalize()
        direction = np.where(recorded["amount"] > 0, "outflow", "inflow")
        parts.append(pd.DataFrame({
            "unique_id": recorded["stage"] + "|" + direction + "|" + recorded["category"].map(committed_segment),
            "ds": paid_on(recorded["ts"], costs_days, False, ()).dt.normalize().astype("datetime64[ns]"),
            "y": recorded["amount"].abs(), "direction": direction}))
        pairs = set(zip(recorded["stage"], recorded["category"]))
        known = pd.Series([(s, c) in pairs for s, c in zip(scheduled["stage"], scheduled["category"])],
                          index=scheduled.index, dtype=bool)
        parts[0] = parts[0][~known.to_numpy() | (scheduled["ds"] > last_recorded).to_numpy()]
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[(rows["ds"] >= start) & (rows["ds"] <= end)]
    out = rows.groupby(["unique_id", "ds", "direction"], as_index=False)["y"].sum()
    for column in ("unique_id", "direction"):
        out[column] = out[column].astype("str")
    return out[["unique_id", "ds", "y", "direction"]]


def _regular_gap(days: pd.DatetimeIndex, frequency: str) -> bool:
    """Whether consecutive days follow ``frequency`` (weekly: 7 days; monthly: the next month)."""
    if frequency == "weekly":
        return bool((days[1:] - days[:-1] == pd.Timedelta(days=7)).all())
    months = days.year * 12 + days.month
    return bool((np.diff(months) == 1).all())


def detect_schedules(costs: pd.DataFrame, recent: int = 8, max_variation: float = 0.05) -> pd.DataFrame:
    """Cost categories paid like a schedule, as commitment rows to review.

    A category is a schedule when its last ``recent`` payments (one per day,
    summed over channels) fall every week on the same weekday, or every month
    on the same day of the month (or on each month's last day), and their
    amounts vary by at most ``max_variation`` (coefficient of variation). The
    amount is the latest payment -- payroll that rose last year is scheduled
    at today's level.

    Returns the columns of ``commitment_table`` (``ts`` is the latest payment,
    so the schedule continues from there) plus ``payments`` (how many were
    looked at) and ``variation``; no rows when nothing looks scheduled.
    """
    require_columns(costs, ("ts", "stage", "category", "amount"), "costs", CommitmentError)
    daily = (costs.assign(ds=pd.to_datetime(costs["ts"]).dt.normalize())
             .groupby(["stage", "category", "ds"])["amount"].sum().reset_index())
    rows = []
    for (stage, category), part in daily[daily["amount"] > 0].groupby(["stage", "category"], sort=True):
        last = part.sort_values("ds").tail(recent)
        if len(last) < recent:
            continue
        days = pd.DatetimeIndex(last["ds"])
        variation = float(last["amount"].std(ddof=0) / last["amount"].mean())
        if variation > max_variation:
            continue
        if days.day_of_week.nunique() == 1 and _regular_gap(days, "weekly"):
            frequency = "weekly"
        elif days.is_month_end.all() and _regular_gap(days, "monthly"):
            frequency = "month-end"
        elif days.day.nunique() == 1 and _regular_gap(days, "monthly"):
            frequency = "monthly"
        else:
            continue
        rows.append({"ts": days[-1], "amount": float(last["amount"].iloc[-1]), "direction": "out",
                     "category": category, "stage": stage, "description": f"{category} (from the costs)",
                     "frequency": frequency, "until": pd.NaT, "business_day": "none",
                     "payments": len(last), "variation": variation})
    columns = [*COMMITMENT_COLUMNS, "payments", "variation"]
    if not rows:
        return commitment_table(pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns]"),
                                              "amount": pd.Series(dtype="float64")})).assign(
            payments=pd.Series(dtype="int64"), variation=pd.Series(dtype="float64"))
    return pd.DataFrame(rows)[columns].astype({"until": "datetime64[ns]", "ts": "datetime64[ns]"})


@dataclass(frozen=True)
class CashFlows:
    """The actual money of a business as the bank sees it, split by how it is known ahead.

    ``series`` are the stage series to forecast statistically (costs of
    committed categories left out); ``history`` adds the committed money on
    the same grid (series ``<stage>|<direction>|committed:<category>``): the
    balance history is built from it. ``known`` is the money known after the
    last day -- future commitments and money in transit -- as ``unique_id, ds,
    y, direction``.
    """

    series: pd.DataFrame
    history: pd.DataFrame
    known: pd.DataFrame


def _on_grid(money: pd.DataFrame, like: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Dated money (``unique_id, ds, y``) as long series on the grid and columns of ``like``."""
    grid = pd.DatetimeIndex(like["ds"].unique())
    wide = (money.assign(ds=period_label(money["ds"], freq)).groupby(["ds", "unique_id"])["y"].sum()
            .unstack("unique_id", fill_value=0.0).reindex(grid, fill_value=0.0).rename_axis("ds"))
    out = wide.melt(ignore_index=False, var_name="unique_id", value_name="y").reset_index()
    keys = out["unique_id"].str.split("|", expand=True)
    out = out.assign(stage=keys[0], direction=keys[1], segment=keys[2])
    for column in ("unique_id", "stage", "direction", "segment"):
        out[column] = out[column].astype("str")
    return out[list(like.columns)]


def cash_flows(tables: dict[str, pd.DataFrame], timing: PaymentTiming, until: pd.Timestamp,
               holidays: Iterable[pd.Timestamp] = (), freq: str = "D", segment: str | None = None,
               gross_margin: float | None = None) -> CashFlows:
    """The stage series, the committed money and the money known up to ``until``, with payment timing.

    ``tables`` are the canonical tables (``commitments`` optional); the other
    parameters as for ``toolkit.flows.stage_flows``. Without commitments,
    ``history`` equals ``series``.
    """
    booked = {name: tables[name] for name in FLOW_TABLES if name in tables}
    commitments = tables.get("commitments")
    if booked.get("costs") is not None and commitments is not None:
        # committed categories are known money: their costs leave the forecast series
        booked["costs"] = split_committed_costs(booked["costs"], commitments)[0]
    series = stage_flows(booked, freq=freq, segment=segment, gross_margin=gross_margin, timing=timing,
                         holidays=holidays)
    transit = money_in_transit(booked, timing, holidays, segment, gross_margin=gross_margin)
    known = [transit.assign(direction=transit["unique_id"].str.split("|").str[1].astype("str"))]
    history = series
    if commitments is not None and len(commitments):
        # the data's own days, not the period labels: a week is labelled by its last day
        first, last = (pd.Timestamp(d).normalize() for d in data_period(booked))
        committed = committed_flows(tables.get("costs"), commitments, first, until, holidays, timing.costs_days)
        past = committed[committed["ds"] <= last]
        if len(past):
            history = pd.concat([series, _on_grid(past, series, freq)], ignore_index=True)
        known.append(committed[committed["ds"] > last])
    known_money = pd.concat(known, ignore_index=True)
    known_money = known_money[known_money["ds"] <= until]
    # on the forecast's own periods, so that it adds to the draws of the same week or month
    known_money = (known_money.assign(ds=period_label(known_money["ds"], freq))
                   .groupby(["unique_id", "ds", "direction"], as_index=False, sort=False)["y"].sum())
    known_money = known_money.sort_values(["ds", "unique_id"], kind="stable")[["unique_id", "ds", "y", "direction"]]
    return CashFlows(series, history, known_money.reset_index(drop=True))
