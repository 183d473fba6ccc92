"""Exponential smoothing (ETS) and Theta: fast candidates beside Prophet, with sample paths.

Prophet draws a trend through a year of history with changepoints spaced over
its first 80%, so a level that moved in the last weeks (a drop after a cohort
stopped buying, a jump in autumn) reaches its forecast late. Exponential
smoothing weighs the latest weeks most and follows such a move at once; on
real shop series it was the best open forecaster (FINDINGS.md). Both run here
without statsforecast, the usual home of AutoETS, which pins pandas < 3:

* ``ets``: additive errors and weekly (or yearly, for weeks and months)
  additive seasonality, with no trend or a damped additive trend, whichever
  has the lower AICc, fitted on the last two years of days (:mod:`.ets`:
  statsmodels' Holt-Winters with heuristic start values, to the same
  weights and errors, with its recursion compiled and its gradient exact:
  3.5 ms a fit of 728 days against statsmodels' 22 ms; its
  maximum-likelihood ``ETSModel`` takes 0.3-1 s for forecasts within a
  fraction of a percent of each other).
  Paths are the model's own recursion with its residuals resampled (around
  zero), so the uncertainty of a level that wanders is carried day after day.
* ``theta``: the Theta method (simple exponential smoothing with half the
  long-run drift, on the deseasonalised series when its season is
  significant), statsmodels' ``ThetaModel`` computed directly: its
  state-space fit of the smoothing weight was most of the cost, and a
  scalar search over a linear filter finds the same weight. Paths follow the
  state-space form of simple exponential smoothing, ``e_h + alpha * (e_1 +
  ... + e_{h-1})`` with normal errors of the one-step spread, around the point
  forecast (the calibration of the served forecast corrects their spread).

Both take no missing values: gaps (unknown days) are filled from the same
weekday a week before, as the baselines do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ets_forecast", "filled_values", "ses_weight", "theta_forecast"]

#: ETS fits the last this many seasons (two years of days): it weighs the latest weeks most, and
#: fitting a third year cost a third more time for the same forecasts (within 0.003 MASE on
#: every benchmark series, benchmarks/README.md).
_ETS_SEASONS = 104

#: The Theta method's test for a season: chi-squared(1) at 10% (1.645 squared).
_SEASON_TEST_CRITICAL = 2.705543454095404


def filled_values(y: np.ndarray, season: int) -> np.ndarray:
    """Values with gaps filled from the same phase of the previous season, else the mean."""
    known = np.isfinite(y)
    if known.all():
        return np.asarray(y, dtype=float)
    # Per phase, the position of the last known value so far (a season per row, a phase per column).
    positions = np.where(known, np.arange(len(y)), -1)
    padded = np.pad(positions, (0, -len(y) % season), constant_values=-1).reshape(-1, season)
    last = np.maximum.accumulate(padded, axis=0).ravel()[:len(y)]
    filled = np.where(last >= 0, np.asarray(y, dtype=float)[np.maximum(last, 0)], np.nan)
    return np.where(last >= 0, filled, float(np.nanmean(filled)) if known.any() else 0.0)


def _history(history: pd.DataFrame, season: int) -> np.ndarray:
    return filled_values(history["y"].to_numpy(dtype=float), season)


def ets_forecast(history: pd.DataFrame, horizon: int, season: int, n_draws: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point forecast and sample paths (``horizon x n_draws``) of the better of two additive ETS."""
    from toolkit.forecast.ets import fit_ets  # numba: compiled code that reading a forecast does not need

    y = _history(history, season)[-_ETS_SEASONS * season:]
    fit = min((fit_ets(y, season, damped_trend=damped) for damped in (False, True)),
              key=lambda f: f.aicc if np.isfinite(f.aicc) else np.inf)
    # Residuals resampled around zero: their in-sample mean (heuristic start values leave one)
    # would otherwise pile up in the simulated level and pull every path off the point.
    residuals = fit.errors - fit.errors.mean()
    errors = np.random.default_rng(seed).choice(residuals, size=(horizon, n_draws))
    # The point is the same recursion without errors (the first column): the textbook forecast.
    simulated = fit.paths(np.hstack([np.zeros((horizon, 1)), errors]))
    return simulated[:, 0], simulated[:, 1:]


def _one_step_spread(y: np.ndarray, alpha: float, season: int) -> float:
    """Standard deviation of simple exponential smoothing's one-step errors on the season-adjusted series.

    statsmodels' ``sigma2`` of a Theta fit refits a state-space model (about
    half a second); this is the same quantity for the fitted ``alpha``.
    """
    recent = y[-min(len(y), 364):]
    adjusted = recent - pd.Series(recent).groupby(np.arange(len(recent)) % season).transform("mean").to_numpy()
    errors = _ses_errors(adjusted, alpha)[0]
    return float(errors.std()) if errors.size else 0.0


def _ses_errors(y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """One-step errors of simple exponential smoothing started at the first value, and its last level.

    The level ``l_t = alpha * y_t + (1 - alpha) * l_{t-1}`` is a first-order
    linear filter (``scipy.signal.lfilter``): microseconds where a loop in
    Python takes milliseconds.
    """
    from scipy.signal import lfilter  # imported here, like statsmodels: 0.6 s that reading a forecast does not need

    if len(y) < 2:
        return np.empty(0), float(y[0]) if len(y) else 0.0
    levels = lfilter([alpha], [1.0, alpha - 1.0], y[1:], zi=[(1.0 - alpha) * y[0]])[0]
    return y[1:] - np.concatenate([y[:1], levels[:-1]]), float(levels[-1])


def ses_weight(y: np.ndarray) -> float:
    """The smoothing weight (0 to 1) of simple exponential smoothing that minimises its squared one-step errors.

    With normal errors of one spread this is the maximum-likelihood weight,
    the one statsmodels' ``ThetaModel`` finds through a state-space fit (about
    15 ms a fit, most of Theta's cost); a bounded scalar search over the
    filter finds it in about a millisecond.
    """
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(lambda alpha: float(np.square(_ses_errors(y, alpha)[0]).sum()),
                            bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-8})
    return float(found.x)


def _deseasonalised(y: np.ndarray, season: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``y`` without its season when the season is significant, the season per phase, and how it applies.

    The Theta method's own test (Assimakopoulos & Nikolopoulos, as statsmodels
    runs it): the autocorrelation at one season, against a chi-squared(1) at 10%.
    The season is multiplicative for a positive series, else additive.
    """
    from statsmodels.tsa.seasonal import seasonal_decompose
    from statsmodels.tsa.stattools import acf

    if len(y) < 2 * season:
        return y, None, "add"
    rho = acf(y, nlags=season, fft=True)
    if not len(y) * rho[-1] ** 2 / np.sum(rho[:-1] ** 2) > _SEASON_TEST_CRITICAL:
        return y, None, "add"
    how = "mul" if y.min() > 0 else "add"
    seasonal = seasonal_decompose(y, model=how, period=season).seasonal
    if seasonal.min() <= 0:
        how, seasonal = "add", seasonal_decompose(y, model="add", period=season).seasonal
    return (y / seasonal if how == "mul" else y - seasonal), seasonal[:season], how


def theta_forecast(history: pd.DataFrame, horizon: int, season: int, n_draws: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point forecast and sample paths (``horizon x n_draws``) of the Theta method.

    Hyndman & Billah's form with theta = 2: simple exponential smoothing of
    the deseasonalised series plus half its long-run linear drift, the
    season put back. statsmodels' ``ThetaModel`` gives the same forecast
    (tested) in about five times the time (12.5 ms against 2.6 ms with the
    paths, on 1,095 days).
    """
    y = _history(history, season)
    adjusted, seasonal, how = _deseasonalised(y, season)
    n = len(adjusted)
    slope = np.polyfit(np.arange(n), adjusted, 1)[0] if n > 1 else 0.0
    alpha = ses_weight(adjusted) if n > 1 else 1.0
    steps = np.arange(horizon, dtype=float)
    if alpha > 0:
        steps += 1 / alpha - (1 - alpha) ** n / alpha
    point = _ses_errors(adjusted, alpha)[1] + 0.5 * slope * steps
    if seasonal is not None:
        phase = seasonal[(n + np.arange(horizon)) % season]
        point = point * phase if how == "mul" else point + phase
    errors = np.random.default_rng(seed).normal(0.0, _one_step_spread(y, alpha, season), size=(horizon, n_draws))
    level_moves = alpha * np.vstack([np.zeros((1, n_draws)), np.cumsum(errors, axis=0)[:-1]])
    return point, point[:, None] + errors + level_moves
