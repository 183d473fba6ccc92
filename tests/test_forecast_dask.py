"""The Dask backend against the local one: the same numbers, failed tasks flagged, any cluster."""

from __future__ import annotations

import logging
import multiprocessing
import os

import dask
import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster

from conftest import SHORT_FORECAST
from toolkit.forecast import (
    BackendError,
    ForecastSettings,
    StageForecaster,
    baseline_forecast,
    failed_series,
    run_tasks,
    series_seed,
)
from toolkit.forecast.backends import DASK_RETRIES
from toolkit.forecast.settings import future_dates, regular_history



def _long(**series: np.ndarray) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "y": y, "stage": f"stage-of-{uid}",
                                    "ds": pd.date_range("2025-01-01", periods=len(y), freq="D")})
                      for uid, y in series.items()], ignore_index=True)


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    """Short series: two Prophet can serve, a shop closed on Sundays, and two baselines serve."""
    rng = np.random.default_rng(11)
    t = np.arange(120)
    weekly = 200 + 40 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 10, 120)
    trend = 50 + 0.5 * t + rng.normal(0, 5, 120)
    closed = np.maximum(100 + 20 * rng.standard_normal(120), 0)
    closed[pd.date_range("2025-01-01", periods=120, freq="D").day_of_week == 6] = 0.0
    return _long(weekly=weekly, trend=trend, closed=closed, zero=np.zeros(60),
                 short=rng.uniform(1, 2, 10))


@pytest.fixture(scope="module")
def cluster():
    """A running two-worker cluster, reached by its scheduler's address as a remote one would be."""
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as running:
        yield running


@pytest.fixture(scope="module")
def local_result(series):
    return StageForecaster(backend="local", n_jobs=2, **SHORT_FORECAST).fit(series).predict()


@pytest.fixture(scope="module")
def dask_result(series, cluster):
    return StageForecaster(backend="dask", scheduler_address=cluster.scheduler_address,
                           **SHORT_FORECAST).fit(series).predict()


def test_dask_gives_the_local_backends_numbers(local_result, dask_result):
    statuses = set(dask_result.diagnostics["status"])
    assert "fallback" in statuses and statuses <= {"ok", "combined", "baseline", "fallback"}
    assert dask_result.notes == local_result.notes
    pd.testing.assert_frame_equal(dask_result.forecast, local_result.forecast)
    pd.testing.assert_frame_equal(dask_result.paths, local_result.paths)
    pd.testing.assert_frame_equal(dask_result.diagnostics, local_result.diagnostics)
    pd.testing.assert_frame_equal(dask_result.backtest, local_result.backtest)


def test_a_task_failing_on_its_worker_is_retried_then_flagged_and_the_others_kept(
        series, cluster, dask_result):
    # A corrupt export: rows of a series whose dates are all missing. They pass
    # the input checks (pandas parses them as NaT), and the per-series task
    # itself raises on them, outside its own handling of Prophet failures.
    undated = pd.DataFrame({"unique_id": "undated", "ds": pd.to_datetime([pd.NaT] * 5),
                            "y": np.arange(5.0), "stage": "stage-of-undated"})
    with_undated = pd.concat([undated, series], ignore_index=True)
    with pytest.raises(ValueError, match="NaT"):
        StageForecaster(backend="serial", **SHORT_FORECAST).fit(with_undated)

    result = StageForecaster(backend="dask", scheduler_address=cluster.scheduler_address,
                             **SHORT_FORECAST).fit(with_undated).predict()

    flagged = result.diagnostics.set_index("unique_id").loc["undated"]
    assert flagged["status"] == "failed"
    assert flagged["reason"].startswith("the task failed on its worker: ValueError")
    assert flagged["stage"] == "stage-of-undated"
    assert "undated" not in set(result.forecast["unique_id"])
    others = result.diagnostics[result.diagnostics["unique_id"] != "undated"].reset_index(drop=True)
    pd.testing.assert_frame_equal(others, dask_result.diagnostics)
    pd.testing.assert_frame_equal(result.forecast, dask_result.forecast)
    pd.testing.assert_frame_equal(result.paths, dask_result.paths)

    # The scheduler ran the failing task once plus once per retry.
    stories = {}
    for key, _, finish, *_ in cluster.scheduler.transition_log:
        if finish == "processing":
            stories[key] = stories.get(key, 0) + 1
    assert max(stories.values()) == 1 + DASK_RETRIES


def test_a_stored_forecast_on_dask_equals_the_in_memory_one_with_a_failing_series(
        series, cluster, tmp_path):
    directions = {"weekly": "inflow", "trend": "outflow", "closed": "inflow", "zero": "outflow",
                  "short": "inflow", "undated": "inflow"}
    undated = pd.DataFrame({"unique_id": "undated", "ds": pd.to_datetime([pd.NaT] * 5),
                            "y": np.arange(5.0), "stage": "stage-of-undated"})
    flows = pd.concat([series, undated], ignore_index=True)
    flows["unique_id"] = flows["stage"] + "|" + flows["unique_id"].map(directions) + "|all"
    failing = "stage-of-undated|inflow|all"
    in_memory = StageForecaster(backend="local", n_jobs=2, **SHORT_FORECAST).fit(
        flows[flows["unique_id"] != failing]).predict()

    forecaster = StageForecaster(backend="dask", scheduler_address=cluster.scheduler_address,
                                 store=tmp_path, **SHORT_FORECAST).fit(flows)
    stored = forecaster.predict()

    diagnostics = stored.diagnostics.set_index("unique_id")
    assert diagnostics.loc[failing, "status"] == "failed"
    assert diagnostics.loc[failing, "reason"].startswith("the task failed on its worker: ValueError")
    forecast = stored.forecast.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(forecast, in_memory.forecast.sort_values(["unique_id", "ds"])
                                  .reset_index(drop=True))
    pd.testing.assert_frame_equal(diagnostics.drop(index=failing).sort_index(),
                                  in_memory.diagnostics.set_index("unique_id").sort_index())
    np.testing.assert_allclose(forecaster.net_flow_.to_numpy(), in_memory.net_flow.to_numpy(),
                               rtol=1e-12, atol=1e-9)


def test_a_task_whose_worker_dies_gets_the_fallback_and_the_others_their_results():
    def die_on_three(x: int) -> int:
        if x == 3:
            os._exit(1)  # the worker process ends mid-task, as when it is killed
        return 10 * x

    results = run_tasks(die_on_three, range(8), backend="dask", n_jobs=2, progress=False,
                        on_failure=lambda task, error: (task, type(error).__name__))
    assert results == [0, 10, 20, (3, "KilledWorker"), 40, 50, 60, 70]


def test_failed_series_is_served_by_the_weekday_mean_of_its_history(series):
    settings = ForecastSettings(**{k: v for k, v in SHORT_FORECAST.items() if k != "progress"})
    frame = series.loc[series["unique_id"] == "weekly", ["ds", "y"]].reset_index(drop=True)
    outcome = failed_series(("weekly", frame, settings), MemoryError("worker killed"))

    history = regular_history(frame, "D")
    dates = future_dates(history["ds"].iloc[-1], settings.horizon, "D")
    point, paths = baseline_forecast(history, dates, "weekday_mean", 7, settings.uncertainty_samples,
                                     np.random.default_rng(series_seed(settings.seed, "weekly")))
    np.testing.assert_array_equal(outcome.dates, dates)
    np.testing.assert_array_equal(outcome.point, np.maximum(point, 0))
    np.testing.assert_array_equal(outcome.paths, np.maximum(paths, 0))
    assert outcome.model == "weekday_mean"
    assert outcome.diagnostics["status"] == "failed"
    assert outcome.diagnostics["reason"] == "the task failed on its worker: MemoryError: worker killed"
    assert outcome.diagnostics["n_obs"] == 120


def test_tasks_run_with_cmdstanpy_silenced_on_workers_this_process_did_not_start(cluster):
    silenced = run_tasks(lambda _: logging.getLogger("cmdstanpy").disabled, range(4), backend="dask",
                         scheduler_address=cluster.scheduler_address, progress=False)
    assert silenced == [True] * 4


def test_dask_without_address_runs_its_own_cluster_and_closes_it(series, local_result):
    before = set(multiprocessing.active_children())
    two = series[series["unique_id"].isin(["weekly", "short"])]
    result = StageForecaster(backend="dask", n_jobs=2, **SHORT_FORECAST).fit(two).predict()

    assert set(multiprocessing.active_children()) <= before
    expected = local_result.forecast[local_result.forecast["unique_id"].isin(["weekly", "short"])]
    pd.testing.assert_frame_equal(result.forecast, expected.reset_index(drop=True))
    assert result.diagnostics.set_index("unique_id").loc["weekly", "model"] in ("prophet", "combined")


def test_unreachable_scheduler_is_a_clear_error():
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(
            BackendError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_tasks(abs, [1], backend="dask", scheduler_address="tcp://127.0.0.1:9", progress=False)


def test_scheduler_address_needs_the_dask_backend():
    with pytest.raises(ValueError, match="needs backend='dask'"):
        StageForecaster(backend="local", scheduler_address="tcp://127.0.0.1:8786").fit(_long(a=np.ones(30)))
