"""One forecast from one method: Prophet or a baseline, as a point forecast plus sample paths.

Every method returns *raw* paths; :func:`finish` then applies what the toolkit
adds on top, in this order: widen or narrow the spread around the point
forecast by the calibration factor, set closed weekdays to exactly zero, and
clip at zero flows that cannot be negative. Quantiles are always taken from the
finished paths, so intervals, paths and their sums agree with each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from toolkit.forecast.baselines import BASELINES, baseline_forecast
from toolkit.forecast.settings import ForecastSettings
from toolkit.forecast.stan_io import FastJsonModel, quiet_logging

if TYPE_CHECKING:
    from prophet import Prophet

__all__ = ["combine", "finish", "fit_prophet", "forecast_with", "interval", "prophet_forecast"]


def fit_prophet(history: pd.DataFrame, settings: ForecastSettings,
                closed: tuple[int, ...] = ()) -> Prophet:
    """Fit one Prophet model to a series (``ds, y``) with the toolkit's settings.

    Rows of closed weekdays that are zero are left out of the fit: Prophet has
    no notion of a closed day and would otherwise bend its weekly pattern
    towards them (their forecast is set to zero in :func:`finish`). Holidays of
    ``settings.holiday_country`` are added for daily series. ``yearly="auto"``
    leaves the choice to Prophet, which turns yearly seasonality on only with
    at least two years of history.
    """
    quiet_logging()  # before Prophet's import-time plotly notice
    from prophet import Prophet  # imported here: reading a stored forecast does not need it

    train = history[["ds", "y"]]
    if closed:
        train = train[~(train["ds"].dt.day_of_week.isin(closed) & (train["y"] == 0))]
    model = Prophet(yearly_seasonality=settings.yearly, interval_width=settings.interval_width,
                    uncertainty_samples=settings.uncertainty_samples, **settings.prophet_kwargs)
    if settings.holiday_country and settings.freq == "D":
        model.add_country_holidays(country_name=settings.holiday_country)
    model.stan_backend.model = FastJsonModel(model.stan_backend.model)
    return model.fit(train)


def prophet_forecast(model: Prophet, dates: pd.DatetimeIndex, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Prophet's point forecast (``yhat``) and its sample paths over ``dates``.

    Prophet draws from NumPy's global generator; it is seeded here and restored
    afterwards. The paths are exactly the draws ``Prophet.predict`` takes its
    interval from, so with a factor of 1 and nothing clipped the toolkit's
    interval equals Prophet's own.

    Both the paths and the point need the seasonality and holiday features of
    ``dates``, which Prophet would build twice (about a tenth of a whole
    series' forecast): they are built once and handed to both calls. They
    depend on the dates alone, so the numbers are Prophet's to the bit.
    """
    future = pd.DataFrame({"ds": dates})
    features = model.make_all_seasonality_features(model.setup_dataframe(future.copy()))
    model.make_all_seasonality_features = lambda df: features
    state = np.random.get_state()
    np.random.seed(seed)
    draws = model.uncertainty_samples
    try:
        paths = model.predictive_samples(future)["yhat"]
        model.uncertainty_samples = 0
        point = model.predict(future)["yhat"].to_numpy()
    finally:
        np.random.set_state(state)
        model.uncertainty_samples = draws
        del model.make_all_seasonality_features
    return point, np.asarray(paths, dtype=float)


def forecast_with(method: str, history: pd.DataFrame, dates: pd.DatetimeIndex,
                  settings: ForecastSettings, closed: tuple[int, ...], seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Raw point forecast and paths of ``method`` ("prophet" or a baseline); may raise."""
    if method == "prophet":
        return prophet_forecast(fit_prophet(history, settings, closed), dates, seed)
    if method in BASELINES:
        return baseline_forecast(history, dates, method, settings.season,
                                 settings.uncertainty_samples, np.random.default_rng(seed),
                                 weeks=settings.baseline_weeks, closed=closed)
    raise ValueError(f"unknown forecasting method {method!r}")


def combine(forecasts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of several methods' raw forecasts: point by point, and path by path per draw.

    Averaging draws of independent methods narrows the spread; the calibration
    (scored on the combination's own backtest windows) widens it back.
    """
    points, paths = zip(*forecasts)
    return np.mean(points, axis=0), np.mean(paths, axis=0)


def finish(point: np.ndarray, paths: np.ndarray, factor: float, closed_mask: np.ndarray,
           clip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Calibrate the spread, zero closed days and clip at zero (see the module docstring)."""
    paths = point[:, None] + factor * (paths - point[:, None])
    point = np.where(closed_mask, 0.0, point)
    paths = np.where(closed_mask[:, None], 0.0, paths)
    if clip:
        point, paths = np.maximum(point, 0.0), np.maximum(paths, 0.0)
    return point, paths


def interval(paths: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``width`` interval of the paths, per period (Prophet's percentiles)."""
    lower = np.percentile(paths, 100 * (1 - width) / 2, axis=1)
    upper = np.percentile(paths, 100 * (1 + width) / 2, axis=1)
    return lower, upper
