"""The cash position: balance bands, shortfall risk, runway and what-if scenarios.

The balance on a day is the opening balance, plus every actual inflow minus
every actual outflow up to that day, plus -- over the forecast horizon -- the
forecast inflows minus outflows. The forecast comes as whole *sample paths*
(one column per draw), so the net flow is summed across series and cumulated
over dates draw by draw, and only then summarised into quantiles and
probabilities. Summing each series' P90 instead would assume every series hits
its worst case on the same day, which overstates the spread by roughly the
square root of the number of independent series.

A forecast of thousands of series stored at scale keeps only that net flow
per day and draw (``toolkit.forecast.net_flow_draws``), not the paths:
``cash_position_from_net_flow`` takes it, and ``cash_position`` sums the paths
into the same frame and continues there, so both give the same outlook.

What-if scenarios change the per-series paths before they are summed
(``apply_scenario``); every scenario is evaluated on the same draws as the
baseline, so differences between scenarios come from the adjustments alone and
not from sampling noise.

Definitions used throughout:

* quantiles (P10/P50/P90) are empirical quantiles over the draws
  (``numpy.quantile(..., method="inverted_cdf")``: each is one of the simulated
  balances). With this choice "the P50 balance is below the minimum" and "a
  shortfall is at least as likely as not (probability >= 0.5)" are the same
  statement, so ``first_breach_date`` and ``runway_days`` always agree;
* the shortfall probability of a day is the share of draws whose balance is
  below ``minimum_cash`` on that day; the shortfall probability of the horizon
  is the share of draws that fall below it on at least one day;
* ``first_breach_date`` is the first forecast day whose shortfall probability is
  at least 0.5 (the first day the P50 balance is below the minimum);
* ``runway_days`` counts the calendar days after the last actual day on which
  the P50 balance stays at or above the minimum: one less than the days until
  ``first_breach_date``, or the length of the horizon in days if the P50
  balance never falls below the minimum.

Without an opening balance there is no balance to speak of: the same sums
start from zero on the first actual day and are the *cumulative net cash flow*
since then (the change in cash, still worth seeing), and nothing is compared
with a minimum. Without a minimum (``minimum_cash=None``: e.g. when no
outflow is known, so the balance would only ever grow) the bands are kept and
the shortfall figures are None. A page must never show a shortfall risk that
was computed from money in alone.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from toolkit.commitments import COMMITTED, committed_segment, is_committed
from toolkit.errors import JourneycastError
from toolkit.flows import net_flow as actual_net_flow
from toolkit.forecast.net import net_flow_draws, stage_and_direction
from toolkit.forecast.settings import ForecastError
from toolkit.notes import Note
from toolkit.schema import COST_STAGES

__all__ = [
    "BASELINE",
    "EXTRA_FLOWS_STAGE",
    "ONE_OFF_SEGMENT",
    "Adjustment",
    "CashError",
    "LowPoint",
    "CashOutlook",
    "DemandShock",
    "ExtraFlows",
    "MissingSeriesError",
    "MoveCommitment",
    "OneOffCost",
    "OutflowChange",
    "ReceiptDelay",
    "Scenario",
    "apply_scenario",
    "balance_check",
    "balance_record",
    "cash_position",
    "cash_position_from_net_flow",
    "compare_scenarios",
    "compare_scenarios_with_notes",
    "days_of_cash",
    "low_point",
    "scenario_from_dict",
    "with_known_flows",
]

#: Name of the scenario without adjustments that ``compare_scenarios`` puts first.
BASELINE = "baseline"

#: Stage of the series ``ExtraFlows`` adds (``extra|inflow|<label>``, ``extra|outflow|<label>``).
EXTRA_FLOWS_STAGE = "extra"

#: Segment of the series ``OneOffCost`` adds (``<stage>|outflow|one-off``).
ONE_OFF_SEGMENT = "one-off"

_QUANTILES = (0.1, 0.5, 0.9)
_QUANTILE_METHOD = "inverted_cdf"
_DRAW_PREFIX = "draw_"
_INDEX_NAMES = ("unique_id", "ds")


class CashError(JourneycastError, ValueError):
    """Cash-position inputs or a scenario are invalid."""


class MissingSeriesError(CashError):
    """An adjustment changes money the forecast does not have (e.g. the costs of a stage with no costs)."""


# ---------------------------------------------------------------- inputs


def _timestamp(value: Any, what: str) -> pd.Timestamp:
    """A calendar day from a date, datetime, Timestamp or ISO string."""
    if isinstance(value, bool) or not isinstance(value, (str, date, pd.Timestamp, np.datetime64)):
        raise CashError(f"{what} must be a date like '2026-11-15', got {value!r}")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise CashError(f"{what} must be a date like '2026-11-15', got {value!r}") from None
    if ts is pd.NaT or ts.tzinfo is not None:
        raise CashError(f"{what} must be a timezone-naive date, got {value!r}")
    return ts.normalize()


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CashError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise CashError(f"{what} must be finite, got {value!r}")
    return float(value)


def _percent(value: Any, what: str) -> float:
    pct = _number(value, what)
    if pct < -100:
        raise CashError(f"{what} is a percent change and cannot be below -100, got {value!r}")
    return pct


def _stage(value: Any, what: str) -> str:
    if value not in COST_STAGES:
        raise CashError(f"{what} {value!r} is not a stage; stages are {list(COST_STAGES)}")
    return value


def _split_unique_id(unique_id: str) -> tuple[str, str]:
    """(stage, direction) of a series id ``stage|direction|segment``."""
    try:
        return stage_and_direction(unique_id)
    except ForecastError as exc:
        raise CashError(str(exc)) from None


def _check_draw_columns(frame: pd.DataFrame, name: str) -> None:
    if frame.empty:
        raise CashError(f"{name} has no rows or no draw columns: nothing to forecast the balance from")
    others = frame.columns[~frame.columns.astype(str).str.startswith(_DRAW_PREFIX)]
    if len(others):
        raise CashError(f"{name} may only hold draw columns ('{_DRAW_PREFIX}0', ...), found {list(others)}")


def _check_finite(frame: pd.DataFrame, whose: str) -> None:
    values = frame.to_numpy()
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise CashError(f"{whose} draw columns must hold finite numbers (no NaN)")


def _check_paths(paths: pd.DataFrame) -> None:
    """Raise CashError unless ``paths`` follows the sample-path contract."""
    if not isinstance(paths, pd.DataFrame):
        raise CashError(f"paths must be a DataFrame, got {type(paths).__name__}")
    if not isinstance(paths.index, pd.MultiIndex) or tuple(paths.index.names) != _INDEX_NAMES:
        raise CashError(
            f"paths must be indexed by {list(_INDEX_NAMES)}, got {list(paths.index.names)}"
        )
    _check_draw_columns(paths, "paths")
    if not pd.api.types.is_datetime64_any_dtype(paths.index.levels[1]):
        raise CashError("paths' 'ds' index level must hold dates (datetime64)")
    for unique_id in paths.index.unique(level="unique_id"):
        _split_unique_id(unique_id)
    if paths.index.has_duplicates:
        dup = paths.index[paths.index.duplicated()][0]
        raise CashError(f"paths has more than one row for series {dup[0]!r} on {dup[1]:%Y-%m-%d}")
    _check_finite(paths, "paths'")


def _check_net_flow(net_flow: pd.DataFrame) -> None:
    """Raise CashError unless ``net_flow`` holds finite net amounts per forecast day and draw."""
    if not isinstance(net_flow, pd.DataFrame):
        raise CashError(f"net_flow must be a DataFrame, got {type(net_flow).__name__}")
    if not isinstance(net_flow.index, pd.DatetimeIndex):
        raise CashError("net_flow must be indexed by the forecast dates (a DatetimeIndex 'ds')")
    _check_draw_columns(net_flow, "net_flow")
    if not net_flow.index.is_monotonic_increasing or net_flow.index.has_duplicates:
        raise CashError("net_flow must have one row per forecast day, in date order")
    _check_finite(net_flow, "net_flow's")


@dataclass(frozen=True)
class _Rows:
    """Per-row facts of a paths frame: series stage, direction and date."""

    stage: np.ndarray
    direction: np.ndarray
    ds: pd.DatetimeIndex

    @classmethod
    def of(cls, paths: pd.DataFrame) -> _Rows:
        codes, uniques = pd.factorize(paths.index.get_level_values("unique_id"))
        meta = np.array([_split_unique_id(u) for u in uniques], dtype=object).reshape(-1, 2)
        return cls(
            stage=meta[codes, 0],
            direction=meta[codes, 1],
            ds=pd.DatetimeIndex(paths.index.get_level_values("ds")),
        )


def _horizon(paths: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    ds = paths.index.get_level_values("ds")
    return ds.min(), ds.max()


def _scaled(paths: pd.DataFrame, mask: np.ndarray, factor: float) -> pd.DataFrame:
    """``paths`` with the rows in ``mask`` multiplied by ``factor``."""
    factors = np.where(mask, factor, 1.0)
    values = paths.to_numpy(dtype=float) * factors[:, None]
    return pd.DataFrame(values, index=paths.index, columns=paths.columns, copy=False)


def _added(
    paths: pd.DataFrame, uids: list[str], ds: pd.DatetimeIndex, amounts: np.ndarray
) -> pd.DataFrame:
    """``paths`` plus ``amounts`` (rows x draws) on rows ``(uids, ds)``.

    Added to the row where it exists, appended as a new row where not.
    """
    ds = ds.astype(paths.index.levels[1].dtype)
    index = pd.MultiIndex.from_arrays([pd.Index(uids, dtype=str), ds], names=_INDEX_NAMES)
    position = paths.index.get_indexer(index)
    hit = position >= 0
    values = paths.to_numpy(dtype=float, copy=True)
    np.add.at(values, position[hit], amounts[hit])
    out = pd.DataFrame(values, index=paths.index, columns=paths.columns, copy=False)
    if hit.all():
        return out
    return pd.concat([out, pd.DataFrame(amounts[~hit], index=index[~hit], columns=paths.columns)])


def with_known_flows(paths: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """``paths`` plus money whose date and amount are known, the same in every draw.

    ``flows`` holds ``unique_id, ds, y`` (magnitudes; the series id gives the
    direction): commitments and money already owed (``toolkit.flows.money_in_transit``).
    Rows outside the forecast horizon are left out; they are history or beyond it.
    """
    first, last = _horizon(paths)
    inside = flows[(flows["ds"] >= first) & (flows["ds"] <= last)]
    if inside.empty:
        return paths
    for unique_id in inside["unique_id"].unique():
        _split_unique_id(unique_id)
    amounts = np.repeat(inside["y"].to_numpy(dtype=float)[:, None], paths.shape[1], axis=1)
    return _added(paths, inside["unique_id"].astype("str").tolist(), pd.DatetimeIndex(inside["ds"]), amounts)


# ------------------------------------------------------------ adjustments


class Adjustment(ABC):
    """One change to the forecast sample paths; subclasses are frozen dataclasses.

    ``kind`` is the adjustment's ``type`` in a scenario mapping
    (see ``scenario_from_dict``).
    """

    kind: ClassVar[str]

    @abstractmethod
    def apply(self, paths: pd.DataFrame) -> pd.DataFrame:
        """A new paths frame with the adjustment applied; ``paths`` is left unchanged.

        Raises ``MissingSeriesError`` when ``missing(paths)`` names something.
        """

    def missing(self, paths: pd.DataFrame) -> str | None:
        """What the forecast lacks for this adjustment to mean anything (None: nothing).

        A data set without costs has no outflow to raise; such an adjustment is
        left out of a comparison with a note rather than failing the run.
        """
        return None

    def _require_series(self, paths: pd.DataFrame) -> None:
        lacking = self.missing(paths)
        if lacking is not None:
            raise MissingSeriesError(f"{self.kind}: {lacking}")


@dataclass(frozen=True)
class OutflowChange(Adjustment):
    """A stage's outflows change by ``pct`` percent (20 = +20%) from ``start`` on."""

    kind: ClassVar[str] = "outflow_change"
    stage: str
    pct: float
    start: pd.Timestamp

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", _stage(self.stage, "outflow_change: stage"))
        object.__setattr__(self, "pct", _percent(self.pct, "outflow_change: pct"))
        object.__setattr__(self, "start", _timestamp(self.start, "outflow_change: start"))

    def missing(self, paths: pd.DataFrame) -> str | None:
        rows = _Rows.of(paths)
        if ((rows.direction == "outflow") & (rows.stage == self.stage)).any():
            return None
        return (f"the forecast has no outflow series for stage {self.stage!r} "
                f"(the data holds no money going out at that stage)")

    def apply(self, paths: pd.DataFrame) -> pd.DataFrame:
        self._require_series(paths)
        rows = _Rows.of(paths)
        mask = (rows.direction == "outflow") & (rows.stage == self.stage)
        mask &= rows.ds >= self.start
        if not mask.any():
            raise CashError(
                f"outflow_change: start {self.start:%Y-%m-%d} is after the forecast horizon "
                f"(ends {_horizon(paths)[1]:%Y-%m-%d})"
            )
        return _scaled(paths, mask, 1 + self.pct / 100)


@dataclass(frozen=True)
class OneOffCost(Adjustment):
    """A single payment of ``amount`` on ``date``, booked to ``stage``'s outflows.

    It lands in the series ``<stage>|outflow|one-off`` (created if absent); the
    same amount in every draw.
    """

    kind: ClassVar[str] = "one_off_cost"
    date: pd.Timestamp
    amount: float
    stage: str = "operations"

    def __post_init__(self) -> None:
        object.__setattr__(self, "date", _timestamp(self.date, "one_off_cost: date"))
        amount = _number(self.amount, "one_off_cost: amount")
        if amount <= 0:
            raise CashError(
                f"one_off_cost: amount is money out and must be positive, got {self.amount!r} "
                "(add money in with ExtraFlows)"
            )
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "stage", _stage(self.stage, "one_off_cost: stage"))

    def apply(self, paths: pd.DataFrame) -> pd.DataFrame:
        first, last = _horizon(paths)
        if not first <= self.date <= last:
            raise CashError(
                f"one_off_cost: date {self.date:%Y-%m-%d} is outside the forecast horizon "
                f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
            )
        amounts = np.full((1, paths.shape[1]), self.amount)
        uid = f"{self.stage}|outflow|{ONE_OFF_SEGMENT}"
        return _added(paths, [uid], pd.DatetimeIndex([self.date]), amounts)


@dataclass(frozen=True)
class DemandShock(Adjustment):
    """Inflows change by ``pct`` percent (-30 = a 30% drop) from ``start`` to ``end``.

    ``end`` is inclusive (None: to the end of the horizon); ``stages`` limits the
    shock to the inflows of those stages (None: every inflow).
    """

    kind: ClassVar[str] = "demand_shock"
    pct: float
    start: pd.Timestamp
    end: pd.Timestamp | None = None
    stages: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pct", _percent(self.pct, "demand_shock: pct"))
        object.__setattr__(self, "start", _timestamp(self.start, "demand_shock: start"))
        if self.end is not None:
            end = _timestamp(self.end, "demand_shock: end")
            if end < self.start:
                raise CashError(f"demand_shock: end {end:%Y-%m-%d} is before start {self.start:%Y-%m-%d}")
            object.__setattr__(self, "end", end)
        if self.stages is not None:
            if isinstance(self.stages, str) or not isinstance(self.stages, Iterable):
                raise CashError(f"demand_shock: stages must be a list of stages, got {self.stages!r}")
            stages = tuple(_stage(s, "demand_shock: stage") for s in self.stages)
            if not stages:
                raise CashError("demand_shock: stages is empty; leave it out to shock every inflow")
            object.__setattr__(self, "stages", stages)

    def _inflows(self, rows: _Rows) -> np.ndarray:
        mask = rows.direction == "inflow"
        if self.stages is not None:
            mask &= np.isin(rows.stage, self.stages)
        return mask

    def missing(self, paths: pd.DataFrame) -> str | None:
        if self._inflows(_Rows.of(paths)).any():
            return None
        return f"the forecast has no inflow series for stages {list(self.stages or COST_STAGES)}"

    def apply(self, paths: pd.DataFrame) -> pd.DataFrame:
        self._require_series(paths)
        rows = _Rows.of(paths)
        mask = self._inflows(rows)
        mask &= rows.ds >= self.start
        if self.end is not None:
            mask &= rows.ds <= self.end
        if not mask.any():
            first, last = _horizon(paths)
            raise CashError(
                f"demand_shock: {self.start:%Y-%m-%d}..{self.end or last:%Y-%m-%d} does not overlap "
                f"the forecast horizon {first:%Y-%m-%d}..{last:%Y-%m-%d}"
            )
        return _scaled(paths, mask, 1 + self.pct / 100)


@dataclass(frozen=True)
class ReceiptDelay(Adjustment):
    """Every inflow arrives ``days`` calendar days later than forecast.

    Money forecast to arrive on day t arrives on day t + days. Nothing arrives
    in the first ``days`` days of the horizon (receipts due then were forecast
    sales that now come later; earlier sales are already in the actual
    history), and amounts pushed past the last forecast day are dropped from
    the horizon: within the horizon, total inflows fall by exactly the inflows
    of its last ``days`` days.
    """

    kind: ClassVar[str] = "receipt_delay"
    days: int

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, (int, np.integer)) or self.days < 0:
            raise CashError(f"receipt_delay: days must be a whole number >= 0, got {self.days!r}")
        object.__setattr__(self, "days", int(self.days))

    def missing(self, paths: pd.DataFrame) -> str | None:
        if (_Rows.of(paths).direction == "inflow").any():
            return None
        return "the forecast has no inflow series to delay"

    def apply(self, paths: pd.DataFrame) -> pd.DataFrame:
        self._require_series(paths)
        inflow = _Rows.of(paths).direction == "inflow"
        moved = paths[inflow]
        ds = moved.index.get_level_values("ds") + pd.Timedelta(days=self.days)
        inside = np.asarray(ds <= _horizon(paths)[1])
        moved = pd.DataFrame(
            moved.to_numpy(dtype=float)[inside],
            index=pd.MultiIndex.from_arrays(
                [moved.index.get_level_values("unique_id")[inside], ds[inside]], names=_INDEX_NAMES
            ),
            columns=paths.columns,
        )
        values = paths.to_numpy(dtype=float, copy=True)
        values[inflow] = moved.reindex(paths.index[inflow], fill_value=0.0).to_numpy()
        out = pd.DataFrame(values, index=paths.index, columns=paths.columns, copy=False)
        # Arrivals on days a series had no row for (only with gaps in the forecast dates).
        off_grid = moved[~moved.index.isin(paths.index)]
        return pd.concat([out, off_grid]) if len(off_grid) else out


@dataclass(frozen=True, eq=False)
class ExtraFlows(Adjustment):
    """Net amounts per day and draw (money in positive, money out negative) added on top.

    ``draws`` is indexed by date; its columns are the forecast's draw columns
    (each draw gets its own amount, e.g. a campaign's simulated cash flows) or
    a single column used for every draw. Positive amounts go to the series
    ``extra|inflow|<label>``, negative ones to ``extra|outflow|<label>``. Dates
    after the horizon are dropped; dates before it are an error, since the
    actual history cannot change.
    """

    kind: ClassVar[str] = "extra_flows"
    draws: pd.DataFrame
    label: str

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label or "|" in self.label:
            raise CashError(f"extra_flows: label must be a non-empty name without '|', got {self.label!r}")
        if not isinstance(self.draws, pd.DataFrame) or self.draws.shape[1] == 0:
            raise CashError("extra_flows: draws must be a DataFrame indexed by date with draw columns")
        try:
            ds = pd.DatetimeIndex(self.draws.index).normalize()
        except (ValueError, TypeError):
            raise CashError(f"extra_flows {self.label!r}: draws must be indexed by date") from None
        if ds.has_duplicates:
            raise CashError(f"extra_flows {self.label!r}: draws has more than one row for a date")
        if not all(pd.api.types.is_numeric_dtype(t) for t in self.draws.dtypes) or not np.isfinite(
            self.draws.to_numpy(dtype=float)
        ).all():
            raise CashError(f"extra_flows {self.label!r}: draws must hold finite numbers")
        object.__setattr__(self, "draws", self.draws.set_axis(ds.rename("ds"), axis=0))

    def apply(self, paths: pd.DataFrame) -> pd.DataFrame:
        if set(self.draws.columns) == set(paths.columns):
            amounts = self.draws[paths.columns].to_numpy(dtype=float)
        elif self.draws.shape[1] == 1:
            amounts = np.repeat(self.draws.to_numpy(dtype=float), paths.shape[1], axis=1)
        else:
            raise CashError(
                f"extra_flows {self.label!r}: draws needs the forecast's {paths.shape[1]} draw "
                f"columns or a single column, got {self.draws.shape[1]} columns"
            )
        first, last = _horizon(paths)
        ds = pd.DatetimeIndex(self.draws.index)
        if (ds < first).any():
            raise CashError(
                f"extra_flows {self.label!r}: {ds.min():%Y-%m-%d} is before the forecast horizon "
                f"starts ({first:%Y-%m-%d}); the actual history cannot change"
            )
        inside = np.asarray(ds <= last)
        ds, amounts = ds[inside], amounts[inside]
        uids = [f"{EXTRA_FLOWS_STAGE}|inflow|{self.label}"] * len(ds) + [
            f"{EXTRA_FLOWS_STAGE}|outflow|{self.label}"
        ] * len(ds)
        both = np.vstack([np.clip(amounts, 0, None), np.clip(-amounts, 0, None)])
        return _added(paths, uids, ds.append(ds), both)


@dataclass(frozen=True)
class MoveCommitment(Adjustment):
    """The committed payments of ``category`` due on ``date`` are made ``days`` days later (earlier if negative).

    E.g. paying the stock purchase two weeks later: ``MoveCommitment("stock", "2026-11-16", 14)``.
    A payment moved past the horizon leaves it (the horizon's total changes by its amount).
    """

    kind: ClassVar[str] = "move_commitment"
    category: str
    date: pd.Timestamp
    days: int

    def __post_init__(self) -> None:
        if not isinstance(self.category, str) or not self.category:
            raise CashError(f"move_commitment: category must be a commitment's category, got {self.category!r}")
        object.__setattr__(self, "date", _timestamp(self.date, "move_commitment: date"))
        if isinstance(self.days, bool) or not isinstance(self.days, (int, np.integer)):
            raise CashError(f"move_commitment: days must be a whole number, got {self.days!r}")
        object.__setattr__(self, "days", int(self.days))

    def _due(self, paths: pd.DataFrame) -> np.ndarray:
        segment = paths.index.get_level_values("unique_id").str.split("|").str[2]
        return np.asarray((segment == committed_segment(self.category))
                          & (paths.index.get_level_values("ds") == self.date))

    def missing(self, paths: pd.DataFrame) -> str | None:
        if self._due(paths).any():
            return None
        return f"no commitment of category {self.category!r} is due on {self.date:%Y-%m-%d} in the forecast"

    def apply(self, paths: pd.DataFrame) -> pd.DataFrame:
        self._require_series(paths)
        due = self._due(paths)
        moved = paths[due]
        values = paths.to_numpy(dtype=float, copy=True)
        values[due] = 0.0
        out = pd.DataFrame(values, index=paths.index, columns=paths.columns, copy=False)
        first, last = _horizon(paths)
        to = self.date + pd.Timedelta(days=self.days)
        if to < first:
            raise CashError(f"move_commitment: {to:%Y-%m-%d} is before the forecast horizon starts "
                            f"({first:%Y-%m-%d}); the actual history cannot change")
        if to > last:
            return out
        uids = moved.index.get_level_values("unique_id").tolist()
        return _added(out, uids, pd.DatetimeIndex([to] * len(uids)), moved.to_numpy(dtype=float))


_ADJUSTMENTS: dict[str, type[Adjustment]] = {
    cls.kind: cls for cls in (OutflowChange, OneOffCost, DemandShock, ReceiptDelay, ExtraFlows, MoveCommitment)
}


@dataclass(frozen=True)
class Scenario:
    """A named what-if: adjustments applied, in the order given, to the forecast paths."""

    name: str
    adjustments: tuple[Adjustment, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise CashError(f"a scenario needs a non-empty name, got {self.name!r}")
        adjustments = tuple(self.adjustments)
        for adjustment in adjustments:
            if not isinstance(adjustment, Adjustment):
                raise CashError(
                    f"scenario {self.name!r}: {adjustment!r} is not an adjustment "
                    f"({', '.join(c.__name__ for c in _ADJUSTMENTS.values())})"
                )
        object.__setattr__(self, "adjustments", adjustments)


def apply_scenario(paths: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """The forecast sample paths with the scenario's adjustments applied in order.

    Returns a new frame; ``paths`` is never modified. Adjustments may add
    series (one-off costs, extra flows).
    """
    _check_paths(paths)
    try:
        for adjustment in scenario.adjustments:
            paths = adjustment.apply(paths)
    except CashError as exc:
        raise type(exc)(f"scenario {scenario.name!r}: {exc}") from None
    return paths


def scenario_from_dict(d: Mapping[str, Any]) -> Scenario:
    """A scenario from a config or notebook mapping.

    Example::

        {"name": "marketing push",
         "adjustments": [{"type": "outflow_change", "stage": "awareness",
                          "pct": 20, "start": "2026-11-15"}]}

    Adjustment types: ``outflow_change`` (stage, pct, start), ``one_off_cost``
    (date, amount, stage="operations"), ``demand_shock`` (pct, start, end=None,
    stages=None), ``receipt_delay`` (days), ``move_commitment`` (category,
    date, days). ``ExtraFlows`` carries a frame of
    draws and is built in code. Unknown types or fields are errors that name them.
    """
    if not isinstance(d, Mapping):
        raise CashError(f"a scenario must be a mapping with 'name' and 'adjustments', got {d!r}")
    unknown = sorted(set(d) - {"name", "adjustments"})
    if unknown:
        raise CashError(
            f"scenario {d.get('name')!r}: unknown keys {unknown}; expected 'name' and 'adjustments'"
        )
    if "name" not in d:
        raise CashError("a scenario needs a 'name'")
    name = d["name"]
    raw = d.get("adjustments", [])
    if isinstance(raw, (str, Mapping)) or not isinstance(raw, Iterable):
        raise CashError(f"scenario {name!r}: 'adjustments' must be a list of mappings")
    return Scenario(name, tuple(_adjustment_from_dict(name, i, item) for i, item in enumerate(raw, 1)))


def _adjustment_from_dict(scenario: Any, number: int, item: Any) -> Adjustment:
    where = f"scenario {scenario!r}, adjustment {number}"
    if not isinstance(item, Mapping) or "type" not in item:
        raise CashError(f"{where}: expected a mapping with a 'type', got {item!r}")
    kind = item["type"]
    buildable = {k: c for k, c in _ADJUSTMENTS.items() if c is not ExtraFlows}
    if kind == ExtraFlows.kind:
        raise CashError(f"{where}: 'extra_flows' carries a frame of draws; build ExtraFlows in code")
    if kind not in buildable:
        raise CashError(f"{where}: unknown type {kind!r}; types are {sorted(buildable)}")
    cls = buildable[kind]
    fields = dataclasses.fields(cls)
    allowed = [f.name for f in fields]
    unknown = sorted(set(item) - {"type", *allowed})
    if unknown:
        raise CashError(f"{where} ({kind}): unknown fields {unknown}; fields are {allowed}")
    missing = [
        f.name
        for f in fields
        if f.name not in item
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise CashError(f"{where} ({kind}): missing fields {missing}")
    try:
        return cls(**{k: v for k, v in item.items() if k != "type"})
    except CashError as exc:
        raise CashError(f"{where}: {exc}") from None


# ----------------------------------------------------------- the position


@dataclass(frozen=True)
class CashOutlook:
    """The cash position over the actual history and the forecast horizon.

    Attributes
    ----------
    bands
        One row per day of history and horizon: ``ds, p10, p50, p90, actual,
        is_forecast``. ``actual`` is the balance on history days; the quantiles
        are filled on forecast days and, so that bands join the actual line, on
        the last actual day (where all three equal the known balance). Without
        an opening balance these are the cumulative net cash flow since
        ``start`` instead (see ``balance_known``).
    shortfall
        One row per forecast day: ``ds, probability`` of a balance below
        ``minimum_cash`` that day (NaN when the risk is not assessed).
    breach_distribution
        One row per forecast day: ``ds, first_breach_probability`` (share of
        draws that first fall below the minimum that day) and
        ``cumulative_probability`` (share that has fallen below it by that day;
        its last value is ``shortfall_probability``); NaN when not assessed.
    balance_draws
        The simulated balance, one row per forecast day (index ``ds``) and one
        column per draw.
    shortfall_probability
        Share of draws that fall below the minimum on at least one forecast
        day; None when the risk is not assessed (no opening balance or no
        minimum).
    first_breach_date
        First forecast day with a shortfall probability >= 0.5, None if none
        or not assessed.
    runway_days
        Calendar days after ``as_of`` on which the P50 balance stays at or above
        the minimum (the horizon length in days if it never falls below); None
        when not assessed.
    as_of
        The last day of actual history.
    opening_balance
        Cash before the first actual day; None when unknown.
    minimum_cash
        The minimum the balance was checked against; None when it was not.
    start
        The first day of actual history (where the cumulative flow starts).
    """

    bands: pd.DataFrame
    shortfall: pd.DataFrame
    breach_distribution: pd.DataFrame
    balance_draws: pd.DataFrame
    shortfall_probability: float | None
    first_breach_date: pd.Timestamp | None
    runway_days: int | None
    as_of: pd.Timestamp
    opening_balance: float | None
    minimum_cash: float | None
    start: pd.Timestamp

    @property
    def balance_known(self) -> bool:
        """Whether ``bands`` hold a balance (opening balance known) or only the cumulative net flow."""
        return self.opening_balance is not None

    @property
    def risk_assessed(self) -> bool:
        """Whether the balance was checked against a minimum (shortfall figures are numbers)."""
        return self.shortfall_probability is not None

    @property
    def measure(self) -> str:
        """What ``bands`` hold, in words for a title or an axis."""
        if self.balance_known:
            return "cash balance"
        return f"cumulative net cash flow since {self.start:%d %b %Y}"

    def summary(self) -> dict[str, Any]:
        """The headline figures: the columns of a ``compare_scenarios`` row.

        ``ending_*`` and ``lowest_p50`` are balances when ``balance_known``,
        cumulative net flows since ``start`` otherwise; the shortfall figures
        are None when the risk is not assessed.
        """
        forecast = self.bands[self.bands["is_forecast"]]
        ending = forecast.iloc[-1]
        lowest = forecast.loc[forecast["p50"].idxmin()]
        return {
            "balance_known": self.balance_known,
            "shortfall_probability": self.shortfall_probability,
            "first_breach_date": self.first_breach_date,
            "runway_days": self.runway_days,
            "ending_p10": float(ending["p10"]),
            "ending_p50": float(ending["p50"]),
            "ending_p90": float(ending["p90"]),
            "lowest_p50": float(lowest["p50"]),
            "lowest_p50_date": lowest["ds"],
        }


def _actual_balance(history: pd.DataFrame, opening_balance: float) -> pd.Series:
    """Balance at the end of each history day, indexed by ds."""
    if not isinstance(history, pd.DataFrame):
        raise CashError(f"history must be a DataFrame, got {type(history).__name__}")
    if history.empty:
        raise CashError("history has no rows: the balance needs at least one actual day")
    if "y" in history.columns and not np.isfinite(history["y"].to_numpy(dtype=float)).all():
        raise CashError("history: y must hold finite amounts (no NaN)")
    daily = actual_net_flow(history)
    ds = pd.DatetimeIndex(daily["ds"]).astype("datetime64[ns]")
    return pd.Series(opening_balance + daily["net"].cumsum().to_numpy(), index=ds)


@dataclass(frozen=True)
class _Risk:
    """The shortfall figures of a set of simulated balances against a minimum."""

    shortfall: pd.DataFrame
    breach_distribution: pd.DataFrame
    probability: float | None
    first_breach_date: pd.Timestamp | None
    runway_days: int | None

    @classmethod
    def of(cls, balance: np.ndarray, dates: pd.DatetimeIndex, as_of: pd.Timestamp,
           minimum_cash: float | None) -> _Risk:
        """The figures of ``balance`` (days x draws); all missing without a minimum."""
        if minimum_cash is None:
            nothing = np.full(len(dates), np.nan)
            return cls(
                shortfall=pd.DataFrame({"ds": dates, "probability": nothing}),
                breach_distribution=pd.DataFrame({"ds": dates, "first_breach_probability": nothing,
                                                  "cumulative_probability": nothing}),
                probability=None, first_breach_date=None, runway_days=None,
            )
        below = balance < minimum_cash
        daily_probability = below.mean(axis=1)
        ever = below.any(axis=0)
        first = np.bincount(below.argmax(axis=0)[ever], minlength=len(dates)) / below.shape[1]
        breach_days = np.flatnonzero(daily_probability >= 0.5)
        first_breach_date = dates[breach_days[0]] if len(breach_days) else None
        end = first_breach_date if first_breach_date is not None else dates[-1] + pd.Timedelta(days=1)
        return cls(
            shortfall=pd.DataFrame({"ds": dates, "probability": daily_probability}),
            breach_distribution=pd.DataFrame(
                {"ds": dates, "first_breach_probability": first, "cumulative_probability": np.cumsum(first)}
            ),
            probability=float(ever.mean()),
            first_breach_date=first_breach_date,
            runway_days=(end - as_of).days - 1,
        )


def cash_position(
    history: pd.DataFrame,
    paths: pd.DataFrame,
    opening_balance: float | None,
    minimum_cash: float | None,
) -> CashOutlook:
    """The balance with uncertainty: actual to date, sample paths over the horizon.

    Parameters
    ----------
    history
        Actual flows, long format with at least ``ds, y, direction``
        (``toolkit.flows`` series); amounts are magnitudes, the direction gives
        the sign.
    paths
        Forecast sample paths indexed by ``(unique_id, ds)`` with columns
        ``draw_0..draw_{n-1}``; series ids are ``stage|direction|segment``. A
        series without a row on a forecast day moves no money that day. The
        first forecast day must come after the last actual day.
    opening_balance
        Cash before the first actual day; None when unknown: the outlook is
        then the cumulative net cash flow and no shortfall risk is assessed.
    minimum_cash
        The balance cash must not fall below; None: the risk is not assessed
        (say why where the outlook is shown).
    """
    _check_paths(paths)
    return cash_position_from_net_flow(history, net_flow_draws(paths), opening_balance, minimum_cash)


def cash_position_from_net_flow(
    history: pd.DataFrame,
    net_flow: pd.DataFrame,
    opening_balance: float | None,
    minimum_cash: float | None,
) -> CashOutlook:
    """The balance with uncertainty from the net cash flow already summed across series.

    What a forecast stored at scale keeps instead of every series' paths
    (``StageForecaster(store=...)``: ``predict().net_flow``); ``cash_position``
    sums the paths into the same frame and continues here, so both give the
    same outlook from the same draws.

    Parameters
    ----------
    history, opening_balance, minimum_cash
        As for :func:`cash_position`.
    net_flow
        Inflows minus outflows of all series, one row per forecast day (index
        ``ds``) and one column per draw (``draw_0..draw_{n-1}``). The first
        forecast day must come after the last actual day.
    """
    if opening_balance is not None:
        opening_balance = _number(opening_balance, "opening_balance")
    if minimum_cash is not None:
        minimum_cash = _number(minimum_cash, "minimum_cash")
    if opening_balance is None:
        # a minimum means nothing to a flow that starts from an unknown balance
        minimum_cash = None
    _check_net_flow(net_flow)
    actual = _actual_balance(history, opening_balance or 0.0)
    as_of = actual.index[-1]
    dates = pd.DatetimeIndex(net_flow.index).astype("datetime64[ns]")
    net = net_flow.to_numpy(dtype=float)
    if dates[0] <= as_of:
        raise CashError(
            f"the forecast starts on {dates[0]:%Y-%m-%d} but the actual history runs to "
            f"{as_of:%Y-%m-%d}; forecast days must come after the last actual day"
        )
    balance = actual.iloc[-1] + np.cumsum(net, axis=0)
    p10, p50, p90 = np.quantile(balance, _QUANTILES, axis=1, method=_QUANTILE_METHOD)
    risk = _Risk.of(balance, dates, as_of, minimum_cash)

    # The last actual day carries its known balance in the bands so that they join the line.
    known = np.full(len(actual), np.nan)
    known[-1] = actual.iloc[-1]
    history_bands = pd.DataFrame(
        {"ds": actual.index, "p10": known, "p50": known, "p90": known,
         "actual": actual.to_numpy(), "is_forecast": False}
    )
    forecast_bands = pd.DataFrame(
        {"ds": dates, "p10": p10, "p50": p50, "p90": p90, "actual": np.nan, "is_forecast": True}
    )
    return CashOutlook(
        bands=pd.concat([history_bands, forecast_bands], ignore_index=True),
        shortfall=risk.shortfall,
        breach_distribution=risk.breach_distribution,
        balance_draws=pd.DataFrame(
            balance, index=dates.rename("ds"), columns=net_flow.columns, copy=False
        ),
        shortfall_probability=risk.probability,
        first_breach_date=risk.first_breach_date,
        runway_days=risk.runway_days,
        as_of=as_of,
        opening_balance=opening_balance,
        minimum_cash=minimum_cash,
        start=actual.index[0],
    )


def compare_scenarios(
    history: pd.DataFrame,
    paths: pd.DataFrame,
    scenarios: Iterable[Scenario | Mapping[str, Any]],
    opening_balance: float | None,
    minimum_cash: float | None,
) -> pd.DataFrame:
    """One row per scenario, the baseline (no adjustments) first.

    Columns: ``scenario, balance_known, shortfall_probability,
    first_breach_date, runway_days, ending_p10, ending_p50, ending_p90,
    lowest_p50, lowest_p50_date`` (see ``CashOutlook``; no breach shows as
    NaT, a risk not assessed as NaN). Scenarios may be given as ``Scenario``
    objects or as mappings for ``scenario_from_dict``. All are evaluated on
    the same draws, so differences come from the adjustments only. A scenario
    that changes money the forecast does not have is left out (see
    :func:`compare_scenarios_with_notes` for the note saying so).
    """
    return compare_scenarios_with_notes(history, paths, scenarios, opening_balance, minimum_cash)[0]


def compare_scenarios_with_notes(
    history: pd.DataFrame,
    paths: pd.DataFrame,
    scenarios: Iterable[Scenario | Mapping[str, Any]],
    opening_balance: float | None,
    minimum_cash: float | None,
) -> tuple[pd.DataFrame, list[Note]]:
    """:func:`compare_scenarios`, and a note for each scenario left out and why.

    A scenario is left out when one of its adjustments changes money the
    forecast does not have (``Adjustment.missing``): raising the awareness
    spend of a business whose data holds no awareness costs would compare
    nothing with nothing. Every other invalid scenario is still an error.
    """
    chosen = [Scenario(BASELINE)] + [
        s if isinstance(s, Scenario) else scenario_from_dict(s) for s in scenarios
    ]
    names = [s.name for s in chosen]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CashError(
            f"scenario names must be unique and {BASELINE!r} is reserved; repeated: {duplicated}"
        )
    _check_paths(paths)
    rows, notes = [], []
    for scenario in chosen:
        lacking = [reason for a in scenario.adjustments if (reason := a.missing(paths)) is not None]
        if lacking:
            notes.append(Note("scenarios", f"Scenario {scenario.name!r} is left out: {'; '.join(lacking)}.",
                              "missing"))
            continue
        outlook = cash_position(history, apply_scenario(paths, scenario), opening_balance, minimum_cash)
        rows.append({"scenario": scenario.name} | outlook.summary())
    table = pd.DataFrame(rows)
    # None (no breach) becomes NaT so that the column keeps a date dtype; a risk not assessed, NaN.
    table["first_breach_date"] = pd.to_datetime(table["first_breach_date"]).astype("datetime64[ns]")
    for column in ("shortfall_probability", "runway_days"):
        table[column] = pd.to_numeric(table[column])
    return table, notes



# ------------------------------------------------------- working capital


@dataclass(frozen=True)
class LowPoint:
    """Where the balance is lowest over the horizon, and what takes it there.

    ``p50``/``p10`` are the lowest middle and pessimistic balances and their
    days; ``commitment`` is the largest committed payment due between the last
    actual day and the day of the P50 low (``category, stage, ds, amount``; None
    when none is due); ``stage`` is the stage whose money out, on the middle of
    the draws, is largest over that stretch (None without outflows).
    """

    p50: float
    p50_date: pd.Timestamp
    p10: float
    p10_date: pd.Timestamp
    commitment: dict[str, Any] | None
    stage: str | None

    def sentence(self, money: Callable[[float], str], measure: str = "balance") -> str:
        """One sentence for a page: the lows, their dates and the driver; ``money`` formats amounts."""
        text = (f"The lowest median {measure} is {money(self.p50)} on {self.p50_date:%d %b %Y} "
                f"(in a bad future, P10: {money(self.p10)} on {self.p10_date:%d %b %Y})")
        if self.commitment is not None:
            c = self.commitment
            text += (f", after the {c['category']} payment of {money(c['amount'])} on {c['ds']:%d %b %Y} "
                     f"({c['stage']})")
        if self.stage is not None:
            text += f"; the most money out until then goes to {self.stage}"
        return text + "."


def low_point(outlook: CashOutlook, paths: pd.DataFrame) -> LowPoint:
    """The horizon's low point of ``outlook`` and its drivers among ``paths`` (the paths it was computed from)."""
    forecast = outlook.bands[outlook.bands["is_forecast"]]
    low50 = forecast.loc[forecast["p50"].idxmin()]
    low10 = forecast.loc[forecast["p10"].idxmin()]
    rows = _Rows.of(paths)
    window = np.asarray((rows.ds > outlook.as_of) & (rows.ds <= low50["ds"]) & (rows.direction == "outflow"))
    committed = window & is_committed(pd.Series(paths.index.get_level_values("unique_id"))).to_numpy()
    commitment = None
    if committed.any():
        due = paths[committed].iloc[:, 0]
        (unique_id, ds), amount = due.idxmax(), float(due.max())
        stage, _ = _split_unique_id(unique_id)
        commitment = {"category": unique_id.split("|")[2].removeprefix(COMMITTED), "stage": stage,
                      "ds": pd.Timestamp(ds), "amount": amount}
    stage = None
    if window.any():
        by_stage = pd.Series(np.median(paths.to_numpy()[window], axis=1)).groupby(rows.stage[window]).sum()
        stage = str(by_stage.idxmax())
    return LowPoint(float(low50["p50"]), pd.Timestamp(low50["ds"]), float(low10["p10"]),
                    pd.Timestamp(low10["ds"]), commitment, stage)


def days_of_cash(outlook: CashOutlook, history: pd.DataFrame, days: int = 90) -> float | None:
    """Days the last actual balance would last at the average money out of the last ``days`` days.

    The burn is gross money out (every outflow, money in ignored): how long the
    business could pay its way if sales stopped. None without a balance or
    without money out.
    """
    if not outlook.balance_known:
        return None
    daily = actual_net_flow(history).tail(days)
    burn = float(daily["outflow"].mean())
    if burn <= 0:
        return None
    return max(float(outlook.bands["actual"].dropna().iloc[-1]), 0.0) / burn


# ------------------------------------------------------- the rolling check

_BANDS = ("p10", "p50", "p90")


def balance_record(outlook: CashOutlook) -> dict[str, list]:
    """The forecast balance bands as plain JSON (``ds, p10, p50, p90``; cents), for a later run to check."""
    forecast = outlook.bands[outlook.bands["is_forecast"]]
    return {"ds": [f"{d:%Y-%m-%d}" for d in forecast["ds"]],
            **{band: [round(float(v), 2) for v in forecast[band]] for band in _BANDS}}


def balance_check(record: Mapping[str, list] | None, outlook: CashOutlook) -> pd.DataFrame:
    """What an earlier run said the balance would be against the balance there was, day by day.

    ``record`` is an earlier ``balance_record`` (None: no earlier run). One
    row per day both cover: ``ds, p10, p50, p90, actual, error`` (actual -
    p50) and ``within_band`` (P10 <= actual <= P90). No rows when no day of
    the earlier horizon has an actual balance yet. Flows can be forecast well
    while the balance drifts (a missed payment, a late settlement): this is
    the check that sees it.
    """
    columns = ["ds", *_BANDS, "actual", "error", "within_band"]
    if not record or not record.get("ds"):
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "ds" else "bool" if c == "within_band"
                                          else "float64") for c in columns})
    earlier = pd.DataFrame({"ds": pd.to_datetime(record["ds"]).astype("datetime64[ns]"),
                            **{band: np.asarray(record[band], dtype=float) for band in _BANDS}})
    actual = outlook.bands.loc[~outlook.bands["is_forecast"], ["ds", "actual"]]
    both = earlier.merge(actual.astype({"ds": "datetime64[ns]"}), on="ds", how="inner")
    both["error"] = both["actual"] - both["p50"]
    both["within_band"] = (both["actual"] >= both["p10"]) & (both["actual"] <= both["p90"])
    return both[columns]
