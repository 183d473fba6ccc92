"""Upsell propensity against the sample's planted upsell behaviour, and offers on hand-made data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit import sample
from toolkit.opportunities import (addon_bundles, evaluate_upsell, product_tiers, suggest_offers,
                                   upsell_features, upsell_labels)
from toolkit.opportunities.upsell import ENGAGEMENT_EVENTS

CUTOFF = "2026-08-01"


@pytest.fixture(scope="module")
def evaluation(sample_tables):
    return evaluate_upsell(sample_tables["orders"], CUTOFF, sample_tables["events"])


def test_time_split_recovers_the_planted_upsell_propensity(evaluation):
    assert evaluation.auc > 0.7
    assert evaluation.top_decile_lift > 2.5
    calibration = evaluation.calibration
    assert len(calibration) == 10 and calibration["customers"].sum() == evaluation.customers
    # observed upsell rates rise with predicted propensity: top decile well above the bottom half
    assert calibration["observed"].iloc[-1] > 3 * calibration["observed"].iloc[:5].mean()


def test_higher_engagement_gets_higher_propensity(evaluation, sample_tables):
    """Engagement is planted as review reads, product views and review ratings."""
    weights = evaluation.model.weights_
    assert weights["product_view"] > 0 and weights["mean_rating"] > 0
    features = upsell_features(sample_tables["orders"], CUTOFF, sample_tables["events"])
    engaged = features.assign(**{e: features[e] * 2 + 1 for e in ("review_read", "product_view")},
                              mean_rating=(features["mean_rating"] + 1).clip(upper=5))
    before, after = evaluation.model.predict_proba(features), evaluation.model.predict_proba(engaged)
    assert (after > before).mean() > 0.95


def test_orders_only_still_ranks_upsells(sample_tables):
    orders_only = evaluate_upsell(sample_tables["orders"], CUTOFF, events=None)
    assert orders_only.auc > 0.6
    features = upsell_features(sample_tables["orders"], CUTOFF)
    assert (features[list(ENGAGEMENT_EVENTS)] == 0).all().all()


def _orders(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "sku", "amount"])
    return frame.assign(order_id=[f"O{i}" for i in range(len(frame))], ts=pd.to_datetime(frame["ts"]),
                        quantity=1, status="completed")


def test_tiers_from_sku_prefix_or_price_rank():
    by_prefix = product_tiers(_orders([
        ("a", "2024-01-01", "ESS-01", 45.0), ("a", "2024-02-01", "ELI-02", 190.0),
        ("b", "2024-01-05", "PRO-01", 95.0), ("b", "2024-01-06", "ADD-01", 25.0)]))
    tiers = by_prefix.set_index("sku")
    assert tiers["tier"].to_dict() == {"ADD-01": -1, "ELI-02": 2, "ESS-01": 0, "PRO-01": 1}
    assert tiers.loc["ADD-01", "is_addon"] and tiers.loc["PRO-01", "tier_name"] == "pro"
    by_price = product_tiers(_orders([("a", "2024-01-01", "cheap", 10.0), ("a", "2024-01-02", "mid", 50.0),
                                      ("b", "2024-01-01", "dear", 300.0)])).set_index("sku")
    assert by_price["tier"].to_dict() == {"cheap": 0, "dear": 2, "mid": 1}


def test_upsell_labels_from_order_type_or_inferred_from_tiers():
    orders = _orders([("a", "2024-01-01", "cheap", 10.0), ("a", "2024-02-10", "mid", 50.0),
                      ("b", "2024-01-01", "dear", 300.0), ("b", "2024-02-10", "mid", 50.0),
                      ("c", "2024-01-01", "mid", 50.0), ("c", "2024-06-01", "dear", 300.0)])
    inferred = upsell_labels(orders, "2024-01-31", days=90)
    assert inferred.to_dict() == {"a": True}  # b stepped down; c moved up after the window
    marked = orders.assign(order_type=["new", "repeat", "new", "upsell", "new", "repeat"])
    assert upsell_labels(marked, "2024-01-31", days=90).to_dict() == {"b": True}


def test_offers_next_tier_or_co_bought_add_ons_with_a_bounded_discount():
    orders = _orders([("a", "2024-01-01", "ESS-01", 45.0), ("b", "2024-01-01", "PRO-01", 95.0),
                      ("c", "2024-01-01", "ELI-01", 190.0), ("c", "2024-01-02", "ADD-02", 25.0),
                      ("c", "2024-01-03", "ADD-01", 25.0), ("d", "2024-01-01", "ELI-02", 190.0),
                      ("d", "2024-01-05", "ADD-02", 25.0), ("e", "2024-01-01", "ELI-01", 190.0),
                      ("e", "2024-01-09", "ADD-03", 25.0)])
    bundles = addon_bundles(orders, bundle_size=2).set_index("tier")
    assert bundles.loc[2, "skus"] == ["ADD-02", "ADD-01"]  # ADD-02 co-bought by 2 elite customers
    assert bundles.loc[2, "price"] == 50.0
    propensity = pd.Series({"a": 0.4, "b": 0.3, "e": 0.2})
    predictions = pd.DataFrame({"customer_id": ["a", "b", "e"],
                                "expected_value": [1000.0, 20.0, 1000.0],
                                "window_start_days": [5.0, 10.0, 400.0],
                                "window_end_days": [30.0, 60.0, 900.0]})
    offers = suggest_offers(orders, propensity, "2024-02-01", predictions, margin_share=0.58,
                            max_discount=0.15, horizon_days=90).set_index("customer_id")
    assert offers.index.tolist() == ["a", "b", "e"]  # highest propensity first
    assert offers.loc["a", "offer"] == "upgrade to pro" and offers.loc["b", "offer"] == "upgrade to elite"
    assert offers.loc["e", "offer"] == "add-on bundle ADD-02 + ADD-01"
    assert offers.loc["a", "discount_amount"] == pytest.approx(0.15 * 95.0)  # capped by max_discount
    assert offers.loc["b", "discount_amount"] == pytest.approx(0.58 * 20.0)  # capped by the expected margin
    assert offers.loc["a", "window_start"] == pd.Timestamp("2024-02-06")
    assert offers.loc["e", "window_end"] == pd.Timestamp("2024-02-01") + pd.Timedelta(days=90)
    np.testing.assert_allclose(offers["offer_price"], offers["list_price"] - offers["discount_amount"])
    # elite customers who own some add-ons are offered the next ones the tier buys, not what they have
    owners = suggest_offers(orders, pd.Series({"c": 0.5, "d": 0.4}), "2024-02-01").set_index("customer_id")
    assert owners.loc["d", "offer"] == "add-on bundle ADD-01 + ADD-03" and owners.loc["d", "list_price"] == 50.0
    assert owners.loc["c", "offer"] == "add-on bundle ADD-03" and owners.loc["c", "offer_skus"] == ["ADD-03"]


def test_sample_offers_follow_the_tier_ladder(sample_tables, evaluation):
    orders = sample_tables["orders"]
    features = upsell_features(orders, sample.END, sample_tables["events"])
    offers = suggest_offers(orders, evaluation.model.predict_proba(features), sample.END)
    ladder = {"essentials": "upgrade to pro", "pro": "upgrade to elite"}
    for tier, offer in ladder.items():
        assert (offers.loc[offers["current_tier"] == tier, "offer"] == offer).all()
    elite = offers[offers["current_tier"] == "elite"]
    bundle = elite["offer"].str.startswith("add-on bundle ADD-")
    # bundles leave out the add-ons each customer already owns: no offer to those who own them all
    assert bundle.mean() > 0.5 and elite.loc[bundle, "offer"].nunique() > 1
    assert (elite.loc[~bundle, "offer"] == "no offer").all() and (elite.loc[~bundle, "list_price"] == 0).all()
    assert (offers["discount_amount"] <= 0.15 * offers["list_price"] + 1e-9).all()


def test_gradient_boosting_is_an_option(sample_tables):
    boosted = evaluate_upsell(sample_tables["orders"], CUTOFF, sample_tables["events"],
                              method="gradient_boosting")
    assert boosted.auc > 0.7 and boosted.top_decile_lift > 2.5
    assert boosted.model.weights_.sum() == pytest.approx(1.0)  # feature importances


def test_no_product_ladder_means_no_offers_and_says_why():
    from toolkit.opportunities import offer_ladder_problem
    from toolkit.opportunities.upsell import OFFER_COLUMNS

    # Superstore's product ids: no tier prefix, so price ranks would "upgrade" paper buyers to chairs
    store = _orders([("a", "2024-01-01", "OFF-PA-10000174", 16.4), ("b", "2024-01-02", "FUR-CH-10000454", 731.9),
                     ("a", "2024-03-01", "TEC-PH-10002275", 907.2)])
    assert offer_ladder_problem(store).startswith("the SKUs carry no product tier (a prefix ESS for essentials")
    offers = suggest_offers(store, pd.Series({"a": 0.5, "b": 0.4}), "2024-03-31")
    assert offers.empty and list(offers.columns) == list(OFFER_COLUMNS)
    assert offers["window_start"].dtype == "datetime64[ns]"
    no_products = store.drop(columns="sku")
    assert offer_ladder_problem(no_products) == "the orders name no products (no sku, or the same one on every line)"
    assert suggest_offers(no_products, pd.Series(dtype=float), "2024-03-31").empty
    assert offer_ladder_problem(store.assign(sku="unknown")) == offer_ladder_problem(no_products)


def test_too_few_upsells_is_a_finding_not_a_crash(sample_tables):
    orders = sample_tables["orders"]
    few = orders[(orders["order_type"] != "upsell") | (orders["ts"] < "2026-05-01")]
    check = evaluate_upsell(few, CUTOFF, sample_tables["events"])
    assert not check.checked and check.model is None and np.isnan(check.auc)
    assert check.reason.startswith("not enough upsells to check (")
    assert check.reason.endswith(" in the 90 days to check on; 10 needed in each)")
    assert check.customers == len(check.features) > 0 and check.calibration.empty
    early = evaluate_upsell(orders, orders["ts"].min() + pd.Timedelta(days=30))
    assert early.reason.startswith("not enough upsells to check: no purchase before")
    assert early.customers == 0


def test_personal_offers_climb_the_range_cross_sell_or_discount_on_a_shop_without_tiers():
    from toolkit.opportunities import personal_offers, product_items

    rows = [("a", "2024-01-01", "OFF-PA-1", 10.0), ("a", "2024-02-01", "OFF-PA-2", 20.0),
            ("a", "2024-03-01", "OFF-PA-3", 40.0), ("b", "2024-01-01", "OFF-PA-1", 10.0),
            ("b", "2024-02-01", "OFF-PA-2", 20.0), ("c", "2024-01-05", "OFF-PA-1", 10.0),
            ("c", "2024-01-06", "FUR-CH-1", 300.0), ("d", "2024-01-05", "OFF-PA-1", 10.0),
            ("d", "2024-01-07", "FUR-CH-1", 300.0), ("e", "2024-01-09", "OFF-PA-1", 10.0),
            ("f", "2024-01-01", "FUR-CH-1", 300.0), ("f", "2024-01-02", "OFF-PA-1", 10.0),
            ("f", "2024-01-03", "OFF-PA-2", 20.0), ("f", "2024-01-04", "OFF-PA-3", 40.0),
            ("g", "2024-01-03", "TEC-PH-1", 90.0), ("h", "2024-01-03", "TEC-PH-1", 90.0)]
    orders = _orders(rows)
    items = product_items(orders).set_index("sku")
    assert items.loc["OFF-PA-3", "category"] == "OFF-PA" and items.loc["OFF-PA-3", "item"] == "OFF-PA premium"
    assert items.loc["OFF-PA-1", "item"] == "OFF-PA entry" and items.loc["FUR-CH-1", "item"] == "FUR-CH"
    predictions = pd.DataFrame({"customer_id": ["b", "e"], "expected_value": [10.0, 1000.0]})
    offers = personal_offers(orders, "2024-04-01", gross_margin=0.4, predictions=predictions).set_index("customer_id")
    # b stopped at mid-range paper, where a and f climbed on; e bought entry paper, as c and d did before
    # going on to buy a chair: 2 in 6, more often than customers at large did after their first day (2 in 8)
    assert offers.loc["b", "offer"] == "upgrade to OFF-PA premium" and offers.loc["b", "offer_kind"] == "next tier"
    assert offers.loc["e", "offer_kind"] == "bundle" and offers.loc["e", "offer_sku"] == "FUR-CH-1"
    assert offers.loc["e", "offer_value"] == 300.0 and offers.loc["e", "confidence"] == pytest.approx(2 / 6)
    # a is at the top of paper: f bought a chair too, but before the paper, so no one went on to one from there;
    # g's phone buyers bought nothing else: each gets a discount on what they know
    assert offers.loc["a", "offer"] == "discount on OFF-PA premium"
    assert offers.loc["g", "offer"] == "discount on TEC-PH" and np.isnan(offers.loc["g", "confidence"])
    assert offers.loc["b", "max_discount"] == pytest.approx(0.1)  # 0.4 x 10 expected over a 40 offer
    assert (offers.drop(index="b")["max_discount"] == 0.3).all()  # the largest offer discount, below the margin
    thin = personal_offers(orders, "2024-04-01", gross_margin=0.2)
    assert (thin["max_discount"] == 0.19).all()  # never at or below cost
    assert offers.index.tolist() == sorted("abcdefgh") and offers["offer"].nunique() >= 5


def test_personal_offers_differ_between_customers_on_the_sample(sample_tables):
    from toolkit.opportunities import personal_offers

    offers = personal_offers(sample_tables["orders"], sample.END, gross_margin=0.58)
    assert offers["customer_id"].is_unique
    assert set(offers["offer_kind"]) == {"next tier", "bundle", "discount"}
    assert offers["offer"].value_counts(normalize=True).iloc[0] < 0.5  # not one offer for everyone
    upgrades = offers[offers["offer_kind"] == "next tier"]
    assert set(upgrades["offer"]) <= {"upgrade to pro", "upgrade to elite"}
    assert offers.loc[offers["offer_kind"] == "bundle", "offer_sku"].str.startswith("ADD-").all()
    assert (offers["max_discount"] < 0.58).all() and (offers["offer_value"] > 0).all()


def test_personal_offers_differ_between_customers_on_superstore():
    from test_real_data import REAL_CONFIGS, _real_data
    from toolkit.config import load_config
    from toolkit.ingest import load_tables
    from toolkit.opportunities import personal_offers, purchases

    data = _real_data() / "superstore"
    orders = load_tables(data, load_config(data, REAL_CONFIGS / "superstore.yml")).tables["orders"]
    offers = personal_offers(orders, orders["ts"].max(), gross_margin=0.4)
    assert len(offers) == purchases(orders)["customer_id"].nunique() == 804
    assert offers["offer"].nunique() >= 20 and offers["offer"].value_counts(normalize=True).iloc[0] < 0.2
    assert set(offers["offer_kind"]) == {"next tier", "bundle", "discount"}
    # categories from Superstore's product ids: FUR-CH of FUR-CH-10004287, priced by band within the category
    assert offers["offer"].str.fullmatch(r"(upgrade to|add|discount on) [A-Z]{3}-[A-Z]{2}"
                                         r"( entry| mid-range| premium)?").all()
    assert (offers["max_discount"] < 0.4).all() and (offers["offer_value"] > 0).all()
