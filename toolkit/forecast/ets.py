"""Additive exponential smoothing (ETS) fitted by least squares, its recursion compiled with numba.

The model is Holt-Winters' additive method in its component form (Hyndman &
Athanasopoulos, *Forecasting: principles and practice*, 7.3): a level, an
optional damped additive trend and an optional additive season of ``m``
periods, with smoothing weights ``alpha`` (level), ``beta`` (trend, at most
``alpha``), ``gamma`` (season, at most ``1 - alpha``) and damping ``phi``
(0.8 to 0.995). The start states come from the heuristic of Hyndman et al.
(section 2.6: a centred moving average over the first seasons, then a line
through its first ten values) and the weights minimise the squared one-step
errors from statsmodels' start values, within its bounds, by L-BFGS-B: the
fit of ``ExponentialSmoothing(..., initialization_method="heuristic")``, to
the same weights and squared errors (tested).

statsmodels runs the recursion of its final pass and of its simulations in
Python, and its optimiser takes a numerical gradient (five passes a step):
ETS was half of a series' whole forecast. Here each pass over the history
is one compiled loop (numba, cached on disk after the first use) that also
carries the exact gradient, and so is each simulated path: 3.5 ms a fit of
728 days against 22 ms.

Nothing here calls BLAS: on vectors this small its threads waiting for a
core (beside a pool's other workers) cost more than the arithmetic, and a
fit took twice as long.

Without a season (a history shorter than two seasons) the start level and
trend are the heuristic's too, where statsmodels would estimate them with
the weights; such a series needs ten values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numba import njit

__all__ = ["EtsFit", "fit_ets", "load_compiled", "start_states"]

#: Smallest smoothing weight's distance from 0 and 1, as statsmodels keeps it.
_EDGE = float(np.sqrt(np.finfo(float).eps))
#: Bounds of the damping of the trend.
_DAMPING = (0.8, 0.995)
#: Values the heuristic fits its start level (and trend) on.
_START_VALUES = 10


@njit(cache=True)
def _step(value: float, level: float, trend: float, season: float, alpha: float, beta: float,
          gamma: float, phi: float) -> tuple[float, float, float]:
    """The states after one observed ``value``: level, trend, and the season of its phase."""
    damped = phi * trend
    new_level = alpha * (value - season) + (1 - alpha) * (level + damped)
    new_trend = beta * (new_level - level) + (1 - beta) * damped
    return new_level, new_trend, gamma * (value - level - damped) + (1 - gamma) * season


@njit(cache=True)
def _one_step_errors(y: np.ndarray, alpha: float, beta: float, gamma: float, phi: float, level: float,
                     trend: float, seasons: np.ndarray) -> tuple[np.ndarray, float, float, np.ndarray]:
    """One-step errors over ``y`` and the states after it (the seasons with the next period's first)."""
    m = seasons.shape[0]
    season = seasons.copy()
    errors = np.empty(y.shape[0])
    for t in range(y.shape[0]):
        k = t % m
        errors[t] = y[t] - (level + phi * trend + season[k])
        level, trend, season[k] = _step(y[t], level, trend, season[k], alpha, beta, gamma, phi)
    return errors, level, trend, np.roll(season, -(y.shape[0] % m))


@njit(cache=True)
def _squared_errors(y: np.ndarray, alpha: float, beta: float, gamma: float, phi: float, level: float,
                    trend: float, seasons: np.ndarray) -> tuple[float, np.ndarray]:
    """The sum of squared one-step errors and its gradient in ``alpha, beta, gamma, phi``.

    The gradient is carried through the recursion (forward mode): each
    state's derivatives in the four weights are updated with the state, so
    one pass gives both, where a numerical gradient takes five passes and
    most of the optimiser's time.
    """
    m = seasons.shape[0]
    season = seasons.copy()
    d_level, d_trend, d_damped = np.zeros(4), np.zeros(4), np.zeros(4)
    d_season = np.zeros((m, 4))
    total, gradient = 0.0, np.zeros(4)
    for t in range(y.shape[0]):
        k = t % m
        damped = phi * trend
        error = y[t] - (level + damped + season[k])
        total += error * error
        new_level, new_trend, new_season = _step(y[t], level, trend, season[k], alpha, beta, gamma, phi)
        for j in range(4):  # the weights in order: alpha, beta, gamma, phi
            d_damped[j] = phi * d_trend[j] + (trend if j == 3 else 0.0)
            gradient[j] -= 2.0 * error * (d_level[j] + d_damped[j] + d_season[k, j])
            d_new_level = (1 - alpha) * (d_level[j] + d_damped[j]) - alpha * d_season[k, j] + (
                error if j == 0 else 0.0)
            d_trend[j] = beta * (d_new_level - d_level[j]) + (1 - beta) * d_damped[j] + (
                new_level - level - damped if j == 1 else 0.0)
            d_season[k, j] = (1 - gamma) * d_season[k, j] - gamma * (d_level[j] + d_damped[j]) + (
                error if j == 2 else 0.0)
            d_level[j] = d_new_level
        level, trend, season[k] = new_level, new_trend, new_season
    return total, gradient


@njit(cache=True)
def _paths(errors: np.ndarray, alpha: float, beta: float, gamma: float, phi: float, level: float,
           trend: float, seasons: np.ndarray) -> np.ndarray:
    """Simulated values (periods x draws): each draw's one-step errors added to the recursion."""
    horizon, draws = errors.shape
    m = seasons.shape[0]
    out = np.empty((horizon, draws))
    for d in range(draws):
        lev, tre, season = level, trend, seasons.copy()
        for h in range(horizon):
            k = h % m
            out[h, d] = lev + phi * tre + season[k] + errors[h, d]
            lev, tre, season[k] = _step(out[h, d], lev, tre, season[k], alpha, beta, gamma, phi)
    return out


def start_states(y: np.ndarray, season: int, trend: bool) -> tuple[float, float, np.ndarray]:
    """Start level, trend and seasons (``season`` values; one zero without a season), by the heuristic.

    With a season: a centred moving average over the first few seasons (at
    least two, at most five, enough for ten averages), the season the mean
    deviation from it per phase (summing to zero); the level and trend are
    those of a line through the first ten averages (or values).
    """
    if len(y) < _START_VALUES:
        raise ValueError(f"exponential smoothing needs at least {_START_VALUES} periods, got {len(y)}")
    seasons = np.zeros(1)
    smooth = y
    if season > 1:
        least = _START_VALUES + 2 * (season // 2)  # ten averages, and half a season lost at each end
        if len(y) < least:
            raise ValueError(f"a season of {season} periods needs {least} of them to start, got {len(y)}")
        cycles = max(min(5, len(y) // season), int(np.ceil(least / season)))
        first = y[:season * cycles]
        window = np.convolve(first, np.ones(season) / season, mode="valid")
        if season % 2 == 0:  # an even window is centred between two periods: average two neighbours
            window = (window[:-1] + window[1:]) / 2
        lead = season // 2
        deviation = np.full(season * cycles, np.nan)
        deviation[lead:lead + len(window)] = first[lead:lead + len(window)] - window
        seasons = np.nanmean(deviation.reshape(cycles, season), axis=0)
        seasons = seasons - seasons.mean()
        smooth = window
    # least squares through (1, v1) ... (10, v10), written out: a BLAS call on ten values costs more than it does
    steps, values = np.arange(1.0, _START_VALUES + 1), smooth[:_START_VALUES]
    slope = ((steps - steps.mean()) * (values - values.mean())).sum() / ((steps - steps.mean()) ** 2).sum()
    return float(values.mean() - slope * steps.mean()), float(slope) if trend else 0.0, seasons


@dataclass(frozen=True)
class EtsFit:
    """A fitted additive ETS: its weights, the states after the history, the one-step errors and the AICc."""

    alpha: float
    beta: float
    gamma: float
    phi: float
    level: float
    trend: float
    seasons: np.ndarray
    errors: np.ndarray
    aicc: float

    def paths(self, errors: np.ndarray) -> np.ndarray:
        """The values ahead (periods x draws) with ``errors`` (periods x draws) as each step's surprise."""
        return _paths(np.ascontiguousarray(errors, dtype=float), self.alpha, self.beta, self.gamma, self.phi,
                      self.level, self.trend, self.seasons)


def _weights(free: np.ndarray, trend: bool, seasonal: bool) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """``alpha, beta, gamma, phi`` from the optimiser's values in [0, 1] (and ``phi`` as it is), and the
    derivatives of the four in the optimiser's values (4 x free).

    ``beta`` is a share of ``alpha`` and ``gamma`` of ``1 - alpha``, so the
    box the optimiser searches holds the constraints ``beta <= alpha`` and
    ``gamma <= 1 - alpha`` (statsmodels' transformation).
    """
    jacobian = np.zeros((4, len(free)))
    jacobian[0, 0] = 1 - 2 * _EDGE
    alpha = _EDGE + free[0] * jacobian[0, 0]
    beta, gamma, phi = 0.0, 0.0, 1.0
    if trend:
        beta = free[1] * alpha
        jacobian[1, :2] = free[1] * jacobian[0, 0], alpha
        phi = float(free[-1])
        jacobian[3, -1] = 1.0
    if seasonal:
        share = free[1 + trend]
        gamma = share * (1 - alpha)
        jacobian[2, 0], jacobian[2, 1 + trend] = -share * jacobian[0, 0], 1 - alpha
    return (alpha, beta, gamma, phi), jacobian


def fit_ets(y: np.ndarray, season: int, damped_trend: bool) -> EtsFit:
    """Additive ETS on ``y`` (no gaps): with an additive season of ``season`` periods when ``y`` holds
    two, and a damped trend when ``damped_trend``; weights by least squares, states by the heuristic."""
    from scipy.optimize import minimize  # imported here: reading a forecast does not need it

    y = np.ascontiguousarray(y, dtype=float)
    seasonal = season > 1 and len(y) >= 2 * season
    m = season if seasonal else 1
    level, trend, seasons = start_states(y, m, damped_trend)
    alpha = 0.5 / m
    start = [(alpha - _EDGE) / (1 - 2 * _EDGE)] + [0.1] * damped_trend + [0.05] * seasonal + [0.99] * damped_trend
    bounds = [(0.0, 1.0)] * (1 + damped_trend + seasonal) + [_DAMPING] * damped_trend

    def squared_errors(free: np.ndarray) -> tuple[float, np.ndarray]:
        weights, jacobian = _weights(free, damped_trend, seasonal)
        total, gradient = _squared_errors(y, *weights, level, trend, seasons)
        return total, (gradient[:, None] * jacobian).sum(axis=0)  # no BLAS: see the module's last paragraph

    found = minimize(squared_errors, np.array(start), jac=True, bounds=bounds, method="L-BFGS-B")
    weights = _weights(found.x, damped_trend, seasonal)[0]
    errors, last_level, last_trend, last_seasons = _one_step_errors(y, *weights, level, trend, seasons)
    n, k = len(y), m * seasonal + 2 * damped_trend + 2 + damped_trend
    sse = float(np.square(errors).sum())
    penalty = 2 * (k + 2) * (k + 3) / (n - k - 3) if n - k - 3 > 0 else np.inf
    aicc = n * np.log(sse / n) + 2 * k + penalty if sse > 0 else -np.inf
    return EtsFit(*weights, last_level, last_trend, last_seasons, errors, float(aicc))


@cache
def load_compiled() -> None:
    """Load every compiled recursion into this process once (from numba's disk cache, else compiled).

    A process pool's workers forked after this inherit them, instead of each
    loading them again (about a second of CPU a worker).
    """
    fit_ets(np.arange(21.0) % 7, 7, damped_trend=True).paths(np.zeros((1, 1)))
