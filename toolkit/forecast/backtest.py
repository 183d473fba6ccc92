"""Rolling-origin backtests: how each method would have done on the series' own past.

The last ``folds * horizon`` periods are cut into consecutive windows; for each
window every method is fitted on everything before it (non-negativity judged
from that training part only; closed weekdays are the business's, kept where
the series moved no money on them in that part) and forecasts the window.
Scores per window:

* ``mae``: mean absolute error of the point forecast;
* ``mase``: ``mae`` divided by the in-sample MAE of the seasonal naive rule on
  the training part (one season back), so < 1 beats last week's copy in-sample;
* ``coverage``: share of actuals on open days on which money moved inside
  the forecast's ``interval_width`` interval. Closed days are forecast as
  exactly zero, and empty days of a flow clipped at zero lie on its lower
  bound: either would count as covered whatever the model, so they are left
  out (:meth:`FoldForecast.scored_days`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from toolkit.forecast.backends import run_tasks
from toolkit.forecast.engine import one_blas_thread
from toolkit.forecast.methods import SeasonalFeatures, combine, finish, forecast_with, interval
from toolkit.forecast.settings import (
    MODELS,
    ForecastSettings,
    business_calendar,
    followed_calendar,
    regular_history,
    series_seed,
    split_series,
)

__all__ = ["SCORE_COLUMNS", "FoldForecast", "backtest", "backtest_series", "combined_folds", "fold_scores",
           "seasonal_naive_scale"]

#: Columns of :func:`backtest`'s result.
SCORE_COLUMNS = ["unique_id", "model", "fold", "cutoff", "n", "mae", "mase", "coverage", "error"]


@dataclass(frozen=True)
class FoldForecast:
    """One method's forecast of one backtest window, raw and finished."""

    model: str
    fold: int
    cutoff: pd.Timestamp
    actual: np.ndarray
    scale: float
    closed: np.ndarray
    raw_point: np.ndarray | None = None
    point: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    raw_paths: np.ndarray | None = None
    clip: bool = False
    error: str | None = None

    def scores(self) -> dict:
        observed = np.isfinite(self.actual)
        row = {"model": self.model, "fold": self.fold, "cutoff": self.cutoff,
               "n": int(observed.sum()), "mae": np.nan, "mase": np.nan, "coverage": np.nan,
               "error": self.error}
        if self.error is None and observed.any():
            y = self.actual[observed]
            row["mae"] = float(np.mean(np.abs(y - self.point[observed])))
            row["mase"] = row["mae"] / self.scale if self.scale > 0 else np.nan
            scored = self.scored_days()
            if scored.any():
                y = self.actual[scored]
                row["coverage"] = float(np.mean((self.lower[scored] <= y) & (y <= self.upper[scored])))
        return row

    def scored_days(self) -> np.ndarray:
        """The days coverage is scored on: observed open days on which money moved.

        A closed day is forecast as exactly zero, and an empty day of a flow
        clipped at zero lies on its interval's lower bound as soon as a
        tenth of the paths reach zero: either is covered whatever the
        spread. Counting them flattered the score of a sparse shop's
        forecast (and let its calibration narrow the intervals of the days
        with a sale until only 0.53-0.66 of them were covered).
        """
        return np.isfinite(self.actual) & ~self.closed & (self.actual != 0)


def seasonal_naive_scale(y: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive rule (the MASE denominator); NaN if undefined."""
    diffs = np.abs(y[season:] - y[:-season]) if len(y) > season else np.array([])
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.mean()) if diffs.size else np.nan


def backtest_series(history: pd.DataFrame, settings: ForecastSettings, unique_id: str,
                    models: tuple[str, ...] = MODELS,
                    features: SeasonalFeatures | None = None) -> list[FoldForecast]:
    """Forecasts of every fold by every method for one series on a regular grid.

    ``features``: Prophet's features of the history's grid, shared by the folds
    (built here when not given).

    Folds whose training part would be shorter than ``settings.shortest_history``
    are skipped. Each window is sampled with at most ``settings.backtest_samples``
    paths. A method that raises gets a fold with ``error`` set instead of
    stopping the backtest. Prophet's fits of every window are solved in one
    batched call (:meth:`~toolkit.forecast.methods.SeasonalFeatures.prefit`),
    with the fit on the whole history too when ``features`` is given: the
    caller fits that next with the same features and takes it from there.
    """
    horizon, n = settings.backtest_horizon, len(history)
    final = settings
    reuse = features is not None  # the caller fits the whole history with these features next
    features = features if features is not None else SeasonalFeatures(pd.DatetimeIndex(history["ds"]))
    # The windows' paths only give their 80% bands (calibration, coverage): fewer draws do.
    settings = replace(settings, uncertainty_samples=min(settings.uncertainty_samples, settings.backtest_samples))
    cutoffs = [(fold, n - (settings.backtest_folds - fold) * horizon) for fold in range(settings.backtest_folds)]
    windows = [(fold, history.iloc[:cutoff_at], history.iloc[cutoff_at:cutoff_at + horizon])
               for fold, cutoff_at in cutoffs if cutoff_at >= settings.shortest_history]
    closed_by_fold = {fold: followed_calendar(train, settings)[0] for fold, train, _ in windows}
    if "prophet" in models:  # every window's fit, and the final one, solved together
        fits = [(train, settings, closed_by_fold[fold]) for fold, train, _ in windows]
        if reuse and windows:
            fits.append((history, final, followed_calendar(history, final)[0]))
        features.prefit(fits)
    out = []
    for fold, train, test in windows:
        dates = pd.DatetimeIndex(test["ds"])
        closed = closed_by_fold[fold]
        closed_mask = np.isin(dates.day_of_week, closed)
        clip = settings.non_negative and not (train["y"] < 0).any()
        train_y = train["y"].to_numpy(dtype=float)
        common = dict(fold=fold, cutoff=train["ds"].iloc[-1], actual=test["y"].to_numpy(dtype=float),
                      scale=seasonal_naive_scale(np.where(np.isfinite(train_y), train_y, np.nan),
                                                 settings.season), closed=closed_mask)
        seed = series_seed(settings.seed, f"{unique_id}|fold{fold}")
        for model in models:
            try:
                raw_point, raw_paths = forecast_with(model, train, dates, settings, closed, seed, features)
            except Exception as exc:  # a failing method is scored as failed, never fatal
                out.append(FoldForecast(model=model, error=f"{type(exc).__name__}: {exc}", **common))
                continue
            point, paths = finish(raw_point, raw_paths, 1.0, closed_mask, clip)
            lower, upper = interval(paths, settings.interval_width)
            out.append(FoldForecast(model=model, raw_point=raw_point, point=point, lower=lower, upper=upper,
                                    raw_paths=raw_paths, clip=clip, **common))
    return out


def combined_folds(folds: list[FoldForecast], members: tuple[str, ...], width: float) -> list[FoldForecast]:
    """The ``"combined"`` forecast of each window: the median of the ``members``, then finished.

    Built from the windows every member forecast without error, the same way
    the served combination is (:func:`~toolkit.forecast.methods.combine`), so
    it is scored and calibrated like any other method.
    """
    by_fold = {(f.model, f.fold): f for f in folds if f.error is None}
    out = []
    for k in sorted({f.fold for f in folds}):
        parts = [by_fold.get((model, k)) for model in members]
        if any(part is None for part in parts):
            continue
        first = parts[0]
        raw_point, raw_paths = combine([(part.raw_point, part.raw_paths) for part in parts])
        point, paths = finish(raw_point, raw_paths, 1.0, first.closed, first.clip)
        lower, upper = interval(paths, width)
        out.append(replace(first, model="combined", raw_point=raw_point, point=point, lower=lower, upper=upper,
                           raw_paths=raw_paths))
    return out


def fold_scores(unique_id: str, folds: list[FoldForecast]) -> pd.DataFrame:
    """One row of scores per fold and model (columns ``SCORE_COLUMNS``)."""
    return pd.DataFrame([{"unique_id": unique_id, **f.scores()} for f in folds], columns=SCORE_COLUMNS)


def _backtest_task(task: tuple[str, pd.DataFrame, ForecastSettings, tuple[str, ...]]) -> pd.DataFrame:
    unique_id, frame, settings, models = task
    with one_blas_thread():  # as a forecast's series
        return fold_scores(unique_id, backtest_series(regular_history(frame, settings.freq), settings, unique_id,
                                                      models))


def backtest(series: pd.DataFrame, horizon: int = 28, folds: int = 3,
             models: tuple[str, ...] = MODELS, settings: ForecastSettings | None = None,
             backend: str = "local", n_jobs: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Rolling-origin backtest of every series in a long frame (``unique_id, ds, y``).

    Parameters
    ----------
    horizon, folds : length and number of the consecutive test windows at the end.
    models : which of ``MODELS`` (Prophet, ETS, Theta and the two baselines) to score.
    settings : everything else (frequency, holidays, interval width, seed...);
        defaults to :class:`ForecastSettings`'s.

    Returns
    -------
    One row per series, model and fold: ``unique_id, model, fold, cutoff, n,
    mae, mase, coverage, error`` (``error`` is set where the model raised).
    """
    settings = replace(settings or ForecastSettings(), backtest_horizon=horizon, backtest_folds=folds)
    parts = split_series(series)
    if settings.calendar is None:
        settings = replace(settings, calendar=business_calendar(parts, settings))
    tasks = [(uid, frame, settings, tuple(models)) for uid, frame, _ in parts]
    frames = run_tasks(_backtest_task, tasks, backend=backend, n_jobs=n_jobs, progress=progress,
                       desc="backtest")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
