"""RFM scores, segments and value tiers on hand-counted orders and on the sample shop."""

from __future__ import annotations

import pandas as pd
import pytest

from toolkit.opportunities import (OpportunityError, SegmentRule, assign_segments, customer_segments,
                                   net_spend, rfm_table, value_tiers)


@pytest.fixture()
def orders() -> pd.DataFrame:
    rows = [  # customer, day, amount, status
        ("a", "2024-03-01", 100.0, "completed"), ("a", "2024-03-01", 20.0, "completed"),
        ("a", "2024-03-20", 50.0, "completed"), ("a", "2024-03-25", -50.0, "refunded"),
        ("b", "2024-01-10", 40.0, "completed"), ("b", "2024-02-10", 999.0, "cancelled"),
        ("c", "2024-03-30", 10.0, "completed"), ("c", "2024-04-15", 10.0, "completed"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount", "status"])
    return frame.assign(ts=pd.to_datetime(frame["ts"]), order_id=[str(i) for i in range(len(frame))])


def test_rfm_hand_counts(orders):
    rfm = rfm_table(orders, as_of="2024-03-31").set_index("customer_id")
    # a: two purchase days, 170 bought, 50 refunded; b: the cancelled order moved no money;
    # c: the April order is after as_of
    assert rfm.loc["a", ["frequency", "monetary", "recency_days", "tenure_days"]].tolist() == [
        2, 120.0, 11, 30]
    assert rfm.loc["b", ["frequency", "monetary", "recency_days"]].tolist() == [1, 40.0, 81]
    assert rfm.loc["c", ["frequency", "monetary", "recency_days"]].tolist() == [1, 10.0, 1]
    # score = 1 + floor(5 x share of customers strictly worse); ties share a score
    assert rfm["r_score"].to_dict() == {"a": 2, "b": 1, "c": 4}
    assert rfm["f_score"].to_dict() == {"a": 4, "b": 1, "c": 1}
    assert rfm["m_score"].to_dict() == {"a": 4, "b": 2, "c": 1}
    assert net_spend(orders).to_dict() == {"a": 120.0, "b": 40.0, "c": 20.0}


def test_segments_follow_configurable_rules(orders):
    rfm = rfm_table(orders, as_of="2024-03-31")
    default = dict(zip(rfm["customer_id"], assign_segments(rfm)))
    assert default == {"a": "at risk", "b": "hibernating", "c": "new"}
    rules = (SegmentRule("big spenders", m_scores=(4, 5)), SegmentRule("recent", r_scores=(4, 5)))
    custom = dict(zip(rfm["customer_id"], assign_segments(rfm, rules, default="rest")))
    assert custom == {"a": "big spenders", "b": "rest", "c": "recent"}


def test_value_tiers_split_by_share_of_customers():
    spend = pd.Series([500.0, 400.0, 300.0, 200.0, 100.0, 90.0, 80.0, 70.0, 60.0, 50.0],
                      index=list("abcdefghij"))
    tiers = value_tiers(spend)
    assert tiers.value_counts().to_dict() == {"low": 5, "medium": 3, "high": 2}
    assert tiers[["a", "b"]].eq("high").all() and tiers["j"] == "low"
    with pytest.raises(OpportunityError, match="sum to 1"):
        value_tiers(spend, shares=(0.5, 0.2), labels=("a", "b"))


def test_sample_segments_are_ordered_by_behaviour(sample_tables):
    segments = customer_segments(sample_tables["orders"])
    assert segments["customer_id"].is_unique and (segments["segment"] != "others").all()
    mean = segments.groupby("segment")[["frequency", "recency_days", "monetary"]].mean()
    assert mean.loc["champions", "frequency"] > mean.loc["hibernating", "frequency"]
    assert mean.loc["champions", "recency_days"] < mean.loc["at risk", "recency_days"]
    assert mean.loc["champions", "monetary"] > mean.loc["new", "monetary"]
    by_tier = segments.groupby("value_tier")["monetary"].min()
    assert by_tier["high"] > by_tier["medium"] > by_tier["low"]
