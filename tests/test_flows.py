"""Stage cash-flow series against hand counts and against the sample's own totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit import flows, sample

T = pd.Timestamp


def _totals(series: pd.DataFrame) -> dict[str, float]:
    return series.groupby("unique_id")["y"].sum().to_dict()


# --------------------------------------------------------------------------- by hand


def test_daily_flows_by_hand(small_shop_tables):
    series = flows.stage_flows(small_shop_tables)
    assert _totals(series) == pytest.approx({
        "awareness|outflow|all": 50.0,
        "consideration|outflow|all": 10.0,
        "evaluation|outflow|all": 18.0,
        "purchase|inflow|all": 100 + 80 + 120 + 70,  # first orders; D's cancelled order moved nothing
        "purchase|outflow|all": 42.0,
        "post-purchase|inflow|all": 50 + 200,  # A's repeat, E's upsell
        "post-purchase|outflow|all": 80 + 14,  # B's refund and a support ticket
        "operations|outflow|all": 500.0,
    })
    # journey order, inflows before outflows
    assert list(series["unique_id"].unique()) == [
        "awareness|outflow|all", "consideration|outflow|all", "evaluation|outflow|all",
        "purchase|inflow|all", "purchase|outflow|all", "post-purchase|inflow|all",
        "post-purchase|outflow|all", "operations|outflow|all"]
    # Jan 1 (first cost) .. May 3 (D's support ticket): 124 days for every series
    days = pd.date_range("2024-01-01", "2024-05-03", freq="D")
    for _, one in series.groupby("unique_id"):
        assert one["ds"].tolist() == list(days)
    purchase = series[series["unique_id"] == "purchase|inflow|all"].set_index("ds")["y"]
    assert purchase[purchase > 0].to_dict() == {T("2024-01-05"): 100, T("2024-01-06"): 80,
                                                T("2024-02-02"): 120, T("2024-05-01"): 70}
    refunds = series[series["unique_id"] == "post-purchase|outflow|all"].set_index("ds")["y"]
    assert refunds[refunds > 0].to_dict() == {T("2024-01-20"): 80, T("2024-02-20"): 14}
    assert list(series.columns) == ["unique_id", "ds", "y", "stage", "direction", "segment"]
    assert (series["segment"] == "all").all()


def test_weekly_and_monthly_by_hand(small_shop_tables):
    weekly = flows.stage_flows(small_shop_tables, freq="W")
    purchase = weekly[weekly["unique_id"] == "purchase|inflow|all"].set_index("ds")["y"]
    # weeks run Monday..Sunday, labelled by their Sunday; Jan 1 2024 is a Monday
    assert purchase.index[0] == T("2024-01-07") and purchase.index[-1] == T("2024-05-05")
    assert purchase[T("2024-01-07")] == 180 and purchase[T("2024-02-04")] == 120
    monthly = flows.stage_flows(small_shop_tables, freq="MS")
    purchase = monthly[monthly["unique_id"] == "purchase|inflow|all"].set_index("ds")["y"]
    assert purchase.to_dict() == {T("2024-01-01"): 180, T("2024-02-01"): 120, T("2024-03-01"): 0,
                                  T("2024-04-01"): 0, T("2024-05-01"): 70}


def test_flows_by_channel_by_hand(small_shop_tables):
    series = flows.stage_flows(small_shop_tables, segment="channel")
    totals = _totals(series)
    # inflows by the buyer's first-touch channel, costs by their own channel
    assert totals["purchase|inflow|search"] == 100
    assert totals["purchase|inflow|social"] == 80 + 70
    assert totals["purchase|inflow|email"] == 120
    assert totals["post-purchase|inflow|email"] == 200
    assert totals["post-purchase|outflow|social"] == 80  # B's refund
    assert totals["post-purchase|outflow|support"] == 14
    assert totals["awareness|outflow|search"] == 30 and totals["awareness|outflow|social"] == 20


def test_net_flow_by_hand(small_shop_tables):
    net = flows.net_flow(flows.stage_flows(small_shop_tables)).set_index("ds")
    assert list(net.columns) == ["inflow", "outflow", "net"]
    assert net["inflow"].sum() == pytest.approx(620)
    assert net["outflow"].sum() == pytest.approx(714)
    assert net["net"].sum() == pytest.approx(-94)
    assert net.loc[T("2024-01-01"), "net"] == -50
    assert net.loc[T("2024-01-05"), "net"] == 100 - 42


def test_mapping_can_move_money_between_stages(small_shop_tables):
    mapping = flows.FlowMapping(refunds="purchase", costs={**flows.DEFAULT_MAPPING.costs,
                                                           "operations": "post-purchase"})
    totals = _totals(flows.stage_flows(small_shop_tables, mapping=mapping))
    assert totals["purchase|outflow|all"] == 42 + 80
    assert totals["post-purchase|outflow|all"] == 14 + 500
    assert "operations|outflow|all" not in totals


def test_mapping_rejects_unknown_stage_and_unmapped_money(small_shop_tables):
    with pytest.raises(flows.FlowsError, match="unknown stages"):
        flows.FlowMapping(refunds="returns")
    with pytest.raises(flows.FlowsError, match="upsell"):
        flows.stage_flows(small_shop_tables, mapping=flows.FlowMapping(revenue={"new": "purchase",
                                                                                "repeat": "post-purchase"}))


def test_negative_cost_is_money_back(small_shop_tables):
    tables = dict(small_shop_tables)
    rebate = pd.DataFrame({"ts": [T("2024-01-10")], "stage": ["awareness"], "category": ["rebate"],
                           "channel": ["search"], "amount": [-15.0]})
    tables["costs"] = pd.concat([tables["costs"], rebate], ignore_index=True)
    series = flows.stage_flows(tables)
    assert (series["y"] >= 0).all()
    assert _totals(series)["awareness|inflow|all"] == 15
    assert flows.net_flow(series)["net"].sum() == pytest.approx(-94 + 15)


def _with_guest_lines(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The small shop plus one guest checkout of two lines (30 + 20) on Jan 8 and a returned line (-20)."""
    guest = pd.DataFrame({
        "order_id": ["G1", "G1", "G1-R"], "customer_id": pd.array([pd.NA] * 3, dtype="str"),
        "ts": [T("2024-01-08 10:00"), T("2024-01-08 10:00"), T("2024-01-09 10:00")],
        "amount": [30.0, 20.0, -20.0], "order_type": ["guest"] * 3, "sku": ["ESS-01", "ESS-02", "ESS-02"],
        "quantity": [1, 1, -1], "status": ["completed", "completed", "refunded"]})
    return {**tables, "orders": pd.concat([tables["orders"], guest], ignore_index=True)}


def test_guest_money_is_purchase_money_in_every_flow(small_shop_tables):
    tables = _with_guest_lines(small_shop_tables)
    totals = _totals(flows.stage_flows(tables))
    assert totals["purchase|inflow|all"] == 370 + 50
    assert totals["post-purchase|outflow|all"] == 80 + 14 + 20  # the returned line
    by_channel = _totals(flows.stage_flows(tables, segment="channel"))
    # a guest has no first touch: the unknown channel, like a customer without events
    assert by_channel["purchase|inflow|unknown"] == 50
    assert by_channel["post-purchase|outflow|unknown"] == 20
    assert sum(v for k, v in by_channel.items() if k.startswith("purchase|inflow|")) == 420


def test_without_costs_the_cost_of_goods_is_estimated_from_the_gross_margin(small_shop_tables):
    orders_only = {"orders": small_shop_tables["orders"], "events": small_shop_tables["events"]}
    series = flows.stage_flows(orders_only, gross_margin=0.6)
    estimated = series[series["unique_id"] == "purchase|outflow|estimated"].set_index("ds")["y"]
    sales = series[series["direction"] == "inflow"].groupby("ds")["y"].sum()
    # (1 - 0.6) x sales, on the day of each sale
    assert estimated.to_numpy() == pytest.approx(0.4 * sales.reindex(estimated.index).to_numpy())
    assert estimated.sum() == pytest.approx(0.4 * 620)
    assert set(series["segment"]) == {"all", flows.ESTIMATED}
    by_channel = flows.stage_flows(orders_only, segment="channel", gross_margin=0.6)
    assert _totals(by_channel)["purchase|outflow|estimated"] == pytest.approx(0.4 * 620)
    # real costs win: the margin is not used when the data has costs
    assert _totals(flows.stage_flows(small_shop_tables, gross_margin=0.6)) == _totals(
        flows.stage_flows(small_shop_tables))
    # without a margin only money in (and refunds) is known
    assert "purchase|outflow|estimated" not in _totals(flows.stage_flows(orders_only))
    assert flows.has_costs(small_shop_tables) and not flows.has_costs(orders_only)
    with pytest.raises(flows.FlowsError, match="gross_margin"):
        flows.stage_flows(orders_only, gross_margin=1.5)


def test_bad_parameters(small_shop_tables):
    with pytest.raises(flows.FlowsError, match="region"):
        flows.stage_flows(small_shop_tables, segment="region")
    with pytest.raises(flows.FlowsError, match="frequency"):
        flows.stage_flows(small_shop_tables, freq="h")
    with pytest.raises(flows.FlowsError, match="direction"):
        flows.net_flow(pd.DataFrame({"ds": [T("2024-01-01")], "y": [1.0], "direction": ["sideways"]}))


# --------------------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def daily(sample_tables):
    return flows.stage_flows(sample_tables)


def test_sample_flows_sum_to_the_tables(sample_tables, daily):
    orders, costs = sample_tables["orders"], sample_tables["costs"]
    sales = orders.loc[(orders.status == "completed") & (orders.amount > 0), "amount"].sum()
    refunds = -orders.loc[orders.status == "refunded", "amount"].sum()
    by_direction = daily.groupby("direction")["y"].sum()
    assert by_direction["inflow"] == pytest.approx(sales, abs=0.01)
    assert by_direction["outflow"] == pytest.approx(costs["amount"].sum() + refunds, abs=0.01)
    first_orders = orders.loc[(orders.status == "completed") & (orders.order_type == "new"), "amount"].sum()
    assert _totals(daily)["purchase|inflow|all"] == pytest.approx(first_orders, abs=0.01)
    for stage, amount in costs.groupby("stage")["amount"].sum().items():
        booked = daily[(daily.stage == stage) & (daily.direction == "outflow")]["y"].sum()
        extra = refunds if stage == "post-purchase" else 0.0
        assert booked == pytest.approx(amount + extra, abs=0.01), stage


def test_sample_series_share_the_full_daily_grid(daily):
    grid = pd.date_range(sample.START, sample.END, freq="D")
    assert daily["unique_id"].nunique() == 8
    for _, one in daily.groupby("unique_id"):
        assert one["ds"].tolist() == list(grid)
    assert (daily["y"] >= 0).all() and np.isfinite(daily["y"]).all()
    assert daily["ds"].dtype == "datetime64[ns]"


def test_sample_weekly_pattern_is_visible(daily):
    inflow = daily[daily.direction == "inflow"].groupby("ds")["y"].sum()
    weekday = inflow.groupby(inflow.index.day_of_week).mean()
    assert weekday[0] > weekday[5]
    # repeat purchases follow the planted weekday weights directly (first orders come a
    # log-normal number of days after arrival, which blurs the pattern)
    repeat = daily[daily.unique_id == "post-purchase|inflow|all"].set_index("ds")["y"]
    weekday = repeat.groupby(repeat.index.day_of_week).mean()
    assert weekday[0] / weekday[5] == pytest.approx(sample.WEEKLY[0] / sample.WEEKLY[5], rel=0.15)


@pytest.mark.parametrize("freq", ["W", "W-MON", "MS"])
def test_sample_resampling_preserves_totals(sample_tables, daily, freq):
    coarse = flows.stage_flows(sample_tables, freq=freq)
    assert _totals(coarse) == pytest.approx(_totals(daily), abs=0.01)
    grid = pd.date_range(coarse["ds"].min(), coarse["ds"].max(), freq=freq)
    assert len(grid) == coarse.groupby("unique_id").size().unique().item()
    if freq == "MS":
        assert len(grid) == 36


def test_sample_segments_sum_back(sample_tables, daily):
    by_channel = flows.stage_flows(sample_tables, segment="channel")
    assert set(by_channel["segment"]) >= set(sample.CHANNELS)
    summed = by_channel.groupby(["stage", "direction", "ds"])["y"].sum()
    plain = daily.set_index(["stage", "direction", "ds"])["y"]
    assert summed.reindex(plain.index).to_numpy() == pytest.approx(plain.to_numpy(), abs=1e-6)


def test_sample_orders_only(sample_tables, daily):
    orders = sample_tables["orders"]
    series = flows.stage_flows({"orders": orders})
    assert list(series["unique_id"].unique()) == [
        "purchase|inflow|all", "post-purchase|inflow|all", "post-purchase|outflow|all"]
    totals, full = _totals(series), _totals(daily)
    assert totals["purchase|inflow|all"] == pytest.approx(full["purchase|inflow|all"])
    assert totals["post-purchase|inflow|all"] == pytest.approx(full["post-purchase|inflow|all"])
    refunds = -orders.loc[orders.status == "refunded", "amount"].sum()
    assert totals["post-purchase|outflow|all"] == pytest.approx(refunds)
    days = series.groupby("unique_id").size().unique()
    assert len(days) == 1
