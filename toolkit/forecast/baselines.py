"""The two baselines every forecast must beat, with sample paths like Prophet's.

* ``seasonal_naive``: each period repeats the same period one season back
  (last week's Monday for next Monday).
* ``weekday_mean``: the mean of the same period over the last ``weeks``
  seasons (the last four Mondays for next Monday), a strong baseline on retail data.

Paths are simulated recursively: each step applies the rule to the history
extended by the path so far and adds a residual drawn (with replacement) from
the rule's in-sample one-step errors over the last year. Uncertainty so grows
with the horizon as it does for the rule itself, and a sum of paths over dates
or series stays a meaningful draw. Missing values (NaN, infinities) are skipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toolkit.forecast.smoothing import filled_values

__all__ = ["BASELINES", "baseline_forecast"]

BASELINES = ("seasonal_naive", "weekday_mean")

_RESIDUAL_WINDOW = 364


def _rule(values: np.ndarray, t: int | np.ndarray, method: str, season: int, weeks: int) -> np.ndarray:
    """The rule's forecast for position(s) ``t`` of ``values`` (draws x periods): draws, or draws x positions."""
    t = np.asarray(t)
    if method == "seasonal_naive":
        return values[:, t - season]
    lags = t[..., None] - season * np.arange(1, weeks + 1)
    window = np.where(lags >= 0, values[:, np.maximum(lags, 0)], np.nan)
    observed = np.isfinite(window)
    counts = observed.sum(axis=-1)
    sums = np.where(observed, window, 0.0).sum(axis=-1)
    return np.divide(sums, counts, out=np.full(counts.shape, np.nan), where=counts > 0)


def baseline_forecast(history: pd.DataFrame, dates: pd.DatetimeIndex, method: str, season: int,
                      n_draws: int, rng: np.random.Generator, weeks: int = 4,
                      closed: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Point forecast and sample paths of a baseline over ``dates``.

    Parameters
    ----------
    history : the series on a regular grid (``ds, y``), gaps as NaN.
    dates : the periods to forecast, directly after the history.
    method : ``"seasonal_naive"`` or ``"weekday_mean"``.
    closed : weekdays (Monday = 0) forecast as exactly zero.

    Returns
    -------
    ``(point, paths)``: arrays of shape ``(len(dates),)`` and ``(len(dates), n_draws)``.
    """
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose one of {BASELINES}")
    y = history["y"].to_numpy(dtype=float)
    y = np.where(np.isfinite(y), y, np.nan)
    n, horizon = len(y), len(dates)
    if method == "seasonal_naive" and n < season:
        raise ValueError(f"seasonal naive needs a full season ({season} periods), got {n}")
    if method == "seasonal_naive" or not np.isfinite(y).any():
        y = filled_values(y, season)
    overall = float(np.nanmean(y))
    closed_future = np.isin(dates.day_of_week, closed) if closed else np.zeros(horizon, bool)
    closed_past = np.isin(pd.DatetimeIndex(history["ds"]).day_of_week, closed) if closed else (
        np.zeros(n, bool))

    start = max(season, n - _RESIDUAL_WINDOW)
    fitted = _rule(y[None, :], np.arange(start, n), method, season, weeks)[0]
    residuals = (y[start:] - fitted)[np.isfinite(y[start:] - fitted) & ~closed_past[start:]]
    if residuals.size == 0:
        residuals = np.zeros(1)

    recent = y[-season * (1 if method == "seasonal_naive" else weeks):]  # all the rule looks back on

    def simulate(draws: int, noise: bool) -> np.ndarray:
        values = np.concatenate([np.tile(recent, (draws, 1)), np.zeros((draws, horizon))], axis=1)
        for step in range(horizon):
            t = len(recent) + step
            if closed_future[step]:
                continue
            guess = _rule(values, t, method, season, weeks)
            values[:, t] = np.where(np.isnan(guess), overall, guess)
            if noise:
                values[:, t] += residuals[rng.integers(residuals.size, size=draws)]
        return values[:, len(recent):]

    point = simulate(1, noise=False)[0]
    return point, simulate(n_draws, noise=True).T
