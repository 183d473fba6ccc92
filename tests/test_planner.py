"""The campaign planner: hand-made shops with a known best plan, then the sample shop with its real models."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from toolkit.cash import ExtraFlows, Scenario, apply_scenario, cash_position
from toolkit.opportunities import (CampaignPlanner, OpportunityError, assumed_lift, launch_days, lift_table,
                                   planner_customers, purchase_timing, reachable_share, weekly_seasonality,
                                   window_chance)

LAST_ACTUAL = pd.Timestamp("2026-01-04")
FIRST = LAST_ACTUAL + pd.Timedelta(days=1)
DAYS = pd.date_range(FIRST, periods=84, freq="D")  # 12 launch weeks


def _outlook(balance_by_day: np.ndarray, draws: int = 200, minimum: float | None = 100_000.0,
             opening: float | None = 0.0):
    """A cash outlook whose P50 balance follows ``balance_by_day`` (a few dozen of noise per draw)."""
    history = pd.DataFrame({"ds": [LAST_ACTUAL], "y": [0.0], "direction": ["inflow"],
                            "unique_id": ["purchase|inflow|all"]})
    flows = np.diff(np.concatenate([[0.0], balance_by_day]))
    rng = np.random.default_rng(0)
    values = flows[:, None] + rng.normal(0, 2, (len(DAYS), draws))
    index = pd.MultiIndex.from_arrays([["purchase|inflow|all"] * len(DAYS), DAYS.astype("datetime64[ns]")],
                                      names=["unique_id", "ds"])
    paths = pd.DataFrame(values, index=index, columns=[f"draw_{i}" for i in range(draws)])
    return cash_position(history, paths, opening, minimum)


def _customers(n: int, value: float = 100.0, segments: tuple[str, ...] = ("loyal",)) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"C{i:03d}" for i in range(n)],
                         "segment": [segments[i % len(segments)] for i in range(n)],
                         "value": value, "offer": "upgrade to pro", "max_discount": 0.3})


def _timing(customers: pd.DataFrame, weekly: list[float]) -> pd.DataFrame:
    return pd.DataFrame([weekly] * len(customers), index=pd.Index(customers["customer_id"], name="customer_id"),
                        columns=range(1, len(weekly) + 1))


#: Natural purchase chance per week: highest in weeks 4 to 6.
PEAKED = [0.05, 0.05, 0.1, 0.3, 0.3, 0.3, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]


def test_window_chance_combines_whole_and_partial_weeks():
    timing = pd.DataFrame([[0.1, 0.2, 0.5]], index=["a"], columns=[1, 2, 3])
    chance = window_chance(timing, launch_weeks=2, window_days=10)
    # week 1 + 3/7 of week 2; week 2 + 3/7 of week 3
    assert chance[0, 0] == pytest.approx(1 - 0.9 * 0.8 ** (3 / 7))
    assert chance[0, 1] == pytest.approx(1 - 0.8 * 0.5 ** (3 / 7))
    with pytest.raises(OpportunityError, match="need 4"):
        window_chance(timing, launch_weeks=3, window_days=14)


def test_profit_counts_only_the_purchases_the_campaign_adds():
    customers = _customers(1, value=200.0)
    timing = _timing(customers, [0.2] * 14)
    lift = lift_table(pd.Series({"C000": 0.1}), "measured")
    planner = CampaignPlanner(discounts=(0.1,), cost_per_contact=1.0, response_window_days=7, gross_margin=0.5,
                              launch_weeks=2).fit(customers, None, timing, lift, as_of=LAST_ACTUAL)
    plan = planner.plan()
    # 0.1 more sales at 200 x (0.5 - 0.1) margin, less 10% off the 0.2 that would buy anyway, less the contact
    expected = 0.1 * 200 * 0.4 - 0.2 * 200 * 0.1 - 1.0
    assert plan.expected_profit == pytest.approx(expected)
    assert plan.targets["expected_profit"].iloc[0] == pytest.approx(expected)
    assert plan.targets["natural_probability"].iloc[0] == pytest.approx(0.2)
    assert plan.lift_source == "measured"
    # one customer's extra purchase is a one-in-ten chance: the plan loses money in about 45% of the futures
    assert not plan.recommended and 0.3 < plan.loss_probability < 0.6
    assert plan.verdict.startswith("no campaign pays reliably: the best plan, launched in the week of")
    assert not plan.notes[:-1]  # only the unknown cash: the margin is configured and the lift measured
    # a customer who usually spends 50 gives away 10% of 50 on a purchase made anyway; an unknown margin is 0.4
    usual = CampaignPlanner(discounts=(0.1,), cost_per_contact=1.0, response_window_days=7, launch_weeks=2).fit(
        customers.assign(natural_value=50.0), None, timing, lift, as_of=LAST_ACTUAL).plan()
    assert usual.expected_profit == pytest.approx(0.1 * 200 * 0.3 - 0.2 * 50 * 0.1 - 1.0)
    assert any(note.level == "assumed" and "gross_margin" in note.text for note in usual.notes)


def test_natural_propensity_is_never_lift_so_a_campaign_without_lift_does_not_pay():
    customers = _customers(50)
    timing = _timing(customers, [0.6] * 14)  # everyone is about to buy anyway
    no_lift = lift_table(pd.Series(0.0, index=customers["customer_id"]), "measured")
    plan = CampaignPlanner(discounts=(0.0, 0.1), launch_weeks=4).fit(customers, _outlook(np.full(84, 150_000.0)),
                                                                        timing, no_lift).plan()
    assert not plan.recommended and plan.targets.empty and plan.launch_week is None
    assert plan.verdict.startswith("no campaign pays: in every launch week and at every discount")


def test_launch_weeks_differ_by_the_natural_timing_and_the_best_week_wins():
    customers = _customers(300)
    timing = _timing(customers, PEAKED)
    planner = CampaignPlanner(discounts=(0.0, 0.1), cost_per_contact=0.5, gross_margin=0.6,
                              response_window_days=14)
    plan = planner.fit(customers, _outlook(np.full(84, 150_000.0)), timing, assumed_lift(timing, (0.0, 0.1))).plan()
    profit = plan.weeks.set_index("week_number")["expected_profit"]
    assert profit.idxmax() == 4 and profit[4] > 2 * profit[1]  # weeks 4-5 hold the most natural buying
    assert plan.week_number == 4 and plan.launch_week == FIRST + pd.Timedelta(weeks=3)
    assert (plan.targets["window_start"] == plan.launch_week).all()  # everyone's likeliest week too
    np.testing.assert_allclose(plan.targets["expected_value"], plan.targets["incremental_probability"] * 100.0)
    assert plan.shortfall_probability == 0.0 and plan.recommended
    assert "the lift is assumed, not measured" in plan.verdict
    assert any(note.level == "assumed" and "assumed, not measured" in note.text for note in plan.notes)
    assert set(plan.targets["discount"]) == {0.0}  # with the assumed lift a discount gives away more than it wins


def test_a_weekly_cash_forecast_gives_the_same_launch_weeks_as_a_daily_one():
    customers = _customers(300)
    timing = _timing(customers, PEAKED)
    history = pd.DataFrame({"ds": [LAST_ACTUAL], "y": [0.0], "direction": ["inflow"],
                            "unique_id": ["purchase|inflow|all"]})
    weeks = pd.date_range(FIRST + pd.Timedelta(days=6), periods=12, freq="7D")  # a row at the end of each week
    index = pd.MultiIndex.from_arrays([["purchase|inflow|all"] * 12, weeks.astype("datetime64[ns]")],
                                      names=["unique_id", "ds"])
    paths = pd.DataFrame(np.r_[150_000.0, np.zeros(11)][:, None].repeat(50, axis=1), index=index,
                         columns=[f"draw_{i}" for i in range(50)])
    weekly = cash_position(history, paths, 0.0, 100_000.0)
    planner = CampaignPlanner(discounts=(0.0,), cost_per_contact=0.5, gross_margin=0.6)
    by_week = planner.fit(customers, weekly, timing, assumed_lift(timing, (0.0,))).plan()
    by_day = planner.fit(customers, _outlook(np.full(84, 150_000.0)), timing, assumed_lift(timing, (0.0,))).plan()
    assert len(by_week.weeks) == len(by_day.weeks) == 12
    assert by_week.launch_week == by_day.launch_week and by_week.expected_profit == by_day.expected_profit
    assert by_week.shortfall_probability == 0.0


def test_the_planner_avoids_a_squeezed_week_and_says_what_it_gave_up():
    customers = _customers(300, value=400.0)
    timing = _timing(customers, PEAKED)
    balance = np.full(84, 150_000.0)
    balance[21:40] = 100_100.0  # a loan repayment squeezes cash in weeks 4 to 6, a receipt restores it
    planner = CampaignPlanner(discounts=(0.0,), cost_per_contact=0.5, fixed_cost=500.0, gross_margin=0.6,
                              response_window_days=14, risk_limit=0.05, currency="USD")
    plan = planner.fit(customers, _outlook(balance), timing, assumed_lift(timing, (0.0,))).plan()
    weeks = plan.weeks.set_index("week_number")
    # 650 up front on a launch day within the squeeze breaks the minimum before the sales come in; a week-3
    # launch has sold enough by the time the squeeze starts (weeks 1-2, with fewer natural buyers, may not)
    assert (weeks.loc[4:6, "shortfall_probability"] > 0.95).all() and not weeks.loc[4:6, "feasible"].any()
    assert (weeks.loc[[3, 7, 8], "shortfall_probability"] == 0.0).all()
    assert weeks.loc[4, "best_profit"] == weeks["best_profit"].max()
    assert plan.week_number == 3 and plan.shortfall_probability == 0.0
    assert plan.shortfall_before == 0.0 and plan.recommended
    reason = plan.runners_up.set_index("launch_week").loc[FIRST + pd.Timedelta(weeks=3), "reason"]
    assert re.fullmatch(r"week of 26 Jan 2026: \+\$[\d.]+k more, shortfall risk (9\d|100)% > 5%", reason)
    bands = plan.balance_bands.pivot(index="ds", columns="scenario", values="p50")
    launch_day = plan.launch_week
    assert bands.loc[launch_day, "with the campaign"] < bands.loc[launch_day, "without the campaign"]
    assert bands["with the campaign"].iloc[-1] > bands["without the campaign"].iloc[-1]  # it paid back
    # the same squeeze without a known opening balance: profit only, the risk not judged
    blind = planner.fit(customers, _outlook(balance, opening=None), timing, assumed_lift(timing, (0.0,))).plan()
    assert blind.week_number == 4 and np.isnan(blind.shortfall_probability)
    assert "its shortfall risk is not judged" in blind.verdict
    assert any(note.level == "missing" and "opening_balance" in note.text for note in blind.notes)


def test_a_risk_limit_that_nothing_meets_means_no_campaign():
    customers = _customers(300, value=400.0)
    timing = _timing(customers, PEAKED)
    planner = CampaignPlanner(discounts=(0.0,), cost_per_contact=0.5, fixed_cost=500.0, gross_margin=0.6)
    plan = planner.fit(customers, _outlook(np.full(84, 100_100.0)), timing, assumed_lift(timing, (0.0,))).plan()
    assert not plan.recommended and plan.targets.empty
    assert re.fullmatch(r"no campaign pays within the risk limit: every plan that pays has a shortfall risk of "
                        r"at least (9\d|100)% \(limit 5%\)", plan.verdict)
    assert len(plan.runners_up) == len(plan.weeks)
    # the chart still shows what each too-risky week would add, and that none is feasible
    drawn = plan.launch_weeks()
    assert (drawn["expected_net_gain"] > 0).all() and not drawn["feasible"].any()
    assert drawn["expected_net_gain"].tolist() == plan.runners_up["expected_profit"].tolist()


def test_each_segment_gets_the_discount_that_pays_it_best():
    customers = _customers(200, segments=("loyal", "at risk"))
    timing = _timing(customers, [0.2] * 14)
    at_risk = customers["segment"] == "at risk"
    # measured: a 20% discount wins back at-risk customers (+30 points); loyal ones hardly react to it
    rows = []
    for discount, loyal_lift, at_risk_lift in ((0.0, 0.03, 0.01), (0.2, 0.035, 0.30)):
        lift = np.where(at_risk, at_risk_lift, loyal_lift)
        rows.append(lift_table(pd.Series(lift, index=customers["customer_id"]), "measured").assign(
            discount=discount))
    planner = CampaignPlanner(discounts=(0.0, 0.2), cost_per_contact=0.2, gross_margin=0.6, launch_weeks=4)
    plan = planner.fit(customers, None, timing, pd.concat(rows), as_of=LAST_ACTUAL).plan()
    chosen = plan.targets.groupby("segment")["discount"].unique()
    assert list(chosen["loyal"]) == [0.0] and list(chosen["at risk"]) == [0.2]
    summary = plan.by_segment().set_index("segment")
    assert summary["customers"].sum() == len(plan.targets)
    assert summary["profit"].sum() == pytest.approx(plan.targets["expected_profit"].sum())
    assert summary.loc["at risk", "added"] > summary.loc["loyal", "added"]
    assert plan.verdict.count("by segment") == 1
    uniform = plan.runners_up[plan.runners_up["option"].str.contains("for everyone")]
    assert (uniform["expected_profit"] < plan.expected_profit).all() and len(uniform) == 2
    # a slider that takes 20% off the menu leaves the at-risk customers without their discount
    assert set(planner.plan(discounts=[0.0]).targets["discount"]) == {0.0}


def test_a_discount_a_campaign_was_measured_at_is_an_option():
    customers = _customers(50)
    timing = _timing(customers, [0.1] * 14)
    measured = lift_table(pd.Series(0.2, index=customers["customer_id"]), "measured").assign(discount=0.15)
    planner = CampaignPlanner(discounts=(0.0, 0.1), launch_weeks=3, gross_margin=0.6)
    plan = planner.fit(customers, None, timing, measured, as_of=LAST_ACTUAL).plan()
    assert planner.discounts_ == (0.0, 0.1, 0.15)
    assert set(plan.targets["discount"]) == {0.15} and plan.recommended  # no lift is known at 0% or 10%
    assert " customers with a 15% discount: expected incremental profit +$" in plan.verdict
    assert "assumed" not in plan.verdict and [note.level for note in plan.notes] == ["missing"]  # cash unknown
    assert not planner.plan(discounts=[0.0, 0.1]).recommended


def test_budget_caps_the_target_list_and_uplift_scores_below_zero_are_left_out():
    customers = _customers(100)
    timing = _timing(customers, [0.2] * 14)
    scores = pd.Series(np.linspace(-0.05, 0.2, 100), index=customers["customer_id"])
    planner = CampaignPlanner(discounts=(0.0,), cost_per_contact=2.0, fixed_cost=10.0, launch_weeks=3)
    planner.fit(customers, None, timing, lift_table(scores, "model"), as_of=LAST_ACTUAL)
    plan = planner.plan()
    assert plan.targets["customer_id"].isin(scores.index[scores > 0]).all()
    assert plan.targets["expected_profit"].is_monotonic_decreasing and (plan.targets["expected_profit"] > 0).all()
    capped = planner.plan(budget=50.0)
    assert len(capped.targets) == 20  # (50 - 10) / 2 contacts
    assert capped.upfront_cost <= 50.0 and capped.expected_profit < plan.expected_profit
    assert set(capped.targets["customer_id"]) <= set(plan.targets["customer_id"])  # the best of them
    assert not any("lift is assumed" in note.text for note in plan.notes)  # scored by a model
    pd.testing.assert_frame_equal(plan.targets, planner.plan().targets)  # same inputs, same plan
    assert planner.plan(budget=11.0).verdict == ("no campaign pays within the budget: $11 does not cover the fixed "
                                                 "cost and one contact ($12)")
    unknown = planner.fit(customers, None, timing, lift_table(pd.Series(dtype=float), "model"), as_of=LAST_ACTUAL)
    assert unknown.plan().verdict == "no campaign pays: no lift is known for any customer, measured or assumed"
    nobody = planner.fit(customers.iloc[:0], None, timing, lift_table(scores, "model"), as_of=LAST_ACTUAL)
    assert nobody.plan().verdict.startswith("no campaign pays: there is no customer to plan for")


def test_a_lift_per_launch_week_makes_weeks_differ_and_the_discount_follows_each_weeks_natural_chance():
    customers = _customers(100)
    timing = _timing(customers, [0.1] * 14)
    fading = pd.concat([lift_table(pd.Series(0.3 * 0.8 ** w, index=customers["customer_id"]), "measured")
                        .assign(week=w + 1) for w in range(6)])
    planner = CampaignPlanner(discounts=(0.1,), cost_per_contact=1.0, gross_margin=0.6, response_window_days=7,
                              launch_weeks=6).fit(customers, None, timing, fading, as_of=LAST_ACTUAL)
    plan = planner.plan()
    profit = plan.weeks.set_index("week_number")["expected_profit"]
    # each week adds 20% fewer purchases; the discount given on the purchases made anyway is the same
    per_customer = [0.3 * 0.8 ** w * 100 * 0.5 - 0.1 * 100 * 0.1 - 1.0 for w in range(6)]
    np.testing.assert_allclose(profit.to_numpy(), 100 * np.asarray(per_customer))
    assert plan.week_number == 1 and profit.is_monotonic_decreasing
    assert launch_days(None, LAST_ACTUAL, 6).equals(planner.launch_days_)
    # a lift given for some weeks only: the others have none and no plan pays in them
    first_two = planner.fit(customers, None, timing, fading[fading["week"] <= 2], as_of=LAST_ACTUAL).plan()
    assert (first_two.weeks["expected_profit"].iloc[2:] == 0).all() and first_two.week_number == 1


def test_reachable_share_fades_a_silent_customer_and_keeps_week_one(sample_plan_inputs):
    _, _, _, model = sample_plan_inputs
    share = reachable_share(model, 8)
    assert (share[1] == 1.0).all() and ((share >= 0) & (share <= 1)).all().all()
    assert (share.diff(axis=1).iloc[:, 1:] <= 1e-12).all().all()  # never grows while the customer stays silent
    # a customer who bought often and long ago is likelier gone each silent week than a one-time buyer
    summary = model.summary_.set_index(model.summary_["customer_id"].astype(str))
    lapsed = summary[(summary["frequency"] >= 3) & (summary["T"] - summary["recency"] > 120)].index
    once = summary[summary["frequency"] == 0].index
    assert share.loc[lapsed, 8].mean() < share.loc[once, 8].mean() and share.loc[lapsed, 8].mean() < 0.95


def test_bad_inputs_are_refused():
    with pytest.raises(OpportunityError, match="discounts must be shares"):
        CampaignPlanner(discounts=(0.1, 1.2))
    with pytest.raises(OpportunityError, match="lift_source must be one of"):
        lift_table(pd.Series({"a": 0.1}), "guessed")
    with pytest.raises(OpportunityError, match="fit the campaign planner"):
        CampaignPlanner().plan()
    customers = _customers(3)
    timing = _timing(customers, [0.1] * 15)
    with pytest.raises(OpportunityError, match="required column 'value'"):
        CampaignPlanner().fit(customers.drop(columns="value"), None, timing, assumed_lift(timing), as_of=LAST_ACTUAL)
    with pytest.raises(OpportunityError, match="needs as_of"):
        CampaignPlanner().fit(customers, None, timing, assumed_lift(timing))


# ---------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def sample_plan_inputs(sample_dir):
    """The sample's real re-purchase model, offers and a 13-week cash forecast (Prophet, 200 draws)."""
    from toolkit import pipeline
    from toolkit.opportunities import RepurchaseModel, personal_offers, segments, summary_from_orders

    dataset = pipeline.load(sample_dir)
    orders = dataset.tables["orders"]
    as_of = dataset.period[1].normalize()
    cash = pipeline.forecast_cash(dataset, horizon=91, uncertainty_samples=200, backtest_folds=1,
                                  backtest_horizon=14, progress=False)
    model = RepurchaseModel(seed=42).fit(summary_from_orders(orders, as_of))
    customers = segments.customer_segments(orders, as_of).merge(
        model.predict(91).drop(columns=["window_start_days", "window_end_days"]), on="customer_id")
    offers = personal_offers(orders, as_of, dataset.config.gross_margin, model.predict(91))
    timing = purchase_timing(model, 15, seasonality=weekly_seasonality(cash.result.forecast, 15))
    return planner_customers(customers, offers), cash, timing, model


def test_timing_splits_the_models_expected_purchases_by_week_and_signals_raise_the_weeks_they_cover(
        sample_plan_inputs):
    customers, cash, timing, model = sample_plan_inputs
    plain = purchase_timing(model, 6)
    # P(at least one purchase) per week from a Poisson count: the weeks' counts add up to the model's
    np.testing.assert_allclose(-np.log(1 - plain).sum(axis=1), model.expected_purchases(42).to_numpy(), rtol=1e-6)
    assert (plain[1] > plain[6]).mean() > 0.9  # silent customers fade: the chance drifts down week by week
    shape = weekly_seasonality(cash.result.forecast, 15)
    assert shape.mean() == pytest.approx(1.0) and shape.std() > 0.01
    customer = plain.index[0]
    cart = pd.DataFrame({"customer_id": [customer, customer], "event_type": ["cart_abandon", "cart_abandon"],
                         "odds_ratio": [10.0, 10.0], "lead_days": [14, 14], "days_ago": [2, 5]})
    signalled = purchase_timing(model, 6, signals=cart)
    before = plain.loc[customer]
    odds = before / (1 - before) * 10  # one abandoned cart counts once, in the 12 days it still says something
    np.testing.assert_allclose(signalled.loc[customer, [1, 2]], (odds / (1 + odds))[[1, 2]])
    np.testing.assert_allclose(signalled.loc[customer, [3, 4, 5, 6]], before[[3, 4, 5, 6]])
    pd.testing.assert_frame_equal(signalled.drop(index=customer), plain.drop(index=customer))


def test_on_the_sample_launch_weeks_differ_and_squeezed_weeks_are_avoided(sample_plan_inputs):
    customers, cash, timing, _ = sample_plan_inputs
    planner = CampaignPlanner(discounts=(0.0, 0.1, 0.2), cost_per_contact=0.5, fixed_cost=1_000.0,
                              gross_margin=0.58, response_window_days=14)
    planner.fit(customers, cash.outlook, timing, assumed_lift(timing))
    strict = planner.plan(risk_limit=0.05)
    weeks = strict.weeks
    best = weeks["best_profit"]
    assert best.max() > 0 and best.max() - best.min() > 0.2 * best.abs().max()  # timing matters
    # the weeks whose cash is already squeezed (stock purchase, loan, payroll in the sample's commitments) are
    # avoided: a limit between the weeks' own risks leaves the squeezed weeks out and keeps the others
    limit = float(np.median(weeks["shortfall_before"])) + 0.01
    plan = planner.plan(risk_limit=limit)
    squeezed = plan.weeks["shortfall_before"] > limit
    assert squeezed.any() and not plan.weeks.loc[squeezed, "feasible"].any()
    if plan.recommended:
        assert not squeezed[plan.week_number - 1] and plan.shortfall_probability <= limit
        assert plan.expected_profit == plan.weeks["expected_profit"].max() > 0
        assert plan.profit_p10 < plan.expected_profit < plan.profit_p90
        assert (plan.targets["discount"] < 0.58).all() and len(plan.targets) > 10
        assert "the lift is assumed, not measured" in plan.verdict
    else:
        assert plan.verdict.startswith("no campaign pays")
        assert plan.loss_probability >= 0.1 or plan.targets.empty
    if not strict.recommended and (weeks["shortfall_before"] > 0.05).all():
        assert "without any campaign the risk from those weeks on is already" in strict.verdict


def test_the_sample_study_finds_the_planted_best_plan(sample_dir):
    """The pipeline's own forecast, models and measurement find the plan data/sample/README.md plants."""
    from toolkit import pipeline, sample

    dataset = pipeline.load(sample_dir)
    cash = pipeline.forecast_cash(dataset, progress=False)
    study = pipeline.campaign_study(dataset, cash, pipeline.opportunities(dataset))
    plan, weeks = study.plan, study.plan.weeks.set_index("week_number")
    # the holiday stock takes the balance below the minimum in most futures until the credit line of 13 Nov
    assert (weeks.loc[[1, 2], "shortfall_before"] > 0.5).all() and not weeks.loc[[1, 2], "feasible"].any()
    assert (weeks.loc[3:, "shortfall_before"] <= 0.05).all()
    # the persuadables' views expire, so each later week adds less: launch weeks differ in expected gain
    gain = weeks["best_profit"]
    assert gain.max() - gain.min() > 0.3 * gain.max() and gain[3] > gain[4] > gain[5] > gain[6]
    assert plan.recommended and plan.week_number == 3 and plan.launch_week == pd.Timestamp("2026-11-15")
    assert plan.shortfall_probability <= 0.05 and plan.profit_p10 < plan.expected_profit < plan.profit_p90
    too_risky = plan.runners_up.set_index("launch_week").loc[pd.Timestamp("2026-11-01"), "reason"]
    assert re.fullmatch(r"week of 01 Nov 2026: \+\$[\d.k]+ more, shortfall risk \d+% > 5%", too_risky)
    # the model ranks the planted persuadables (as of the launch) first among the targets
    planted = sample.campaign_segments(dataset.tables["orders"], dataset.tables["events"], plan.launch_week)
    segment = plan.targets["customer_id"].map(planted["segment"]).fillna("off the list")
    persuadables = (planted["segment"] == "persuadable").sum()
    top = segment.iloc[:100]
    assert (top == "persuadable").mean() > 5 * persuadables / len(study.planner.customers_)
    assert (segment == "persuadable").sum() > 0.5 * persuadables
    assert study.lift_source == "model" and study.uplift.better_than_random
    assert pipeline.campaign_recommendation(study).startswith("Run the campaign in the week of 15 Nov 2026")
