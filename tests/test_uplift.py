"""Uplift: the model finds planted persuadables, is checked against random targeting, and never leaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_DATA
from test_experiments import real_data
from toolkit.opportunities import OpportunityError, lift_table
from toolkit.opportunities.experiments import contact_outcomes
from toolkit.opportunities.uplift import (LEARNERS, UpliftModel, customer_features, evaluate_uplift,
                                          features_when_silent, uplift_curves)


def _planted(n: int = 8000, effect: float = 0.3, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A randomised campaign: 20% persuadables (+``effect``), 5% put off (-0.05), the rest unmoved."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["persuadable", "do-not-disturb", "unmoved"], n, p=[0.2, 0.05, 0.75])
    engagement = np.where(kind == "persuadable", rng.normal(2, 1, n), rng.normal(0, 1, n))
    features = pd.DataFrame({"engagement": engagement, "tenure": rng.normal(5, 2, n),
                             "channel": rng.choice(["web", "phone"], n),
                             "complained": (kind == "do-not-disturb").astype(float)},
                            index=pd.Index([f"C{i:05d}" for i in range(n)], name="customer_id"))
    treatment = rng.random(n) < 0.5
    chance = 0.1 + treatment * np.select([kind == "persuadable", kind == "do-not-disturb"], [effect, -0.05], 0.0)
    outcome = (rng.random(n) < chance).astype(float)
    features.attrs["kind"] = kind
    return features, treatment.astype(float), outcome


@pytest.mark.parametrize(("learner", "share"), list(zip(LEARNERS, (0.8, 0.8, 0.7))))
def test_every_learner_ranks_planted_persuadables_first(learner, share):
    """Persuadables are 20% of customers: random targeting's top decile holds 20% of them."""
    features, treatment, outcome = _planted()
    model = UpliftModel(learner, seed=1).fit(features, treatment, outcome)
    score = model.predict(features)
    assert score.index.equals(features.index) and score.between(-1, 1).all()
    top_decile = score.rank(ascending=False) <= len(score) / 10
    assert (features.attrs["kind"][top_decile.to_numpy()] == "persuadable").mean() > share
    put_off = features.attrs["kind"] == "do-not-disturb"
    assert score[put_off].mean() < score[~put_off].mean()


def test_a_real_effect_beats_random_with_intervals_and_profit_by_share():
    features, treatment, outcome = _planted()
    check = evaluate_uplift(UpliftModel(), features, treatment, outcome, seed=3,
                            value_per_response=100.0, cost_per_contact=10.0, gross_margin=0.5)
    assert check.better_than_random and check.qini_low > 0 and check.notes == []
    assert check.holdout == 2400
    top = check.top.set_index("share")
    # Persuadables are 20% of customers: the top 10% gain far more than everyone's average.
    assert top.loc[0.1, "excess_low"] > 0.1
    assert top.loc[0.1, "uplift_low"] < top.loc[0.1, "uplift"] < top.loc[0.1, "uplift_high"]
    assert check.auuc > check.auuc_random
    # At 10 a contact, contacting only the persuadable top 20% earns more than contacting everyone.
    assert top.loc[0.2, "profit_low"] > top.loc[0.2, "profit_everyone_high"]
    assert check.uplift_at(0.3) == pytest.approx(top.loc[0.3, "uplift"])
    html = check.for_people("EUR").to_html()
    assert f"{top.loc[0.1, 'uplift'] * 100:+.1f} points" in html and "€" in html
    assert html.count(">yes<") == int((top["excess_low"] > 0).sum())


def test_no_effect_is_not_better_than_random_and_a_note_says_to_fall_back():
    features, treatment, _ = _planted()
    outcome = (np.random.default_rng(9).random(len(features)) < 0.1).astype(float)
    check = evaluate_uplift(UpliftModel(), features, treatment, outcome, seed=3)
    assert not check.better_than_random
    assert check.qini_low < 0 < check.qini_high
    assert "measured average effect" in check.notes[0].text and check.notes[0].level == "warning"
    assert "profit" not in check.top.columns  # no value per response: no money figures


def test_evaluation_is_deterministic():
    features, treatment, outcome = _planted(3000)
    first = evaluate_uplift(UpliftModel("s-logistic"), features, treatment, outcome, seed=5)
    second = evaluate_uplift(UpliftModel("s-logistic"), features, treatment, outcome, seed=5)
    assert first.qini == second.qini and first.qini_low == second.qini_low
    pd.testing.assert_frame_equal(first.top, second.top)


def test_curves_of_a_perfect_and_a_reversed_ranking():
    treatment = np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=float)
    outcome = np.array([1, 0, 1, 0, 0, 1, 0, 1], dtype=float)  # the first four gain, the last four lose
    best = uplift_curves(np.arange(8)[::-1].astype(float), treatment, outcome)
    assert best["y_t"][0].tolist() == [1, 1, 2, 2, 2, 2, 2, 2]
    assert best["n_c"][0, -1] == 4
    worst = uplift_curves(np.arange(8).astype(float), treatment, outcome)
    assert worst["y_c"][0].tolist() == [1, 1, 2, 2, 2, 2, 2, 2]


def test_features_use_only_orders_before_the_send():
    contacts = pd.DataFrame({"campaign_id": "spring", "customer_id": ["A", "B", "A"], "group": "treatment",
                             "ts": pd.to_datetime(["2024-03-01", "2024-03-01", "2024-06-01"]),
                             "converted": 1.0, "visit": 1.0, "region": ["north", "south", "north"]})
    orders = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4"], "customer_id": ["A", "A", "A", None],
                           "ts": pd.to_datetime(["2024-01-01", "2024-02-20", "2024-03-05", "2024-02-01"]),
                           "amount": [10.0, 20.0, 500.0, 99.0]})
    features = customer_features(contacts, orders, outcomes=["visit"])
    assert features.index.tolist() == ["A", "B", "A"]
    assert "visit" not in features.columns and "converted" not in features.columns
    first = features.iloc[0]
    assert (first["orders"], first["spend"], first["days_since_last_order"]) == (2, 30.0, 10)
    assert features.iloc[2]["spend"] == 530.0  # the later send sees the March order
    assert (features.iloc[1]["orders"], features.iloc[1]["spend"]) == (0, 0.0)
    scored_now = customer_features(contacts, orders, as_of="2024-12-31", outcomes=["visit"])
    assert scored_now.iloc[0]["spend"] == 530.0
    events = pd.DataFrame({"customer_id": ["A", "A", "A", "B"], "event_type": ["view", "view", "ticket", "view"],
                           "ts": pd.to_datetime(["2024-02-25", "2024-01-01", "2024-01-15", "2024-03-02"])})
    counted = customer_features(contacts, events=events, event_days={"view": 30, "ticket": 60},
                                outcomes=["visit"])
    # A on 1 March: one view within 30 days (not January's), the January ticket within 60; B's view came later.
    assert counted[["view_last_30_days", "ticket_last_60_days"]].iloc[:2].to_numpy().tolist() == [[1, 1], [0, 0]]
    assert "ticket_last_30_days" in customer_features(contacts, events=events, outcomes=["visit"]).columns


def test_a_silent_customer_seen_later_has_longer_gaps_and_only_the_views_still_recent():
    orders = pd.DataFrame({"order_id": ["O1", "O2", "O3"], "customer_id": ["a", "a", "b"],
                           "ts": pd.to_datetime(["2026-01-05", "2026-03-01", "2026-02-10"]),
                           "amount": [50.0, 70.0, 30.0]})
    events = pd.DataFrame({"customer_id": ["a", "b", "b"], "event_type": "product_view",
                           "ts": pd.to_datetime(["2026-03-05", "2026-03-20", "2026-03-28"])})
    people = pd.DataFrame({"customer_id": ["a", "b"]})
    windows = {"product_view": 30}
    today, later = pd.Timestamp("2026-04-01"), pd.Timestamp("2026-04-22")
    now = customer_features(people, orders, as_of=today, events=events, event_days=windows)
    projected = features_when_silent(now, events, today, later, windows)
    pd.testing.assert_frame_equal(projected, customer_features(people, orders, as_of=later, events=events,
                                                               event_days=windows))
    assert now["product_view_last_30_days"].tolist() == [1.0, 2.0]
    assert projected["product_view_last_30_days"].tolist() == [0.0, 1.0]  # a's view and b's first expired
    assert (projected["days_since_last_order"] - now["days_since_last_order"] == 21).all()


def test_scores_feed_the_planner_as_a_model_lift():
    features, treatment, outcome = _planted(2000)
    score = UpliftModel().fit(features, treatment, outcome).predict(features)
    lift = lift_table(score, "model")
    assert lift["customer_id"].tolist() == features.index.tolist()


def test_bad_inputs_are_refused_with_reasons():
    features, treatment, outcome = _planted(500)
    with pytest.raises(OpportunityError, match="learner"):
        UpliftModel("forest")
    with pytest.raises(OpportunityError, match="fit the uplift model"):
        UpliftModel().predict(features)
    with pytest.raises(OpportunityError, match="control contacts need both"):
        UpliftModel().fit(features, np.ones(len(features)), outcome)
    with pytest.raises(OpportunityError, match="0 or 1"):
        UpliftModel().fit(features, treatment, outcome * 3)


def test_hillstrom_visit_uplift_of_the_womens_email_beats_random():
    from toolkit.pipeline import load

    contacts = load(real_data() / "hillstrom", TEST_DATA / "real" / "hillstrom.yml").tables["contacts"]
    # One e-mail against no e-mail: the effect of the women's e-mail depends on what a customer bought before.
    test = contacts[contacts["variant"].isin(["Womens E-Mail", "No E-Mail"])]
    features = customer_features(test, outcomes=["visit"])[["recency", "history", "mens", "womens", "newbie"]]
    treatment = (test["group"] == "treatment").to_numpy(float)
    check = evaluate_uplift(UpliftModel(), features, treatment, test["visit"], holdout_share=0.5, seed=0)
    assert check.better_than_random and check.qini_low > 0
    thirty = check.top.set_index("share").loc[0.3]
    assert thirty["excess_low"] > 0  # the top 30% gain more visits than everyone on average
    # Conversions: too few buyers (0.6-0.9%) for any ranking to be told from random.
    bought = evaluate_uplift(UpliftModel(), features, treatment, test["converted"], holdout_share=0.5, seed=0)
    assert not bought.better_than_random


def test_sample_persuadables_rank_first_also_on_a_later_campaign(sample_tables):
    from test_experiments import planted_segments

    contacts, orders = sample_tables["contacts"], sample_tables["orders"]
    outcomes = contact_outcomes(contacts, sample_tables["campaigns"], orders)
    features = customer_features(contacts, orders, events=sample_tables["events"])
    segment = planted_segments(sample_tables)
    treatment, converted = (outcomes["group"] == "treatment").to_numpy(float), outcomes["converted"].to_numpy()
    share = (segment == "persuadable").mean()  # about 9% of contacts

    def top_decile(score: pd.Series, kinds: np.ndarray) -> pd.Series:
        return pd.Series(kinds[score.rank(ascending=False).to_numpy() <= len(score) / 10]).value_counts(normalize=True)

    everyone = UpliftModel().fit(features, treatment, converted).predict(features)
    assert top_decile(everyone, segment)["persuadable"] > 0.5 > share
    # Learnt from the two 2025 campaigns, ranking the 2026 list: persuadables still lead the top decile.
    late = (contacts["campaign_id"] == "spring-2026").to_numpy()
    model = UpliftModel().fit(features[~late], treatment[~late], converted[~late])
    later = top_decile(model.predict(features[late]), segment[late])
    assert later.idxmax() == "persuadable" and later["persuadable"] > 5 * share


def test_cross_fitting_checks_every_contact_with_models_that_never_saw_it(sample_tables):
    contacts, orders = sample_tables["contacts"], sample_tables["orders"]
    outcomes = contact_outcomes(contacts, sample_tables["campaigns"], orders)
    features = customer_features(contacts, orders, events=sample_tables["events"],
                                 event_days={"product_view": 30, "wishlist_add": 30, "support_ticket": 60})
    treatment, converted = (outcomes["group"] == "treatment").to_numpy(float), outcomes["converted"].to_numpy()
    # The sample's persuadables are a non-linear rule (one purchase 60-240 days ago and browsing again):
    # boosted learners find it, and with every contact checked the ranking beats random.
    check = evaluate_uplift(UpliftModel("t-boosting"), features, treatment, converted, folds=5)
    assert check.holdout == len(contacts) and check.better_than_random
    with pytest.raises(OpportunityError, match="folds"):
        evaluate_uplift(UpliftModel(), features, treatment, converted, folds=1)
