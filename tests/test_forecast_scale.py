"""The stored forecast against the in-memory one: same tables, same net cash flow, bounded results."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import SHORT_FORECAST
from toolkit.cash import cash_position, cash_position_from_net_flow
from toolkit.forecast import (
    STORED_TABLES,
    ChunkOutcome,
    ForecastError,
    StageForecaster,
    StoredForecast,
    forecast_chunk,
)
from toolkit.forecast.settings import business_calendar, split_series

LAST_DAY = pd.Timestamp("2025-04-30")


def _long(**series: np.ndarray) -> pd.DataFrame:
    """Series ending on the same day, ids ``stage|direction|segment`` given with '__' for '|'."""
    frames = []
    for name, y in series.items():
        uid = name.replace("__", "|")
        frames.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(end=LAST_DAY, periods=len(y)),
                                    "y": y, "direction": uid.split("|")[1]}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    """Inflows and outflows that Prophet serves, a closed weekday, a constant, a short and a broken one."""
    rng = np.random.default_rng(5)
    t = np.arange(120)
    closed = np.maximum(100 + 20 * rng.standard_normal(120), 0)
    closed[pd.date_range(end=LAST_DAY, periods=120).day_of_week == 6] = 0.0
    broken = 50 + rng.normal(0, 5, 120)
    broken[60] = np.inf  # Prophet refuses it: a baseline takes over
    return _long(purchase__inflow__new=200 + 40 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 10, 120),
                 awareness__outflow__search=50 + 0.5 * t + rng.normal(0, 5, 120),
                 purchase__inflow__repeat=closed,
                 operations__outflow__payroll=np.full(60, 300.0),
                 evaluation__outflow__trials=rng.uniform(1, 2, 10),
                 post_purchase__inflow__upsell=broken)


@pytest.fixture(scope="module")
def in_memory(series):
    return StageForecaster(backend="serial", **SHORT_FORECAST).fit(series).predict()


def _by_series(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def _signed_sum(paths: pd.DataFrame) -> pd.DataFrame:
    """Inflows minus outflows per day and draw, counted independently of the toolkit's sum."""
    direction = paths.index.get_level_values("unique_id").str.split("|").str[1]
    sign = np.where(direction == "inflow", 1.0, -1.0)
    return paths.mul(sign, axis=0).groupby(level="ds").sum()


def _assert_same_tables(stored: StoredForecast, expected, drop: str | None = None) -> None:
    """The stored tables hold exactly the in-memory rows (in the order the series finished)."""
    forecast, diagnostics = stored.forecast, stored.diagnostics
    if drop is not None:
        forecast = forecast[forecast["unique_id"] != drop]
        diagnostics = diagnostics[diagnostics["unique_id"] != drop]
    pd.testing.assert_frame_equal(_by_series(forecast, ["unique_id", "ds"]),
                                  _by_series(expected.forecast, ["unique_id", "ds"]))
    pd.testing.assert_frame_equal(_by_series(diagnostics, ["unique_id"]),
                                  _by_series(expected.diagnostics, ["unique_id"]))
    # The in-memory error column holds None objects; Parquet types it as text.
    keys = ["unique_id", "model", "fold"]
    pd.testing.assert_frame_equal(_by_series(stored.backtest, keys),
                                  _by_series(expected.backtest.astype({"error": "str"}), keys))
    # the same notes, in the order the series finished
    kept = [n for n in stored.notes if drop is None or f"Series {drop}:" not in n.text]
    assert sorted(kept, key=str) == sorted(expected.notes, key=str)


@pytest.mark.parametrize("backend", ["serial", "local"])
def test_stored_forecast_equals_the_in_memory_one(series, in_memory, backend, tmp_path):
    forecaster = StageForecaster(backend=backend, n_jobs=2, store=tmp_path, **SHORT_FORECAST).fit(series)
    stored = forecaster.predict()

    assert isinstance(stored, StoredForecast) and not hasattr(forecaster, "outcomes_")
    assert in_memory.notes  # e.g. levels far from the run-rate: the stored forecast keeps them too
    _assert_same_tables(stored, in_memory)
    # The net flow is the draw-by-draw sum of the paths the in-memory forecast keeps,
    # up to the rounding of adding chunk by chunk.
    truth = _signed_sum(in_memory.paths)
    assert forecaster.net_flow_.shape == (14, 100)
    np.testing.assert_allclose(forecaster.net_flow_.to_numpy(), truth.to_numpy(), rtol=1e-12, atol=1e-9)
    assert forecaster.net_flow_.index.equals(truth.index)
    pd.testing.assert_frame_equal(stored.net_flow, forecaster.net_flow_, check_freq=False)

    # ... so both give the same cash outlook.
    history = series[series["ds"] > LAST_DAY - pd.Timedelta(days=30)]
    from_paths = cash_position(history, in_memory.paths, 5000, 4000)
    from_net = cash_position_from_net_flow(history, stored.net_flow, 5000, 4000)
    pd.testing.assert_frame_equal(from_net.bands, from_paths.bands, rtol=1e-12)
    assert from_net.shortfall_probability == from_paths.shortfall_probability
    assert from_net.runway_days == from_paths.runway_days


def test_a_failing_series_is_flagged_and_the_others_stored_complete(series, in_memory, tmp_path):
    # Rows whose dates are all missing pass the input checks, but the series' task raises on them.
    undated = pd.DataFrame({"unique_id": "purchase|inflow|undated", "ds": pd.to_datetime([pd.NaT] * 5),
                            "y": np.arange(5.0), "direction": "inflow"})
    with_undated = pd.concat([series.iloc[:300], undated, series.iloc[300:]], ignore_index=True)
    forecaster = StageForecaster(backend="local", n_jobs=2, store=tmp_path, **SHORT_FORECAST).fit(with_undated)

    stored = StoredForecast(tmp_path)  # read back as another process would
    files = {p.name for p in tmp_path.iterdir()}
    assert {f"{t}.parquet" for t in STORED_TABLES} | {"net_flow.parquet"} <= files
    forecast = pq.read_table(stored.path("forecast")).to_pandas()
    served = set(in_memory.forecast["unique_id"])  # every series but the failing one
    assert forecast.groupby("unique_id").size().to_dict() == dict.fromkeys(served, 14)
    assert not forecast.duplicated(["unique_id", "ds"]).any()
    diagnostics = stored.diagnostics.set_index("unique_id")
    assert set(diagnostics.index) == set(with_undated["unique_id"])
    assert diagnostics.loc["purchase|inflow|undated", "status"] == "failed"
    assert diagnostics.loc["purchase|inflow|undated", "reason"].startswith(
        "the task failed on its worker: ValueError")
    assert diagnostics.loc["post_purchase|inflow|upsell", "status"] == "failed-over"
    failed = [n for n in stored.notes if n.text.startswith("Series purchase|inflow|undated:")]
    assert [n.level for n in failed] == ["warning"] and "forecast failed" in failed[0].text
    _assert_same_tables(stored, in_memory, drop="purchase|inflow|undated")
    np.testing.assert_allclose(forecaster.net_flow_.to_numpy(), _signed_sum(in_memory.paths).to_numpy(),
                               rtol=1e-12, atol=1e-9)


def test_a_chunk_task_returns_its_net_flow_not_its_paths(series, in_memory):
    settings = StageForecaster(**SHORT_FORECAST).settings()
    # the business's calendar is the whole run's, found before the chunks are mapped
    settings = replace(settings, calendar=business_calendar(split_series(series), settings))
    parts = split_series(series)[:5]
    outcome = forecast_chunk((parts, settings))

    assert isinstance(outcome, ChunkOutcome)
    assert set(vars(outcome)) == {"forecast", "diagnostics", "backtest", "net_flow", "notes"}
    for table in (outcome.forecast, outcome.diagnostics, outcome.backtest, outcome.notes):
        assert not table.columns.astype(str).str.startswith("draw_").any()
    # five series' 14 x 100 paths come back as one 14 x 100 sum
    assert outcome.net_flow.shape == (14, 100)
    assert len(outcome.forecast) == 5 * 14
    chosen = in_memory.paths.loc[[uid for uid, _, _ in parts]]
    np.testing.assert_allclose(outcome.net_flow.to_numpy(), _signed_sum(chosen).to_numpy(),
                               rtol=1e-12, atol=1e-9)


def test_series_ids_without_a_direction_are_refused_before_any_work(tmp_path):
    plain = pd.DataFrame({"unique_id": "sales", "ds": pd.date_range("2025-01-01", periods=30),
                          "y": np.arange(30.0)})
    with pytest.raises(ForecastError, match=re.escape("'sales' is not 'stage|direction|segment'")):
        StageForecaster(backend="serial", store=tmp_path, **SHORT_FORECAST).fit(plain)
    assert not any(tmp_path.iterdir())
