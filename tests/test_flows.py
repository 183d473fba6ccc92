"""Stage cash-flow series against hand counts, the sample's own totals, and the DuckDB path."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_DATA
from toolkit import flows, sample
from toolkit.config import config_from_dict, load_config
from toolkit.ingest import IngestError, load_tables
from toolkit.journey import period_label
from toolkit.schema import STAGES
from toolkit.warehouse import WarehouseLimits

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


def test_payment_timing_moves_each_flow_by_its_own_terms(small_shop_tables):
    from toolkit.config import PaymentTiming

    timing = PaymentTiming(sales_days=3, refunds_days=1, costs_days=30)
    timed = flows.stage_flows(small_shop_tables, timing=timing)
    purchase = timed[timed["unique_id"] == "purchase|inflow|all"].set_index("ds")["y"]
    # calendar days: Friday 5 Jan's sale arrives on Monday 8 Jan; 1 May's after the data's last day (3 May)
    assert purchase[purchase > 0].to_dict() == {T("2024-01-08"): 100, T("2024-01-09"): 80, T("2024-02-05"): 120}
    refunds = timed[timed["unique_id"] == "post-purchase|outflow|all"].set_index("ds")["y"]
    assert refunds.get(T("2024-01-21")) == 80  # the refund a day late
    # money paid after the data's last day is not in the series but owed: together they are every amount
    transit = flows.money_in_transit(small_shop_tables, timing)
    everything = _totals(flows.stage_flows(small_shop_tables))
    timed_and_owed = pd.Series(_totals(timed)).add(transit.groupby("unique_id")["y"].sum(), fill_value=0)
    assert timed_and_owed.to_dict() == pytest.approx(everything)
    assert transit["ds"].min() > timed["ds"].max()
    assert transit.query("unique_id == 'purchase|inflow|all'")[["ds", "y"]].to_dict("records") == [
        {"ds": T("2024-05-04"), "y": 70.0}]
    # business days skip weekends and the holidays given
    business = flows.stage_flows(small_shop_tables, timing=PaymentTiming(sales_days=1, sales_business_days=True),
                                 holidays=[T("2024-01-08")])
    purchase = business[business["unique_id"] == "purchase|inflow|all"].set_index("ds")["y"]
    assert purchase[purchase > 0].index[:2].tolist() == [T("2024-01-09"), T("2024-01-10")]
    # the default timing is the booking day: the series are exactly those without timing
    pd.testing.assert_frame_equal(flows.stage_flows(small_shop_tables, timing=PaymentTiming()),
                                  flows.stage_flows(small_shop_tables))


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


# --------------------------------------------------------------------------- checked and totalled in DuckDB

NOW = pd.Timestamp("2026-11-01")


def _digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _in_duckdb(data_dir, config, tmp_path, freq="D", segment=None, **options) -> flows.DuckDBFlows:
    """flows_in_duckdb with its spill directory and rejects under tmp_path; inputs must not change."""
    before = _digests(data_dir)
    result = flows.flows_in_duckdb(data_dir, config, freq, segment, rejects_file=tmp_path / "rejects.parquet",
                                   now=NOW, limits=WarehouseLimits(spill_dir=tmp_path / "spill"), **options)
    assert _digests(data_dir) == before, "an input file was modified"
    assert list((tmp_path / "spill").iterdir()) == []
    return result


def _assert_same_series(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Same ids, periods, order and labels exactly; amounts up to float rounding of subtotals."""
    assert ours.columns.tolist() == theirs.columns.tolist()
    for column in ("unique_id", "ds", "stage", "direction", "segment"):
        assert ours[column].tolist() == theirs[column].tolist(), column
    pd.testing.assert_series_equal(ours["y"], theirs["y"], check_exact=False, rtol=1e-12, atol=1e-9)


def _assert_same_as_stage_flows(data_dir, config, tmp_path, freq="D", segment=None, gross_margin=None):
    """Series and counts of the DuckDB path equal stage_flows over load_tables on the same files."""
    ours = _in_duckdb(data_dir, config, tmp_path, freq, segment, gross_margin=gross_margin)
    ingested = load_tables(data_dir, config, now=NOW)
    assert ours.counts == ingested.counts
    _assert_same_series(ours.series, flows.stage_flows(ingested.tables, freq, segment, gross_margin=gross_margin))
    return ours, ingested


@pytest.mark.parametrize("freq", ["D", "W"])
@pytest.mark.parametrize("segment", [None, "channel"])
def test_sample_series_in_duckdb_equal_stage_flows(sample_dir, sample_config, sample_tables, tmp_path, freq,
                                                   segment):
    result = _in_duckdb(sample_dir, sample_config, tmp_path, freq, segment)
    _assert_same_series(result.series, flows.stage_flows(sample_tables, freq, segment))
    for name, table in sample_tables.items():
        bad = len(sample.BAD_ORDER_LINES) + 1 if name == "orders" else 0  # and the line exported twice
        assert result.counts[name] == {"rows_in": len(table) + bad, "accepted": len(table), "rejected": bad}
    assert result.rejects_by_reason["problems"].sum() == len(sample.BAD_ORDER_LINES) + 1


def test_touchpoints_count_every_event_by_stage_and_period(sample_dir, sample_config, sample_tables, tmp_path):
    touch = _in_duckdb(sample_dir, sample_config, tmp_path, "W").touchpoints
    assert touch.columns.tolist() == list(flows.TOUCHPOINT_COLUMNS)
    events = sample_tables["events"]
    expected = events.groupby([period_label(events.ts, "W"), "stage"]).size()
    got = touch[touch.y > 0].set_index(["ds", "stage"])["y"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert touch.y.sum() == len(events)
    assert touch.stage.unique().tolist() == [s for s in STAGES if s in set(events.stage)]
    assert touch.groupby("stage").size().nunique() == 1  # every stage on the full grid


def test_parquet_sources_in_duckdb_give_the_same_series(sample_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("orders", "events", "costs"):
        frame = pd.read_csv(sample_dir / f"{name}.csv", parse_dates=["ts"])
        frame.to_parquet(data / f"{name}.parquet", index=False)
    config = config_from_dict({"sources": {n: {"path": f"{n}.parquet"} for n in ("orders", "events", "costs")}})
    _assert_same_as_stage_flows(data, config, tmp_path, "W", "channel")


def test_order_types_in_duckdb_are_derived_as_ingest_derives_them(sample_dir, tmp_path):
    """Orders without an order_type column: every sample order's type comes from its history."""
    data = tmp_path / "data"
    data.mkdir()
    orders = pd.read_csv(sample_dir / "orders.csv", dtype="str").drop(columns="order_type")
    orders.to_csv(data / "orders.csv", index=False)
    config = config_from_dict({"sources": {"orders": {"path": "orders.csv"}}})
    ours, _ = _assert_same_as_stage_flows(data, config, tmp_path, "W")
    assert {"purchase|inflow|all", "post-purchase|inflow|all"} <= set(ours.series.unique_id)


@pytest.mark.parametrize("segment", [None, "channel"])
def test_messy_export_in_duckdb_equals_stage_flows_with_guests_as_purchase_money(tmp_path, segment):
    """Order lines, guests, 'C' cancellations, European dates, no costs: the cost of goods estimated."""
    data = tmp_path / "data"
    sample.write_messy_shop(data, customers=1500)
    config = load_config(data)
    assert config.gross_margin is not None
    ours, ingested = _assert_same_as_stage_flows(data, config, tmp_path, "D", segment, config.gross_margin)
    orders = ingested.tables["orders"]
    guests = orders.customer_id.isna()
    assert guests.any() and (orders.order_type[guests] == "guest").all()
    guest_sales = orders.amount[guests & (orders.status == "completed") & (orders.amount > 0)].sum()
    totals = _totals(ours.series)
    purchase = sum(v for k, v in totals.items() if k.startswith("purchase|inflow|"))
    first_orders = orders.amount[(orders.order_type == "new") & (orders.status == "completed")
                                 & (orders.amount > 0)].sum()
    assert purchase == pytest.approx(first_orders + guest_sales)
    if segment == "channel":
        assert totals["purchase|inflow|unknown"] >= guest_sales > 0  # no events: no first touch
    assert ours.touchpoints.empty


def test_guests_refunds_and_costs_by_channel_in_duckdb(tmp_path):
    """A hand count: the guest's line is purchase money of the unknown channel, refunds follow the buyer."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text(
        "order_id,customer_id,ts,amount,quantity\n"
        "O1,C1,2024-01-05 10:00:00,100,1\n"
        "O2,,2024-01-06 10:00:00,10,1\n"          # a guest's order
        "O3,C2,2024-01-07 10:00:00,30,1\n"
        "O3,C2,2024-01-07 10:00:00,30,1\n"        # the line exported twice: a reject
        "O4,C2,2024-01-09 10:00:00,-50,-1\n"      # a refund
    )
    (data / "events.csv").write_text("customer_id,ts,event_type,channel\n"
                                     "C1,2024-01-01,site_visit,search\nC2,2024-01-03,ad_click,social\n")
    (data / "costs.csv").write_text("ts,stage,category,channel,amount\n"
                                    "2024-01-01,awareness,ads,search,30\n2024-01-03,,payroll,bank,500\n")
    ours, ingested = _assert_same_as_stage_flows(data, config_from_dict({}), tmp_path, "D", "channel")
    assert ingested.tables["orders"].order_type.tolist() == ["new", "guest", "new", "new"]
    assert ours.counts["orders"] == {"rows_in": 5, "accepted": 4, "rejected": 1}
    assert _totals(ours.series) == {"awareness|outflow|search": 30.0, "purchase|inflow|search": 100.0,
                                    "purchase|inflow|unknown": 10.0, "purchase|inflow|social": 30.0,
                                    "post-purchase|outflow|social": 50.0, "operations|outflow|bank": 500.0}


def test_parquet_with_zoned_timestamps_and_a_bad_row_in_duckdb(tmp_path):
    """Aware timestamps become business-local time; Parquet rows are numbered by position."""
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({
        "order_id": ["O1", "O2", "O3"], "customer_id": ["C1", "C2", "C3"],
        "ts": pd.to_datetime(["2024-03-30 23:30", "2024-03-31 12:00", "2024-04-01 08:00"]).tz_localize("UTC"),
        "amount": [10.0, 5e12, 20.0],
    }).to_parquet(data / "orders.parquet", index=False)
    config = config_from_dict({"timezone": "Europe/Berlin", "sources": {"orders": {"path": "orders.parquet"}}})
    result, _ = _assert_same_as_stage_flows(data, config, tmp_path)
    rejects = pd.read_parquet(result.rejects_file)
    assert rejects[["row", "column", "value"]].values.tolist() == [[2, "amount", "5000000000000.0"]]
    # 23:30 UTC on Mar 30 is 00:30 on Mar 31 in Berlin
    sales = result.series[result.series.y > 0].set_index("ds")["y"]
    assert sales.to_dict() == {pd.Timestamp("2024-03-31"): 10.0, pd.Timestamp("2024-04-01"): 20.0}


def test_flows_in_duckdb_refuse_an_unknown_segment_and_data_without_orders(tmp_path):
    config = config_from_dict({"sources": {"orders": {"path": "orders_refunds.csv"}}})
    with pytest.raises(flows.FlowsError, match="cannot split"):
        _in_duckdb(TEST_DATA / "bad", config, tmp_path, segment="sku")
    config = config_from_dict({"sources": {"orders": {"path": "orders_header_only.csv"}}})
    with pytest.raises(IngestError, match="orders_header_only.csv"):
        _in_duckdb(TEST_DATA / "bad", config, tmp_path)
