"""Forecasts of the journey's cash-flow series: Prophet, ETS and Theta per series, baselines, backtests, paths.

Input is a long frame ``unique_id, ds, y`` (plus any descriptive columns such
as stage, direction and segment, carried into the outputs). Typical use::

    from toolkit.forecast import StageForecaster
    result = StageForecaster(horizon=90).fit(series).predict()
    result.forecast      # unique_id, ds, yhat, yhat_lower, yhat_upper, model
    result.paths         # (unique_id, ds) x draw_0..draw_{n-1}, for cash positions
    result.diagnostics   # per series: status, model served, reason, backtest scores
    result.notes         # what was left out, assumed or is doubtful, one Note each

At scale (thousands of series) give the forecaster a directory: the tables are
written to Parquet as series finish and the sample paths are summed into the
net cash flow per day and draw instead of kept::

    stored = StageForecaster(horizon=90, store="forecast/").fit(series).predict()
    stored.forecast      # read from forecast/forecast.parquet
    stored.net_flow      # ds x draw_0..draw_{n-1}: what cash_position_from_net_flow takes

Modules: :mod:`.model` (the forecaster, the per-series task and the choice of
the served model), :mod:`.backtest` (rolling-origin evaluation), :mod:`.baselines`,
:mod:`.smoothing` (exponential smoothing and Theta on statsmodels),
:mod:`.methods` (one method's forecast and the finishing steps), :mod:`.checks`
(doubtful last days, plausibility of the forecast level), :mod:`.settings` (the
business's closed weekdays and closures, found once per run from all inflows), :mod:`.calendar`
(holiday country from currency and time zone),
:mod:`.backends` (serial, process pool or Dask cluster), :mod:`.net` (net cash flow of
paths), :mod:`.store` (the stored forecast), :mod:`.stan_io`.
"""

from toolkit.forecast.backends import BACKENDS, BackendError, run_tasks, stream_tasks
from toolkit.forecast.backtest import backtest
from toolkit.forecast.baselines import BASELINES, baseline_forecast
from toolkit.forecast.calendar import infer_holiday_country
from toolkit.forecast.checks import doubtful_last_days, plausibility, plausibility_table
from toolkit.forecast.methods import fit_prophet, prophet_forecast
from toolkit.forecast.model import (
    SERVED_MODELS,
    STATUSES,
    ChunkOutcome,
    ForecastResult,
    StageForecaster,
    calendar_notes,
    calibration_factor,
    choose_model,
    failed_chunk,
    failed_series,
    forecast_chunk,
    forecast_series,
)
from toolkit.forecast.net import net_flow_draws, stage_and_direction
from toolkit.forecast.settings import (
    MODELS,
    BusinessCalendar,
    ForecastError,
    ForecastSettings,
    business_calendar,
    closures,
    series_seed,
)
from toolkit.forecast.store import STORED_TABLES, StoredForecast

__all__ = [
    "BACKENDS",
    "BASELINES",
    "BackendError",
    "BusinessCalendar",
    "ChunkOutcome",
    "MODELS",
    "ForecastError",
    "ForecastResult",
    "ForecastSettings",
    "SERVED_MODELS",
    "STATUSES",
    "STORED_TABLES",
    "StageForecaster",
    "StoredForecast",
    "backtest",
    "baseline_forecast",
    "business_calendar",
    "calendar_notes",
    "calibration_factor",
    "choose_model",
    "closures",
    "doubtful_last_days",
    "failed_chunk",
    "failed_series",
    "fit_prophet",
    "forecast_chunk",
    "forecast_series",
    "infer_holiday_country",
    "net_flow_draws",
    "plausibility",
    "plausibility_table",
    "prophet_forecast",
    "run_tasks",
    "series_seed",
    "stage_and_direction",
    "stream_tasks",
]
