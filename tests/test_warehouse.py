"""Warehouse: the DuckDB path gives the pandas path's series, counts and rejects, on real files."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from conftest import TEST_DATA
from toolkit.config import config_from_dict
from toolkit.flows import FlowsError, stage_flows
from toolkit.ingest import REJECT_COLUMNS, IngestError, load_tables
from toolkit.journey import period_label
from toolkit.schema import STAGES
from toolkit.warehouse import TOUCHPOINT_COLUMNS, WarehouseLimits, warehouse_flows

BAD = TEST_DATA / "bad"
NOW = pd.Timestamp("2026-11-01")


def _digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _run(data_dir, config, tmp_path, freq="D", segment=None, rejects="rejects.parquet", **limits):
    """warehouse_flows with its spill directory and rejects file under tmp_path; inputs must not change."""
    before = _digests(data_dir)
    limits = WarehouseLimits(spill_dir=tmp_path / "spill", **limits)
    result = warehouse_flows(data_dir, config, freq, segment, rejects_file=tmp_path / rejects, now=NOW,
                             limits=limits)
    assert _digests(data_dir) == before, "an input file was modified"
    for counts in result.counts.values():
        assert counts["rows_in"] == counts["accepted"] + counts["rejected"]
    return result


def _read_rejects(path) -> pd.DataFrame:
    rejects = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"value": "str"})
    assert list(rejects.columns) == list(REJECT_COLUMNS)
    return rejects


def _assert_same_series(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Same ids, periods, order and labels exactly; amounts up to float rounding of subtotals."""
    assert ours.columns.tolist() == theirs.columns.tolist()
    for column in ("unique_id", "ds", "stage", "direction", "segment"):
        assert ours[column].tolist() == theirs[column].tolist(), column
    pd.testing.assert_series_equal(ours["y"], theirs["y"], check_exact=False, rtol=1e-12, atol=1e-9)


def _assert_same_as_ingest(data_dir, config, tmp_path, freq="D", segment=None):
    """Counts, rejects (read back from DuckDB's file) and series equal the pandas path's."""
    ours = _run(data_dir, config, tmp_path, freq, segment)
    ingested = load_tables(data_dir, config, now=NOW)
    assert ours.counts == ingested.counts
    rejects = _read_rejects(ours.rejects_file)
    pd.testing.assert_frame_equal(rejects.astype(ingested.rejects.dtypes.to_dict()), ingested.rejects)
    for name, counts in ours.counts.items():
        assert counts["rejected"] == rejects[rejects.table == name].row.nunique()
    _assert_same_series(ours.series, stage_flows(ingested.tables, freq, segment))
    return ours


# --------------------------------------------------------------------------- the sample shop


@pytest.mark.parametrize("freq", ["D", "W"])
@pytest.mark.parametrize("segment", [None, "channel"])
def test_sample_series_equal_the_pandas_path(sample_dir, sample_config, sample_tables, tmp_path, freq, segment):
    result = _run(sample_dir, sample_config, tmp_path, freq, segment)
    _assert_same_series(result.series, stage_flows(sample_tables, freq, segment))
    for name, table in sample_tables.items():
        assert result.counts[name] == {"rows_in": len(table), "accepted": len(table), "rejected": 0}
    assert _read_rejects(result.rejects_file).empty and result.rejects_by_reason.empty


def test_touchpoints_count_every_event_by_stage_and_period(sample_dir, sample_config, sample_tables, tmp_path):
    touch = _run(sample_dir, sample_config, tmp_path, "W").touchpoints
    assert touch.columns.tolist() == list(TOUCHPOINT_COLUMNS)
    events = sample_tables["events"]
    expected = events.groupby([period_label(events.ts, "W"), "stage"]).size()
    got = touch[touch.y > 0].set_index(["ds", "stage"])["y"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert touch.y.sum() == len(events)
    assert touch.stage.unique().tolist() == [s for s in STAGES if s in set(events.stage)]
    assert touch.groupby("stage").size().nunique() == 1  # every stage on the full grid


def test_parquet_sources_give_the_same_series(sample_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("orders", "events", "costs"):
        frame = pd.read_csv(sample_dir / f"{name}.csv", parse_dates=["ts"])
        frame.to_parquet(data / f"{name}.parquet", index=False)
    config = config_from_dict({"sources": {n: {"path": f"{n}.parquet"} for n in ("orders", "events", "costs")}})
    _assert_same_as_ingest(data, config, tmp_path, "W", "channel")


def test_memory_limit_and_threads_apply_and_spill_is_cleaned_up(sample_dir, sample_config, sample_tables, tmp_path):
    result = _run(sample_dir, sample_config, tmp_path, "D", "channel", memory_limit="64MB", threads=1)
    _assert_same_series(result.series, stage_flows(sample_tables, "D", "channel"))
    assert list((tmp_path / "spill").iterdir()) == []


# --------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize(("orders", "settings"), [
    ("orders_bad_dates.csv", {}),
    ("orders_duplicate_ids.csv", {}),
    ("orders_future.csv", {}),
    ("orders_huge.csv", {}),
    ("orders_mixed_timezones.csv", {"timezone": "Europe/Berlin"}),
    ("orders_ragged.csv", {}),
    ("orders_refunds.csv", {}),
    ("orders_wrong_types.csv", {}),
    ("orders_latin1.csv", {"encoding": "cp1252"}),
])
def test_bad_orders_files_reject_as_ingest_does(orders, settings, tmp_path):
    config = config_from_dict({"sources": {"orders": {"path": orders}}, **settings})
    _assert_same_as_ingest(BAD, config, tmp_path)


def test_bad_events_and_costs_reject_as_ingest_does(tmp_path):
    config = config_from_dict({"sources": {
        "orders": {"path": "orders_refunds.csv"},
        "events": {"path": "events_unknown.csv"},
        "costs": {"path": "costs_unknown_stage.csv"},
    }})
    _assert_same_as_ingest(BAD, config, tmp_path, "D", "channel")


@pytest.fixture
def shop_with_one_bad_row_of_each_kind(tmp_path):
    """Small hand-made files: line -> the one problem planted on it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text(
        "order_id,customer_id,ts,amount,order_type,quantity,status\n"
        "O1,C1,2024-01-05 10:00:00,100,new,1,completed\n"       # 2 fine
        ",C1,2024-01-06 10:00:00,10,repeat,1,completed\n"       # 3
        "O3,,2024-01-06 10:00:00,10,repeat,1,completed\n"       # 4 fine: a guest's order
        "O4,C1,,10,repeat,1,completed\n"                        # 5
        "O5,C1,2024-01-32,10,repeat,1,completed\n"              # 6
        "O6,C1,2027-01-01,10,repeat,1,completed\n"              # 7
        "O7,C1,2024-01-07,,repeat,1,completed\n"                # 8
        "O8,C1,2024-01-07,ten,repeat,1,completed\n"             # 9
        "O9,C1,2024-01-07,2e9,repeat,1,completed\n"             # 10
        "O10,C1,2024-01-07,10,repeat,1.5,completed\n"           # 11
        "O11,C1,2024-01-07,10,repeat,1,lost\n"                  # 12
        "O12,C1,2024-01-07,10,gift,1,completed\n"               # 13
        "O1,C1,2024-01-05 10:00:00,100,new,1,completed\n"       # 14 line 2 again
        "O13,C2,2024-01-09,-50,new,1,Refund\n"                  # 15 fine: a refund
        "O14,C1,0001-01-01,10,repeat,1,completed\n"             # 16
        "O15,C1,9999-12-31 23:59:59,10,repeat,1,completed\n"    # 17
    )
    (data / "events.csv").write_text(
        "customer_id,ts,event_type,stage,channel,value\n"
        "C1,2024-01-01,site_visit,,search,\n"                   # 2 fine
        "C1,2024-01-02,,,search,\n"                             # 3
        "C1,2024-01-02,webinar,,search,\n"                      # 4
        "C1,2024-01-02,site_visit,fun,search,\n"                # 5
        "C1,2024-01-02,review,,site,9e12\n"                     # 6
        "C2,2024-01-03,ad_click,,social,\n"                     # 7 fine
    )
    (data / "costs.csv").write_text(
        "ts,stage,category,channel,amount\n"
        "2024-01-01,awareness,ads,search,30\n"                  # 2 fine
        "2024-01-02,marketing,ads,search,30\n"                  # 3
        "2024-01-02,,payroll,bank,\n"                           # 4
        "2024-01-03,,payroll,bank,500\n"                        # 5 fine: operations
    )
    return data


def test_each_covered_rule_rejects_its_row_with_its_reason(shop_with_one_bad_row_of_each_kind, tmp_path):
    result = _assert_same_as_ingest(shop_with_one_bad_row_of_each_kind, config_from_dict({}), tmp_path,
                                    "D", "channel")
    rejects = _read_rejects(result.rejects_file)
    found = {(t, r): reason for t, r, reason in zip(rejects.table, rejects.row, rejects.reason)}
    assert found == {
        ("orders", 3): "missing order_id",
        ("orders", 5): "missing ts",
        ("orders", 6): "unparseable timestamp (expected ISO 8601; set `date_format:`)",
        ("orders", 7): "timestamp after now (2026-11-01 00:00)",
        ("orders", 8): "missing amount",
        ("orders", 9): "amount is not a number",
        ("orders", 10): "amount beyond 1,000,000,000 in absolute value (unit or entry error?)",
        ("orders", 11): "quantity is not a whole number",
        ("orders", 12): "unknown status (expected one of completed, refunded, cancelled)",
        ("orders", 13): "unknown order_type (expected one of new, repeat, upsell, guest)",
        ("orders", 14): "duplicate line (same as line 2)",
        ("orders", 16): "timestamp before 1970-01-01 (entry error?)",
        ("orders", 17): "timestamp after now (2026-11-01 00:00)",
        ("events", 3): "missing event_type",
        ("events", 4): "unknown event_type (add it to stage_map in journeycast.yml)",
        ("events", 5): "unknown stage (expected one of awareness, consideration, evaluation, purchase, "
                       "post-purchase)",
        ("events", 6): "value beyond 1,000,000,000 in absolute value (unit or entry error?)",
        ("costs", 3): "unknown cost stage (expected one of awareness, consideration, evaluation, purchase, "
                      "post-purchase, operations)",
        ("costs", 4): "missing amount",
    }
    assert result.counts == {"orders": {"rows_in": 16, "accepted": 3, "rejected": 13},
                             "events": {"rows_in": 6, "accepted": 2, "rejected": 4},
                             "costs": {"rows_in": 4, "accepted": 2, "rejected": 2}}
    by_reason = result.rejects_by_reason.set_index(["table", "reason"])["problems"]
    assert by_reason.loc[("orders", "duplicate line")] == 1 and by_reason.sum() == len(rejects)
    # money: 100 sale (C1, search), the guest's 10 (no first touch), the 50 refund of C2 (first touch
    # social); costs 30 + 500
    series = result.series.groupby("unique_id")["y"].sum()
    assert series.to_dict() == {"awareness|outflow|search": 30.0, "purchase|inflow|search": 100.0,
                                "purchase|inflow|unknown": 10.0,
                                "post-purchase|outflow|social": 50.0, "operations|outflow|bank": 500.0}


def test_rejects_can_be_written_as_csv(shop_with_one_bad_row_of_each_kind, tmp_path):
    result = _run(shop_with_one_bad_row_of_each_kind, config_from_dict({}), tmp_path, rejects="rejects.csv")
    rejects = _read_rejects(result.rejects_file)
    assert len(rejects) == sum(c["rejected"] for c in result.counts.values())
    assert rejects.set_index(["table", "row"]).loc[("orders", 9), "value"] == "ten"


def test_order_types_are_derived_as_ingest_derives_them(sample_dir, tmp_path):
    """Orders without an order_type column: every sample order's type comes from its history."""
    data = tmp_path / "data"
    data.mkdir()
    orders = pd.read_csv(sample_dir / "orders.csv", dtype="str").drop(columns="order_type")
    orders.to_csv(data / "orders.csv", index=False)
    config = config_from_dict({"sources": {"orders": {"path": "orders.csv"}}})
    ours = _assert_same_as_ingest(data, config, tmp_path, "W")
    assert {"purchase|inflow|all", "post-purchase|inflow|all"} <= set(ours.series.unique_id)


def test_whole_file_problems_are_errors(tmp_path):
    for orders in ("orders_empty.csv", "orders_header_only.csv", "orders_missing_column.csv"):
        config = config_from_dict({"sources": {"orders": {"path": orders}}})
        with pytest.raises(IngestError, match=orders):
            _run(BAD, config, tmp_path)
    with pytest.raises(FlowsError, match="cannot split"):
        _run(BAD, config_from_dict({"sources": {"orders": {"path": "orders_refunds.csv"}}}), tmp_path,
             segment="sku")


def test_date_format_and_mapped_columns_read_as_ingest_reads_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "sales.csv").write_text(
        "Invoice;Client;Date;Total\n"
        "1;ann;05/01/2024 09:00;40\n"
        "2;ann;2024-02-01 09:00;45\n"      # not in the configured format
        "3;bob;31/01/2024 18:30;-20\n"
    )
    config = config_from_dict({"date_format": "%d/%m/%Y %H:%M", "sources": {"orders": {
        "path": "sales.csv",
        "columns": {"Invoice": "order_id", "Client": "customer_id", "Date": "ts", "Total": "amount"}}}})
    result = _assert_same_as_ingest(data, config, tmp_path, "MS")
    rejects = _read_rejects(result.rejects_file)
    assert rejects.row.tolist() == [3] and rejects.reason.tolist() == [
        "unparseable timestamp (expected format %d/%m/%Y %H:%M)"]
    assert result.series.groupby("unique_id")["y"].sum().to_dict() == {
        "purchase|inflow|all": 40.0, "post-purchase|outflow|all": 20.0}


def test_parquet_with_zoned_timestamps_and_a_bad_row(tmp_path):
    """Aware timestamps become business-local time; Parquet rows are numbered by position."""
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({
        "order_id": ["O1", "O2", "O3"], "customer_id": ["C1", "C2", "C3"],
        "ts": pd.to_datetime(["2024-03-30 23:30", "2024-03-31 12:00", "2024-04-01 08:00"]).tz_localize("UTC"),
        "amount": [10.0, 5e12, 20.0],
    }).to_parquet(data / "orders.parquet", index=False)
    config = config_from_dict({"timezone": "Europe/Berlin", "sources": {"orders": {"path": "orders.parquet"}}})
    result = _assert_same_as_ingest(data, config, tmp_path)
    rejects = _read_rejects(result.rejects_file)
    assert rejects[["row", "column", "value"]].values.tolist() == [[2, "amount", "5000000000000.0"]]
    # 23:30 UTC on Mar 30 is 00:30 on Mar 31 in Berlin
    sales = result.series[result.series.y > 0].set_index("ds")["y"]
    assert sales.to_dict() == {pd.Timestamp("2024-03-31"): 10.0, pd.Timestamp("2024-04-01"): 20.0}


def test_validate_command_in_duckdb_counts_and_rejects_as_the_pandas_engine(tmp_path, monkeypatch, capsys):
    from toolkit.cli import main

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text("order_id,customer_id,ts,amount\n"
                                     "O1,C1,2024-01-05,10\nO2,C1,2024-01-06,x\nO3,C2,2024-01-07,12.5\n")
    printed = {}
    for engine in ("pandas", "duckdb"):
        rejects = tmp_path / engine / "rejects.csv"
        assert main(["validate", str(data), "--engine", engine, "--rejects", str(rejects),
                     "--accept-rejects"]) == 0
        printed[engine] = capsys.readouterr().out.splitlines()
        assert pd.read_csv(rejects)[["row", "column", "reason"]].values.tolist() == [
            [3, "amount", "amount is not a number"]]
    assert printed["duckdb"][0] == printed["pandas"][0].split(";")[0]  # "3 rows in, 2 accepted, 1 rejected"
    assert "3 rows in, 2 accepted, 1 rejected" in printed["duckdb"][0]
    assert printed["duckdb"][1] == printed["pandas"][1]  # the reason and its count
    assert printed["duckdb"][2].startswith("wrote 1 reject lines to ")
    (data / "orders.csv").write_text("order_id,customer_id,ts,amount\nO1,C1,2024-01-05,x\n")
    assert main(["validate", str(data), "--engine", "duckdb"]) == 2
    assert "no usable orders remain; the rejects in" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "reports" / "validate" / "rejects.csv")["reason"].tolist() == [
        "amount is not a number"]
    assert sorted(p.name for p in data.iterdir()) == ["orders.csv"]
