"""Forecasts of the journey's cash-flow series: Prophet per series, baselines, backtests, paths.

Input is a long frame ``unique_id, ds, y`` (plus any descriptive columns such
as stage, direction and segment, carried into the outputs). Typical use::

    from toolkit.forecast import StageForecaster
    result = StageForecaster(horizon=90).fit(series).predict()
    result.forecast      # unique_id, ds, yhat, yhat_lower, yhat_upper, model
    result.paths         # (unique_id, ds) x draw_0..draw_{n-1}, for cash positions
    result.diagnostics   # per series: status, model served, reason, backtest scores

Modules: :mod:`.model` (the forecaster and the per-series task),
:mod:`.backtest` (rolling-origin evaluation), :mod:`.baselines`,
:mod:`.methods` (one method's forecast and the finishing steps),
:mod:`.backends` (serial, process pool or Dask cluster), :mod:`.settings`, :mod:`.stan_io`.
"""

from toolkit.forecast.backends import BACKENDS, BackendError, run_tasks
from toolkit.forecast.backtest import backtest
from toolkit.forecast.baselines import BASELINES, baseline_forecast
from toolkit.forecast.methods import fit_prophet, prophet_forecast
from toolkit.forecast.model import (
    ForecastResult,
    StageForecaster,
    calibration_factor,
    failed_series,
    forecast_series,
)
from toolkit.forecast.settings import MODELS, ForecastError, ForecastSettings, series_seed

__all__ = [
    "BACKENDS",
    "BASELINES",
    "BackendError",
    "MODELS",
    "ForecastError",
    "ForecastResult",
    "ForecastSettings",
    "StageForecaster",
    "backtest",
    "baseline_forecast",
    "calibration_factor",
    "failed_series",
    "fit_prophet",
    "forecast_series",
    "prophet_forecast",
    "run_tasks",
    "series_seed",
]
