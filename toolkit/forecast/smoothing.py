"""Exponential smoothing (ETS) and Theta: fast candidates beside Prophet, with sample paths.

Prophet draws a trend through a year of history with changepoints spaced over
its first 80%, so a level that moved in the last weeks (a drop after a cohort
stopped buying, a jump in autumn) reaches its forecast late. Exponential
smoothing weighs the latest weeks most and follows such a move at once; on
real shop series it was the best open forecaster (FINDINGS.md). Both run here
on statsmodels, which works with pandas 3 (statsforecast, the usual home of
AutoETS, pins pandas < 3):

* ``ets``: additive errors and weekly (or yearly, for weeks and months)
  additive seasonality, with no trend or a damped additive trend, whichever
  has the lower AICc. statsmodels' Holt-Winters with heuristic start values
  fits in about 15 ms where its maximum-likelihood ``ETSModel`` takes
  0.3-1 s for forecasts within a fraction of a percent of each other.
  Paths are the model's own simulations with its residuals resampled (around
  zero), so the uncertainty of a level that wanders is carried day after day.
* ``theta``: the Theta method (simple exponential smoothing with half the
  long-run drift, on the deseasonalised series when its season is
  significant). statsmodels gives intervals but no paths; paths follow the
  state-space form of simple exponential smoothing, ``e_h + alpha * (e_1 +
  ... + e_{h-1})`` with normal errors of the one-step spread, around the point
  forecast (the calibration of the served forecast corrects their spread).

Both fit on one BLAS thread: their matrices are tiny, and on a busy machine
(or beside the other workers of a process pool) BLAS threads waiting for
each other made a 15 ms fit take seconds. Both take no missing values: gaps (unknown days) are filled from the same
weekday a week before, as the baselines do.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

__all__ = ["ets_forecast", "filled_values", "theta_forecast"]


@cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded once statsmodels is: looked up once (a look-up costs ~4 ms)."""
    import statsmodels.tsa.holtwinters  # noqa: F401  (loads SciPy's BLAS)

    return ThreadpoolController()


def filled_values(y: np.ndarray, season: int) -> np.ndarray:
    """Values with gaps filled from the same phase of the previous season, else the mean."""
    phase = pd.Series(y).where(np.isfinite(y))
    phase = phase.groupby(np.arange(len(y)) % season).ffill()
    mean = float(np.nanmean(phase)) if phase.notna().any() else 0.0
    return phase.fillna(mean).to_numpy()


def _history(history: pd.DataFrame, season: int) -> np.ndarray:
    return filled_values(history["y"].to_numpy(dtype=float), season)


def ets_forecast(history: pd.DataFrame, horizon: int, season: int, n_draws: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point forecast and sample paths (``horizon x n_draws``) of the better of two additive ETS."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = _history(history, season)
    seasonal = "add" if len(y) >= 2 * season else None
    fits = []
    with warnings.catch_warnings(), _blas().limit(limits=1):
        # Convergence chatter of the optimiser on flat stretches: the AICc judges the fits.
        warnings.simplefilter("ignore")
        for trend, damped in ((None, False), ("add", True)):
            model = ExponentialSmoothing(y, trend=trend, damped_trend=damped, seasonal=seasonal,
                                         seasonal_periods=season if seasonal else None,
                                         initialization_method="heuristic" if seasonal else "estimated")
            fits.append(model.fit(use_brute=False))
    fit = min(fits, key=lambda f: f.aicc if np.isfinite(f.aicc) else np.inf)
    point = np.asarray(fit.forecast(horizon), dtype=float)
    # Residuals resampled around zero: their in-sample mean (heuristic start values leave one)
    # would otherwise pile up in the simulated level and pull every path off the point.
    residuals = np.asarray(fit.resid, dtype=float)
    residuals = residuals[np.isfinite(residuals)] - np.nanmean(residuals)
    errors = np.random.default_rng(seed).choice(residuals, size=(horizon, n_draws))
    paths = fit.simulate(horizon, anchor="end", repetitions=n_draws, error="add", random_errors=errors)
    return point, np.asarray(paths, dtype=float).reshape(horizon, n_draws)


def _one_step_spread(y: np.ndarray, alpha: float, season: int) -> float:
    """Standard deviation of simple exponential smoothing's one-step errors on the season-adjusted series.

    statsmodels' ``sigma2`` of a Theta fit refits a state-space model (about
    half a second); this is the same quantity for the fitted ``alpha``.
    """
    recent = y[-min(len(y), 364):]
    adjusted = recent - pd.Series(recent).groupby(np.arange(len(recent)) % season).transform("mean").to_numpy()
    level, errors = adjusted[0], np.empty(len(adjusted) - 1)
    for t, value in enumerate(adjusted[1:]):
        errors[t] = value - level
        level += alpha * errors[t]
    return float(errors.std()) if errors.size else 0.0


def theta_forecast(history: pd.DataFrame, horizon: int, season: int, n_draws: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point forecast and sample paths (``horizon x n_draws``) of the Theta method."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    y = _history(history, season)
    with warnings.catch_warnings(), _blas().limit(limits=1):
        warnings.simplefilter("ignore")
        fit = ThetaModel(y, period=season, deseasonalize=len(y) >= 2 * season).fit(use_mle=False)
        point = np.asarray(fit.forecast(horizon), dtype=float)
    alpha = float(np.clip(fit.params["alpha"], 0.0, 1.0))
    errors = np.random.default_rng(seed).normal(0.0, _one_step_spread(y, alpha, season), size=(horizon, n_draws))
    level_moves = alpha * np.vstack([np.zeros((1, n_draws)), np.cumsum(errors, axis=0)[:-1]])
    return point, point[:, None] + errors + level_moves
