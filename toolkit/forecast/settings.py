"""Forecast settings shared by every per-series task, and the calendar helpers they need.

A task is a pure function of one series and a :class:`ForecastSettings`, so the
same work runs in this process, in a process pool or on a cluster and gives the
same numbers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from toolkit.errors import JourneycastError, require_columns

__all__ = [
    "CLOSURE_DAYS",
    "MODELS",
    "BusinessCalendar",
    "ForecastError",
    "ForecastSettings",
    "business_calendar",
    "business_takings",
    "calendar_of",
    "closed_dates",
    "closed_weekdays",
    "closures",
    "followed_calendar",
    "future_dates",
    "regular_history",
    "season_length",
    "series_calendar",
    "series_seed",
    "split_series",
]

#: The forecasters a series can be served by, alone or averaged (ties go to the earlier).
MODELS = ("prophet", "ets", "theta", "seasonal_naive", "weekday_mean")

_SEASON = {"D": 7, "W": 52, "MS": 12}
_TOTAL_PERIODS = {"D": 7, "W": 4, "MS": 3}

#: Fewest consecutive zero days (closed weekdays aside) that make a closure, not a quiet spell.
CLOSURE_DAYS = 3

#: A series with a larger share of zero open days outside its closures is sparse (refunds,
#: occasional costs): its zero runs are chance, not closures.
_SPARSE_ZERO_SHARE = 0.05

_YEAR = pd.DateOffset(years=1)

#: Columns every input series frame must have.
SERIES_COLUMNS = ("unique_id", "ds", "y")


class ForecastError(JourneycastError, ValueError):
    """The series handed to the forecaster cannot be used as they are."""


Spans = tuple[tuple[pd.Timestamp, pd.Timestamp], ...]


@dataclass(frozen=True)
class BusinessCalendar:
    """The days the whole business took nothing, found once for a run (see :func:`business_calendar`).

    ``closed_weekdays`` are weekdays (Monday = 0) without sales in any recent
    week; ``closures`` the ``(first, last)`` days of last year's closures;
    ``last_day`` the business's last day of history (``None`` when unknown).
    """

    closed_weekdays: tuple[int, ...] = ()
    closures: Spans = ()
    last_day: pd.Timestamp | None = None


@dataclass(frozen=True)
class ForecastSettings:
    """Everything a per-series forecast depends on besides the series itself.

    The enhancement switches (``closed_days``, ``last_days``, ``non_negative``,
    ``calibrate``, ``select_best``, ``holiday_country``) all default to on; with
    all of them off and ``backtest_folds=0`` a series is forecast by a plain
    ``Prophet()`` fit. ``closed_days`` covers closed weekdays and closures carried
    over from last year (:func:`closures`); ``last_days`` leaves a partial last
    day and one-off spikes of the last week out of the fit
    (:func:`toolkit.forecast.checks.doubtful_last_days`). ``calendar`` is the
    business's closed days, found once for a run from all its inflows; without
    it each series is taken for the whole business (:func:`series_calendar`).
    """

    horizon: int = 90
    freq: Literal["D", "W", "MS"] = "D"
    holiday_country: str | None = "US"
    interval_width: float = 0.8
    uncertainty_samples: int = 500
    seed: int = 42
    yearly: bool | Literal["auto"] = "auto"
    closed_days: bool = True
    closed_lookback_weeks: int = 8
    last_days: bool = True
    non_negative: bool = True
    calibrate: bool = True
    select_best: bool = True
    backtest_folds: int = 5
    backtest_horizon: int = 28
    backtest_samples: int = 200
    min_history: int | None = None
    baseline_weeks: int = 4
    prophet_kwargs: dict[str, Any] = field(default_factory=dict)
    calendar: BusinessCalendar | None = None

    def __post_init__(self) -> None:
        if self.freq not in _SEASON:
            raise ValueError(f"freq must be one of {sorted(_SEASON)}, got {self.freq!r}")
        if self.horizon < 1 or self.uncertainty_samples < 1:
            raise ValueError("horizon and uncertainty_samples must be at least 1")
        if not 0 < self.interval_width < 1:
            raise ValueError(f"interval_width must lie in (0, 1), got {self.interval_width}")
        if self.yearly not in ("auto", True, False):
            raise ValueError(f"yearly must be 'auto', True or False, got {self.yearly!r}")

    @property
    def season(self) -> int:
        return season_length(self.freq)

    @property
    def total_periods(self) -> int:
        """Periods whose totals the spread of levels is calibrated on: a week of days, a month of
        weeks, a quarter of months."""
        return _TOTAL_PERIODS[self.freq]

    @property
    def shortest_history(self) -> int:
        """Fewest observations Prophet is fitted on: four seasons unless set."""
        return self.min_history if self.min_history is not None else 4 * self.season


def season_length(freq: str) -> int:
    """Periods in one seasonal cycle: a week of days, a year of weeks or months."""
    return _SEASON[freq]


def series_seed(seed: int, unique_id: str) -> int:
    """A 32-bit seed for one series from the run's seed and a stable hash of its id.

    Stable across processes and Python runs (unlike ``hash``), so each series
    draws the same numbers whichever worker forecasts it.
    """
    state = np.random.SeedSequence([seed, zlib.crc32(str(unique_id).encode("utf-8"))])
    return int(state.generate_state(1)[0])


def regular_history(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """``ds, y`` on a complete grid of periods, missing periods as NaN (unknown, not zero)."""
    frame = frame[["ds", "y"]].assign(ds=pd.to_datetime(frame["ds"]), y=frame["y"].astype(float))
    frame = frame.groupby("ds", sort=True)["y"].sum(min_count=1)
    grid = pd.date_range(frame.index.min(), frame.index.max(), freq=freq)
    if len(grid) == len(frame) and (grid == frame.index).all():
        return frame.rename_axis("ds").reset_index()
    return frame.reindex(grid.union(frame.index)).rename_axis("ds").reset_index()


def future_dates(last: pd.Timestamp, horizon: int, freq: str) -> pd.DatetimeIndex:
    """The ``horizon`` periods after ``last``."""
    offset = pd.tseries.frequencies.to_offset(freq)
    return pd.DatetimeIndex([last + offset * k for k in range(1, horizon + 1)])


def closed_weekdays(history: pd.DataFrame, lookback_weeks: int = 8) -> tuple[int, ...]:
    """Weekdays (Monday = 0) on which the business took nothing in every recent week.

    A weekday counts as closed when it was exactly zero on each of its
    occurrences over the last ``lookback_weeks`` weeks, with at least four of
    them observed. Daily series only; other frequencies have no closed days.
    """
    if history.empty:
        return ()
    recent = history[history["ds"] > history["ds"].max() - pd.Timedelta(weeks=lookback_weeks)]
    recent = recent.dropna(subset=["y"])
    stats = recent["y"].abs().groupby(recent["ds"].dt.day_of_week).agg(n="size", top="max")
    return tuple(int(day) for day in stats.index[(stats["n"] >= 4) & (stats["top"] == 0)])


def closures(history: pd.DataFrame, closed: tuple[int, ...] = ()) -> Spans:
    """Closures of the last year to forecast again on the same calendar dates: ``(first, last)`` days.

    A closure is a run of at least ``CLOSURE_DAYS`` consecutive zero days
    (closed weekdays neither break nor count towards it) in a series that is
    otherwise rarely zero (at most 5% of its other open days): a Christmas
    shutdown, a stock-take. Runs touching the first or the last day of the
    history are left out (the business may not have started yet, or the run
    may still be going on). Missing days (NaN) are unknown, not zero.

    With less than two years of history a closure seen once is all there is to
    go on, and is carried forward. With two years or more only closures seen on
    the same dates the year before as well (at least half of those days zero)
    are: Prophet's yearly term then models the season, but cannot draw a
    shutdown of a few days at zero, and a one-off closure is not repeated.
    Daily series only.
    """
    if len(history) < 2:
        return ()
    last_day, first_day = history["ds"].iloc[-1], history["ds"].iloc[0]
    recent = history[history["ds"] > last_day - _YEAR]
    recent = recent[~recent["ds"].dt.day_of_week.isin(closed)]
    zero = (recent["y"] == 0).to_numpy()
    if not zero.any():
        return ()
    run = np.cumsum(np.concatenate([[True], zero[1:] != zero[:-1]]))
    in_closure = zero & (np.bincount(run)[run] >= CLOSURE_DAYS)
    others = ~in_closure & np.isfinite(recent["y"].to_numpy())
    if not in_closure.any() or zero[others].mean() > _SPARSE_ZERO_SHARE:
        return ()
    days = recent["ds"].to_numpy()
    spans = []
    for label in np.unique(run[in_closure]):
        span = days[run == label]
        first, last = pd.Timestamp(span[0]), pd.Timestamp(span[-1])
        if first <= first_day or last >= last_day:
            continue
        if last_day - first_day >= pd.Timedelta(days=730):
            before = history[history["ds"].between(first - _YEAR, last - _YEAR)]
            before = before[~before["ds"].dt.day_of_week.isin(closed)]["y"]
            if not (before == 0).mean() >= 0.5:
                continue
        spans.append((first, last))
    return tuple(spans)


def closed_dates(dates: pd.DatetimeIndex, closed: tuple[int, ...] = (),
                 spans: Spans = (), years_on: int = 1) -> np.ndarray:
    """Which ``dates`` the business is closed: a closed weekday, or a closure's dates ``years_on`` later.

    ``years_on=1`` gives the forecast days of last year's closures;
    ``years_on=0`` the closure days themselves, in the history.
    """
    mask = np.isin(dates.day_of_week, closed)
    for first, last in spans:
        mask |= (dates >= first + years_on * _YEAR) & (dates <= last + years_on * _YEAR)
    return mask


def business_takings(parts: list[tuple[str, pd.DataFrame, dict[str, Any]]], freq: str = "D") -> pd.DataFrame:
    """``ds, y``: the money the business took per period, summed over its inflow series.

    ``parts`` as from :func:`split_series`. The series whose ``direction`` is
    ``inflow`` count (all series when none says so): costs such as payroll are
    paid on days the shop is shut. Amounts count as absolute values, so a
    refund cannot cancel a sale into a day of nothing. A period no series
    observed is NaN (unknown), not zero.
    """
    inflows = [frame for _, frame, extra in parts if extra.get("direction") == "inflow"]
    frames = [f for f in (inflows or [frame for _, frame, _ in parts]) if f["ds"].notna().any()]
    if not frames:
        return pd.DataFrame({"ds": pd.DatetimeIndex([]), "y": np.empty(0)})
    taken = pd.concat(frames, ignore_index=True).dropna(subset=["ds"])
    return regular_history(taken.assign(y=taken["y"].abs()), freq)


def calendar_of(takings: pd.DataFrame, settings: ForecastSettings) -> BusinessCalendar:
    """The closed weekdays and closures of a business from what it took per day (``ds, y``).

    Empty when ``settings.closed_days`` is off or the series are not daily.
    """
    takings = takings.dropna(subset=["ds"])
    if not settings.closed_days or settings.freq != "D" or takings.empty:
        return BusinessCalendar()
    closed = closed_weekdays(takings, settings.closed_lookback_weeks)
    return BusinessCalendar(closed, closures(takings, closed), pd.Timestamp(takings["ds"].max()))


def business_calendar(parts: list[tuple[str, pd.DataFrame, dict[str, Any]]],
                      settings: ForecastSettings) -> BusinessCalendar:
    """The business's closed weekdays and closures, judged once from all its inflows together.

    A closure is a fact about the business, not about one series: a series of
    first orders only, rare late in the data, has weeks of zeros while the shop
    is open. Judged on the sum of the inflows (:func:`business_takings`), a
    closure is a run of days on which no sale came in at all.
    """
    return calendar_of(business_takings(parts, settings.freq), settings)


def series_calendar(calendar: BusinessCalendar, history: pd.DataFrame, lookback_weeks: int = 8
                    ) -> tuple[tuple[int, ...], Spans]:
    """The business's closed weekdays and closures that one series follows.

    A series follows a closed day of the business unless it moved money on it
    itself: sales, the cost of goods sold and refunds stop when the shop is
    shut, a payroll paid on a closed weekday or during a closure goes on. A
    closed weekday is kept when the series was zero (or unknown) on each of its
    occurrences over the last ``lookback_weeks`` weeks of its own history, a
    closure when the series was zero or unknown on each of its days.
    """
    y, ds = history["y"].to_numpy(dtype=float), pd.DatetimeIndex(history["ds"])
    moved = np.isfinite(y) & (y != 0)
    recent = ds > ds.max() - pd.Timedelta(weeks=lookback_weeks) if len(ds) else np.zeros(0, bool)
    busy = set(ds[moved & recent].day_of_week)
    closed = tuple(day for day in calendar.closed_weekdays if day not in busy)
    spans = tuple((first, last) for first, last in calendar.closures
                  if not (moved & (ds >= first) & (ds <= last)).any())
    return closed, spans


def followed_calendar(history: pd.DataFrame, settings: ForecastSettings) -> tuple[tuple[int, ...], Spans]:
    """The closed weekdays and closures one series (``ds, y`` on a regular grid) is forecast with.

    Those of the run's business calendar the series follows
    (:func:`series_calendar`); a series forecast without one is taken for the
    whole business.
    """
    calendar = settings.calendar if settings.calendar is not None else calendar_of(history, settings)
    return series_calendar(calendar, history, settings.closed_lookback_weeks)


def split_series(series: pd.DataFrame) -> list[tuple[str, pd.DataFrame, dict[str, Any]]]:
    """Split a long frame into ``(unique_id, frame of ds and y, extra columns)`` per series.

    Extra columns (stage, direction, segment...) are taken from each series'
    first row, to be carried into the outputs. Series keep the order in which
    they first appear.
    """
    require_columns(series, SERIES_COLUMNS, "series", ForecastError)
    if series.empty:
        raise ForecastError("no series to forecast: the frame has no rows")
    if not pd.api.types.is_numeric_dtype(series["y"]):
        raise ForecastError(f"column 'y' must be numeric, got {series['y'].dtype}")
    try:
        ds = pd.to_datetime(series["ds"])
    except (ValueError, TypeError) as exc:
        raise ForecastError(f"column 'ds' must hold dates: {exc}") from None
    series = series.assign(ds=ds)
    extras = [c for c in series.columns if c not in SERIES_COLUMNS]
    out = []
    for unique_id, frame in series.groupby("unique_id", sort=False):
        out.append((str(unique_id), frame[["ds", "y"]].reset_index(drop=True),
                    {c: frame[c].iloc[0] for c in extras}))
    return out
