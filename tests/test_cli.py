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
    assert {"purchase|inflow|all", "post-purchase|inflow|all"} <= ids
    # payroll and rent are commitments in the sample: known ahead, so not forecast as a series too
    assert "operations|outflow|all" not in ids
    # every series served by a model that held its own in the backtest, none failed
    assert {s["status"] for s in summary["series"]} <= {"ok", "combined", "baseline"}
    assert 0.0 <= summary["cash"]["shortfall_probability"] <= 1.0


def test_cash_position_joins_the_actual_balance(forecast_run):
    _, out = forecast_run
    bands = pd.read_parquet(out / "cash_position.parquet")
    bank = pd.read_csv(SAMPLE_DIR / "balances.csv", parse_dates=["ts"]).sort_values("ts")
    last_actual = bands.loc[~bands.is_forecast, "actual"].iloc[-1]
    # the balance starts from the bank statement's last balance, on the data's last day
    assert bank["ts"].iloc[-1] == bands.loc[~bands.is_forecast, "ds"].iloc[-1]
    assert last_actual == pytest.approx(bank["balance"].iloc[-1])
    future = bands[bands.is_forecast]
    assert len(future) == 28
    assert (future.p10 <= future.p50).all() and (future.p50 <= future.p90).all()


def test_forecast_on_a_missing_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["forecast", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "orders" in err and "nowhere" in err


@pytest.fixture(scope="module")
def cdnow_dir(tmp_path_factory):
    """CDNOW's 1/10 sample as a shop's own transactions export: orders only, its own column names."""
    from conftest import TEST_DATA

    raw = pd.read_csv(TEST_DATA / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer", "date", "cds", "dollars"])
    folder = tmp_path_factory.mktemp("cdnow")
    pd.DataFrame({"TransactionID": [f"T{i:05d}" for i in range(len(raw))], "Customer": raw.customer,
                  "Date": raw.date.astype(str), "Total": raw.dollars, "Items": raw.cds}
                 ).to_csv(folder / "transactions.csv", index=False)
    (folder / "journeycast.yml").write_text(
        "sources:\n  orders:\n    path: transactions.csv\n"
        "    columns: {TransactionID: order_id, Customer: customer_id, Date: ts, Total: amount, Items: quantity}\n"
        "date_format: '%Y%m%d'\nopening_balance: 10000\nhorizon: 28\n")
    return folder


def test_orders_only_data_runs_forecast_and_opportunities(cdnow_dir, tmp_path):
    assert main(["forecast", str(cdnow_dir), "--out", str(tmp_path / "fc"), "--backend", "dask"]) == 0
    summary = json.loads((tmp_path / "fc" / "summary.json").read_text())
    assert summary["data_period"] == ["1997-01-01", "1998-06-30"]
    assert {s["unique_id"] for s in summary["series"]} >= {"purchase|inflow|all", "post-purchase|inflow|all"}

    assert main(["opportunities", str(cdnow_dir), "--out", str(tmp_path / "opp")]) == 0
    scores = pd.read_parquet(tmp_path / "opp" / "customer_scores.parquet")
    assert len(scores) == 2357  # every CDNOW customer scored
    assert scores.probability_alive.between(0, 1).all()


def test_opportunities_on_the_sample_share_safe_pseudonymised_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEYCAST_PSEUDONYM_KEY", "test-secret")
    out = tmp_path / "opp"
    assert main(["opportunities", str(SAMPLE_DIR), "--out", str(out), "--pseudonymise"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["upsell_check"]["auc"] > 0.65  # the planted upsell propensity is found
    assert summary["upsell_check"]["top_decile_lift"] > 2
    # every sample customer with a purchase gets an offer from their own history; the campaign is planned elsewhere
    assert summary["personal_offers"] == len(pd.read_csv(out / "personal_offers.csv")) > 0
    assert "campaign" not in summary and not (out / "campaign_targets.parquet").exists()
    shared = pd.read_csv(out / "upsell_offers.csv")
    assert shared.customer_id.str.fullmatch(r"cust-[0-9a-f]{12}").all()
    # no file of the output folder holds a raw customer id, Parquet included
    raw_ids = set(pd.read_csv(SAMPLE_DIR / "orders.csv").customer_id)
    for path in out.glob("*.parquet"):
        frame = pd.read_parquet(path)
        if "customer_id" in frame:
            assert not raw_ids & set(frame.customer_id), path.name
    assert set(pd.read_parquet(out / "upsell_offers.parquet").customer_id) == set(shared.customer_id)


def test_pseudonymising_without_a_key_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JOURNEYCAST_PSEUDONYM_KEY", raising=False)
    assert main(["opportunities", str(SAMPLE_DIR), "--out", str(tmp_path), "--pseudonymise"]) == 2
    assert "JOURNEYCAST_PSEUDONYM_KEY" in capsys.readouterr().err


# --------------------------------------------------------------------------- campaigns

def test_campaigns_on_the_sample_writes_measurement_scores_and_plan(tmp_path, capsys):
    out = tmp_path / "campaigns"
    assert main(["campaigns", str(SAMPLE_DIR), "--out", str(out), "--risk-limit", "0.5"]) == 0
    printed = capsys.readouterr().out
    for name in ("campaign_measurement", "uplift_quality", "uplift_scores", "campaign_plan", "campaign_runners_up",
                 "campaign_cash_bands"):
        assert (out / f"{name}.parquet").exists() and (out / f"{name}.csv").exists(), name
    measured = pd.read_csv(out / "campaign_measurement.csv")
    assert set(measured.campaign_id) == {"spring-2025", "autumn-2025", "spring-2026"}
    assert (measured.incremental_response > 0).all()
    plan = json.loads((out / "plan.json").read_text())
    assert plan["campaigns_measured"] == 3 and plan["lift_source"] in ("model", "measured")
    assert plan["recommendation"] in printed and plan["recommendation"].startswith(("Run the campaign", "Run no"))
    assert plan["plan"]["targets"] == len(pd.read_parquet(out / "campaign_plan.parquet"))
    # a risk limit beyond the configuration's range is refused before anything runs
    with pytest.raises(SystemExit):
        main(["campaigns", str(SAMPLE_DIR), "--out", str(out), "--risk-limit", "2"])
    assert "risk_limit" in capsys.readouterr().err


def test_campaigns_on_a_results_export_alone_measures_and_says_there_is_no_plan(tmp_path, capsys):
    from conftest import ROOT, TEST_DATA

    out = tmp_path / "hillstrom"
    data = ROOT.parent / "shared" / "data" / "hillstrom"
    assert main(["campaigns", str(data), "--config", str(TEST_DATA / "real" / "hillstrom.yml"),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    plan = json.loads((out / "plan.json").read_text())
    assert plan["plan"] is None and "No campaign is planned" in printed
    assert any("No campaign plan" in note["text"] for note in plan["notes"])
    measured = pd.read_csv(out / "campaign_measurement.csv")
    assert set(measured.variant) == {"Mens E-Mail", "Womens E-Mail"}
    assert not (out / "campaign_plan.csv").exists()
