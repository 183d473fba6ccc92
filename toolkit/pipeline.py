"""The run's steps in the order of the flow, shared by the command line and the notebooks.

Each step is a plain function of the previous step's output, so a notebook can
run them one cell at a time and the ``journeycast`` commands run them in a row:

    dataset = load("data/sample")                 # canonical tables + rejects
    view = journey(dataset)                       # funnel, time to convert, KPIs
    outlook = forecast_cash(dataset)              # series -> forecasts -> cash position
    write_tables(out_dir, forecast_tables(outlook))
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.cash import CashOutlook, Scenario, cash_position, compare_scenarios
from toolkit.config import Config, config_from_dict, load_config
from toolkit.errors import JourneycastError
from toolkit.flows import stage_flows
from toolkit.forecast import ForecastResult, StageForecaster
from toolkit.ingest import Ingested, load_tables
from toolkit.journey import TimeToConvert, cohort_retention, customer_stages, funnel, kpis, time_to_convert

__all__ = [
    "CashForecast",
    "Dataset",
    "JourneyView",
    "forecast_cash",
    "forecast_summary",
    "forecast_tables",
    "journey",
    "load",
    "write_summary",
    "write_tables",
]


@dataclass
class Dataset:
    """One data directory read under one configuration."""

    data_dir: Path
    config: Config
    ingested: Ingested

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The canonical tables (``orders``, and ``events``/``costs`` when present)."""
        return self.ingested.tables

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last timestamp across the tables."""
        stamps = [t.ts for t in self.tables.values() if len(t)]
        return min(s.min() for s in stamps), max(s.max() for s in stamps)


def load(data_dir: str | Path, config_file: str | Path | None = None,
         **overrides: Any) -> Dataset:
    """Read and validate a data directory; ``overrides`` replace configuration settings.

    Raises ``JourneycastError`` when no usable order remains, since every later
    step starts from the orders.
    """
    config = load_config(data_dir, config_file)
    if overrides:
        config = config_from_dict({**config.model_dump(), **overrides},
                                  source=f"settings {sorted(overrides)}")
    ingested = load_tables(data_dir, config)
    if not len(ingested.tables["orders"]):
        raise JourneycastError(f"{ingested.files['orders']}: no usable orders remain; "
                               "see the rejects for why")
    return Dataset(Path(data_dir), config, ingested)


@dataclass
class JourneyView:
    """How customers move through the stages, and the business's KPIs over time."""

    stages: pd.DataFrame
    funnel: pd.DataFrame
    time_to_purchase: TimeToConvert
    retention: pd.DataFrame
    kpis: pd.DataFrame


def journey(dataset: Dataset, freq: str = "MS", by: str | None = None) -> JourneyView:
    """Funnel (within the conversion window), time from first touch to purchase, cohorts, KPIs."""
    window = dataset.config.conversion_window_days
    stages = customer_stages(dataset.tables)
    return JourneyView(
        stages=stages,
        funnel=funnel(stages, window, by=by),
        time_to_purchase=time_to_convert(stages, "first_touch", "purchase", window),
        retention=cohort_retention(dataset.tables["orders"], freq=freq),
        kpis=kpis(dataset.tables, freq=freq, conversion_window_days=window),
    )


@dataclass
class CashForecast:
    """Stage series, their forecasts, and the cash position they add up to."""

    series: pd.DataFrame
    result: ForecastResult
    outlook: CashOutlook
    scenarios: pd.DataFrame


def forecast_cash(dataset: Dataset, horizon: int | None = None, segment: str | None = None,
                  scenarios: Iterable[Scenario | Mapping[str, Any]] = (),
                  **forecaster_options: Any) -> CashForecast:
    """Forecast every stage series and turn the sample paths into a cash position.

    ``forecaster_options`` go to ``StageForecaster`` (e.g. ``backend``,
    ``progress``, ``uncertainty_samples``); the configuration gives the rest.
    """
    config = dataset.config
    series = stage_flows(dataset.tables, freq=config.frequency, segment=segment)
    if horizon is not None:
        forecaster_options["horizon"] = horizon
    result = StageForecaster.from_config(config, **forecaster_options).fit(series).predict()
    outlook = cash_position(series, result.paths, config.opening_balance, config.minimum_cash)
    comparison = compare_scenarios(series, result.paths, list(scenarios),
                                   config.opening_balance, config.minimum_cash)
    return CashForecast(series, result, outlook, comparison)


def forecast_tables(cash: CashForecast, view: JourneyView | None = None) -> dict[str, pd.DataFrame]:
    """The tables a forecast run publishes, by file stem."""
    net_draws = cash.outlook.balance_draws.diff()
    net_draws.iloc[0] = cash.outlook.balance_draws.iloc[0] - cash.outlook.bands.actual.dropna().iloc[-1]
    quantiles = np.quantile(net_draws.to_numpy(), [0.1, 0.5, 0.9], axis=1)
    tables = {
        "series": cash.series,
        "forecasts": cash.result.forecast,
        "net_flow_paths": pd.DataFrame({"ds": net_draws.index, "p10": quantiles[0],
                                        "p50": quantiles[1], "p90": quantiles[2],
                                        "mean": net_draws.mean(axis=1).to_numpy()}),
        "diagnostics": cash.result.diagnostics,
        "backtest": cash.result.backtest,
        "cash_position": cash.outlook.bands,
        "shortfall": cash.outlook.shortfall,
        "scenarios": cash.scenarios,
    }
    if view is not None:
        tables |= {"funnel": view.funnel, "kpis": view.kpis, "retention": view.retention}
    return tables


def forecast_summary(dataset: Dataset, cash: CashForecast) -> dict[str, Any]:
    """What a forecast run found, as plain JSON-ready values."""
    first, last = dataset.period
    diagnostics = cash.result.diagnostics
    score_columns = [c for c in diagnostics.columns if c.endswith(("_mae", "_mase", "_coverage"))]
    series = [
        {"unique_id": row.unique_id, "status": row.status, "model": row.model,
         "fallback": row.status != "ok", "reason": row.reason,
         "backtest": {c: _plain(getattr(row, c)) for c in score_columns}}
        for row in diagnostics.itertuples()
    ]
    return {
        "data_period": [f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"],
        "horizon": int(cash.result.forecast.ds.nunique()),
        "currency": dataset.config.currency,
        "cash": {k: _plain(v) for k, v in cash.outlook.summary().items()},
        "series": series,
    }


def _plain(value: Any) -> Any:
    """A JSON-ready version of a number, date or missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_tables(out_dir: str | Path, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """Write each table as ``<out_dir>/<name>.parquet``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = out / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths


def write_summary(out_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` (dates as ISO strings)."""
    path = Path(out_dir) / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=_plain) + "\n", encoding="utf-8")
    return path
