"""The journeycast forecast command end to end on the sample shop."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import SAMPLE_DIR
from toolkit.cli import main


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast")
    code = main(["forecast", str(SAMPLE_DIR), "--horizon", "28", "--out", str(out)])
    return code, out


def test_forecast_writes_every_table_and_a_summary(forecast_run):
    code, out = forecast_run
    assert code == 0
    for name in ("forecasts", "net_flow_paths", "diagnostics", "backtest", "cash_position",
                 "shortfall", "scenarios", "funnel", "kpis", "series"):
        assert not pd.read_parquet(out / f"{name}.parquet").empty, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["horizon"] == 28
    assert summary["data_period"] == ["2023-11-01", "2026-10-31"]
    ids = {s["unique_id"] for s in summary["series"]}
    assert {"purchase|inflow|all", "post-purchase|inflow|all", "operations|outflow|all"} <= ids
    assert all(s["status"] in {"ok", "fallback", "failed-over"} for s in summary["series"])
    assert 0.0 <= summary["cash"]["shortfall_probability"] <= 1.0


def test_cash_position_joins_the_actual_balance(forecast_run):
    _, out = forecast_run
    bands = pd.read_parquet(out / "cash_position.parquet")
    orders = pd.read_csv(SAMPLE_DIR / "orders.csv")
    costs = pd.read_csv(SAMPLE_DIR / "costs.csv")
    moved = orders.loc[orders.status != "cancelled", "amount"].sum() - costs.amount.sum()
    last_actual = bands.loc[~bands.is_forecast, "actual"].iloc[-1]
    assert last_actual == pytest.approx(200_000 + moved)  # opening balance from journeycast.yml
    future = bands[bands.is_forecast]
    assert len(future) == 28
    assert (future.p10 <= future.p50).all() and (future.p50 <= future.p90).all()


def test_forecast_on_a_missing_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["forecast", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "orders" in err and "nowhere" in err
