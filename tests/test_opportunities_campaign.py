"""Campaign cash flows and their evaluation against synthetic cash paths with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.opportunities import Campaign, OpportunityError, evaluate_campaign

LAST_ACTUAL = pd.Timestamp("2026-01-01")
INFLOW_DAY = pd.Timestamp("2026-02-01")


def _target(n: int, probability: float, value: float) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)],
                         "conversion_probability": probability, "value": value})


@pytest.fixture(scope="module")
def cash_forecast():
    """Balance 150,000 after the last actual day; a certain 50,000 receipt on 2026-02-01.

    Small random receipts on other days cannot move the balance by more than a few hundred.
    """
    history = pd.DataFrame({"ds": [LAST_ACTUAL], "y": [0.0], "direction": ["inflow"],
                            "unique_id": ["purchase|inflow|all"]})
    days = pd.date_range(LAST_ACTUAL + pd.Timedelta(days=1), "2026-03-31", freq="D")
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 5, (len(days), 200))
    values[days == INFLOW_DAY] = 50_000.0
    index = pd.MultiIndex.from_arrays([["purchase|inflow|all"] * len(days), days.astype("datetime64[ns]")],
                                      names=["unique_id", "ds"])
    paths = pd.DataFrame(values, index=index, columns=[f"draw_{i}" for i in range(200)])
    return history, paths


def test_costly_campaign_is_safe_only_after_the_known_receipt(cash_forecast):
    history, paths = cash_forecast
    campaign = Campaign(_target(100, 0.0, 80.0), cost_per_contact=10.0, discount=0.1,
                        start="2026-01-02", duration_days=30, fixed_cost=55_000.0)
    result = evaluate_campaign(campaign, history, paths, opening_balance=150_000.0,
                               minimum_cash=100_000.0, risk_limit=0.05)
    # 150,000 - 56,000 = 94,000 < 100,000 before the receipt; 144,000 after it
    assert result.shortfall_before == 0.0 and result.shortfall_after == 1.0
    assert result.expected_net_gain == pytest.approx(-56_000.0)
    assert result.payback_date is None
    assert result.earliest_safe_start == pd.Timestamp("2026-02-06")  # first weekly start after Feb 1
    before = result.launches["start"] < INFLOW_DAY
    assert (result.launches.loc[before, "shortfall_probability"] == 1.0).all()
    assert (result.launches.loc[~before, "shortfall_probability"] == 0.0).all()
    assert len(result.launches) == 13  # every week of the 89-day horizon


def test_certain_sales_pay_back_on_the_launch_day(cash_forecast):
    history, paths = cash_forecast
    campaign = Campaign(_target(50, 1.0, 100.0), cost_per_contact=5.0, discount=0.2,
                        start="2026-01-09", duration_days=1, fixed_cost=1_000.0)
    result = evaluate_campaign(campaign, history, paths, 150_000.0, 100_000.0, 0.05, launch_weeks=3)
    assert result.expected_net_gain == pytest.approx(50 * 80.0 - 1_250.0)
    assert result.payback_date == pd.Timestamp("2026-01-09")
    assert result.shortfall_after == 0.0 and result.earliest_safe_start == pd.Timestamp("2026-01-02")
    assert len(result.launches) == 3


def test_cash_flows_simulate_conversions_and_spend():
    campaign = Campaign(_target(200, 0.1, 100.0), cost_per_contact=2.0, discount=0.2,
                        start="2026-05-04", duration_days=21, spend_shape=6.0)
    flows = campaign.cash_flows(draws=2000, seed=3)
    assert flows.index[0] == pd.Timestamp("2026-05-04") and len(flows) == 21
    assert flows.columns[0] == "draw_0" and flows.shape[1] == 2000
    inflow = flows.sum() + campaign.upfront_cost
    # per customer: Bernoulli(0.1) x Gamma(6, mean 80): mean 8, variance 0.1 * 80^2 * (1 + 1/6) - 8^2
    sd = np.sqrt(200 * (0.1 * 80**2 * (1 + 1 / 6) - 8**2))
    assert inflow.mean() == pytest.approx(campaign.expected_inflow, abs=4 * sd / np.sqrt(2000))
    assert campaign.expected_inflow == pytest.approx(1_600.0)
    assert inflow.std() == pytest.approx(sd, rel=0.1)
    assert (flows.iloc[0] < 0).mean() > 0.5  # the 400 upfront cost lands on the first day
    pd.testing.assert_frame_equal(flows, campaign.cash_flows(draws=2000, seed=3))


def test_bad_campaigns_are_refused(cash_forecast):
    with pytest.raises(OpportunityError, match="conversion_probability"):
        Campaign(_target(3, 1.5, 10.0), 1.0, 0.0, "2026-01-02", 10)
    with pytest.raises(OpportunityError, match="value"):
        Campaign(_target(3, 0.5, 10.0).drop(columns="value"), 1.0, 0.0, "2026-01-02", 10)
    history, paths = cash_forecast
    late = Campaign(_target(3, 0.5, 10.0), 1.0, 0.0, "2026-06-01", 10)
    with pytest.raises(OpportunityError, match="outside the forecast horizon"):
        evaluate_campaign(late, history, paths, 150_000.0, 100_000.0, 0.05)


def test_a_campaign_to_no_one_is_never_recommended(cash_forecast):
    history, paths = cash_forecast
    nobody = Campaign(_target(0, 0.5, 80.0), cost_per_contact=2.0, discount=0.1, start="2026-01-02",
                      duration_days=28, fixed_cost=500.0)
    result = evaluate_campaign(nobody, history, paths, 150_000.0, 100_000.0, 0.05, currency="USD")
    assert result.targets == 0 and not result.recommended
    assert result.verdict == "not recommended: no customer meets the target threshold"
    assert result.earliest_safe_start == pd.Timestamp("2026-01-02")  # about the risk only
    assert not result.launch_weeks()["feasible"].any()


def test_a_losing_campaign_is_not_recommended_nor_feasible_however_safe(cash_forecast):
    history, paths = cash_forecast
    losing = Campaign(_target(100, 0.01, 50.0), cost_per_contact=5.0, discount=0.1, start="2026-01-02",
                      duration_days=28, margin_share=0.5)
    result = evaluate_campaign(losing, history, paths, 150_000.0, 100_000.0, 0.05, currency="USD")
    assert result.expected_net_gain < 0 and result.shortfall_after == 0.0
    assert not result.recommended and not result.launch_weeks()["feasible"].any()
    assert result.verdict.startswith("not recommended: the expected net gain is not positive (-4")
    assert result.verdict.endswith(" USD)")


def test_a_risky_or_unjudgeable_campaign_says_why(cash_forecast):
    history, paths = cash_forecast
    certain = Campaign(_target(50, 1.0, 100.0), cost_per_contact=5.0, discount=0.2, start="2026-01-09",
                       duration_days=1, fixed_cost=1_000.0)
    never_safe = evaluate_campaign(certain, history, paths, 150_000.0, 160_000.0, 0.05, launch_weeks=3)
    assert never_safe.verdict == ("not recommended: the shortfall risk is at least 100%, above the 5% limit, "
                                  "in every launch week")
    unknown = evaluate_campaign(certain, history, paths, None, 100_000.0, 0.05, launch_weeks=3)
    assert np.isnan(unknown.shortfall_after) and unknown.earliest_safe_start is None
    assert not unknown.recommended and unknown.verdict.startswith("cannot be judged: the cash position is unknown")
    safe = evaluate_campaign(certain, history, paths, 150_000.0, 100_000.0, 0.05, launch_weeks=3, currency="USD")
    assert safe.recommended
    assert safe.verdict == "recommended: launch in the week of 09 Jan 2026 (expected net gain +2,750 USD)"


def test_an_unknown_margin_is_assumed_and_said():
    from toolkit.opportunities import ASSUMED_GROSS_MARGIN, gross_margin_or_assumed

    assert gross_margin_or_assumed(0.55) == (0.55, [])
    margin, notes = gross_margin_or_assumed(None)
    assert margin == ASSUMED_GROSS_MARGIN == 0.4
    assert notes[0].level == "assumed" and "gross_margin" in notes[0].text and "journeycast.yml" in notes[0].text
