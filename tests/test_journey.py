"""Journey analytics against hand counts on a five-customer shop and planted truth in the sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit import journey
from toolkit.schema import SCHEMAS, STAGES

T = pd.Timestamp


def test_small_shop_is_canonical(small_shop_tables):
    for name, table in small_shop_tables.items():
        SCHEMAS[name].validate(table)


# --------------------------------------------------------------------------- stages


def test_customer_stages_by_hand(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables).set_index("customer_id")
    assert list(stages.index) == ["A", "B", "C", "D", "E"]
    assert stages["channel"].to_dict() == {"A": "search", "B": "social", "C": "search",
                                           "D": "social", "E": "email"}
    assert stages.loc["A", "first_touch"] == T("2024-01-01 09:00")
    assert stages["cohort"].to_dict() == {c: T("2024-02-01") if c == "E" else T("2024-01-01")
                                          for c in "ABCDE"}
    # A: review on Jan 10 comes before the repeat order, so post-purchase starts then
    assert stages.loc["A", list(STAGES)].tolist() == [
        T("2024-01-01 09:00"), T("2024-01-02 09:00"), T("2024-01-04 09:00"),
        T("2024-01-05 10:00"), T("2024-01-10 09:00")]
    # B never evaluated; a refund is not a second purchase
    assert pd.isna(stages.loc["B", "evaluation"]) and pd.isna(stages.loc["B", "post-purchase"])
    assert stages.loc["B", "purchase"] == T("2024-01-06 09:00")
    assert stages.loc["C", list(STAGES)].isna().tolist() == [False, True, True, True, True]
    # D: the cancelled Jan 13 order is no purchase; the May 1 order is
    assert stages.loc["D", "purchase"] == T("2024-05-01 09:00")
    assert stages.loc["D", "post-purchase"] == T("2024-05-03 09:00")
    # E: the upsell (Feb 20) comes before the review (Feb 25)
    assert stages.loc["E", "post-purchase"] == T("2024-02-20 09:00")
    assert stages.attrs["observed_stages"] == list(STAGES)


def test_post_purchase_event_before_purchase_does_not_count(small_shop_tables):
    tables = dict(small_shop_tables)
    early = pd.DataFrame({"customer_id": ["B"], "ts": [T("2024-01-04")], "event_type": ["support_ticket"],
                          "stage": ["post-purchase"], "channel": ["support"], "value": [np.nan]})
    tables["events"] = pd.concat([tables["events"], early], ignore_index=True)
    stages = journey.customer_stages(tables).set_index("customer_id")
    assert pd.isna(stages.loc["B", "post-purchase"])


# --------------------------------------------------------------------------- funnel


def test_funnel_by_hand(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables)
    table = journey.funnel(stages, conversion_window_days=90).set_index("stage")
    assert list(table.index) == list(STAGES)
    assert table["observed"].all()
    assert (table["entered"] == 5).all()
    # B passed evaluation by buying; D's purchase is 112 days after the first touch
    assert table["customers"].tolist() == [5, 4, 4, 3, 2]
    assert table["stage_conversion"].tolist() == pytest.approx([1.0, 4 / 5, 4 / 4, 3 / 4, 2 / 3])
    assert table["overall_conversion"].tolist() == pytest.approx([1.0, 0.8, 0.8, 0.6, 0.4])
    assert table["drop_off"].tolist() == [0, 1, 0, 1, 1]


def test_funnel_window_admits_late_conversions(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables)
    wide = journey.funnel(stages, conversion_window_days=200).set_index("stage")
    assert wide["customers"].tolist() == [5, 4, 4, 4, 3]
    narrow = journey.funnel(stages, conversion_window_days=2).set_index("stage")
    # within two days: all but C consider, D reads reviews, E (1.5 days) buys
    assert narrow["customers"].tolist() == [5, 4, 2, 1, 0]


def test_funnel_by_channel(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables)
    table = journey.funnel(stages, 90, by="channel").set_index(["channel", "stage"])
    assert table.loc["search", "customers"].tolist() == [2, 1, 1, 1, 1]
    assert table.loc["social", "customers"].tolist() == [2, 2, 2, 1, 0]
    assert table.loc["email", "customers"].tolist() == [1, 1, 1, 1, 1]
    total = journey.funnel(stages, 90).set_index("stage")["customers"]
    assert table["customers"].groupby(level="stage").sum().reindex(total.index).tolist() == total.tolist()


def test_funnel_with_orders_only_reports_absent_stages(small_shop_tables):
    stages = journey.customer_stages({"orders": small_shop_tables["orders"]})
    assert stages.attrs["observed_stages"] == ["purchase", "post-purchase"]
    table = journey.funnel(stages, 200).set_index("stage")
    assert table["observed"].tolist() == [False, False, False, True, True]
    early = table.loc[["awareness", "consideration", "evaluation"]]
    assert early[["customers", "stage_conversion", "overall_conversion"]].isna().all().all()
    # everyone with an order entered; A and E (the second sale) came back
    assert table.loc["purchase", "entered"] == 4
    assert table.loc["purchase", "customers"] == 4
    assert table.loc["post-purchase", "customers"] == 2
    assert table.loc["post-purchase", "stage_conversion"] == pytest.approx(0.5)


def test_funnel_rejects_unknown_group(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables)
    with pytest.raises(journey.JourneyError, match="segment"):
        journey.funnel(stages, 90, by="segment")


# --------------------------------------------------------------------------- time to convert


def test_time_to_convert_by_hand(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables)
    # consideration -> purchase: A 3 days 1 hour, B 3 days, D 111 days, E 1.5 days
    result = journey.time_to_convert(stages, "consideration", "purchase", window=30)
    assert result.started == 4
    assert result.converted == 3
    assert result.conversion_rate == pytest.approx(0.75)
    assert result.median_days == pytest.approx(3.0)
    assert sorted(result.days.to_numpy()) == pytest.approx([1.5, 3.0, 3 + 1 / 24])
    hist = result.histogram.set_index("from_day")["customers"]
    assert len(hist) == 31 and hist.sum() == 3
    assert hist[1.0] == 1 and hist[3.0] == 2
    everyone = journey.time_to_convert(stages, "consideration", "purchase")
    assert everyone.converted == 4
    assert everyone.median_days == pytest.approx((3.0 + 3 + 1 / 24) / 2)
    assert everyone.summary()["p50_days"] == pytest.approx(everyone.median_days)


def test_time_to_convert_from_first_touch_weekly_bins(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables)
    # first touch -> purchase: A 4.04, B 3.0, D 112.0, E 1.5 days
    result = journey.time_to_convert(stages, "first_touch", "purchase", bin_days=7)
    assert result.started == 5 and result.converted == 4
    hist = result.histogram.set_index("from_day")["customers"]
    assert hist[0.0] == 3 and hist[112.0] == 1 and hist.sum() == 4


def test_time_to_convert_checks_stage_order(small_shop_tables):
    stages = journey.customer_stages(small_shop_tables)
    with pytest.raises(journey.JourneyError, match="after"):
        journey.time_to_convert(stages, "purchase", "consideration")


# --------------------------------------------------------------------------- retention and KPIs


def test_cohort_retention_by_hand(small_shop_tables):
    table = journey.cohort_retention(small_shop_tables["orders"], freq="MS")
    jan = table[table["cohort"] == T("2024-01-01")].set_index("period")
    assert jan["customers"].unique().tolist() == [2]
    assert jan["buyers"].tolist() == [2, 1, 0, 0, 0]
    assert jan["retention"].tolist() == pytest.approx([1.0, 0.5, 0, 0, 0])
    feb = table[table["cohort"] == T("2024-02-01")]
    assert feb["buyers"].tolist() == [1, 0, 0, 0]
    may = table[table["cohort"] == T("2024-05-01")]
    assert may["period"].tolist() == [0] and may["customers"].tolist() == [1]
    assert len(table) == 10


def test_kpis_by_hand(small_shop_tables):
    table = journey.kpis(small_shop_tables, freq="MS", conversion_window_days=90).set_index("ds")
    assert list(table.index) == list(pd.date_range("2024-01-01", "2024-05-01", freq="MS"))
    jan, feb, mar, may = (table.loc[T(d)] for d in ("2024-01-01", "2024-02-01", "2024-03-01", "2024-05-01"))
    assert (jan["sales"], jan["refunds"], jan["revenue"]) == (180, 80, 100)
    assert (jan["orders"], jan["customers"], jan["new_customers"]) == (2, 2, 2)
    assert jan["average_order_value"] == 90
    assert jan["historical_clv"] == 50
    assert (feb["revenue"], feb["orders"], feb["customers"]) == (370, 3, 2)
    assert (feb["new_revenue"], feb["returning_revenue"]) == (320, 50)
    assert feb["repeat_purchase_rate"] == 0.5
    assert feb["historical_clv"] == pytest.approx(470 / 3)
    assert mar["revenue"] == 0 and mar["orders"] == 0 and np.isnan(mar["average_order_value"])
    assert mar["historical_clv"] == pytest.approx(470 / 3)
    assert may["historical_clv"] == pytest.approx(540 / 4)
    # A, B, C, D entered in January: A and B bought within 90 days
    assert (jan["entered"], feb["entered"]) == (4, 1)
    assert (jan["conversion_rate"], feb["conversion_rate"]) == (0.5, 1.0)
    assert np.isnan(mar["conversion_rate"])
    assert (jan["satisfaction"], feb["satisfaction"]) == (5.0, 3.0)
    assert np.isnan(may["satisfaction"])


def test_kpis_with_orders_only_leave_event_figures_empty(small_shop_tables):
    table = journey.kpis({"orders": small_shop_tables["orders"]})
    assert table["conversion_rate"].isna().all() and table["satisfaction"].isna().all()
    assert table["revenue"].sum() == 540


def test_unsupported_frequency(small_shop_tables):
    with pytest.raises(journey.JourneyError, match="frequency"):
        journey.kpis(small_shop_tables, freq="QS")


# --------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def sample_stages(sample_tables):
    return journey.customer_stages(sample_tables)


def _buyers(orders: pd.DataFrame) -> int:
    """Customers with a completed sale: 4,714 placed an order, 15 of them only cancelled ones."""
    return orders.loc[(orders.status == "completed") & (orders.amount > 0), "customer_id"].nunique()


def test_sample_funnel_matches_planted_conversion(sample_stages, sample_tables):
    table = journey.funnel(sample_stages, conversion_window_days=3650).set_index("stage")
    assert table.loc["awareness", "customers"] == 9000
    # 78% of arrivals consider (planted); the funnel never grows downwards
    assert table.loc["consideration", "overall_conversion"] == pytest.approx(0.78, abs=0.015)
    assert table["customers"].is_monotonic_decreasing
    assert table.loc["purchase", "customers"] == _buyers(sample_tables["orders"]) == 4699


def test_sample_kpis_add_up(sample_tables):
    orders = sample_tables["orders"]
    table = journey.kpis(sample_tables, freq="MS")
    sales = orders.loc[(orders.status == "completed") & (orders.amount > 0), "amount"].sum()
    refunds = -orders.loc[orders.status == "refunded", "amount"].sum()
    assert table["revenue"].sum() == pytest.approx(sales - refunds)
    assert (table["new_revenue"] + table["returning_revenue"]).to_numpy() == pytest.approx(
        table["revenue"].to_numpy())
    assert table["new_customers"].sum() == _buyers(orders)
    assert len(table) == 36
    # planted ratings: about 3.9 + 0.6 z, clipped to 1..5
    assert table["satisfaction"].mean() == pytest.approx(3.9, abs=0.2)
    # historical CLV grows as customers keep buying
    assert table["historical_clv"].iloc[-1] > 2 * table["historical_clv"].iloc[0]


def test_sample_retention_starts_at_one(sample_tables):
    table = journey.cohort_retention(sample_tables["orders"])
    assert (table.loc[table["period"] == 0, "retention"] == 1).all()
    assert table["retention"].between(0, 1).all()
    assert table.drop_duplicates("cohort")["customers"].sum() == _buyers(sample_tables["orders"])


# --------------------------------------------------------------------------- order lines, guests, periods


def _lines(rows: list[tuple]) -> pd.DataFrame:
    """Order lines ``(order_id, customer_id or None, ts, amount, order_type, status)``."""
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "ts", "amount", "order_type", "status"])
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["ts"] = pd.to_datetime(frame["ts"]).astype("datetime64[ns]")
    frame["sku"] = "SKU"
    frame["quantity"] = np.where(frame["amount"] < 0, -1, 1)
    return frame[["order_id", "customer_id", "ts", "amount", "order_type", "sku", "quantity", "status"]]


@pytest.fixture
def lines_and_guests(small_shop_tables):
    """The small shop's orders plus a second line on A's first order (25), a guest checkout of two
    lines (30 + 20) with one line returned (-20), and F's deal closed at zero."""
    extra = _lines([
        ("O1", "A", "2024-01-05 10:00", 25.0, "new", "completed"),
        ("G1", None, "2024-01-08 10:00", 30.0, "guest", "completed"),
        ("G1", None, "2024-01-08 10:00", 20.0, "guest", "completed"),
        ("G1-R", None, "2024-01-09 10:00", -20.0, "guest", "refunded"),
        ("Z1", "F", "2024-01-15 10:00", 0.0, "new", "completed"),
    ])
    return {"orders": pd.concat([small_shop_tables["orders"], extra], ignore_index=True)}


def test_kpis_count_orders_not_lines_and_keep_guest_money_apart(lines_and_guests):
    table = journey.kpis(lines_and_guests, freq="MS").set_index("ds")
    jan = table.loc[T("2024-01-01")]
    assert jan["sales"] == 100 + 25 + 80 + 30 + 20
    assert jan["revenue"] == 255 - 80 - 20
    assert jan["orders"] == 3  # O1 (two lines), O3, G1 (two lines); F's zero deal is no sale
    assert jan["average_order_value"] == pytest.approx(255 / 3)
    assert (jan["customers"], jan["new_customers"]) == (2, 2)  # the guest is no customer
    assert jan["guest_revenue"] == 30
    assert (table["new_revenue"] + table["returning_revenue"] + table["guest_revenue"]).to_numpy() == (
        pytest.approx(table["revenue"].to_numpy()))
    # lifetime value per known customer: guest money left out
    assert jan["historical_clv"] == pytest.approx((155 - 30) / 2)
    # all sales of the shop: 255 in January, then 120 + 50 + 200 + 70
    assert journey.guest_sales(lines_and_guests["orders"]) == pytest.approx((50.0, 50 / 695))


def test_stages_count_an_order_of_many_lines_once_and_a_zero_deal_as_a_purchase(lines_and_guests):
    stages = journey.customer_stages(lines_and_guests).set_index("customer_id")
    assert list(stages.index) == ["A", "B", "D", "E", "F"]  # guests cannot be followed
    # A's second line is the same order: post-purchase comes with the repeat order in February
    assert stages.loc["A", "post-purchase"] == T("2024-02-10 09:00")
    assert stages.loc["F", "purchase"] == T("2024-01-15 10:00")
    table = journey.funnel(stages.reset_index(), 200).set_index("stage")
    assert table.loc["purchase", "customers"] == 5
    assert journey.zero_amount_orders(lines_and_guests["orders"]) == 1
    retention = journey.cohort_retention(lines_and_guests["orders"])
    assert retention.drop_duplicates("cohort")["customers"].sum() == 4  # buyers with money: A, B, D, E


def test_partial_periods_are_marked(small_shop_tables):
    # the data runs from Jan 1 09:00 to May 3
    monthly = journey.kpis(small_shop_tables, freq="MS").set_index("ds")
    assert monthly["complete"].tolist() == [True, True, True, True, False]
    assert (monthly.loc[T("2024-05-01"), "days_covered"], monthly.loc[T("2024-05-01"), "days_in_period"]) == (3, 31)
    assert monthly.loc[T("2024-02-01"), "days_in_period"] == 29
    weekly = journey.kpis(small_shop_tables, freq="W").set_index("ds")
    # Monday Jan 1 .. Sunday Jan 7 is whole; Apr 29 .. May 5 has 5 days of data
    assert weekly["complete"].iloc[0] and weekly["days_covered"].iloc[-1] == 5
    assert weekly["complete"].iloc[1:-1].all() and not weekly["complete"].iloc[-1]
    assert journey.kpis(small_shop_tables, freq="D")["complete"].all()


def _daily_orders(first: str, last: str, amount: float = 10.0) -> dict[str, pd.DataFrame]:
    days = pd.date_range(first, last, freq="D")
    return {"orders": _lines([(f"O{i}", f"C{i % 7}", f"{d:%Y-%m-%d} 12:00", amount, "repeat", "completed")
                              for i, d in enumerate(days)])}


def test_month_comparison_uses_complete_months_only():
    # 10 a day to 9 March: the 9-day March is no 70% drop
    monthly = journey.kpis(_daily_orders("2023-01-10", "2024-03-09"), freq="MS")
    march = monthly.set_index("ds").loc[T("2024-03-01")]
    assert not march["complete"] and march["days_covered"] == 9
    result = journey.compare_months(monthly)
    assert (result.month, result.previous_month, result.year_before) == (
        T("2024-02-01"), T("2024-01-01"), T("2023-02-01"))
    revenue = result.figures.loc["revenue"]
    assert (revenue["month"], revenue["previous_month"], revenue["year_before"]) == (290, 310, 280)
    assert revenue["change_vs_previous_month"] == pytest.approx(290 / 310 - 1)
    assert revenue["change_vs_year_before"] == pytest.approx(290 / 280 - 1)
    assert result.summary()["revenue_change_vs_year_before"] == pytest.approx(290 / 280 - 1)
    assert result.figures.loc["orders", "month"] == 29


def test_month_comparison_says_what_the_data_does_not_cover():
    # January 2023 starts on the 10th: February has no complete month before it a year back
    short = journey.compare_months(journey.kpis(_daily_orders("2024-01-01", "2024-03-09"), freq="MS"))
    assert short.month == T("2024-02-01") and short.year_before is None
    assert short.figures["change_vs_year_before"].isna().all()
    assert short.figures.loc["revenue", "change_vs_previous_month"] == pytest.approx(290 / 310 - 1)
    assert journey.compare_months(journey.kpis(_daily_orders("2024-01-10", "2024-02-20"), freq="MS")) is None
    with pytest.raises(journey.JourneyError, match="monthly"):
        journey.compare_months(journey.kpis(_daily_orders("2024-01-01", "2024-03-09"), freq="W"))


def test_missing_figures_name_what_each_empty_figure_needs(small_shop_tables):
    orders_only = journey.kpis(_daily_orders("2024-01-01", "2024-03-09"), freq="MS")
    assert journey.missing_figures(orders_only) == journey.FIGURE_NEEDS
    # the hand-made shop has events and two reviews: every figure has a value
    assert journey.missing_figures(journey.kpis(small_shop_tables, freq="MS")) == {}
    no_reviews = {**small_shop_tables,
                  "events": small_shop_tables["events"].query("event_type != 'review'")}
    assert list(journey.missing_figures(journey.kpis(no_reviews, freq="MS"))) == ["satisfaction"]


def test_journey_page_on_orders_only_says_what_needs_events_and_keeps_one_guest_share(tmp_path):
    from toolkit.pipeline import journey as journey_view, load
    from toolkit.sample import write_messy_shop

    write_messy_shop(tmp_path, customers=300)
    dataset = load(tmp_path)
    view = journey_view(dataset)
    notes = {note.topic: note for note in view.notes}
    assert not view.has_events
    # without events the first touch is the first order: the time to convert would be 0 for everyone
    assert view.time_to_purchase.median_days == 0
    assert "awareness, consideration, evaluation" in notes["events"].text
    assert "events source" in notes["events"].text and notes["events"].level == "missing"
    assert "conversion rate" in notes["key figures"].text and "satisfaction" in notes["key figures"].text
    # the guests' share of revenue is said once, by the data set; the page says what leaves them out
    assert "%" in next(n.text for n in dataset.notes if n.topic == "customers")
    assert "%" not in notes["guests"].text and "funnel" in notes["guests"].text
    assert view.comparison is not None and view.kpis.set_index("ds").loc[view.comparison.month, "complete"]
