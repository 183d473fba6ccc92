"""Re-purchase signals and the ranked opportunity list: hand-made cases and the sample's planted signals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.opportunities import (RepurchaseModel, recent_signals, repurchase_opportunities,
                                   summary_from_orders)
from toolkit.opportunities.segments import purchases

AS_OF = pd.Timestamp("2024-03-31")


def _events(rows):
    return pd.DataFrame(rows, columns=["customer_id", "ts", "event_type", "value"]).assign(
        ts=lambda f: pd.to_datetime(f["ts"]))


def _predictions(ids, alive=0.82, expected=0.5):
    return pd.DataFrame({"customer_id": ids, "probability_alive": alive,
                         "expected_purchases": expected, "expected_value": expected * 50.0,
                         "window_start_days": 20.0, "window_end_days": 200.0})


def test_recent_signals_keeps_the_window_and_positive_reviews_only():
    events = _events([
        ("a", "2024-03-28 10:00", "cart_abandon", np.nan),
        ("a", "2024-03-10 10:00", "cart_abandon", np.nan),   # before the 14-day window
        ("b", "2024-03-30 08:00", "review", 3.0),             # not positive
        ("b", "2024-03-29 08:00", "review", 5.0),
        ("c", "2024-03-31 22:00", "support_resolved", np.nan),
        ("c", "2024-04-01 09:00", "wishlist_add", np.nan),   # after as_of
        ("d", "2024-03-30 09:00", "product_view", np.nan),   # not a signal
    ])
    found = recent_signals(events, AS_OF, window_days=14)
    assert sorted(zip(found["customer_id"], found["signal"], found["days_ago"])) == [
        ("a", "abandoned cart", 3), ("b", "positive review", 2), ("c", "resolved support ticket", 0)]


def test_signals_lift_the_score_and_explain_it():
    events = _events([("a", "2024-03-28 10:00", "cart_abandon", np.nan)])
    ranked = repurchase_opportunities(_predictions(["a", "b"]), AS_OF, events).set_index("customer_id")
    assert ranked.index[0] == "a"
    chance = 1 - np.exp(-0.5)
    assert ranked.loc["b", "score"] == pytest.approx(chance)
    odds = 10 * chance / (1 - chance)  # an abandoned cart multiplies the odds by 10
    assert ranked.loc["a", "score"] == pytest.approx(odds / (1 + odds))
    assert ranked.loc["a", "reason"].startswith("abandoned cart 3 days ago; 82% likely active")
    assert ranked.loc["b", "reason"].startswith("82% likely active")
    # the signal opens the window now and closes it when its 14-day lead runs out
    assert ranked.loc["a", "window_start"] == AS_OF + pd.Timedelta(days=1)
    assert ranked.loc["a", "window_end"] == AS_OF + pd.Timedelta(days=11)
    # without a signal the model's window, clipped to the horizon
    assert ranked.loc["b", "window_start"] == AS_OF + pd.Timedelta(days=20)
    assert ranked.loc["b", "window_end"] == AS_OF + pd.Timedelta(days=90)


def test_signals_the_customer_already_acted_on_are_spent():
    events = _events([("a", "2024-03-25 10:00", "cart_abandon", np.nan),
                      ("b", "2024-03-25 10:00", "cart_abandon", np.nan)])
    orders = pd.DataFrame({"customer_id": ["a", "b"], "ts": pd.to_datetime(["2024-03-27", "2024-03-20"]),
                           "amount": [50.0, 50.0], "status": "completed"})
    assert recent_signals(events, AS_OF, orders=orders)["customer_id"].tolist() == ["b"]


def test_orders_only_ranks_on_the_model():
    predictions = _predictions(["a", "b", "c"]).assign(expected_purchases=[0.2, 1.5, 0.7])
    ranked = repurchase_opportunities(predictions, AS_OF, events=None, top=2)
    assert ranked["customer_id"].tolist() == ["b", "c"]
    np.testing.assert_allclose(ranked["score"], 1 - np.exp(-np.array([1.5, 0.7])))
    assert ranked["reason"].str.contains("likely active").all()


@pytest.fixture(scope="module")
def sample_opportunities(sample_tables):
    """Opportunities as of 2026-07-31 on the sample, and who bought in the next 30 days."""
    orders, events = sample_tables["orders"], sample_tables["events"]
    as_of = pd.Timestamp("2026-07-31")
    model = RepurchaseModel(spend_model=False).fit(summary_from_orders(orders, as_of))
    predictions = model.predict(30)
    with_signals = repurchase_opportunities(predictions, as_of, events, orders, horizon_days=30)
    model_only = repurchase_opportunities(predictions, as_of, None, horizon_days=30)
    later = purchases(orders)
    later = later[(later["ts"] >= as_of + pd.Timedelta(days=1))
                  & (later["ts"] < as_of + pd.Timedelta(days=31))]
    signals = recent_signals(events, as_of, orders=orders)
    signals = signals[signals["customer_id"].isin(predictions["customer_id"])]
    return with_signals, model_only, signals, set(later["customer_id"])


def test_planted_signals_precede_purchases(sample_opportunities):
    """The sample plants wishlist adds and abandoned carts 1-13 days before repeat purchases."""
    _, _, signals, bought = sample_opportunities
    planted = signals[signals["event_type"].isin(["wishlist_add", "cart_abandon"])]
    assert len(planted) > 30
    assert planted["customer_id"].isin(bought).mean() > 0.8


def test_signals_sharpen_the_models_ranking(sample_opportunities):
    with_signals, model_only, _, bought = sample_opportunities
    base_rate = with_signals["customer_id"].isin(bought).mean()
    hit_signals = with_signals.head(50)["customer_id"].isin(bought).mean()
    hit_model = model_only.head(50)["customer_id"].isin(bought).mean()
    assert hit_model > 2 * base_rate
    assert hit_signals > 1.3 * hit_model
    assert with_signals.head(50)["reason"].str.contains("abandoned cart|wishlist add").mean() > 0.5
