"""Stage cash-flow forecasts: one Prophet per series, checked against baselines, with paths.

For each series (one journey stage x direction x segment) the forecaster

1. leaves out of the fit what would mislead it: a partial last day, a one-off
   spike in the last week (:func:`~toolkit.forecast.checks.doubtful_last_days`)
   and the days of last year's closures of the business, found once for the
   run from all its inflows (:func:`~toolkit.forecast.settings.business_calendar`),
   in every series that moved no money on them
   (:func:`~toolkit.forecast.settings.series_calendar`);
2. judges whether Prophet can be fitted at all: too little history or a
   constant series (e.g. all zero) gets a *fallback* baseline straight away;
3. backtests Prophet, exponential smoothing (ETS), Theta (:mod:`.smoothing`)
   and both baselines on rolling origins (:mod:`.backtest`);
4. serves the best of them alone when it wins beyond noise, else the median
   of the near-best (``combined``), by the rule of :func:`choose_model`; the
   best of the others with status ``failed-over`` when Prophet raised;
5. calibrates the spread of the served method's paths so that its backtest
   intervals hold their nominal coverage, day by day and for weekly totals
   (see :func:`calibration_factor`);
6. forecasts the horizon as sample paths: closed weekdays and the dates of
   last year's closures are exactly zero, and flows that never were negative
   are clipped at zero path by path, with the intervals recomputed from the
   clipped paths;
7. compares the forecast's total with last year and the recent run-rate
   (:func:`~toolkit.forecast.checks.plausibility`).

Whatever it left out, assumed or doubts is said in a :class:`~toolkit.notes.Note`
(``ForecastResult.notes``).

The backtest windows are the last weeks of the history. A horizon that runs
into a season those windows did not see (Black Friday promotions after a
quiet autumn) can favour a baseline that has no notion of it: the
diagnostics name every such choice, and ``select_best=False`` keeps Prophet
(with its holidays) everywhere.

Each series is forecast by the pure function :func:`forecast_series`, which the
backend maps over the series; seeds come from the run's seed and the series id,
so results do not depend on the backend or the number of workers.

At scale (``store=`` a directory) the backend maps :func:`forecast_chunk` over
chunks of series instead: each chunk sums its sample paths into the net cash
flow per day and draw on its worker (:func:`toolkit.forecast.net.net_flow_draws`)
and returns that with its forecast rows, which are written to Parquet as the
chunks finish (:mod:`.store`). The process that called ``fit`` holds one
days x draws sum and the chunks in flight, never the paths of all series.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from toolkit.forecast.backends import run_tasks, stream_tasks
from toolkit.forecast.backtest import (
    SCORE_COLUMNS,
    FoldForecast,
    backtest_series,
    combined_folds,
    fold_scores,
)
from toolkit.forecast.baselines import BASELINES
from toolkit.forecast.calendar import holiday_calendar
from toolkit.forecast.checks import doubtful_last_days, plausibility
from toolkit.forecast.engine import one_blas_thread
from toolkit.forecast.methods import (
    SeasonalFeatures,
    block_level,
    combine,
    finish,
    forecast_with,
    interval,
    load_methods,
)
from toolkit.forecast.net import net_flow_draws, stage_and_direction
from toolkit.forecast.settings import (
    MODELS,
    BusinessCalendar,
    ForecastSettings,
    business_calendar,
    calendar_of,
    closed_dates,
    future_dates,
    regular_history,
    series_calendar,
    series_seed,
    split_series,
)
from toolkit.forecast.store import NOTE_COLUMNS, STORED_TABLES, StoredForecast, StoreWriter
from toolkit.notes import Note

__all__ = [
    "CALIBRATION_LIMITS",
    "CHUNK_SERIES",
    "Calibration",
    "NOISE_SHARE",
    "SERVED_MODELS",
    "STATUSES",
    "ChunkOutcome",
    "ForecastResult",
    "SeriesOutcome",
    "StageForecaster",
    "calendar_notes",
    "calibration_factor",
    "choose_model",
    "failed_chunk",
    "failed_series",
    "forecast_chunk",
    "forecast_series",
]

#: The calibration factor is kept within these bounds: a handful of backtest
#: windows should not shrink a spread to nothing or blow it up without limit.
CALIBRATION_LIMITS = (0.25, 8.0)

#: Most series in one chunk of a stored forecast; chunks are smaller when
#: there are fewer than four chunks per worker, so the workers stay busy.
CHUNK_SERIES = 20

#: What can serve a series: a method, or the median of the near-best methods.
SERVED_MODELS = (*MODELS, "combined")

#: A gap in mean backtest MASE smaller than this share of the smaller one is too close to call.
NOISE_SHARE = 0.10

#: How a series was served: see :class:`ForecastResult`.
STATUSES = ("ok", "combined", "baseline", "worse-than-baseline", "fallback", "failed-over", "failed")

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

#: The baselines in the words of a note.
_DESCRIBED = {"seasonal_naive": "the seasonal naive rule (last week's copy)",
              "weekday_mean": "the 4-week weekday mean"}


@dataclass(frozen=True)
class SeriesOutcome:
    """The forecast of one series over the horizon, as returned by :func:`forecast_series`."""

    unique_id: str
    dates: pd.DatetimeIndex
    point: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    paths: np.ndarray
    model: str
    diagnostics: dict[str, Any]
    scores: pd.DataFrame
    notes: tuple[Note, ...] = ()


@dataclass
class ForecastResult:
    """What the forecaster hands on to the cash position and the charts.

    Attributes
    ----------
    forecast : ``unique_id, ds, yhat, yhat_lower, yhat_upper, model`` over the
        horizon, plus the series' extra columns (stage, direction, segment...).
    paths : sample paths over the horizon, indexed by ``(unique_id, ds)`` with
        one float column per draw (``draw_0``...). Draw ``k`` of every series is
        one joint scenario, so cash positions are sums taken draw by draw.
    diagnostics : one row per series: the ``status``, the ``model`` served and
        the ``reason``, ``n_obs``, closed weekdays, ``closures`` carried over
        from last year, days ``left_out`` of the fit, backtest
        ``<model>_mae/_mase/_coverage`` of Prophet, ETS, Theta, both baselines
        and the served combination (coverage on open days that moved money),
        the ``members`` of a combination, the spread factors ``calibration``
        (day to day) and ``calibration_level`` (the level, which weekly and
        longer totals depend on), and the served model's
        ``coverage_calibrated`` (open days that moved money) and
        ``coverage_weekly`` (totals of a week's open days), both
        leave-one-window-out, plus the extra columns. ``status`` is ``ok`` where a forecasting model
        (Prophet, ETS or Theta) is served alone, having beaten every other
        model beyond noise (or there was no backtest); ``combined`` where
        several were too close to call and their median is served; ``baseline``
        where a baseline beat every model and is served;
        ``worse-than-baseline`` where Prophet is served although a
        baseline beat it (``select_best=False``); ``fallback`` where Prophet
        was not tried (too short, constant); ``failed-over`` where Prophet
        raised; ``failed`` where the task itself failed (:func:`failed_series`).
    backtest : the backtest scores per series, model and window.
    notes : what was left out, assumed or is doubtful, one
        :class:`~toolkit.notes.Note` each: partial last days, one-off spikes,
        closures carried forward, served models that lost to a baseline,
        totals outside their plausible range.
    """

    forecast: pd.DataFrame
    paths: pd.DataFrame
    diagnostics: pd.DataFrame
    backtest: pd.DataFrame
    notes: list[Note] = field(default_factory=list)

    @property
    def net_flow(self) -> pd.DataFrame:
        """Net cash flow of all series (inflows minus outflows) per forecast day and draw."""
        return net_flow_draws(self.paths)


@dataclass(frozen=True)
class ChunkOutcome:
    """What :func:`forecast_chunk` sends back for a chunk of series: no sample paths.

    ``forecast``, ``diagnostics`` and ``backtest`` are the chunk's rows of the
    tables of :class:`ForecastResult`, ``notes`` its notes as rows
    (``topic, text, level``); ``net_flow`` is the sum of the chunk's
    paths, inflows minus outflows, per forecast day (index ``ds``) and draw.
    """

    forecast: pd.DataFrame
    diagnostics: pd.DataFrame
    backtest: pd.DataFrame
    net_flow: pd.DataFrame
    notes: pd.DataFrame


#: Halvings of the daily factor's range (on a log scale) in its search: eight narrow the limits'
#: ratio of 32 to steps of 1.4%.
_SEARCH_STEPS = 8


@dataclass(frozen=True)
class Calibration:
    """Spread factors of a served forecast and the backtest coverage they reach (see :func:`calibration_factor`).

    ``daily`` scales each path's day-to-day deviation from the point,
    ``level`` its level (mean deviation per block of ``block`` periods: a
    week of days); ``coverage_daily`` is the share of scored days (open
    days on which money moved, :meth:`FoldForecast.scored_days`) and
    ``coverage_weekly`` the share of block totals inside their interval,
    each window scored with factors computed from the other windows.
    """

    daily: float = 1.0
    level: float = 1.0
    coverage_daily: float = np.nan
    coverage_weekly: float = np.nan


def _quantile_factor(needed: list[np.ndarray], width: float) -> float:
    """The ``width`` quantile of the needed factors, within the limits (1 when there are none)."""
    values = np.concatenate(needed) if needed else np.empty(0)
    if not values.size:
        return 1.0
    return float(np.clip(np.quantile(values, width, method="higher"), *CALIBRATION_LIMITS))


def _block_totals(values: np.ndarray, fold: FoldForecast, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``values`` (periods, or periods x draws) over each block's open days, and which blocks
    had every open day observed."""
    opened = ~fold.closed
    starts = np.arange(0, len(opened), block)
    mask = opened if values.ndim == 1 else opened[:, None]
    totals = np.add.reduceat(np.where(mask, np.nan_to_num(values), 0.0), starts, axis=0)
    observed = np.add.reduceat((opened & ~np.isfinite(fold.actual)).astype(int), starts) == 0
    return totals, observed & (np.add.reduceat(opened.astype(int), starts) > 0)


def _needed_level(fold: FoldForecast, width: float, block: int) -> np.ndarray:
    """Per block of a window with every open day observed: the smallest level factor whose interval
    of the block's total covers the actual total.

    Scaling the level by ``c`` scales every path's block total's distance
    from the point's by ``c`` exactly (the day-to-day rest sums to zero
    over a block's open days), so the bounds move to ``point + c * bound``.
    """
    level = block_level(fold.raw_paths - fold.raw_point[:, None], ~fold.closed, block)
    gap, keep = _block_totals(fold.actual - fold.raw_point, fold, block)
    lower, upper = interval(_block_totals(level, fold, block)[0], width)
    gap, lower, upper = gap[keep], lower[keep], upper[keep]
    offset = np.where(gap < 0, -lower, upper)
    ratio = np.divide(np.abs(gap), offset, out=np.full(len(gap), np.inf), where=offset > 0)
    return np.where(gap == 0, 0.0, ratio)


def _days_covered(fold: FoldForecast, paths: np.ndarray, width: float) -> np.ndarray:
    """Which scored days of a window the intervals of its finished ``paths`` cover."""
    days = fold.scored_days()
    lower, upper = interval(paths[days], width)
    actual = fold.actual[days]
    return (lower <= actual) & (actual <= upper)


def _held_out(fold: FoldForecast, daily: float, level: float, width: float,
              block: int) -> tuple[np.ndarray, np.ndarray]:
    """Which scored days, and which block totals, of a window the finished paths' intervals cover."""
    paths = finish(fold.raw_point, fold.raw_paths, daily, fold.closed, fold.clip, level, block)[1]
    actual, observed = _block_totals(fold.actual, fold, block)
    low, high = interval(_block_totals(paths, fold, block)[0], width)
    return _days_covered(fold, paths, width), ((low <= actual) & (actual <= high))[observed]


class _Windows:
    """The backtest windows of one calibration, with what its searches ask of them.

    ``covered`` counts a window's scored days that the intervals of its
    finished paths cover at given factors. Each count is computed once: the
    searches of the leave-one-window-out factors probe the same factors
    where leaving a window out does not move the level factor.
    """

    def __init__(self, folds: list[FoldForecast], width: float, block: int) -> None:
        self.folds, self.width, self.block = folds, width, block
        self.needed = [_needed_level(fold, width, block) for fold in folds]
        self._covered: dict[tuple[int, float, float], tuple[int, int]] = {}

    def covered(self, k: int, daily: float, level: float) -> tuple[int, int]:
        """Scored days of window ``k`` inside their finished interval, and scored days."""
        key = (k, daily, level)
        if key not in self._covered:
            fold = self.folds[k]
            paths = finish(fold.raw_point, fold.raw_paths, daily, fold.closed, fold.clip, level, self.block)[1]
            covered = _days_covered(fold, paths, self.width)
            self._covered[key] = (int(covered.sum()), covered.size)
        return self._covered[key]

    def factors(self, ks: list[int]) -> tuple[float, float]:
        """Daily and level factor from windows ``ks``: the level factor on their block totals, then
        the daily factor on their scored days."""
        level = _quantile_factor([self.needed[k] for k in ks], self.width)
        return self._daily_factor(ks, level), level

    def _daily_factor(self, ks: list[int], level: float) -> float:
        """The smallest daily factor (within the limits, to 1.4%) whose finished intervals cover
        ``width`` of the scored days of windows ``ks``, the level scaled by ``level`` (1 when no
        day is scored).

        Searched by bisection on a log scale, on the paths as they are
        served (closed days zero, clipped at zero keeping each week's total):
        clipping takes what it adds to a lumpy flow's empty days back from its
        other days, which narrows their intervals, and a search on the raw
        paths did not see it.
        """
        def covers(log_factor: float) -> bool:
            inside, scored = np.sum([self.covered(k, float(np.exp(log_factor)), level) for k in ks], axis=0)
            return bool(inside >= self.width * scored)

        if not any(self.folds[k].scored_days().any() for k in ks):
            return 1.0
        low, high = np.log(CALIBRATION_LIMITS)
        if not covers(high):
            return CALIBRATION_LIMITS[1]
        for _ in range(_SEARCH_STEPS):
            middle = (low + high) / 2
            low, high = (low, middle) if covers(middle) else (middle, high)
        return float(np.exp(high))


def calibration_factor(folds: list[FoldForecast], width: float, block: int = 7) -> Calibration:
    """Spread factors that make the backtest intervals hold ``width``, daily and for weekly totals.

    A path's deviation from the point is split into its level (its mean over
    the open days of each block of ``block`` periods) and the day-to-day
    rest (see :func:`~toolkit.forecast.methods.finish`). Models that carry a
    wandering level (ETS, Theta, their combinations) have paths correlated
    over days: one factor fitted on daily coverage also scales the level,
    which decides the spread of weekly and monthly totals (and so of the
    cash balance), and got it about twice too wide. So two factors:

    1. the level factor: an actual block total is covered once the factor
       reaches its own needed factor (block totals scale exactly with it),
       so the ``width`` quantile of the needed factors of every block gives
       nominal coverage of weekly totals;
    2. the daily factor, with that level: the smallest factor whose
       finished intervals cover ``width`` of the scored days of all
       windows (:meth:`_Windows._daily_factor`).

    Days are scored on open days on which money moved
    (:meth:`~toolkit.forecast.backtest.FoldForecast.scored_days`): a closed
    day forecast as zero, or an empty day of a flow clipped at zero, is
    covered whatever the spread, and counting them let the intervals of
    the days that matter shrink. Totals are over the open days of each block.
    The coverage returned is leave-one-window-out: each window is scored on
    its finished paths with both factors computed from the other windows.

    Returns ``Calibration()`` (factors 1, coverage NaN) when there is nothing
    to calibrate on.
    """
    folds = [f for f in folds if f.error is None and f.raw_paths is not None]
    if not any(f.scored_days().any() for f in folds):
        return Calibration()
    windows = _Windows(folds, width, block)
    daily, level = windows.factors(list(range(len(folds))))
    if len(folds) < 2:
        return Calibration(daily, level)
    days, weeks = [], []
    for k, fold in enumerate(folds):
        others = windows.factors([j for j in range(len(folds)) if j != k])
        covered = _held_out(fold, *others, width, block)
        days.append(covered[0])
        weeks.append(covered[1])
    days, weeks = np.concatenate(days), np.concatenate(weeks)
    return Calibration(daily, level, float(days.mean()) if days.size else np.nan,
                       float(weeks.mean()) if weeks.size else np.nan)


def _summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean backtest scores per model, from :func:`~toolkit.forecast.backtest.fold_scores`."""
    return scores.groupby("model")[["mae", "mase", "coverage"]].mean()


def _best(summary: pd.DataFrame, candidates: tuple[str, ...]) -> tuple[str | None, str]:
    """Model with the lowest mean MASE (MAE where MASE is undefined); ties go to the earlier in ``MODELS``."""
    metric = "mase" if summary["mase"].notna().any() else "mae"
    scores = summary[metric].reindex(list(candidates)).dropna()
    if scores.empty:
        return None, metric
    return min(scores.index, key=lambda m: (scores[m], MODELS.index(m))), metric


@dataclass(frozen=True)
class Choice:
    """The model to serve a series with, and why (see :func:`choose_model`).

    ``members`` are the models whose median is served when ``model`` is ``"combined"``.
    """

    status: str
    model: str
    members: tuple[str, ...] = ()
    reason: str = ""
    note: Note | None = None


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def choose_model(unique_id: str, scores: pd.DataFrame, select_best: bool = True) -> Choice:
    """Serve the best model alone only when it wins beyond noise, else the median of the near-best.

    On the backtest scores per window (MASE; MAE where MASE is undefined) of
    Prophet, ETS, Theta and both baselines (models that failed a window are
    left out), the best model is the one with the lowest mean. Every other
    model is compared with it window by window: it is *too close to call*
    when its mean gap to the best is at most ``NOISE_SHARE`` (10%) of the
    best's score or at most one standard error of the per-window gaps (the
    windows disagree). Then

    * the best alone is served when no other model is that close: status
      ``ok`` for a forecasting model, ``baseline`` for a baseline;
    * otherwise the median of the best and every model close to it (path by
      path, see :func:`~toolkit.forecast.methods.combine`) is served with
      status ``combined``: picking one of near-equals on a few windows picks
      the wrong one about half of the time, and their median is rarely worse
      than either. A pair is joined by the next best model when that is
      within twice ``NOISE_SHARE`` of the best, so that the median of three
      can leave out the one that strays on a day (on bench_accuracy's
      windows CDNOW repeat went from 0.551 to 0.546 MASE, no series got
      worse). Models with exactly the best's scores add nothing
      and are left out.

    When a baseline is the best (alone or in the median), a ``"warning"`` note
    names the series and the scores of Prophet and that baseline. With
    ``select_best=False`` Prophet is served regardless, with status
    ``worse-than-baseline`` where a baseline beat it beyond noise. Without
    backtest scores Prophet is served with status ``ok``.
    """
    summary = _summary(scores)
    best, metric = _best(summary, MODELS)
    if best is None:
        return Choice("ok", "prophet")
    if metric == "mase" and not np.isfinite(summary.loc[best, "mase"]):
        metric = "mae"
    means = summary[metric].reindex(list(MODELS)).dropna()
    per_window = scores.pivot_table(index="fold", columns="model", values=metric)

    def beyond_noise(worse: str, better: str) -> bool:
        gaps = (per_window[worse] - per_window[better]).dropna()
        error = float(gaps.std(ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else 0.0
        return float(gaps.mean()) > max(NOISE_SHARE * float(means[better]), error)

    label = metric.upper()
    baseline, _ = _best(summary, BASELINES)
    if not select_best:
        if "prophet" in means and baseline is not None and beyond_noise("prophet", baseline):
            scored = f"mean {label} {means['prophet']:.3f} vs {means[baseline]:.3f}"
            reason = f"{baseline} beat prophet in the backtest ({scored}); prophet is served as asked"
            return Choice("worse-than-baseline", "prophet", (), reason, Note("forecast", (
                f"Series {unique_id}: Prophet is served although it did worse than "
                f"{_DESCRIBED[baseline]} in the backtest ({scored}); the forecast is doubtful."), "warning"))
        return Choice("ok", "prophet")
    ranked = sorted(means.index, key=lambda m: (means[m], MODELS.index(m)))
    near = tuple(m for m in ranked if m == best or (means[m] > means[best] and not beyond_noise(m, best)))
    scored = ", ".join(f"{m} {means[m]:.3f}" for m in ranked)
    if len(near) > 1:
        status, model = "combined", "combined"
        reason = f"{_listed(near)} too close to call in the backtest (mean {label}: {scored}): "
        # The median of two is their mean: a close next best joins a pair, so that the median can
        # leave out whichever of the three strays on a day.
        third = [m for m in ranked if m not in near and means[best] < means[m] <= (1 + 2 * NOISE_SHARE)
                 * means[best]][:1] if len(near) == 2 else []
        reason += (f"the median of them and {third[0]}, the next best, is served" if third
                   else f"their {'median' if len(near) > 2 else 'mean'} is served")
        near = (*near, *third)
        served = f"the {'median' if len(near) > 2 else 'mean'} of {_listed(near)} is served"
    else:
        status, model = ("baseline" if best in BASELINES else "ok"), best
        reason = f"{best} beat the other models beyond noise in the backtest (mean {label}: {scored})"
        if best in BASELINES and "prophet" in means:
            reason = (f"{best} beat prophet in the backtest (mean {label} {means[best]:.3f} vs "
                      f"{means['prophet']:.3f}; {scored})")
        served = "that baseline is served instead"
    # A rule without error repeated what the windows did, typically nothing: a score of 0.000 reads as a bug
    exact = best in BASELINES and means[best] == 0
    repeated = "the backtest windows repeated the weeks before them exactly (no money moved, or the same amounts)"
    if exact:
        reason = f"{repeated}, which {best} forecast without error (mean {label}: {scored}); it is served"
    note = None
    if best in BASELINES and "prophet" in means and means["prophet"] > means[best]:
        note = Note("forecast", (
            f"Series {unique_id}: {repeated}, which {_DESCRIBED[best]} forecast without error and Prophet did "
            f"not (mean {label} {means['prophet']:.3f}); {served}." if exact else
            f"Series {unique_id}: Prophet did worse than {_DESCRIBED[best]} in the backtest "
            f"(mean {label} {means['prophet']:.3f} vs {means[best]:.3f}); {served}."), "warning")
    return Choice(status, model, near if model == "combined" else (), reason, note)


def _unfit_reason(y: np.ndarray, settings: ForecastSettings) -> str | None:
    observed = y[np.isfinite(y)]
    if observed.size < settings.shortest_history:
        return f"too short for Prophet: {observed.size} observations, needs {settings.shortest_history}"
    if np.ptp(observed) == 0:
        return f"constant at {observed[0]:g}: nothing for Prophet to learn"
    return None


def _spans(spans: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]) -> str:
    return ", ".join(f"{first:%Y-%m-%d}..{last:%Y-%m-%d}" for first, last in spans)


def _diagnostics(unique_id: str, status: str, model: str, reason: str, n_obs: int,
                 closed: tuple[int, ...], clip: bool, summary: pd.DataFrame, spread: Calibration,
                 spans: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = (),
                 left_out: pd.DatetimeIndex | None = None, members: tuple[str, ...] = ()) -> dict[str, Any]:
    """One series' diagnostics row, with every model's backtest scores (NaN where not scored)."""
    diagnostics = {"unique_id": unique_id, "status": status, "model": model, "reason": reason,
                   "members": ",".join(members),
                   "n_obs": n_obs, "closed_weekdays": ",".join(_WEEKDAYS[d] for d in closed),
                   "closures": _spans(spans),
                   "left_out": ",".join(f"{d:%Y-%m-%d}" for d in (left_out if left_out is not None else [])),
                   "clipped_at_zero": clip}
    for name in SERVED_MODELS:
        for metric in ("mae", "mase", "coverage"):
            diagnostics[f"{name}_{metric}"] = (
                float(summary.loc[name, metric]) if name in summary.index else np.nan)
    diagnostics.update(calibration=spread.daily, calibration_level=spread.level,
                       coverage_calibrated=spread.coverage_daily, coverage_weekly=spread.coverage_weekly)
    return diagnostics


#: Weekdays in the plural, as a note says them.
_WEEKDAYS_PLURAL = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


def calendar_notes(calendar: BusinessCalendar, settings: ForecastSettings) -> list[Note]:
    """One ``assumed`` note for the business's closed weekdays and one per closure that closes forecast days.

    Said once for a run, whatever the number of series that follow them.
    """
    if calendar.last_day is None:
        return []
    notes = []
    if calendar.closed_weekdays:
        days = ", ".join(_WEEKDAYS_PLURAL[d] for d in calendar.closed_weekdays)
        notes.append(Note("forecast", (
            f"Nothing came in on {days} in any of the last {settings.closed_lookback_weeks} weeks: they are "
            f"forecast as closed, in every series that moved no money on them."), "assumed"))
    dates = future_dates(calendar.last_day, settings.horizon, settings.freq)
    notes += [Note("forecast", (
        f"Nothing came in from {first:%d %b %Y} to {last:%d %b %Y} (a closure): the same dates a year on "
        f"are forecast as closed, in every series that moved no money then."), "assumed")
        for first, last in calendar.closures if closed_dates(dates, (), ((first, last),)).any()]
    return notes


def _served_forecast(choice: Choice, history: pd.DataFrame, dates: pd.DatetimeIndex,
                     settings: ForecastSettings, closed: tuple[int, ...], seed: int,
                     features: SeasonalFeatures | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw point forecast and paths of the chosen model or the mean of its members (may raise)."""
    if choice.model != "combined":
        return forecast_with(choice.model, history, dates, settings, closed, seed, features)
    return combine([forecast_with(method, history, dates, settings, closed, seed, features)
                    for method in choice.members])


def forecast_series(task: tuple[str, pd.DataFrame, ForecastSettings]) -> SeriesOutcome:
    """Forecast one series (``ds, y``): the pure per-series task behind every backend.

    Never raises for a series Prophet cannot handle: such a series is served
    by a baseline and flagged (``fallback`` when Prophet was not tried: too
    short or constant; ``failed-over`` when Prophet raised). Runs on one BLAS
    thread (:func:`~toolkit.forecast.engine.one_blas_thread`): the backends
    run series side by side.
    """
    with one_blas_thread():
        return _forecast_series(task)


def _forecast_series(task: tuple[str, pd.DataFrame, ForecastSettings]) -> SeriesOutcome:
    unique_id, frame, settings = task
    history = regular_history(frame, settings.freq)
    # Forecast alone, without the run's calendar, the series is the whole business.
    calendar = settings.calendar if settings.calendar is not None else calendar_of(history, settings)
    closed, spans = series_calendar(calendar, history, settings.closed_lookback_weeks)
    left_out, notes = doubtful_last_days(unique_id, history, closed) if (
        settings.last_days and settings.freq == "D") else (pd.DatetimeIndex([]), [])
    if settings.calendar is None:  # nobody else says what closes it
        notes += calendar_notes(calendar, settings)
    # Closure days and doubtful last days are unknown to the models, not zero.
    unknown = (closed_dates(pd.DatetimeIndex(history["ds"]), (), spans, years_on=0)
               | history["ds"].isin(left_out))
    history = history.assign(y=history["y"].where(~unknown))
    y = history["y"].to_numpy(dtype=float)
    finite = np.isfinite(y)
    clip = settings.non_negative and not (y[finite] < 0).any()
    dates = future_dates(history["ds"].iloc[-1], settings.horizon, settings.freq)
    seed = series_seed(settings.seed, unique_id)
    features = SeasonalFeatures(pd.DatetimeIndex(history["ds"]).append(dates))

    folds: list[FoldForecast] = []
    scores = fold_scores(unique_id, folds)
    summary = pd.DataFrame(columns=["mae", "mase", "coverage"], dtype=float)
    reason = _unfit_reason(y, settings)
    if reason is not None:
        constant = finite.any() and np.ptp(y[finite]) == 0
        choice = Choice("fallback", "seasonal_naive" if constant and len(history) >= settings.season
                        else "weekday_mean", reason=reason)
    else:
        choice = Choice("ok", "prophet")
        if settings.backtest_folds:
            folds = backtest_series(history, settings, unique_id, features=features)
        prophet_errors = [f.error for f in folds if f.model == "prophet" and f.error]
        scores = fold_scores(unique_id, folds)
        if prophet_errors:  # served by the best of the others
            choice = choose_model(unique_id, scores[scores["model"] != "prophet"])
            choice = replace(choice, status="failed-over",
                             reason=f"Prophet failed in the backtest: {prophet_errors[0]}; {choice.reason}")
        elif folds:
            choice = choose_model(unique_id, scores, settings.select_best)
        if choice.model == "combined":
            combined = combined_folds(folds, choice.members, settings.interval_width)
            folds += combined
            scores = pd.concat([scores, fold_scores(unique_id, combined)], ignore_index=True)
        summary = _summary(scores) if folds else summary
    try:
        raw_point, raw_paths = _served_forecast(choice, history, dates, settings, closed, seed, features)
    except Exception as exc:  # a model that raises on the whole history: the best baseline takes over
        if choice.model in BASELINES:
            raise
        choice = Choice("failed-over", _best(summary, BASELINES)[0] or "weekday_mean",
                        reason=f"{choice.model} failed: {type(exc).__name__}: {exc}")
        raw_point, raw_paths = _served_forecast(choice, history, dates, settings, closed, seed)
    if choice.note is not None:
        notes.append(choice.note)

    spread = Calibration()
    if settings.calibrate:
        spread = calibration_factor([f for f in folds if f.model == choice.model], settings.interval_width,
                                    settings.total_periods)
    point, paths = finish(raw_point, raw_paths, spread.daily, closed_dates(dates, closed, spans), clip,
                          spread.level, settings.total_periods,
                          settings.backtest_horizon if settings.calibrate and folds else None)
    lower, upper = interval(paths, settings.interval_width)

    notes += plausibility(history.assign(unique_id=unique_id),
                          pd.DataFrame({"unique_id": unique_id, "ds": dates, "yhat": point}))
    diagnostics = _diagnostics(unique_id, choice.status, choice.model, choice.reason, int(finite.sum()),
                               closed, clip, summary, spread, spans, left_out, choice.members)
    return SeriesOutcome(unique_id, dates, point, lower, upper, paths, choice.model, diagnostics, scores,
                         tuple(notes))


def failed_series(task: tuple[str, pd.DataFrame, ForecastSettings], error: BaseException) -> SeriesOutcome:
    """The fallback for a series whose task itself failed on a cluster, after its retries.

    :func:`forecast_series` never raises for a series Prophet cannot handle, so
    a task fails only when its worker died (out of memory, killed) or the
    series is unusable (e.g. no valid date at all). Such a series gets status
    ``failed`` with the error as the reason, and is served by the
    ``weekday_mean`` baseline computed in this process, as for the shortest
    series. When not even a history can be built from it, it keeps its
    diagnostics row but has no forecast rows (and no paths).
    """
    unique_id, frame, settings = task
    reason = f"the task failed on its worker: {type(error).__name__}: {error}"
    model, closed, clip, n_obs = "weekday_mean", (), False, 0
    try:
        history = regular_history(frame, settings.freq)
        y = history["y"].to_numpy(dtype=float)
        finite = np.isfinite(y)
        n_obs, clip = int(finite.sum()), settings.non_negative and not (y[finite] < 0).any()
        dates = future_dates(history["ds"].iloc[-1], settings.horizon, settings.freq)
        raw_point, raw_paths = forecast_with(model, history, dates, settings, closed,
                                             series_seed(settings.seed, unique_id))
    except Exception as second:
        reason += f"; no forecast: {type(second).__name__}: {second}"
        dates = pd.DatetimeIndex([])
        raw_point, raw_paths = np.empty(0), np.empty((0, settings.uncertainty_samples))
    point, paths = finish(raw_point, raw_paths, 1.0, np.zeros(len(dates), bool), clip)
    lower, upper = interval(paths, settings.interval_width)
    summary = pd.DataFrame(columns=["mae", "mase", "coverage"], dtype=float)
    diagnostics = _diagnostics(unique_id, "failed", model, reason, n_obs, closed, clip,
                               summary, Calibration())
    note = Note("forecast", f"Series {unique_id}: its forecast failed ({type(error).__name__}: {error}); "
                            f"the 4-week weekday mean stands in.", "warning")
    return SeriesOutcome(unique_id, dates, point, lower, upper, paths, model, diagnostics,
                         fold_scores(unique_id, []), (note,))


Chunk = tuple[Sequence[tuple[str, pd.DataFrame, dict[str, Any]]], ForecastSettings]


def _assemble(outcomes: Sequence[SeriesOutcome], extras: pd.DataFrame,
              run_notes: Sequence[Note] = ()) -> ForecastResult:
    """The result tables of some series' outcomes, with their extra columns (``unique_id`` first).

    ``run_notes`` (the business's closed days) come before the series' own notes.
    """
    ids = np.concatenate([np.repeat(o.unique_id, len(o.dates)) for o in outcomes])
    dates = np.concatenate([o.dates.to_numpy() for o in outcomes])
    forecast = pd.DataFrame({
        "unique_id": pd.array(ids, dtype="str"), "ds": dates,
        "yhat": np.concatenate([o.point for o in outcomes]),
        "yhat_lower": np.concatenate([o.lower for o in outcomes]),
        "yhat_upper": np.concatenate([o.upper for o in outcomes]),
        "model": np.concatenate([np.repeat(o.model, len(o.dates)) for o in outcomes]),
    })
    draws = outcomes[0].paths.shape[1]
    paths = pd.DataFrame(np.vstack([o.paths for o in outcomes]),
                         index=pd.MultiIndex.from_arrays([forecast["unique_id"], forecast["ds"]]),
                         columns=[f"draw_{k}" for k in range(draws)])
    diagnostics = pd.DataFrame([o.diagnostics for o in outcomes])
    if len(extras.columns) > 1:
        forecast = forecast.merge(extras, on="unique_id", how="left")
        diagnostics = diagnostics.merge(extras, on="unique_id", how="left")
    scored = [o.scores for o in outcomes if not o.scores.empty]
    scores = pd.concat(scored, ignore_index=True) if scored else pd.DataFrame(columns=SCORE_COLUMNS)
    return ForecastResult(forecast=forecast, paths=paths, diagnostics=diagnostics, backtest=scores,
                          notes=[*run_notes, *(note for o in outcomes for note in o.notes)])


def _extras(parts: Sequence[tuple[str, pd.DataFrame, dict[str, Any]]]) -> pd.DataFrame:
    """``unique_id`` and the extra columns of each series, one row per series."""
    return pd.DataFrame([{"unique_id": uid, **extra} for uid, _, extra in parts])


def _reduced(outcomes: Sequence[SeriesOutcome],
             parts: Sequence[tuple[str, pd.DataFrame, dict[str, Any]]]) -> ChunkOutcome:
    """A chunk's tables, its paths summed into the net cash flow and dropped."""
    result = _assemble(outcomes, _extras(parts))
    return ChunkOutcome(result.forecast, result.diagnostics, result.backtest, result.net_flow,
                        _note_rows(result.notes))


def _note_rows(notes: Sequence[Note]) -> pd.DataFrame:
    """Notes as rows of the stored notes table (``topic, text, level``)."""
    return pd.DataFrame([[getattr(note, c) for c in NOTE_COLUMNS] for note in notes],
                        columns=list(NOTE_COLUMNS), dtype="str")


def forecast_chunk(task: Chunk) -> ChunkOutcome:
    """Forecast a chunk of series and sum their paths: the task of a stored forecast.

    ``task`` is ``(parts, settings)`` with ``parts`` as from
    :func:`~toolkit.forecast.settings.split_series`. A series whose own task
    raises is served by :func:`failed_series` here, on every backend, so one
    unusable series never costs the rest of a long run.
    """
    parts, settings = task
    outcomes = []
    for unique_id, frame, _ in parts:
        try:
            outcomes.append(forecast_series((unique_id, frame, settings)))
        except Exception as error:
            outcomes.append(failed_series((unique_id, frame, settings), error))
    return _reduced(outcomes, parts)


def failed_chunk(task: Chunk, error: BaseException) -> ChunkOutcome:
    """The fallback for a chunk whose task failed on a cluster: every series of it ``failed``."""
    parts, settings = task
    return _reduced([failed_series((uid, frame, settings), error) for uid, frame, _ in parts], parts)


def _chunks(parts: Sequence[tuple[str, pd.DataFrame, dict[str, Any]]], settings: ForecastSettings,
            workers: int) -> list[Chunk]:
    """Consecutive chunks of at most ``CHUNK_SERIES`` series, at least four per worker."""
    size = max(1, min(CHUNK_SERIES, math.ceil(len(parts) / (4 * workers))))
    return [(parts[k:k + size], settings) for k in range(0, len(parts), size)]


class StageForecaster:
    """Forecast many cash-flow series at once, with paths, backtests and fallbacks.

    Parameters
    ----------
    horizon : periods to forecast.
    freq : ``"D"``, ``"W"`` or ``"MS"``; the weekly season of the baselines
        becomes a year of weeks or months for the latter two.
    holiday_country : country whose public holidays Prophet models (daily
        series); ``None`` for none.
    interval_width : nominal coverage of ``yhat_lower``..``yhat_upper``.
    uncertainty_samples : sample paths per series.
    seed : the run's seed; each series gets its own, derived from its id.
    backend : ``"local"`` (process pool over all cores), ``"serial"`` or
        ``"dask"`` (a ``dask.distributed`` cluster; ``pip install journeycast[dask]``).
        Same numbers on every backend. On ``"dask"`` a series whose task fails
        (its worker dies) is retried, then served by :func:`failed_series`.
    n_jobs : workers for ``"local"``, and for the local Dask cluster started
        when no ``scheduler_address`` is given; ``None`` means one per core.
    scheduler_address : ``backend="dask"`` only: address of a running Dask
        scheduler (``"tcp://host:8786"``) whose workers have journeycast
        installed; ``None`` starts a local cluster for the fit and closes it after.
    yearly : ``"auto"`` lets Prophet turn yearly seasonality on only with two
        years of history; ``True``/``False`` force it.
    backtest_folds, backtest_horizon : rolling-origin windows at the end of the
        history used to choose the served model and calibrate intervals (as
        many of the five as leave ``min_history`` to fit on: five windows
        give the paired comparison of :func:`choose_model` a spread to judge
        noise by, and Prophet's features are built once for all of them);
        ``backtest_folds=0`` skips the backtest (and with it selection and calibration).
    closed_days : forecast weekdays on which the business (all inflows together)
        took nothing in every recent week as zero, and the dates of last year's
        closures of the business (runs of days without a sale, see
        :func:`~toolkit.forecast.settings.closures`) as zero again a year on,
        in every series that moved no money on those days itself (a payroll
        paid on a closed day goes on). Said once per run in ``notes``.
    last_days : leave a partial last day and one-off spikes of the last week
        out of the fit (see :func:`~toolkit.forecast.checks.doubtful_last_days`).
    non_negative : clip paths at zero for series that never were negative.
    calibrate : rescale path spread to hold ``interval_width`` in the backtest.
    select_best : serve a baseline, or the average of Prophet and a baseline,
        where the backtest says so (see :func:`choose_model`); ``False`` keeps
        Prophet and flags the series where a baseline beat it.
    min_history : fewest observations to fit Prophet (default: four seasons).
    progress : show a progress bar over the series.
    prophet_kwargs : passed to every ``Prophet(...)``.
    store : a directory to write the forecast to as series finish (for
        thousands of series): ``fit`` writes forecasts, diagnostics, backtest
        scores and notes to Parquet there and keeps only the net cash flow per
        day and draw (``net_flow_``), not every series' sample paths;
        ``predict`` then returns a :class:`~toolkit.forecast.store.StoredForecast`.
        Series ids must be ``stage|direction|segment``. Same numbers as in
        memory (the net flow up to the rounding of a sum taken chunk by chunk).
        A series whose task raises is flagged ``failed`` and served by
        :func:`failed_series` on every backend instead of stopping the run.

    With ``holiday_country=None, closed_days=False, last_days=False, non_negative=False,
    calibrate=False, select_best=False, backtest_folds=0`` each series is a
    plain ``Prophet()`` fit: same ``yhat``, and the same interval for the same seed.

    ``fit`` does all the work (backtests, fits, sampling the horizon);
    ``predict`` assembles the result.
    """

    def __init__(self, horizon: int = 90, freq: Literal["D", "W", "MS"] = "D",
                 holiday_country: str | None = "US", interval_width: float = 0.8,
                 uncertainty_samples: int = 500, seed: int = 42, backend: str = "local",
                 n_jobs: int | None = None, yearly: bool | Literal["auto"] = "auto",
                 backtest_folds: int = 5, backtest_horizon: int = 28, closed_days: bool = True,
                 last_days: bool = True, non_negative: bool = True, calibrate: bool = True,
                 select_best: bool = True,
                 min_history: int | None = None, progress: bool = True,
                 prophet_kwargs: dict[str, Any] | None = None,
                 scheduler_address: str | None = None,
                 store: str | os.PathLike[str] | None = None) -> None:
        self.horizon = horizon
        self.freq = freq
        self.holiday_country = holiday_country
        self.interval_width = interval_width
        self.uncertainty_samples = uncertainty_samples
        self.seed = seed
        self.backend = backend
        self.n_jobs = n_jobs
        self.yearly = yearly
        self.backtest_folds = backtest_folds
        self.backtest_horizon = backtest_horizon
        self.closed_days = closed_days
        self.last_days = last_days
        self.non_negative = non_negative
        self.calibrate = calibrate
        self.select_best = select_best
        self.min_history = min_history
        self.progress = progress
        self.prophet_kwargs = prophet_kwargs
        self.scheduler_address = scheduler_address
        self.store = store

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> "StageForecaster":
        """A forecaster with the run configuration's horizon, frequency, holidays and seed."""
        country, _ = holiday_calendar(config.holiday_country, config.currency, config.timezone)
        params = dict(horizon=config.horizon, freq=config.frequency, holiday_country=country, seed=config.seed)
        return cls(**{**params, **overrides})

    def settings(self) -> ForecastSettings:
        """The per-series settings these parameters describe."""
        names = {f.name for f in fields(ForecastSettings)}
        params = {k: v for k, v in vars(self).items() if k in names}
        params["prophet_kwargs"] = dict(self.prophet_kwargs or {})
        return ForecastSettings(**params)

    def fit(self, series: pd.DataFrame) -> "StageForecaster":
        """Backtest, fit and sample every series of a long frame (``unique_id, ds, y``, extras).

        The business's closed weekdays and closures are found here, once, from
        all inflow series together (a ``direction`` column says which; all
        series without one), and handed to every series' task: see
        :func:`~toolkit.forecast.settings.business_calendar` and
        :func:`~toolkit.forecast.settings.series_calendar`.
        """
        settings = self.settings()
        parts = split_series(series)
        if self.backend == "local":  # the pool's workers inherit it
            load_methods()
        self.extras_ = _extras(parts)
        self.calendar_ = business_calendar(parts, settings)
        settings = replace(settings, calendar=self.calendar_)
        self.notes_ = calendar_notes(self.calendar_, settings)
        if self.store is not None:
            return self._fit_stored(parts, settings)
        tasks = [(uid, frame, settings) for uid, frame, _ in parts]
        self.outcomes_ = run_tasks(forecast_series, tasks, backend=self.backend,
                                   n_jobs=self.n_jobs, progress=self.progress,
                                   scheduler_address=self.scheduler_address,
                                   on_failure=failed_series)
        return self

    def _fit_stored(self, parts: list[tuple[str, pd.DataFrame, dict[str, Any]]],
                    settings: ForecastSettings) -> "StageForecaster":
        """Forecast chunk by chunk, writing the tables to ``store`` and summing the net flow."""
        for unique_id, _, _ in parts:
            stage_and_direction(unique_id)  # before hours of work, not after
        chunks = _chunks(parts, settings, self.n_jobs or os.cpu_count() or 1)
        net_flow = None
        with StoreWriter(self.store) as writer, tqdm(total=len(parts), desc="forecast", unit="series",
                                                     disable=not self.progress) as bar:
            writer.append("notes", _note_rows(self.notes_))
            for position, outcome in stream_tasks(forecast_chunk, chunks, self.backend, self.n_jobs,
                                                  self.scheduler_address, on_failure=failed_chunk):
                for table in STORED_TABLES:
                    writer.append(table, getattr(outcome, table))
                net_flow = (outcome.net_flow if net_flow is None
                            else net_flow.add(outcome.net_flow, fill_value=0.0))
                bar.update(len(chunks[position][0]))
            writer.write_net_flow(net_flow)
        self.net_flow_ = net_flow
        self.stored_ = writer.stored
        return self

    def predict(self) -> ForecastResult | StoredForecast:
        """The forecasts, sample paths, diagnostics, backtest scores and notes of the fitted series.

        With ``store`` set: the :class:`~toolkit.forecast.store.StoredForecast`
        written by ``fit`` (tables read from disk, ``net_flow`` instead of paths).
        """
        if hasattr(self, "stored_") and self.store is not None:
            return self.stored_
        if not hasattr(self, "outcomes_"):
            raise RuntimeError("call fit(series) before predict()")
        return _assemble(self.outcomes_, self.extras_, self.notes_)
