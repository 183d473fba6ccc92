"""Warehouse: sources checked inside DuckDB count and reject exactly as load_tables, on real files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import TEST_DATA
from toolkit import sample
from toolkit.config import config_from_dict
from toolkit.ingest import REJECT_COLUMNS, IngestError, load_tables
from toolkit.warehouse import WarehouseLimits, check_in_duckdb

BAD = TEST_DATA / "bad"
NOW = pd.Timestamp("2026-11-01")


def _digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _run(data_dir, config, tmp_path, rejects="rejects.parquet", **limits):
    """check_in_duckdb with its spill directory and rejects file under tmp_path; inputs must not change."""
    before = _digests(data_dir)
    limits = WarehouseLimits(spill_dir=tmp_path / "spill", **limits)
    result = check_in_duckdb(data_dir, config, tmp_path / rejects, now=NOW, limits=limits)
    assert _digests(data_dir) == before, "an input file was modified"
    for counts in result.counts.values():
        assert counts["rows_in"] == counts["accepted"] + counts["rejected"]
    return result


def _read_rejects(path) -> pd.DataFrame:
    rejects = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"value": "str"})
    assert list(rejects.columns) == list(REJECT_COLUMNS)
    return rejects


def _assert_same_as_ingest(data_dir, config, tmp_path, **limits):
    """Counts and rejects (read back from DuckDB's file) equal the pandas path's."""
    ours = _run(data_dir, config, tmp_path, **limits)
    ingested = load_tables(data_dir, config, now=NOW)
    assert ours.counts == ingested.counts
    assert ours.files == ingested.files
    rejects = _read_rejects(ours.rejects_file)
    pd.testing.assert_frame_equal(rejects.astype(ingested.rejects.dtypes.to_dict()), ingested.rejects)
    for name, counts in ours.counts.items():
        assert counts["rejected"] == rejects[rejects.table == name].row.nunique()
    assert ours.rejects_by_reason.values.tolist() == ingested.rejects_by_reason().values.tolist()
    return ours


def test_the_data_layer_imports_none_of_the_analytics():
    """Data flows one way: sources -> canonical tables -> series, never back."""
    probe = ("import json, sys, toolkit.config, toolkit.schema, toolkit.ingest, toolkit.warehouse; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('toolkit.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                       text=True).stdout)
    assert "toolkit.warehouse" in loaded
    analytics = {"journey", "flows", "forecast", "cash", "opportunities", "campaigns", "pipeline"}
    assert [m for m in loaded if m.split(".")[1] in analytics] == []


# --------------------------------------------------------------------------- the sample shop


def test_sample_is_accepted_whole_within_a_small_memory_limit_and_the_spill_is_cleaned_up(
        sample_dir, sample_config, sample_tables, tmp_path):
    result = _assert_same_as_ingest(sample_dir, sample_config, tmp_path, memory_limit="64MB", threads=1)
    for name, table in sample_tables.items():
        bad = len(sample.BAD_ORDER_LINES) + 1 if name == "orders" else 0  # and the line exported twice
        assert result.counts[name] == {"rows_in": len(table) + bad, "accepted": len(table), "rejected": bad}
    rejects = _read_rejects(result.rejects_file)
    assert len(rejects) == len(sample.BAD_ORDER_LINES) + 1 and set(rejects["table"]) == {"orders"}
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
    _assert_same_as_ingest(BAD, config, tmp_path)


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
    result = _assert_same_as_ingest(shop_with_one_bad_row_of_each_kind, config_from_dict({}), tmp_path)
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


def test_rejects_can_be_written_as_csv(shop_with_one_bad_row_of_each_kind, tmp_path):
    result = _run(shop_with_one_bad_row_of_each_kind, config_from_dict({}), tmp_path, rejects="rejects.csv")
    rejects = _read_rejects(result.rejects_file)
    assert len(rejects) == sum(c["rejected"] for c in result.counts.values())
    assert rejects.set_index(["table", "row"]).loc[("orders", 9), "value"] == "ten"


def test_whole_file_problems_are_errors(tmp_path):
    for orders in ("orders_empty.csv", "orders_header_only.csv", "orders_missing_column.csv"):
        config = config_from_dict({"sources": {"orders": {"path": orders}}})
        with pytest.raises(IngestError, match=orders):
            _run(BAD, config, tmp_path)


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
    result = _assert_same_as_ingest(data, config, tmp_path)
    rejects = _read_rejects(result.rejects_file)
    assert rejects.row.tolist() == [3] and rejects.reason.tolist() == [
        "unparseable timestamp (expected format %d/%m/%Y %H:%M)"]
    assert result.counts["orders"] == {"rows_in": 3, "accepted": 2, "rejected": 1}


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


def test_new_tables_reject_and_count_in_duckdb_as_ingest_does(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text("order_id,customer_id,ts,amount\nO1,C1,2024-01-05,75\n")
    (data / "contacts.csv").write_text("campaign_id,customer_id,ts,group,converted,visits\n"
                                       "A,C1,2024-01-05,test,1,3\nA,,2024-01-05,holdout,0,1\nA,C3,2024-01-05,x,0,2\n")
    (data / "campaigns.csv").write_text("campaign_id,ts,discount\nA,2024-01-01,0.1\nB,2031-01-01,1.2\n")
    (data / "balances.csv").write_text("ts,balance\n2024-01-31,100\n2024-02-29,n/a\n")
    (data / "commitments.csv").write_text("ts,amount,frequency\n2031-01-01,500,monthly\n2024-01-01,0,once\n")
    ours = _assert_same_as_ingest(data, config_from_dict({}), tmp_path)
    assert {name: c["rejected"] for name, c in ours.counts.items()} == {
        "orders": 0, "contacts": 1, "campaigns": 1, "balances": 1, "commitments": 1}


def test_a_results_export_alone_is_checked_in_duckdb(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "contacts.csv").write_text("campaign_id,ts,group,revenue\nA,2024-01-05,test,5\nA,2024-01-05,control,\n")
    config = config_from_dict({"sources": {"orders": {"path": "orders.csv", "required": False}}})
    ours = _assert_same_as_ingest(data, config, tmp_path)
    assert ours.counts["orders"] == {"rows_in": 0, "accepted": 0, "rejected": 0}
    assert ours.counts["contacts"] == {"rows_in": 2, "accepted": 2, "rejected": 0}


def test_an_unclosed_quote_and_unicode_ids_read_in_duckdb_as_in_ingest(tmp_path):
    from test_ingest import UNCLOSED_QUOTES

    from toolkit.warehouse import checked_warehouse

    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text(UNCLOSED_QUOTES.replace("C3,", "C1\u00a0,").replace("C5,", "C1,"))
    ours = _assert_same_as_ingest(data, config_from_dict({}), tmp_path)
    assert ours.counts["orders"] == {"rows_in": 8, "accepted": 4, "rejected": 4}
    limits = WarehouseLimits(spill_dir=tmp_path / "spill")
    with checked_warehouse(data, config_from_dict({}), tmp_path / "r.parquet", now=NOW, limits=limits) as (con, _):
        assert con.sql("SELECT customer_id, sku FROM orders_ok ORDER BY idx").fetchall() == [
            ("C1", "a, b"), ("C1", "x, y"), ("C1", 'q "z"'), ("C7", "ok")]


def test_the_hillstrom_results_export_checks_in_duckdb_as_in_ingest(tmp_path):
    from conftest import ROOT
    from toolkit.config import load_config

    folder = ROOT.parent / "shared" / "data" / "hillstrom"
    ours = _assert_same_as_ingest(folder, load_config(folder, TEST_DATA / "real" / "hillstrom.yml"), tmp_path)
    assert ours.counts["contacts"] == {"rows_in": 32043, "accepted": 32043, "rejected": 0}
