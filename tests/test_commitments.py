"""Commitments, payment timing and the bank balance: calendar rules, detection, reconciliation, the forecast."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from toolkit.balances import bank_balance, bank_start, reconcile, reconciliation_notes
from toolkit.cash import MoveCommitment, Scenario, apply_scenario, cash_position, low_point, with_known_flows
from toolkit.commitments import (CommitmentError, cash_flows, commitment_table, committed_flows, detect_schedules,
                                 holiday_dates, is_committed, occurrences, split_committed_costs)
from toolkit.flows import stage_flows
from toolkit.pipeline import forecast_cash, load

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2028-12-31")


def dates(**commitment) -> list[str]:
    """The payment days of one commitment between START and END, as ISO dates."""
    frame = pd.DataFrame([{"amount": 100.0, **commitment}])
    found = occurrences(frame, START, END, holiday_dates("US", START, END))
    return [f"{d:%Y-%m-%d}" for d in found["ds"]]


def test_monthly_on_the_31st_falls_on_each_short_months_last_day():
    assert dates(ts="2024-01-31", frequency="monthly", until="2024-06-30") == [
        "2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"]
    # the 30th: February ends earlier, March is on the 30th again
    assert dates(ts="2025-01-30", frequency="monthly", until="2025-03-31") == ["2025-01-30", "2025-02-28", "2025-03-30"]


def test_month_end_quarterly_and_weekly_follow_their_anchor():
    assert dates(ts="2025-01-31", frequency="month-end", until="2025-04-30") == [
        "2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30"]
    assert dates(ts="2025-11-30", frequency="quarterly", until="2026-09-30") == [
        "2025-11-30", "2026-02-28", "2026-05-30", "2026-08-30"]
    fridays = dates(ts="2026-10-02", frequency="weekly", until="2026-10-31")
    assert fridays == ["2026-10-02", "2026-10-09", "2026-10-16", "2026-10-23", "2026-10-30"]


def test_yearly_on_29_february_keeps_leap_years_and_clips_others():
    assert dates(ts="2024-02-29", frequency="yearly", until="2028-12-31") == [
        "2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"]


def test_business_day_rules_move_weekends_and_public_holidays():
    # 1 Nov 2026 is a Sunday; 1 Jan 2027 a public holiday (a Friday) before a weekend
    assert dates(ts="2026-11-01", frequency="monthly", business_day="following", until="2027-01-31") == [
        "2026-11-02", "2026-12-01", "2027-01-04"]
    assert dates(ts="2026-11-01", frequency="monthly", business_day="preceding", until="2027-01-31") == [
        "2026-10-30", "2026-12-01", "2026-12-31"]
    assert dates(ts="2026-11-01", frequency="once") == ["2026-11-01"]


def test_defaults_are_filled_and_bad_words_name_row_and_column():
    table = commitment_table(pd.DataFrame({"ts": ["2026-11-02"], "amount": [10.0]}))
    assert table.iloc[0][["direction", "category", "stage", "frequency", "business_day", "description"]].tolist() == [
        "out", "other", "operations", "once", "none", ""]
    bad = pd.DataFrame({"ts": ["2026-11-02", "2026-11-03"], "amount": [10.0, 5.0],
                        "frequency": ["weekly", "fortnightly"]})
    with pytest.raises(CommitmentError, match="row 2, column 'frequency': 'fortnightly'"):
        commitment_table(bad)
    with pytest.raises(CommitmentError, match="row 1, column 'amount'"):
        commitment_table(pd.DataFrame({"ts": ["2026-11-02"], "amount": [-10.0]}))


def weekly_payroll_costs() -> pd.DataFrame:
    """Daily marketing of varying amount and a Friday payroll that rises once a year."""
    days = pd.date_range("2025-01-01", "2026-10-31")
    rng = np.random.default_rng(3)
    marketing = pd.DataFrame({"ts": days, "stage": "awareness", "category": "ads", "channel": "search",
                              "amount": rng.uniform(10, 90, len(days)).round(2)})
    fridays = days[days.day_of_week == 4]
    payroll = pd.DataFrame({"ts": fridays, "stage": "operations", "category": "payroll", "channel": "bank",
                            "amount": np.where(fridays.year == 2025, 4000.0, 5000.0)})
    first = pd.date_range("2025-01-01", "2026-10-01", freq="MS")
    rent = pd.DataFrame({"ts": first, "stage": "operations", "category": "rent", "channel": "bank",
                         "amount": 2500.0})
    return pd.concat([marketing, payroll, rent], ignore_index=True).sort_values("ts", ignore_index=True)


def test_detection_finds_schedules_at_todays_amount_and_not_noise():
    found = detect_schedules(weekly_payroll_costs()).set_index("category")
    assert sorted(found.index) == ["payroll", "rent"]
    assert found.loc["payroll", "frequency"] == "weekly" and found.loc["payroll", "amount"] == 5000.0
    assert found.loc["payroll", "ts"] == pd.Timestamp("2026-10-30")
    assert found.loc["rent", "frequency"] == "monthly" and found.loc["rent", "ts"].day == 1
    # what it suggests schedules on from there: the next Friday
    assert dates(**found.loc["payroll", ["ts", "frequency"]].to_dict(), until="2026-11-13")[1:] == [
        "2026-11-06", "2026-11-13"]


def test_committed_costs_keep_their_history_and_the_schedule_gives_the_future():
    costs = weekly_payroll_costs()
    commitments = pd.DataFrame({"ts": ["2025-01-03", "2024-06-15"], "amount": [5000.0, 1200.0],
                                "category": ["payroll", "loan"], "frequency": ["weekly", "quarterly"]})
    rest, committed = split_committed_costs(costs, commitments)
    assert set(committed["category"]) == {"payroll"} and len(rest) + len(committed) == len(costs)
    flows = committed_flows(costs, commitments, pd.Timestamp("2025-01-01"), pd.Timestamp("2026-12-31"))
    payroll = flows[flows["unique_id"] == "operations|outflow|committed:payroll"].set_index("ds")["y"]
    # recorded 4,000 in 2025 (not the commitment's 5,000), then the schedule after the last cost day
    assert payroll[:"2025-12-31"].eq(4000.0).all()
    assert payroll["2026-11-01":].index.tolist() == list(pd.date_range("2026-11-06", "2026-12-25", freq="W-FRI"))
    loan = flows[flows["unique_id"] == "operations|outflow|committed:loan"]
    # the loan is in no costs: its past payments come from the schedule
    assert loan["ds"].dt.strftime("%Y-%m-%d").tolist()[:2] == ["2025-03-15", "2025-06-15"]


def history_and_paths(days: int = 30, draws: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    as_of = pd.Timestamp("2026-10-31")
    history = pd.DataFrame({"unique_id": "purchase|inflow|all", "ds": pd.date_range(end=as_of, periods=10),
                            "y": 1000.0, "stage": "purchase", "direction": "inflow", "segment": "all"})
    rng = np.random.default_rng(0)
    index = pd.MultiIndex.from_product([["purchase|inflow|all"], pd.date_range("2026-11-01", periods=days)],
                                       names=["unique_id", "ds"])
    paths = pd.DataFrame(rng.uniform(500, 1500, (days, draws)), index=index,
                         columns=[f"draw_{i}" for i in range(draws)])
    return history, paths


def test_commitments_land_on_their_dates_in_every_path_and_can_be_moved():
    history, paths = history_and_paths()
    commitments = pd.DataFrame({"ts": ["2026-11-16", "2026-11-06"], "amount": [60000.0, 5000.0],
                                "category": ["stock", "payroll"], "stage": ["purchase", "operations"],
                                "frequency": ["once", "weekly"]})
    known = committed_flows(None, commitments, pd.Timestamp("2026-11-01"), pd.Timestamp("2027-03-01"))
    with_them = with_known_flows(paths, known)
    stock = with_them.loc["purchase|outflow|committed:stock"]
    assert stock.index.tolist() == [pd.Timestamp("2026-11-16")] and (stock.to_numpy() == 60000.0).all()
    payroll = with_them.loc["operations|outflow|committed:payroll"]
    assert payroll.index.tolist() == list(pd.date_range("2026-11-06", "2026-11-27", freq="W-FRI"))
    assert (payroll.to_numpy() == 5000.0).all()
    outlook = cash_position(history, with_them, 150000.0, 100000.0)
    plain = cash_position(history, paths, 150000.0, 100000.0)
    # the same deduction in every draw: every balance after the purchase is lower by exactly the committed sum
    gap = plain.balance_draws - outlook.balance_draws
    assert np.allclose(gap.loc["2026-11-16"], 60000.0 + 2 * 5000.0)
    low = low_point(outlook, with_them)
    assert low.commitment["category"] == "stock" and low.commitment["amount"] == 60000.0
    later = apply_scenario(with_them, Scenario("pay stock later", (MoveCommitment("stock", "2026-11-16", 14),)))
    moved = later.loc["purchase|outflow|committed:stock"]
    assert moved.loc["2026-11-16"].eq(0).all() and moved.loc["2026-11-30"].eq(60000.0).all()
    assert MoveCommitment("rent", "2026-11-16", 14).missing(with_them) is not None


def bank(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.to_datetime(list(values)), "account": "main", "balance": list(values.values())})


def test_the_bank_sets_the_start_and_the_reconciliation_shows_what_flows_miss():
    history, _ = history_and_paths()  # 1,000 in a day from 22 to 31 Oct
    statements = bank({"2026-10-25": 54000.0, "2026-10-31": 59950.0})  # 50 of fees missing from the data
    start = bank_start(statements, history)
    assert start.date == pd.Timestamp("2026-10-31") and start.opening_balance == 59950.0 - 10 * 1000.0
    table = reconcile(statements, history, start.opening_balance)
    assert table["difference"].round(2).tolist() == [50.0, 0.0]
    assert table["bank_change"].iloc[1] == 5950.0 and table["flows_change"].iloc[1] == 6000.0
    assert reconciliation_notes(table, 0.02, "USD") == []
    notes = reconciliation_notes(table, 0.0005, "USD")
    assert len(notes) == 1 and "25 Oct 2026" in notes[0].text and notes[0].level == "warning"


def test_bank_balance_sums_accounts_carrying_each_forward():
    statements = pd.DataFrame({"ts": ["2026-10-01", "2026-10-01", "2026-10-02", "2026-10-02"],
                               "account": ["main", "savings", "main", "main"],
                               "balance": [100.0, 50.0, 120.0, 130.0]})
    assert bank_balance(statements).tolist() == [150.0, 180.0]


def test_sales_settle_after_two_business_days_and_the_rest_is_in_transit():
    from toolkit.config import PaymentTiming
    from toolkit.flows import money_in_transit

    orders = pd.DataFrame({"order_id": ["A", "B"], "customer_id": ["c1", "c2"],
                           "ts": pd.to_datetime(["2026-10-23 10:00", "2026-10-30 12:00"]),  # Friday, Friday
                           "amount": [100.0, 40.0], "order_type": ["new", "new"], "status": ["completed"] * 2,
                           "refund_of": [pd.NA, pd.NA]})
    tables = {"orders": orders}
    timing = PaymentTiming(sales_days=2, sales_business_days=True)
    series = stage_flows(tables, timing=timing)
    paid = series.loc[series["y"] > 0, "ds"].dt.strftime("%Y-%m-%d").tolist()
    assert paid == ["2026-10-27"]  # Friday's sale settles on Tuesday
    transit = money_in_transit(tables, timing)
    assert transit[["ds", "y"]].to_dict("records") == [{"ds": pd.Timestamp("2026-11-03"), "y": 40.0}]
    assert series["y"].sum() + transit["y"].sum() == 140.0


def test_weekly_and_monthly_cash_flows_hold_the_same_money_as_daily():
    tables = load("data/sample").tables
    timing = load("data/sample").config.payment_timing
    until = pd.Timestamp("2027-01-31")
    daily = cash_flows(tables, timing, until, holiday_dates("US", START, until))
    for freq in ("W", "MS"):
        other = cash_flows(tables, timing, until, holiday_dates("US", START, until), freq=freq)
        # every committed payment of the first days counts, though the first week is labelled by its Sunday
        assert other.history.groupby("direction")["y"].sum().to_dict() == pytest.approx(
            daily.history.groupby("direction")["y"].sum().to_dict())
        assert other.known["y"].sum() == pytest.approx(daily.known["y"].sum())
        assert set(other.known["ds"]) <= set(pd.date_range("2026-11-01", until + pd.Timedelta(days=7), freq=freq))


@pytest.fixture(scope="module")
def sample_copy(tmp_path_factory):
    """The sample shop's orders, events and costs only: no commitments, no bank balances."""
    folder = tmp_path_factory.mktemp("plain")
    for name in ("orders.csv", "events.csv", "costs.csv", "journeycast.yml"):
        shutil.copy(f"data/sample/{name}", folder / name)
    return folder


def test_a_shop_without_commitments_or_balances_is_forecast_as_before(sample_copy, monkeypatch):
    monkeypatch.setenv("JOURNEYCAST_STORE", "off")
    dataset = load(sample_copy, horizon=14, payment_timing={})
    cash = forecast_cash(dataset, uncertainty_samples=30, progress=False)
    series = stage_flows(dataset.tables, gross_margin=None)
    pd.testing.assert_frame_equal(cash.series, series)
    before = cash_position(series, cash.result.paths, dataset.config.opening_balance, dataset.config.minimum_cash)
    pd.testing.assert_frame_equal(cash.outlook.bands, before.bands)
    assert cash.reconciliation is None and cash.known.empty and not is_committed(cash.history["unique_id"]).any()


def test_the_sample_shop_reads_its_commitments_and_bank_and_forecasts_payroll_no_more(monkeypatch):
    monkeypatch.setenv("JOURNEYCAST_STORE", "off")
    dataset = load("data/sample", horizon=14)
    assert {"commitments", "balances"} <= set(dataset.tables)
    cash = forecast_cash(dataset, uncertainty_samples=30, progress=False)
    assert not (cash.series["stage"] == "operations").any()  # payroll and rent are known, not forecast
    payroll = cash.paths.loc["operations|outflow|committed:payroll"]
    assert payroll.index.tolist() == list(pd.date_range("2026-11-06", "2026-11-13", freq="W-FRI"))
    assert (payroll.to_numpy() == 5000.0).all()
    past = cash.history[cash.history["unique_id"] == "operations|outflow|committed:payroll"]
    assert past["y"].sum() == pytest.approx(dataset.tables["costs"].query("category == 'payroll'")["amount"].sum())
    # the forecast starts from the bank's last balance; the planted fees are the only unexplained difference
    bank = dataset.tables["balances"].sort_values("ts")["balance"].iloc[-1]
    assert cash.outlook.bands["actual"].dropna().iloc[-1] == pytest.approx(bank)
    # anchored on the last statement, the flows start lower than the bank by every fee charged since
    difference = cash.reconciliation["difference"]
    assert difference.iloc[-1] == pytest.approx(0.0, abs=0.01)
    assert difference.iloc[0] == pytest.approx(36 * 35.0, abs=0.01)
    assert [n.topic for n in cash.notes if n.topic == "bank"] == ["bank"]  # the precedence note, no warning
    assert cash.low_point.p50_date == pd.Timestamp("2026-11-09")
    assert cash.low_point.commitment == {"category": "stock", "stage": "purchase",
                                         "ds": pd.Timestamp("2026-11-09"), "amount": 60000.0}
    assert "payroll" not in set(cash.schedules["category"])
