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
    "ForecastError",
    "ForecastSettings",
    "closed_dates",
    "closed_weekdays",
    "closures",
    "future_dates",
    "regular_history",
    "season_length",
    "series_seed",
    "split_series",
]

#: The forecasters a series can be served by.
MODELS = ("prophet", "seasonal_naive", "weekday_mean")

_SEASON = {"D": 7, "W": 52, "MS": 12}

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


@dataclass(frozen=True)
class ForecastSettings:
    """Everything a per-series forecast depends on besides the series itself.

    The enhancement switches (``closed_days``, ``last_days``, ``non_negative``,
    ``calibrate``, ``select_best``, ``holiday_country``) all default to on; with
    all of them off and ``backtest_folds=0`` a series is forecast by a plain
    ``Prophet()`` fit. ``closed_days`` covers closed weekdays and closures carried
    over from last year (:func:`closures`); ``last_days`` leaves a partial last
    day and one-off spikes of the last week out of the fit
    (:func:`toolkit.forecast.checks.doubtful_last_days`).
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
    backtest_folds: int = 3
    backtest_horizon: int = 28
    min_history: int | None = None
    baseline_weeks: int = 4
    prophet_kwargs: dict[str, Any] = field(default_factory=dict)

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


def closures(history: pd.DataFrame, closed: tuple[int, ...] = ()
             ) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
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
                 spans: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = (), years_on: int = 1) -> np.ndarray:
    """Which ``dates`` the business is closed: a closed weekday, or a closure's dates ``years_on`` later.

    ``years_on=1`` gives the forecast days of last year's closures;
    ``years_on=0`` the closure days themselves, in the history.
    """
    mask = np.isin(dates.day_of_week, closed)
    for first, last in spans:
        mask |= (dates >= first + years_on * _YEAR) & (dates <= last + years_on * _YEAR)
    return mask


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
