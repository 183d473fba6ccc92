"""The rolling-forecast loop and the what-if helpers of the pipeline, on small hand-built frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLE_DIR
from toolkit import charts
from toolkit.cash import scenario_from_dict
from toolkit.pipeline import (dated_scenario, forecast_from_record, forecast_record, forecast_variance,
                              headline_changes, recorded)

AS_OF = pd.Timestamp("2026-10-31")
IDS = ["purchase|inflow|all", "operations|outflow|all"]


def _forecast(start: str, days: int) -> pd.DataFrame:
    """Purchase inflow forecast at 100 a day (band 80..120), payroll at 50 a day (band 50..50)."""
    ds = pd.date_range(start, periods=days, freq="D")
    return pd.DataFrame({
        "unique_id": pd.array(np.repeat(IDS, days), dtype="str"),
        "ds": np.tile(ds.to_numpy(), 2),
        "yhat": np.repeat([100.0, 50.0], days),
        "yhat_lower": np.repeat([80.0, 50.0], days),
        "yhat_upper": np.repeat([120.0, 50.0], days),
    })


def _actuals(start: str, purchase: list[float], payroll: list[float]) -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(purchase), freq="D")
    return pd.DataFrame({
        "unique_id": pd.array(np.repeat(IDS, len(ds)), dtype="str"),
        "ds": np.tile(ds.to_numpy(), 2),
        "y": np.array(purchase + payroll, dtype=float),
    })


def test_forecast_record_is_json_and_reads_back_to_the_same_forecast():
    forecast = _forecast("2026-11-01", 5)
    forecast.loc[0, "yhat"] = 100.004  # kept to the cent
    record = json.loads(json.dumps(forecast_record(forecast)))
    back = forecast_from_record(record)
    expected = forecast.assign(yhat=forecast["yhat"].round(2))
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert back["ds"].dtype == "datetime64[ns]"


def test_variance_counts_only_the_days_both_cover():
    forecast = _forecast("2026-11-01", 10)
    # Actuals from 29 Oct: the first three days came before the forecast and must not count.
    actuals = _actuals("2026-10-29", [999.0, 999.0, 999.0, 90.0, 130.0, 100.0],
                       [0.0, 0.0, 0.0, 50.0, 50.0, 60.0])
    table = forecast_variance(forecast, actuals).set_index("unique_id")
    purchase = table.loc["purchase|inflow|all"]
    assert (purchase["first_day"], purchase["last_day"], purchase["days"]) == (
        pd.Timestamp("2026-11-01"), pd.Timestamp("2026-11-03"), 3)
    assert purchase["forecast"] == 300.0 and purchase["actual"] == 320.0
    assert purchase["variance"] == 20.0 and purchase["variance_pct"] == pytest.approx(20 / 300)
    assert purchase["within_band"] == pytest.approx(2 / 3)  # 130 lies above the 120 upper bound
    payroll = table.loc["operations|outflow|all"]
    assert (payroll["stage"], payroll["direction"]) == ("operations", "outflow")
    assert payroll["variance"] == 10.0 and payroll["within_band"] == pytest.approx(2 / 3)


def test_variance_is_empty_when_nothing_happened_since():
    forecast = _forecast("2026-11-01", 10)
    actuals = _actuals("2026-10-20", [1.0] * 12, [1.0] * 12)  # ends 31 Oct
    assert forecast_variance(forecast, actuals).empty
    assert forecast_variance(forecast_from_record({}), actuals).empty


def test_variance_pct_is_missing_when_nothing_was_forecast():
    forecast = _forecast("2026-11-01", 2).assign(yhat=0.0)
    table = forecast_variance(forecast, _actuals("2026-11-01", [5.0, 5.0], [0.0, 0.0]))
    assert table["variance_pct"].isna().all()
    assert table["variance"].tolist() == [10.0, 0.0]


def test_recorded_finds_a_record_in_any_notebook_of_a_run():
    run = {"notebooks": [{"name": "01", "records": {"data_period": {}}},
                         {"name": "03", "records": {"stage_forecast": {"a": 1}}},
                         {"name": "04", "records": None}]}
    assert recorded(run, "stage_forecast") == {"a": 1}
    assert recorded(run, "headline") is None
    assert recorded(None, "headline") is None


def test_headline_changes_subtracts_numbers_only():
    table = headline_changes({"runway (days)": 90, "data through": "2026-09-30", "shortfall probability": 0.1},
                             {"runway (days)": 60, "data through": "2026-10-31", "shortfall probability": 0.25,
                              "campaign expected profit": 500.0})
    change = table.set_index("measure")["change"]
    assert change["runway (days)"] == -30
    assert change["shortfall probability"] == pytest.approx(0.15)
    assert pd.isna(change["data through"]) and pd.isna(change["campaign expected profit"])
    first = headline_changes(None, {"runway (days)": 60})
    assert first["previous"].isna().all() and first["now"].tolist() == [60]


def test_scenario_dates_as_days_after_the_last_actual_day():
    given = {"name": "push", "adjustments": [
        {"type": "outflow_change", "stage": "awareness", "pct": 20, "start": 1},
        {"type": "demand_shock", "pct": -10, "start": "2026-12-01", "end": 45},
        {"type": "one_off_cost", "date": 14, "amount": 1000.0},
        {"type": "receipt_delay", "days": 7},
    ]}
    scenario = scenario_from_dict(dated_scenario(given, AS_OF + pd.Timedelta(hours=18)))
    shift, shock, cost, delay = scenario.adjustments
    assert shift.start == pd.Timestamp("2026-11-01")
    assert (shock.start, shock.end) == (pd.Timestamp("2026-12-01"), pd.Timestamp("2026-12-15"))
    assert cost.date == pd.Timestamp("2026-11-14")
    assert delay.days == 7  # not a date: left alone
    assert given["adjustments"][0]["start"] == 1  # the parameters are not modified


def test_what_if_changes_only_what_the_sliders_say(sample_config):
    """Ten forecast days: purchases bring 100 a day, awareness costs 50 a day, in every draw."""
    from pathlib import Path

    from toolkit.cash import cash_position
    from toolkit.forecast import ForecastResult
    from toolkit.pipeline import CashForecast, Dataset, what_if

    history = pd.DataFrame({"unique_id": ["purchase|inflow|all"], "ds": [AS_OF], "y": [0.0],
                            "stage": ["purchase"], "direction": ["inflow"], "segment": ["all"]})
    days = pd.date_range(AS_OF + pd.Timedelta(days=1), periods=10, freq="D")
    ids = ["purchase|inflow|all", "awareness|outflow|all"]
    index = pd.MultiIndex.from_arrays([np.repeat(ids, 10), np.tile(days.to_numpy(), 2)], names=["unique_id", "ds"])
    paths = pd.DataFrame(np.repeat([[100.0] * 3, [50.0] * 3], 10, axis=0), index=index,
                         columns=[f"draw_{i}" for i in range(3)])
    config = sample_config
    outlook = cash_position(history, paths, config.opening_balance, config.minimum_cash)
    cash = CashForecast(config, history, ForecastResult(pd.DataFrame(), paths, pd.DataFrame(), pd.DataFrame()),
                        outlook, pd.DataFrame())
    recompute = what_if(Dataset(Path("."), config, None), cash)
    ending = outlook.summary()["ending_p50"]

    unchanged, comparison = recompute("awareness", 0, 0, 0)
    assert unchanged.summary()["ending_p50"] == ending
    assert list(comparison["scenario"]) == ["baseline", "what-if"]

    costlier, _ = recompute("awareness", 20, 0, 0)  # 10 more a day
    assert costlier.summary()["ending_p50"] == pytest.approx(ending - 100)
    fewer_sales, _ = recompute("awareness", 0, -50, 0)  # 50 less a day
    assert fewer_sales.summary()["ending_p50"] == pytest.approx(ending - 500)
    late, _ = recompute("awareness", 0, 0, 3)  # the last three days' receipts fall past the horizon
    assert late.summary()["ending_p50"] == pytest.approx(ending - 300)


def _stored(store, function: str) -> list:
    """The results ``function`` keeps in the result store at ``store``."""
    return list(store.rglob(f"{function}/*/output.pkl"))


def test_result_store_serves_the_same_forecast_and_only_for_the_same_inputs(tmp_path, monkeypatch):
    from toolkit.pipeline import forecast_cash, load, result_store

    monkeypatch.chdir(tmp_path)  # the store lives under the working directory
    dataset = load(SAMPLE_DIR)
    options = dict(horizon=14, uncertainty_samples=50, backtest_folds=0, progress=False)
    first = forecast_cash(dataset, backend="local", **options)
    assert len(_stored(tmp_path / ".cache" / "results", "_fit_predict")) == 1
    again = forecast_cash(dataset, backend="serial", **options)  # how it runs is not part of the key
    assert len(_stored(tmp_path / ".cache" / "results", "_fit_predict")) == 1
    pd.testing.assert_frame_equal(first.result.paths, again.result.paths)
    other = forecast_cash(dataset, **{**options, "horizon": 7})
    assert len(_stored(tmp_path / ".cache" / "results", "_fit_predict")) == 2
    assert other.result.forecast.ds.nunique() == 7
    monkeypatch.setenv("JOURNEYCAST_STORE", str(tmp_path / "elsewhere"))
    forecast_cash(dataset, **options)
    assert len(_stored(tmp_path / "elsewhere", "_fit_predict")) == 1
    monkeypatch.setenv("JOURNEYCAST_STORE", "off")
    assert result_store() is None


def test_stored_opportunities_equal_a_fresh_scoring(tmp_path, monkeypatch):
    from toolkit.pipeline import load, opportunities

    monkeypatch.chdir(tmp_path)
    dataset = load(SAMPLE_DIR)
    stored = opportunities(dataset, horizon=30)
    assert len(_stored(tmp_path / ".cache" / "results", "_score_customers")) == 1
    served = opportunities(dataset, horizon=30)  # read back from the store
    monkeypatch.setenv("JOURNEYCAST_STORE", "off")
    fresh = opportunities(dataset, horizon=30)
    for found in (served, fresh):
        for table in ("customers", "repurchase", "upsell"):
            pd.testing.assert_frame_equal(getattr(found, table), getattr(stored, table))
        assert found.model.params_ == stored.model.params_
    assert served.model.probability_alive().equals(fresh.model.probability_alive())


def test_the_next_page_reads_the_campaign_study_from_the_store(tmp_path, monkeypatch):
    # The next page loads the data, the forecast and the scores back from the store: new tables that
    # share no ids with each other. It must find the study the first page made, and a new budget must not.
    from conftest import SHORT_FORECAST
    from toolkit.pipeline import campaign_evidence, campaign_study, forecast_cash, load, opportunities

    monkeypatch.chdir(tmp_path)
    store = tmp_path / ".cache" / "results"

    def page() -> tuple:
        dataset = load(SAMPLE_DIR)
        return dataset, forecast_cash(dataset, **{**SHORT_FORECAST, "horizon": 30}), opportunities(dataset, horizon=30)

    first = campaign_study(*page())
    assert len(_stored(store, "_campaign_study")) == 1
    assert len(_stored(store, "_campaign_evidence")) == 1  # the study's measurement and uplift check
    dataset, cash, found = page()
    again = campaign_study(dataset, cash, found)
    assert len(_stored(store, "_campaign_study")) == 1
    pd.testing.assert_frame_equal(again.plan.targets, first.plan.targets)
    assert again.plan.expected_profit == first.plan.expected_profit and again.notes == first.notes
    campaign_study(dataset, cash, found, budget=500.0)
    assert len(_stored(store, "_campaign_study")) == 2
    # a page that asks for the evidence first (before it waits for the scores) gets the same, once
    evidence = campaign_evidence(dataset)
    assert len(_stored(store, "_campaign_evidence")) == 1
    assert evidence.uplift.qini == first.uplift.qini and evidence.results.table.equals(first.results.table)


def test_load_reads_the_files_again_only_when_one_changed(tmp_path, monkeypatch):
    import shutil

    from toolkit import pipeline

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "shop"
    shutil.copytree(SAMPLE_DIR, data)
    reads, read = [], pipeline.load_tables
    monkeypatch.setattr(pipeline, "load_tables", lambda *args: reads.append(args) or read(*args))
    first = pipeline.load(data)
    again = pipeline.load(data)
    assert len(reads) == 1  # every page of a report loads: the second is served from the store
    for name, table in first.tables.items():
        pd.testing.assert_frame_equal(again.tables[name], table)
    pd.testing.assert_frame_equal(again.ingested.rejects, first.ingested.rejects)
    with (data / "orders.csv").open("a") as out:
        out.write("O099998,C00004,2026-10-31 23:00:00,10.00,repeat,ESS-01,1,completed\n")
    changed = pipeline.load(data)
    assert len(reads) == 2 and changed.ingested.counts["orders"]["accepted"] == (
        first.ingested.counts["orders"]["accepted"] + 1)
    with (data / "orders.csv").open("a") as out:  # a row dated after now may be valid by the next read
        out.write("O099999,C00004,2099-01-01 09:00:00,10.00,repeat,ESS-01,1,completed\n")
    future = pipeline.load(data)
    assert "timestamp after now" in set(future.ingested.rejects["reason"].str[:19])
    before = len(reads)
    pipeline.load(data)
    assert len(reads) > before


def _counted_sum(log: str, values: tuple[int, ...]) -> int:
    """Sum ``values`` slowly, leaving a line in ``log`` per computation."""
    import time
    from pathlib import Path

    with Path(log).open("a") as out:
        out.write("computed\n")
    time.sleep(3)  # long enough for the other process to ask meanwhile
    return sum(values)


def _stored_sum(root: str, log: str) -> int:
    import os

    from toolkit.pipeline import computed_once

    os.chdir(root)
    return computed_once(_counted_sum, log, (1, 2, 3), ignore=("log",))


def _counted_total(log: str, frame: pd.DataFrame) -> float:
    """Total of ``frame.amount``, leaving a line in ``log`` per computation."""
    from pathlib import Path

    with Path(log).open("a") as out:
        out.write("computed\n")
    return float(frame["amount"].sum())


def test_a_table_used_in_between_is_still_found_in_the_store(tmp_path, monkeypatch):
    # A table with text and date columns that went through to_numpy pickles differently (pandas keeps a
    # cache on it); the same rows must still be the same key, or every page recomputes.
    from toolkit.pipeline import computed_once

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "computations.log"
    frame = pd.DataFrame({"customer_id": pd.array(["a", None, "c"], dtype="string"),
                          "ts": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]), "amount": [1.0, 2.0, 4.0]})
    assert computed_once(_counted_total, str(log), frame, ignore=("log",)) == 7.0
    frame.to_numpy()
    assert computed_once(_counted_total, str(log), frame, ignore=("log",)) == 7.0
    assert log.read_text().splitlines() == ["computed"]


def test_two_processes_asking_for_the_same_result_compute_it_once(tmp_path):
    """The second process waits for the first one's result instead of computing it too."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    log = tmp_path / "computations.log"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_stored_sum, [str(tmp_path)] * 2, [str(log)] * 2))
    assert results == [6, 6]
    assert log.read_text().splitlines() == ["computed"]


# ---------------------------------------------------------------- exports without costs or a balance


def _orders_only_dataset(**settings):
    """CDNOW's 1/10 sample as canonical orders: no events, no costs, only what the settings say."""
    from pathlib import Path

    from conftest import TEST_DATA
    from toolkit.config import config_from_dict
    from toolkit.ingest import Ingested
    from toolkit.pipeline import Dataset

    raw = pd.read_csv(TEST_DATA / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer", "date", "cds", "dollars"])
    orders = pd.DataFrame({
        "order_id": [f"T{i:05d}" for i in range(len(raw))],
        "customer_id": raw["customer"].astype(str).astype("str"),
        "ts": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d").astype("datetime64[ns]"),
        "amount": raw["dollars"].astype(float), "sku": "CD", "quantity": raw["cds"].astype("int64"),
        "status": "completed",
    })
    orders.insert(4, "order_type", np.where(orders.groupby("customer_id").cumcount() == 0, "new", "repeat"))
    config = config_from_dict({"currency": "GBP", "timezone": "Europe/London", **settings})
    return Dataset(Path("."), config, Ingested({"orders": orders}, rejects=pd.DataFrame()))


#: The scenarios notebook 04 compares by default (dates as days after the data).
DEFAULT_SCENARIOS = [
    {"name": "marketing push +30%",
     "adjustments": [{"type": "outflow_change", "stage": "awareness", "pct": 30, "start": 1}]},
    {"name": "slow winter: sales -20%", "adjustments": [{"type": "demand_shock", "pct": -20, "start": 5}]},
    {"name": "customers pay a week late", "adjustments": [{"type": "receipt_delay", "days": 7}]},
]


@pytest.fixture(scope="module")
def orders_only_forecasts():
    """The same orders forecast twice: with nothing configured, and with a gross margin and a balance."""
    from conftest import SHORT_FORECAST
    from toolkit.pipeline import forecast_cash

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEYCAST_STORE", "off")
        bare = _orders_only_dataset()
        known = _orders_only_dataset(gross_margin=0.6, opening_balance=10000, minimum_cash=5000)
        options = {**SHORT_FORECAST, "backtest_folds": 0}
        return ((bare, forecast_cash(bare, scenarios=DEFAULT_SCENARIOS, **options)),
                (known, forecast_cash(known, scenarios=DEFAULT_SCENARIOS, **options)))


def test_without_balance_or_costs_the_cash_page_shows_money_in_and_no_risk(orders_only_forecasts):
    from toolkit.pipeline import forecast_summary, forecast_tables, headline, journey, what_if

    (dataset, cash), _ = orders_only_forecasts
    sales = dataset.tables["orders"]["amount"].sum()
    assert cash.costs == "none" and cash.cost_stages == []
    assert not cash.outlook.balance_known and cash.outlook.shortfall_probability is None
    assert cash.measure == "cumulative net cash flow since 01 Jan 1997, money in only (no cost data)"
    figures = headline(cash)
    assert "cash on the last day" not in figures
    assert figures["cumulative money in on the last day"] == pytest.approx(sales)
    assert figures["shortfall probability"] is None and figures["runway (days)"] is None
    texts = {n.text: n.level for n in cash.notes}
    assert texts[("No opening balance: the chart shows the cumulative net cash flow, not a balance; set "
                  "opening_balance in journeycast.yml to see the balance and the shortfall risk.")] == "missing"
    assert any(t.startswith("No cost data and no gross_margin: only money in is forecast; shortfall risk is "
                            "not computed") and level == "missing" for t, level in texts.items())
    assert texts[("Holidays: GB, from currency GBP and timezone Europe/London; set holiday_country in "
                  "journeycast.yml to use another calendar.")] == "assumed"
    # the forecast's own notes come first
    assert cash.notes[:len(cash.result.notes)] == cash.result.notes
    # no awareness costs: the marketing push is left out, the others are compared
    assert cash.scenarios["scenario"].tolist() == ["baseline", "slow winter: sales -20%",
                                                   "customers pay a week late"]
    assert any("'marketing push +30%' is left out" in t for t in texts)
    assert cash.scenarios["shortfall_probability"].isna().all()
    # what-if sliders work without any outflow to change
    outlook, comparison = what_if(dataset, cash)(None, 0, -50, 0)
    assert outlook.summary()["ending_p50"] < cash.outlook.summary()["ending_p50"]
    assert comparison["scenario"].tolist() == ["baseline", "what-if"]
    summary = json.loads(json.dumps(forecast_summary(dataset, cash), default=str))
    assert summary["cash"]["balance_known"] is False and summary["cash"]["costs"] == "none"
    assert len(summary["notes"]) == len(set([*dataset.notes, *cash.notes]))  # each said once
    published = forecast_tables(cash, journey(dataset))
    months = published["month_comparison"].set_index("measure")
    assert months.loc["revenue", "month"] == pytest.approx(
        dataset.tables["orders"].loc[lambda o: o["ts"] >= "1998-06-01", "amount"].sum())
    assert published["kpis"]["complete"].all()


def test_a_gross_margin_and_an_opening_balance_give_cash_and_its_risk(orders_only_forecasts):
    from toolkit.pipeline import headline, what_if

    _, (dataset, cash) = orders_only_forecasts
    sales = dataset.tables["orders"]["amount"].sum()
    assert cash.costs == "estimated" and cash.cost_stages == ["purchase"]
    estimated = cash.series[cash.series["unique_id"] == "purchase|outflow|estimated"]
    assert estimated["y"].sum() == pytest.approx(0.4 * sales)
    figures = headline(cash)
    assert figures["cash on the last day"] == pytest.approx(10000 + 0.6 * sales)
    assert 0 <= figures["shortfall probability"] <= 1 and figures["runway (days)"] is not None
    assert cash.outlook.minimum_cash == 5000 and cash.measure == "cash balance"
    levels = {n.topic: n.level for n in cash.notes}
    assert levels["costs"] == "assumed" and "cash" not in levels
    assert any("(1 - gross_margin 0.6) x sales" in n.text for n in cash.notes)
    # the estimated costs are real outflows to a what-if; awareness still has none
    assert "marketing push +30%" not in cash.scenarios["scenario"].tolist()
    ending = cash.outlook.summary()["ending_p50"]
    costlier, _ = what_if(dataset, cash)("purchase", 50, 0, 0)
    assert costlier.summary()["ending_p50"] < ending


def test_journey_notes_guests_zero_deals_and_partial_months():
    from toolkit.pipeline import journey

    dataset = _orders_only_dataset()
    orders = dataset.tables["orders"]
    # two guest checkouts of two lines each, and a deal closed at zero
    guests = pd.DataFrame({
        "order_id": ["G1", "G1", "G2", "G2", "Z1"],
        "customer_id": pd.array([pd.NA] * 4 + ["zero"], dtype="str"),
        "ts": pd.to_datetime(["1997-03-01"] * 2 + ["1997-04-01"] * 2 + ["1997-05-01"]).astype("datetime64[ns]"),
        "amount": [100.0, 50.0, 20.0, 30.0, 0.0], "order_type": ["guest"] * 4 + ["new"], "sku": "CD",
        "quantity": 1, "status": "completed"})
    dataset.ingested.tables["orders"] = pd.concat([orders, guests], ignore_index=True)
    view = journey(dataset)
    notes = {n.topic: n for n in view.notes}
    # the guests' share of revenue is the data set's note (pipeline.load); the journey says what leaves them out
    assert notes["guests"].level == "missing" and "funnel" in notes["guests"].text
    assert "%" not in notes["guests"].text
    zero = int((orders["amount"] == 0).sum()) + 1  # CDNOW's own purchases of 0 dollars and Z1
    assert f"add up to zero (deals closed at 0): {zero};" in notes["zero-amount orders"].text
    assert "zero" in set(view.stages["customer_id"]) and view.stages["customer_id"].notna().all()
    # CDNOW runs 1 Jan 1997 to 30 Jun 1998: every month is whole, June 1998 the last complete one
    assert "periods" not in notes
    assert view.comparison.month == pd.Timestamp("1998-06-01")
    assert view.comparison.year_before == pd.Timestamp("1997-06-01")
    # orders are sales: CDNOW's purchases with money and the two guest orders (four lines)
    assert view.kpis["orders"].sum() == len(orders) - (zero - 1) + 2


@pytest.fixture(scope="module")
def sample_run():
    """The sample's 30-day forecast and opportunities, scored fresh (no result store)."""
    from conftest import SHORT_FORECAST
    from toolkit.pipeline import forecast_cash, load, opportunities

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEYCAST_STORE", "off")
        dataset = load(SAMPLE_DIR)
        cash = forecast_cash(dataset, **{**SHORT_FORECAST, "horizon": 30})
        return dataset, cash, opportunities(dataset, horizon=30)


def test_repeat_revenue_reconciliation_walks_the_forecast_down_to_the_opportunities(sample_run):
    from toolkit.pipeline import repeat_revenue_reconciliation

    dataset, cash, found = sample_run
    table = repeat_revenue_reconciliation(cash, found)
    forecast = cash.result.forecast
    repeats = forecast[forecast["unique_id"].str.startswith("post-purchase|inflow|")]
    assert table["amount"].iloc[0] == pytest.approx(repeats["yhat"].sum())
    assert table["amount"].iloc[-1] == pytest.approx(found.customers["expected_value"].sum())
    assert table["amount"].iloc[:-1].sum() == pytest.approx(table["amount"].iloc[-1])  # the parts add up
    newcomers = table["amount"].iloc[1]
    history = found.repeat_history
    assert 0 < history["new_customers"] < history["total"] and history["guests"] == 0  # the sample has no guests
    assert newcomers == pytest.approx(-table["amount"].iloc[0] * history["new_customers"] / history["total"])
    assert table["amount"].iloc[3] == 0  # both look 30 days ahead
    forecast_money = charts.money_markdown(table["amount"].iloc[0], dataset.config.currency, compact=False)
    assert table.attrs["explanation"].startswith(f"The forecast expects {forecast_money} of repeat")
    assert forecast_money.startswith(charts.MARKDOWN_DOLLAR)  # two amounts in one Markdown run would open LaTeX


def test_reconciliation_says_its_amounts_in_the_configured_currency(orders_only_forecasts):
    from toolkit.pipeline import _score_customers, repeat_revenue_reconciliation

    (dataset, cash), _ = orders_only_forecasts
    found = _score_customers(dataset.tables["orders"], None, dataset.period[1].normalize(), 30, 42, 0.1, None)
    explanation = repeat_revenue_reconciliation(cash, found).attrs["explanation"]
    assert explanation.startswith("The forecast expects £")
    assert "(+£" in explanation or "(-£" in explanation
    assert "$" not in explanation


def test_a_shop_where_every_customer_bought_once_is_scored_without_a_repurchase_model(sample_run):
    """The sample cut to each customer's first order: segments, no repurchase model, no campaign plan, a note."""
    from toolkit.pipeline import Opportunities, _score_customers, campaign_study, headline

    dataset, cash, _ = sample_run
    sales = dataset.tables["orders"].query("status == 'completed' and amount > 0")
    once = sales[sales["order_id"] == sales.groupby("customer_id")["order_id"].transform("first")]
    scored = _score_customers(once, None, dataset.period[1].normalize(), 30, 42, 0.1, None)
    assert isinstance(scored, Opportunities) and scored.model is None and scored.model_name == "none"
    assert len(scored.customers) == once["customer_id"].nunique()
    assert scored.customers["segment"].notna().all() and scored.customers["expected_value"].isna().all()
    assert scored.repurchase.empty and {"customer_id", "score", "reason", "segment"} <= set(scored.repurchase)
    assert scored.upsell.empty and not scored.upsell_check.checked
    notes = {note.topic: note for note in scored.notes}
    assert notes["repurchase"].level == "missing"
    assert notes["repurchase"].text.startswith("Too few customers came back to buy again (0; the re-purchase "
                                               "models need 2)")
    study = campaign_study(dataset, cash, scored)
    assert study.plan is None and any("No campaign plan: it needs customer scores" in n.text for n in study.notes)
    figures = headline(cash, scored, study)
    assert figures["re-purchase model"] == "none" and figures["campaign recommended"] is False
    assert figures["campaign expected profit"] is None and figures["campaign lift source"] == study.lift_source


def test_guests_and_a_shop_without_a_product_ladder(sample_run):
    """The sample with a tenth of its customers checking out as guests and product ids that name no tier."""
    from toolkit.pipeline import _score_customers

    dataset, cash, found = sample_run
    orders = dataset.tables["orders"]
    guest = orders["customer_id"].isin(orders["customer_id"].drop_duplicates().iloc[::10])
    messy = orders.assign(customer_id=orders["customer_id"].where(~guest),
                          order_type=orders["order_type"].where(~guest, "guest"),
                          sku="P" + orders["sku"].str.slice(4))
    as_of = dataset.period[1].normalize()
    scored = _score_customers(messy, None, as_of, 30, 42, 0.1, None)
    assert scored.customers["customer_id"].notna().all()
    assert len(scored.customers) == messy.loc[messy["status"] == "completed", "customer_id"].nunique()
    notes = {note.topic: note for note in scored.notes}
    assert "guests" not in notes  # their share is said once, by the data set's note
    assert notes["upsell"].text.startswith("No next-tier upgrades: the SKUs carry no product tier")
    assert notes["campaign"].level == "assumed"
    assert scored.upsell.empty and "segment" in scored.upsell.columns and not scored.upsell_check.checked
    # personal offers need no ladder: the next price band, a co-purchase or a discount, from each one's history
    assert set(scored.offers["customer_id"]) <= set(scored.customers["customer_id"]) and len(scored.offers) > 0
    assert set(scored.offers["offer_kind"]) <= {"next tier", "bundle", "discount"}


def test_campaign_study_plans_with_the_uplift_model_personal_offers_and_the_shops_weekly_shape(sample_run):
    from toolkit.opportunities import planner_customers, purchase_timing, window_chance
    from toolkit.pipeline import campaign_study, headline, headline_kinds

    dataset, cash, found = sample_run
    study = campaign_study(dataset, cash, found)
    # the boosted uplift model beats random on the sample, so it personalises the lift
    assert study.uplift.better_than_random and study.lift_source == "model"
    assert len(study.scores) == len(study.lift) > 0 and study.scores["incremental_probability"].between(-1, 1).all()
    # the customers planned for carry their personal offers, not only "the usual range"
    customers = planner_customers(found.customers, found.offers)
    assert customers["offer"].ne("the usual range").mean() > 0.5
    assert set(study.planner.customers_["offer"]) == set(customers["offer"])
    # the natural chances follow the forecast's weekly shape and recent signals: not the model's plain expectation
    weeks = len(study.planner.launch_days_)
    plain = purchase_timing(found.model, weeks + study.planner.response_window_days // 7 + 2)
    plain = window_chance(plain.set_axis(plain.index.astype(str)).reindex(customers["customer_id"]), weeks,
                          study.planner.response_window_days)
    assert plain.shape == study.planner.natural_.shape and not np.allclose(plain, study.planner.natural_)
    figures = headline(cash, found, study)
    assert figures["campaign recommended"] == study.plan.recommended
    assert figures["campaign lift source"] == "model"
    assert (figures["campaign expected profit"] is None) == (not study.plan.recommended)
    # every figure that is a number or a date is formatted on the page by its kind, none shown raw
    kinds = {name for names in headline_kinds(cash).values() for name in names}
    shown_raw = [name for name, value in figures.items() if name not in kinds and value is not None
                 and not isinstance(value, bool) and (isinstance(value, (int, float)) or name.endswith("date"))]
    assert shown_raw == []


# --------------------------------------------------------------------------- campaign study

def test_campaign_study_measures_the_sample_campaigns_and_says_a_plan_needs_cash():
    from toolkit.pipeline import campaign_study, load

    study = campaign_study(load(SAMPLE_DIR))
    table = study.results.table
    assert set(table.campaign_id) == {"spring-2025", "autumn-2025", "spring-2026"}
    # the planted effect is positive overall: every measured variant's interval reaches above zero
    assert (table.incremental_response_high > 0).all() and (table.incremental_response > 0).all()
    # every contact is ranked by a model fitted on the other folds; the served learner beats random on the sample
    assert study.uplift.learner == "t-boosting" and study.uplift.holdout == len(load(SAMPLE_DIR).tables["contacts"])
    assert study.uplift.better_than_random and study.uplift.qini_low > 0
    assert study.lift_source == "measured"
    assert study.plan is None and study.planner is None
    assert any(n.level == "missing" and "No campaign plan" in n.text and "cash forecast" in n.text
               for n in study.notes)


def test_campaign_study_without_campaigns_says_the_lift_is_assumed(tmp_path):
    from toolkit.pipeline import campaign_recommendation, campaign_study, load

    for name in ("orders.csv", "events.csv", "costs.csv", "journeycast.yml"):
        (tmp_path / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    study = campaign_study(load(tmp_path))
    assert study.results is None and study.uplift is None and study.lift_source == "assumed"
    assert campaign_recommendation(study).endswith("the lift would be assumed, not measured (campaign.prior_lift).")
    assert any(n.level == "missing" and "assumed, not measured" in n.text for n in study.notes)


def test_campaign_study_on_a_results_export_alone_measures_and_plans_nothing():
    from conftest import ROOT, TEST_DATA
    from toolkit.pipeline import campaign_study, load

    study = campaign_study(load(ROOT.parent / "shared" / "data" / "hillstrom", TEST_DATA / "real" / "hillstrom.yml"))
    table = study.results.table.set_index("variant")
    assert set(table.index) == {"Mens E-Mail", "Womens E-Mail"}
    assert (table.contacts_treated + table.contacts_control).gt(20000).all()
    assert study.plan is None and study.lift_source == "measured"
    assert any("No campaign plan" in n.text and "orders" in n.text for n in study.notes)
    # visit is a result of the send (sources.contacts.outcomes), never a pre-send difference nor a feature
    assert not any("visit" in n.text for n in study.notes)
    assert not study.uplift.better_than_random
    assert any(n.level == "warning" and "does not rank customers better than random" in n.text for n in study.notes)
