"""Shared fixtures: the committed sample shop, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample"
TEST_DATA = Path(__file__).resolve().parent / "data"
#: Forecaster settings for quick tests on short series: two weeks ahead, one backtest window.
SHORT_FORECAST = dict(horizon=14, uncertainty_samples=100, backtest_folds=1, backtest_horizon=14,
                      progress=False)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_config():
    from toolkit.config import load_config

    return load_config(SAMPLE_DIR)


@pytest.fixture(scope="session")
def sample_tables(sample_config):
    """The canonical orders, events and costs of data/sample (treat as read-only)."""
    from toolkit.ingest import load_tables

    return load_tables(SAMPLE_DIR, sample_config).tables


@pytest.fixture
def small_shop_tables():
    """A hand-made shop of five customers whose funnel, flows and KPIs are counted by hand.

    A (search): touch, consideration, trial, buys 100 on Jan 5, reviews (5), repeats 50 in Feb.
    B (social): touch, cart, buys 80 on Jan 6 without evaluating, refunded on Jan 20.
    C (search): one site visit, nothing more.
    D (social): considers and reads reviews in January; the Jan 13 order is cancelled; buys
       70 on May 1 (112 days after the first touch) and opens a support ticket on May 3.
    E (email): touch Feb 1, buys 120 on Feb 2, upsell 200 on Feb 20, reviews (3) on Feb 25.
    """
    import pandas as pd

    def frame(columns, rows):
        out = pd.DataFrame(rows, columns=columns)
        out["ts"] = pd.to_datetime(out["ts"]).astype("datetime64[ns]")
        return out

    stage = {"ad_click": "awareness", "site_visit": "awareness", "product_view": "consideration",
             "cart_add": "consideration", "trial_start": "evaluation", "review_read": "evaluation",
             "review": "post-purchase", "support_ticket": "post-purchase"}
    events = frame(["customer_id", "ts", "event_type", "channel", "value"], [
        ("A", "2024-01-01 09:00", "ad_click", "search", None),
        ("A", "2024-01-01 09:05", "site_visit", "search", None),
        ("A", "2024-01-02 09:00", "product_view", "search", None),
        ("A", "2024-01-04 09:00", "trial_start", "search", None),
        ("A", "2024-01-10 09:00", "review", "site", 5.0),
        ("B", "2024-01-03 09:00", "site_visit", "social", None),
        ("B", "2024-01-03 09:00", "product_view", "social", None),
        ("B", "2024-01-03 09:30", "cart_add", "social", None),
        ("C", "2024-01-02 12:00", "site_visit", "search", None),
        ("D", "2024-01-10 09:00", "ad_click", "social", None),
        ("D", "2024-01-11 09:00", "product_view", "social", None),
        ("D", "2024-01-12 09:00", "review_read", "social", None),
        ("D", "2024-05-03 09:00", "support_ticket", "support", None),
        ("E", "2024-02-01 09:00", "site_visit", "email", None),
        ("E", "2024-02-01 09:00", "product_view", "email", None),
        ("E", "2024-02-25 09:00", "review", "site", 3.0),
    ])
    events.insert(3, "stage", events["event_type"].map(stage))
    events["value"] = events["value"].astype(float)
    orders = frame(["order_id", "customer_id", "ts", "amount", "order_type", "sku", "quantity", "status"], [
        ("O1", "A", "2024-01-05 10:00", 100.0, "new", "ESS-01", 1, "completed"),
        ("O3", "B", "2024-01-06 09:00", 80.0, "new", "ESS-02", 1, "completed"),
        ("O4", "D", "2024-01-13 09:00", 60.0, "new", "ESS-03", 1, "cancelled"),
        ("R3", "B", "2024-01-20 09:00", -80.0, "new", "ESS-02", -1, "refunded"),
        ("O6", "E", "2024-02-02 21:00", 120.0, "new", "PRO-01", 1, "completed"),
        ("O2", "A", "2024-02-10 09:00", 50.0, "repeat", "ESS-01", 1, "completed"),
        ("O7", "E", "2024-02-20 09:00", 200.0, "upsell", "ELI-01", 1, "completed"),
        ("O5", "D", "2024-05-01 09:00", 70.0, "new", "ESS-04", 1, "completed"),
    ])
    orders.insert(7, "unit_price", (orders["amount"] / orders["quantity"]).abs())
    orders["refund_of"] = pd.Series([pd.NA] * len(orders), dtype="str").mask(orders["order_id"] == "R3", "O3")
    costs = frame(["ts", "stage", "category", "channel", "amount"], [
        ("2024-01-01", "awareness", "acquisition marketing", "search", 30.0),
        ("2024-01-01", "awareness", "acquisition marketing", "social", 20.0),
        ("2024-01-04", "evaluation", "trials and demos", "site", 18.0),
        ("2024-01-05", "purchase", "fulfilment", "warehouse", 42.0),
        ("2024-01-15", "operations", "payroll", "bank", 500.0),
        ("2024-02-02", "consideration", "promotions", "site", 10.0),
        ("2024-02-20", "post-purchase", "support", "support", 14.0),
    ])
    return {"orders": orders, "events": events, "costs": costs}
