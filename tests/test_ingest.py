"""Ingest: every row of the sample accepted, every bad row kept as a reject with its reason."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import TEST_DATA
from toolkit import sample
from toolkit.cli import main
from toolkit.config import config_from_dict
from toolkit.ingest import IngestError, RejectShareError, derive_order_types, load_tables
from toolkit.schema import SCHEMAS

BAD = TEST_DATA / "bad"
NOW = pd.Timestamp("2026-11-01")


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_lines(path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


def _load_bad(orders: str, **settings):
    """Load one bad orders file; assert it is left untouched and the counts add up."""
    path = BAD / orders
    before = _digest(path)
    config = config_from_dict({"sources": {"orders": {"path": orders}}, **settings})
    try:
        result = load_tables(BAD, config, now=NOW)
    finally:
        assert _digest(path) == before, f"{orders} was modified"
    counts = result.counts["orders"]
    assert counts["rows_in"] == counts["accepted"] + counts["rejected"]
    assert counts["rejected"] == result.rejects.row.nunique()
    SCHEMAS["orders"].validate(result.tables["orders"])
    return result


def _rejected(result) -> dict[int, str]:
    return dict(zip(result.rejects.row, result.rejects.reason))


# --------------------------------------------------------------------------- the sample


def test_sample_is_accepted_but_for_its_planted_bad_lines(sample_dir, sample_config):
    result = load_tables(sample_dir, sample_config)
    for name in ("orders", "events", "costs"):
        lines = _data_lines(sample_dir / f"{name}.csv")
        bad = len(sample.BAD_ORDER_LINES) + 1 if name == "orders" else 0  # and the line exported twice
        assert result.counts[name] == {"rows_in": lines, "accepted": lines - bad, "rejected": bad}
        table = result.tables[name]
        assert list(table.columns) == list(SCHEMAS[name].columns)
    assert sorted(result.rejects.reason.str.split(" [(]").str[0]) == [
        "amount is not a number", "duplicate line", "quantity is not a whole number", "unknown order_type",
        "unparseable timestamp"]
    # values come through unchanged: compare with a plain read of the good lines
    raw = pd.read_csv(sample_dir / "orders.csv", dtype={"amount": str, "quantity": str})
    raw = raw.drop(index=result.rejects.row - 2).astype({"amount": float}).reset_index(drop=True)
    orders = result.tables["orders"]
    assert orders.amount.sum() == pytest.approx(raw.amount.sum())
    assert (orders.order_id.to_numpy() == raw.order_id.to_numpy()).all()
    assert (orders.ts == pd.to_datetime(raw.ts)).all()
    events = result.tables["events"]
    assert events.stage.notna().all() and (events.stage[events.event_type == "review"] == "post-purchase").all()
    summary = result.summary()
    assert summary["orders"]["customers"] == raw.customer_id.nunique()
    assert summary["costs"]["first"] == pd.Timestamp("2023-11-01")


def test_validate_command_on_sample(sample_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = {p.name: _digest(p) for p in sample_dir.iterdir()}
    assert main(["validate", str(sample_dir)]) == 0
    out = capsys.readouterr().out
    lines = _data_lines(sample_dir / "orders.csv")
    bad = len(sample.BAD_ORDER_LINES) + 1  # and the line exported twice
    assert f"{lines:,} rows in, {lines - bad:,} accepted, {bad} rejected" in out
    rejects = pd.read_csv(tmp_path / "reports" / "validate" / "rejects.csv")
    assert len(rejects) == bad and list(rejects.columns) == ["table", "file", "row", "column", "value", "reason"]
    assert set(rejects.file) == {"orders.csv"}
    assert {p.name: _digest(p) for p in sample_dir.iterdir()} == before


def test_derived_order_types_recover_the_planted_first_purchases(sample_tables):
    orders = sample_tables["orders"]
    derived = derive_order_types(orders)
    planted_new = orders.order_type == "new"
    # first purchases are a fact of the data: the rule finds nearly all of them
    assert (derived[planted_new] == "new").mean() > 0.99
    assert (derived[~planted_new] != "new").mean() > 0.99
    # tier moves are upsells by price; add-on upsells are cheaper and read as repeats
    tier_moves = (orders.order_type == "upsell") & ~orders.sku.str.startswith("ADD")
    assert (derived[tier_moves] == "upsell").mean() > 0.9


# --------------------------------------------------------------------------- whole-file errors


@pytest.mark.parametrize(
    ("orders", "settings", "message"),
    [
        ("orders_missing_column.csv", {}, "orders_missing_column.csv: required column 'customer_id' missing "
                                          "(found: order_id, ts, amount)"),
        ("orders_empty.csv", {}, "orders_empty.csv: the file is empty"),
        ("orders_header_only.csv", {}, "orders_header_only.csv: the file has a header but no rows"),
        ("orders_latin1.csv", {}, "orders_latin1.csv: line 3 has bytes that are not valid utf-8; set `encoding:`"),
        ("orders_semicolon.csv", {"delimiter": ","}, "orders_semicolon.csv: the header did not split"),
        ("no_such_orders.csv", {}, "no_such_orders.csv: orders file not found"),
    ],
)
def test_whole_file_problems_are_clear_errors(orders, settings, message):
    path = BAD / orders
    before = _digest(path) if path.exists() else None
    config = config_from_dict({"sources": {"orders": {"path": orders}}, **settings})
    with pytest.raises(IngestError) as caught:
        load_tables(BAD, config, now=NOW)
    assert message in str(caught.value)
    if before:
        assert _digest(path) == before


def test_wrong_delimiter_names_the_expected_columns():
    config = config_from_dict({"sources": {"orders": {"path": "orders_semicolon.csv"}}, "delimiter": ","})
    with pytest.raises(IngestError, match="expected columns customer_id, ts, amount"):
        load_tables(BAD, config, now=NOW)


# --------------------------------------------------------------------------- rejected rows


def test_wrong_types_are_rejected_with_line_and_value():
    result = _load_bad("orders_wrong_types.csv")
    orders = result.tables["orders"]
    # line 6 has no customer id: a guest's order, kept
    assert list(orders.order_id) == ["O1", "O5", "O7"]
    guest = orders.set_index("order_id").loc["O5"]
    assert pd.isna(guest.customer_id) and guest.order_type == "guest"
    rejects = result.rejects.set_index("row")
    assert sorted(rejects.index) == [3, 4, 5, 7]
    assert rejects.loc[3, "value"] == "forty" and rejects.loc[3, "reason"] == "amount is not a number"
    assert rejects.loc[4, "reason"] == "missing order_id"
    assert rejects.loc[5, "column"] == "quantity" and rejects.loc[5, "value"] == "two"
    assert rejects.loc[7, "value"] == "$12"


def test_unparseable_dates_are_rejected():
    result = _load_bad("orders_bad_dates.csv")
    assert sorted(result.rejects.row) == [3, 4, 5, 6]
    assert set(result.rejects.value.iloc[:3]) == {"31/01/2024", "2024-02-30", "yesterday"}
    assert result.rejects.reason.str.startswith("unparseable timestamp").sum() == 3
    assert list(result.tables["orders"].order_id) == ["O1", "O6"]


def test_date_format_reads_day_first_dates(tmp_path):
    (tmp_path / "orders.csv").write_text("order_id,customer_id,ts,amount\nO1,C1,31/01/2024,45\n")
    result = load_tables(tmp_path, config_from_dict({"date_format": "%d/%m/%Y"}), now=NOW)
    assert result.tables["orders"].ts.iloc[0] == pd.Timestamp("2024-01-31")


def test_mixed_time_zones_convert_aware_and_reject_naive():
    result = _load_bad("orders_mixed_timezones.csv", timezone="Europe/Berlin")
    orders = result.tables["orders"].set_index("order_id")
    # 10:00 UTC in January is 11:00 in Berlin; 23:30 at UTC-5 is 05:30 next day;
    # 12:00 at UTC+2 in July is 12:00 in Berlin (summer time)
    assert orders.loc["O1", "ts"] == pd.Timestamp("2024-01-05 11:00")
    assert orders.loc["O2", "ts"] == pd.Timestamp("2024-01-07 05:30")
    assert orders.loc["O4", "ts"] == pd.Timestamp("2024-07-01 12:00")
    assert sorted(result.rejects.row) == [4, 6]
    assert result.rejects.reason.str.contains("without UTC offset").all()


def test_repeated_lines_are_duplicates_and_shared_order_ids_are_lines_of_one_order():
    result = _load_bad("orders_duplicate_ids.csv")
    # lines 4 and 7 repeat line 2 exactly; line 6 is a second line of order O2
    assert list(result.tables["orders"].order_id) == ["O1", "O2", "O3", "O2"]
    assert _rejected(result) == {4: "duplicate line (same as line 2)", 7: "duplicate line (same as line 2)"}
    summary = result.summary()["orders"]
    assert summary["rejects_by_reason"] == {"duplicate line": 2}
    assert summary["orders"] == 3 and summary["accepted"] == 4


def test_negative_amounts_are_kept_as_refunds():
    result = _load_bad("orders_refunds.csv")
    orders = result.tables["orders"].set_index("order_id")
    assert result.counts["orders"] == {"rows_in": 5, "accepted": 5, "rejected": 0}
    assert list(orders.status) == ["completed", "completed", "refunded", "completed", "refunded"]
    # a refund carries the type of the sale it follows
    assert orders.loc["R2", "order_type"] == orders.loc["O2", "order_type"] == "upsell"
    assert orders.loc["R3", "order_type"] == "new"


def test_future_dates_are_rejected():
    result = _load_bad("orders_future.csv")
    assert sorted(result.rejects.row) == [3, 5]
    assert result.rejects.reason.str.startswith("timestamp after now").all()


def test_huge_amounts_are_rejected():
    result = _load_bad("orders_huge.csv")
    assert sorted(result.rejects.row) == [3, 4, 6]
    assert list(result.tables["orders"].amount) == [45.0, 999999999.0]


def test_ragged_lines_are_rejects_with_their_line_numbers():
    result = _load_bad("orders_ragged.csv")
    # line 4 is blank; lines 3 and 5 have too few and too many fields
    assert sorted(result.rejects.row) == [3, 5]
    assert result.rejects.reason.str.startswith("unreadable line").all()
    assert result.rejects.set_index("row").loc[3, "value"] == "O2,C1,2024-01-06 10:00:00"
    assert list(result.tables["orders"].order_id) == ["O1", "O4"]


def test_later_rows_keep_their_line_numbers_after_blank_and_ragged_lines(tmp_path):
    text = "order_id,customer_id,ts,amount\n\nO1,C1,2024-01-05,1\nbad\n\n\nO2,C1,,2\n"
    (tmp_path / "orders.csv").write_text(text)
    result = load_tables(tmp_path, config_from_dict({}), now=NOW)
    assert _rejected(result) == {4: "unreadable line (Expected Number of Columns: 4 Found: 1)",
                                 7: "missing ts"}


def test_decimal_commas_are_rejected_not_misread():
    result = _load_bad("orders_semicolon.csv")
    assert result.counts["orders"] == {"rows_in": 2, "accepted": 0, "rejected": 2}
    assert list(result.rejects.value) == ["45,00", "95,00"]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_configured_encoding_reads_non_utf8(encoding):
    result = _load_bad("orders_latin1.csv", encoding=encoding)
    assert result.tables["orders"].sku.iloc[1] == "Café Grün"


def test_unknown_event_types_and_cost_stages():
    paths = [BAD / n for n in ("events_unknown.csv", "costs_unknown_stage.csv")]
    before = [_digest(p) for p in paths]
    config = config_from_dict({"sources": {
        "orders": {"path": "orders_refunds.csv"},
        "events": {"path": "events_unknown.csv"},
        "costs": {"path": "costs_unknown_stage.csv"},
    }})
    result = load_tables(BAD, config, now=NOW)
    assert [_digest(p) for p in paths] == before
    for name in ("events", "costs"):
        counts = result.counts[name]
        assert counts["rows_in"] == counts["accepted"] + counts["rejected"]
    rejects = result.rejects.set_index(["table", "row"])
    assert rejects.loc[("events", 3), "value"] == "podcast_listen"
    assert rejects.loc[("events", 4), "reason"] == "value is not a number"
    assert rejects.loc[("costs", 3), "reason"].startswith("unknown cost stage")
    costs = result.tables["costs"]
    # a blank stage is operations; stage names are case-insensitive; channel defaults
    assert list(costs.stage) == ["awareness", "operations", "operations"]
    assert (costs.channel == "unknown").all()
    assert result.tables["events"].stage.tolist() == ["awareness", "post-purchase"]


def test_source_stage_column_wins_over_stage_map(tmp_path):
    (tmp_path / "orders.csv").write_text("order_id,customer_id,ts,amount\nO1,C1,2024-01-05,10\n")
    (tmp_path / "events.csv").write_text(
        "customer_id,ts,event_type,stage\nC1,2024-01-01,webinar,evaluation\nC1,2024-01-02,site_visit,\n")
    events = load_tables(tmp_path, config_from_dict({}), now=NOW).tables["events"]
    assert events.stage.tolist() == ["evaluation", "awareness"]


# --------------------------------------------------------------------------- derivations


def test_orders_only_with_mapped_columns_derives_order_types(tmp_path):
    """A hand-made transactions export: mapped names, a status column, no order_type."""
    (tmp_path / "sales.csv").write_text(
        "Invoice,Client,Date,Total,Qty,State\n"
        "1,ann,2024-01-01 09:00,40,1,paid\n"       # ann's first sale: new
        "2,ann,2024-02-01 09:00,45,1,paid\n"       # 45 < 1.2 x 40: repeat
        "3,ann,2024-03-01 09:00,200,2,paid\n"      # unit 100 >= 1.2 x 45: upsell
        "4,ann,2024-03-09 09:00,-200,2,Refund\n"   # refund of the upsell
        "5,bob,2024-01-05 09:00,90,1,canceled\n"   # cancelled before any sale: new
        "6,bob,2024-01-06 09:00,90,1,\n"           # first completed sale: new
        "7,bob,2024-02-06 09:00,100,1,\n"          # 100 < 1.2 x 90: repeat
        "8,cy,2024-01-07 09:00,-30,1,\n"           # refund of a sale before the data: repeat
    )
    config = config_from_dict({"sources": {"orders": {"path": "sales.csv", "columns": {
        "Invoice": "order_id", "Client": "customer_id", "Date": "ts", "Total": "amount",
        "Qty": "quantity", "State": "status"}}}})
    result = load_tables(tmp_path, config, now=NOW)
    assert set(result.tables) == {"orders"}
    orders = result.tables["orders"].set_index("order_id")
    assert orders.order_type.to_dict() == {"1": "new", "2": "repeat", "3": "upsell", "4": "upsell",
                                           "5": "new", "6": "new", "7": "repeat", "8": "repeat"}
    assert orders.status.to_dict() == {"1": "completed", "2": "completed", "3": "completed",
                                       "4": "refunded", "5": "cancelled", "6": "completed",
                                       "7": "completed", "8": "refunded"}
    assert (orders.sku == "unknown").all() and orders.quantity.loc["3"] == 2


# --------------------------------------------------------------------------- other sources


@pytest.fixture
def sample_orders(sample_dir) -> pd.DataFrame:
    """The sample's first 500 order lines: good ones (its planted bad lines come later)."""
    orders = pd.read_csv(sample_dir / "orders.csv", nrows=500)
    return orders.assign(ts=pd.to_datetime(orders.ts, format="%Y-%m-%d %H:%M:%S"))


def test_parquet_source(tmp_path, sample_orders):
    sample_orders.to_parquet(tmp_path / "orders.parquet")
    config = config_from_dict({"sources": {"orders": {"path": "orders.parquet"}}})
    result = load_tables(tmp_path, config, now=NOW)
    orders = result.tables["orders"]
    assert result.counts["orders"]["accepted"] == 500
    assert (orders.ts.to_numpy() == sample_orders.ts.to_numpy()).all()
    assert orders.amount.sum() == pytest.approx(sample_orders.amount.sum())
    assert result.rejects.row.tolist() == []


def test_duckdb_table_and_query(tmp_path, sample_orders):
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("good_lines", sample_orders)
        con.execute("CREATE TABLE sales AS SELECT * FROM good_lines")
    before = _digest(path)
    table = load_tables(tmp_path, config_from_dict(
        {"sources": {"orders": {"database": "shop.duckdb", "table": "sales"}}}), now=NOW)
    assert table.counts["orders"] == {"rows_in": 500, "accepted": 500, "rejected": 0}
    query = load_tables(tmp_path, config_from_dict({"sources": {"orders": {
        "database": "shop.duckdb",
        "query": "SELECT order_id AS id, customer_id, ts, amount FROM sales WHERE amount < 0",
        "columns": {"id": "order_id"}}}}), now=NOW)
    refunds = query.tables["orders"]
    assert len(refunds) == (table.tables["orders"].amount < 0).sum()
    assert (refunds.status == "refunded").all()
    assert _digest(path) == before


def test_sqlite_query(tmp_path, sample_orders):
    with sqlite3.connect(tmp_path / "shop.db") as con:
        sample_orders.assign(ts=sample_orders.ts.astype(str)).to_sql("orders", con, index=False)
    config = config_from_dict({"sources": {"orders": {
        "database": "sqlite:///shop.db", "query": "WITH s AS (SELECT * FROM orders) SELECT * FROM s"}}})
    result = load_tables(tmp_path, config, now=NOW)
    assert result.counts["orders"] == {"rows_in": 500, "accepted": 500, "rejected": 0}
    assert (result.tables["orders"].ts.to_numpy() == sample_orders.ts.to_numpy()).all()


@pytest.mark.parametrize("query", ["DELETE FROM orders", "SELECT 1; DROP TABLE orders",
                                   "CREATE TABLE x AS SELECT 1"])
def test_non_select_queries_are_refused(tmp_path, sample_orders, query):
    with sqlite3.connect(tmp_path / "shop.db") as con:
        sample_orders.assign(ts=sample_orders.ts.astype(str)).to_sql("orders", con, index=False)
    before = _digest(tmp_path / "shop.db")
    config = config_from_dict({"sources": {"orders": {"database": "sqlite:///shop.db", "query": query}}})
    with pytest.raises(IngestError, match="only a single SELECT or WITH query"):
        load_tables(tmp_path, config, now=NOW)
    assert _digest(tmp_path / "shop.db") == before


# --------------------------------------------------------------------------- the command


def test_validate_exit_codes_and_rejects_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text("order_id,customer_id,ts,amount\nO1,C1,2024-01-05,x\n")
    assert main(["validate", str(data)]) == 1
    rejects = pd.read_csv(tmp_path / "reports" / "validate" / "rejects.csv")
    assert rejects.reason.tolist() == ["amount is not a number"]
    assert sorted(p.name for p in data.iterdir()) == ["orders.csv"]
    (data / "orders.csv").write_text("order_id,ts,amount\nO1,2024-01-05,1\n")
    assert main(["validate", str(data)]) == 2
    assert "required column 'customer_id' missing" in capsys.readouterr().err
    assert main(["validate", str(data), "--rejects", str(data / "rejects.csv")]) == 2
    assert not (data / "rejects.csv").exists()


def test_undecodable_bytes_in_a_transcoded_encoding_name_the_line(tmp_path):
    (tmp_path / "orders.csv").write_bytes(
        b"order_id,customer_id,ts,amount\nO1,C1,2024-01-05,1\nO2,C\x81,2024-01-05,1\n")
    with pytest.raises(IngestError, match=r"orders.csv: line 3 has bytes that are not valid cp1252"):
        load_tables(tmp_path, config_from_dict({"encoding": "cp1252"}), now=NOW)


def test_duckdb_source_refuses_writes(tmp_path, sample_orders):
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE sales AS SELECT * FROM sample_orders")
    before = _digest(path)
    config = config_from_dict({"sources": {"orders": {"database": "shop.duckdb", "query": "DROP TABLE sales"}}})
    with pytest.raises(IngestError, match="only a single SELECT or WITH query"):
        load_tables(tmp_path, config, now=NOW)
    assert _digest(path) == before


def test_validate_reports_config_errors_and_reasons(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(BAD), "--config", str(tmp_path / "missing.yml")]) == 2
    assert "missing.yml: configuration file not found" in capsys.readouterr().err
    config = tmp_path / "bad.yml"
    config.write_text("sources:\n  orders:\n    path: orders_duplicate_ids.csv\n")
    # a third of the lines rejected: refused, unless accepted
    assert main(["validate", str(BAD), "--config", str(config)]) == 2
    assert "33.3% of 6 rows rejected" in capsys.readouterr().err
    assert main(["validate", str(BAD), "--config", str(config), "--accept-rejects"]) == 0
    out = capsys.readouterr().out
    assert "6 rows in, 4 accepted, 2 rejected" in out and "2  duplicate line" in out


# --------------------------------------------------------------------------- order lines, guests, refunds


def _write(folder, text: str, name: str = "orders.csv"):
    (folder / name).write_text(text)
    return folder / name


def test_order_lines_with_quantity_and_unit_price_guests_and_cancellation_invoices(tmp_path):
    """A wholesale export: no amount column, 'C' invoices with negative quantities, guests."""
    _write(tmp_path,
           "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
           "536365,A,6,01/12/2025 08:26,2.55,17850\n"
           "536365,B,2,01/12/2025 08:26,40.00,17850\n"   # same order, a dearer line
           "536366,A,1,02/12/2025 09:00,2.55,\n"         # a guest
           "C536365,B,-1,03/12/2025 10:00,40.00,17850\n"  # returns one B of 536365
           "C999999,A,-2,03/12/2025 11:00,2.55,17850\n"   # returns an order older than the data
           "536367,A,10,04/12/2025 10:00,2.55,17850\n")
    config = config_from_dict({"date_format": "%d/%m/%Y %H:%M", "sources": {"orders": {
        "path": "orders.csv", "cancellation_prefix": "C", "columns": {
            "InvoiceNo": "order_id", "StockCode": "sku", "Quantity": "quantity", "InvoiceDate": "ts",
            "UnitPrice": "unit_price", "CustomerID": "customer_id"}}}})
    result = load_tables(tmp_path, config, now=NOW)
    assert result.rejects.empty
    orders = result.tables["orders"]
    SCHEMAS["orders"].validate(orders)
    assert orders.amount.tolist() == pytest.approx([15.3, 80.0, 2.55, -40.0, -5.1, 25.5])
    assert orders.quantity.tolist() == [6, 2, 1, -1, -2, 10]
    assert orders.status.tolist() == ["completed"] * 3 + ["refunded"] * 2 + ["completed"]
    assert orders.refund_of.isna().tolist() == [True, True, True, False, True, True]
    assert orders.refund_of.iloc[3] == "536365"
    # both lines of 536365 are one new order and C536365 takes its type; C999999 takes the type of the
    # customer's latest sale before it; 536367's dearest unit (2.55) is below the 40 paid before: a repeat
    assert orders.order_type.tolist() == ["new", "new", "guest", "new", "new", "repeat"]
    assert pd.isna(orders.customer_id.iloc[2])
    summary = result.summary()["orders"]
    assert summary["orders"] == 5 and summary["guest_lines"] == 1
    assert summary["guest_revenue_share"] == pytest.approx(2.55 / (15.3 + 80 + 2.55 + 25.5))


def test_the_messy_sample_export_loads_whole(tmp_path):
    from toolkit.config import load_config
    from toolkit.sample import messy_export, write_messy_shop

    paths = write_messy_shop(tmp_path, customers=1500)
    export, _ = messy_export(customers=1500)
    result = load_tables(tmp_path, load_config(tmp_path), now=NOW)
    orders = result.tables["orders"]
    assert result.counts["orders"] == {"rows_in": len(export), "accepted": len(export), "rejected": 0}
    expected = (export.Quantity * export.UnitPrice.astype(float)).sum()
    assert orders.amount.sum() == pytest.approx(expected)
    cancellations = orders.order_id.str.startswith("C")
    assert (orders.amount[cancellations] < 0).all() and (orders.status[cancellations] == "refunded").all()
    assert orders.refund_of[cancellations].notna().all()  # every one reverses an order in the export
    assert (orders.order_type[orders.customer_id.isna()] == "guest").all()
    assert orders.order_id.nunique() == export.InvoiceNo.nunique()
    assert paths["orders"].exists()


def test_an_unmapped_lookalike_column_is_not_read_when_another_is_mapped(tmp_path):
    _write(tmp_path, "id,customer_id,ts,amount,Qty,Quantity\nO1,C1,2024-01-05,10,2,-99\n")
    config = config_from_dict({"sources": {"orders": {"path": "orders.csv",
                                                      "columns": {"id": "order_id", "Qty": "quantity"}}}})
    orders = load_tables(tmp_path, config, now=NOW).tables["orders"]
    assert orders.quantity.tolist() == [2] and orders.status.tolist() == ["completed"]


def test_a_mapping_to_an_unknown_column_is_an_error(tmp_path):
    _write(tmp_path, "order_id,customer_id,ts,amount\nO1,C1,2024-01-05,10\n")
    config = config_from_dict({"sources": {"orders": {"path": "orders.csv", "columns": {"amount": "revenue"}}}})
    with pytest.raises(IngestError, match="maps to 'revenue', which is not a orders column"):
        load_tables(tmp_path, config, now=NOW)


def test_without_order_ids_a_customers_lines_at_one_time_are_one_order(tmp_path):
    _write(tmp_path, "customer_id,ts,amount\nC1,2024-01-05,10\nC1,2024-01-05,10\nC1,2024-01-06,5\n,2024-01-06,7\n"
                     ",2024-01-06,7\n")
    result = load_tables(tmp_path, config_from_dict({}), now=NOW)
    orders = result.tables["orders"]
    # equal rows are separate purchases here: nothing to tell an exported-twice line by
    assert result.rejects.empty and len(orders) == 5
    assert orders.order_id.tolist()[:3] == ["C1@2024-01-05 00:00:00"] * 2 + ["C1@2024-01-06 00:00:00"]
    assert orders.order_id.nunique() == 4  # each guest line is an order of its own
    assert orders.order_type.tolist() == ["new", "new", "repeat", "guest", "guest"]


def test_derived_order_types_are_shared_by_the_lines_of_an_order():
    orders = pd.DataFrame({
        "order_id": ["A", "A", "B", "B", "C"], "customer_id": ["c", "c", "c", "c", pd.NA],
        "ts": pd.to_datetime(["2024-01-01"] * 2 + ["2024-02-01"] * 2 + ["2024-02-02"]),
        "amount": [10.0, 100.0, 10.0, 130.0, 5.0], "quantity": [1, 1, 1, 1, 1],
        "status": ["completed"] * 5})
    # B's dearest line (130) is 1.3 x A's dearest (100): an upsell, on both of its lines
    assert derive_order_types(orders).tolist() == ["new", "new", "upsell", "upsell", "guest"]


# --------------------------------------------------------------------------- sources and dates


def test_a_file_as_data_dir_uses_the_configuration_beside_it(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "Ref,Who,When,Total\nO1,C1,31/01/2024,10\n", "export.csv")
    (tmp_path / "journeycast.yml").write_text(
        "date_format: '%d/%m/%Y'\nsources:\n  orders:\n    path: elsewhere.csv\n"
        "    columns: {Ref: order_id, Who: customer_id, When: ts, Total: amount}\n")
    from toolkit.config import load_config

    path = tmp_path / "export.csv"
    result = load_tables(path, load_config(path), now=NOW)
    assert result.files["orders"] == "export.csv"
    assert result.tables["orders"].ts.tolist() == [pd.Timestamp("2024-01-31")]
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 rows in, 1 accepted" in out and "outside" not in out
    # the default rejects file would land in the data directory: it goes elsewhere, and says where
    written = out.splitlines()[-1].removeprefix("wrote 0 reject lines to ")
    assert not Path(written).resolve().is_relative_to(tmp_path) and Path(written).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "journeycast.yml"]


def test_parquet_source_maps_columns_and_typed_out_of_range_dates_are_rejects(tmp_path):
    pd.DataFrame({"Ref": ["O1", "O2", "O3"], "Who": [7.0, 8.0, None],
                  "When": pd.to_datetime(["2024-01-05", "2262-04-10", "1677-09-22"]), "Total": [10.0, 5.0, 1.0]}
                 ).to_parquet(tmp_path / "orders.parquet", index=False)
    config = config_from_dict({"sources": {"orders": {"path": "orders.parquet", "columns": {
        "Ref": "order_id", "Who": "customer_id", "When": "ts", "Total": "amount"}}}})
    result = load_tables(tmp_path, config, now=NOW)
    assert result.tables["orders"].customer_id.tolist() == ["7"]  # whole-number float ids read as ids
    assert _rejected(result) == {2: "timestamp after now (2026-11-01 00:00)",
                                 3: "timestamp before 1970-01-01 (entry error?)"}


def test_whitespace_separated_text_is_found_from_the_header(tmp_path):
    _write(tmp_path, " customer_id  date number_of_cds  dollar_value\n 00001 19970101  1   11.77\n"
                     " 00002 19970112  2   89.00\n\n 00003 1997013x  1   1.00\n", "CDNOW.txt")
    config = config_from_dict({"date_format": "%Y%m%d", "sources": {"orders": {"path": "CDNOW.txt", "columns": {
        "date": "ts", "dollar_value": "amount", "number_of_cds": "quantity"}}}})
    result = load_tables(tmp_path, config, now=NOW)
    orders = result.tables["orders"]
    assert orders.customer_id.tolist() == ["00001", "00002"] and orders.amount.tolist() == [11.77, 89.0]
    assert orders.unit_price.tolist() == [11.77, 44.5]
    assert _rejected(result) == {5: "unparseable timestamp (expected format %Y%m%d)"}  # line 4 is blank


@pytest.mark.parametrize(("dates", "date_format", "message"), [
    # a month field above 12: the format has day and month the other way round
    (["13/01/2024", "02/01/2024", "28/02/2024"], "%m/%d/%Y",
     "column 'ts': only 33% of the dates read as date_format '%m/%d/%Y' but 100% read as '%d/%m/%Y'"),
    (["13/01/19", "02/01/19"], None, "dates like '13/01/19' are not ISO 8601; set date_format: '%d/%m/%y'"),
    (["03/01/19", "02/01/19"], None, "read both as '%d/%m/%y' and as '%m/%d/%y' (no day above 12)"),
])
def test_dates_read_the_wrong_way_round_are_refused_with_the_fix(tmp_path, dates, date_format, message):
    _write(tmp_path, "order_id,customer_id,ts,amount\n" + "".join(f"O{i},C1,{d},1\n" for i, d in enumerate(dates)))
    with pytest.raises(IngestError, match="orders.csv: ") as caught:
        load_tables(tmp_path, config_from_dict({"date_format": date_format}), now=NOW)
    assert message in str(caught.value)


def test_two_digit_years_are_this_century(tmp_path):
    _write(tmp_path, "order_id,customer_id,ts,amount\nO1,C1,03/01/19,1\nO2,C1,31/12/68,1\n")
    result = load_tables(tmp_path, config_from_dict({"date_format": "%d/%m/%y"}), now=pd.Timestamp("2070-01-01"))
    assert result.tables["orders"].ts.tolist() == [pd.Timestamp("2019-01-03"), pd.Timestamp("2068-12-31")]


# --------------------------------------------------------------------------- the reject share


def test_too_many_rejects_stop_validate_and_every_later_command(tmp_path, monkeypatch, capsys):
    from toolkit.pipeline import load

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    lines = "".join(f"O{i},C{i % 3},2024-01-{i + 1:02d},{'x' if i < 2 else 10}\n" for i in range(20))
    _write(data, "order_id,customer_id,ts,amount\n" + lines)
    assert main(["validate", str(data)]) == 2
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert len(error.splitlines()) == 1
    assert "orders (orders.csv): 10.0% of 20 rows rejected, above max_reject_share 5%" in error
    assert "top reasons: amount is not a number (2)" in error
    assert "wrote 2 reject lines" in captured.out  # the rejects are written all the same
    assert main(["validate", str(data), "--accept-rejects"]) == 0
    with pytest.raises(RejectShareError, match="10.0% of 20 rows"):
        load(data)
    dataset = load(data, accept_rejects=True)
    assert len(dataset.tables["orders"]) == 18
    assert [n.level for n in dataset.notes] == ["warning"] and "10.0% of 20 rows" in dataset.notes[0].text
    assert load(data, max_reject_share=0.2).notes == []


def test_guests_are_said_in_the_dataset_notes(tmp_path):
    from toolkit.pipeline import load

    _write(tmp_path, "order_id,customer_id,ts,amount\nO1,C1,2024-01-05,75\nO2,,2024-01-06,25\n")
    notes = load(tmp_path).notes
    assert len(notes) == 1 and notes[0].level == "assumed"
    assert notes[0].text.startswith("1 order lines are guest checkouts without a customer id (25.0% of revenue)")


# --------------------------------------------------------------------------- real exports


@pytest.fixture(scope="module")
def real_data() -> Path:
    """The reference data beside the project (``<repo>/../shared/data``), read-only."""
    from conftest import ROOT

    folder = ROOT.parent / "shared" / "data"
    assert folder.is_dir(), f"{folder}: the real reference data is missing"
    return folder


def _real(real_data, name: str):
    from toolkit.config import load_config

    folder = real_data / name
    return load_tables(folder, load_config(folder, TEST_DATA / "real" / f"{name}.yml"), now=NOW)


def test_superstore_order_lines_load_whole(real_data):
    raw = pd.read_csv(real_data / "superstore" / "Sample - Superstore.csv", encoding="utf-8-sig")
    result = _real(real_data, "superstore")
    orders = result.tables["orders"]
    assert result.counts["orders"] == {"rows_in": 10194, "accepted": 10194, "rejected": 0}
    assert orders.amount.sum() == pytest.approx(raw.Sales.sum()) == pytest.approx(2_326_534.35, abs=0.01)
    assert orders.order_id.nunique() == 5111 and orders.customer_id.nunique() == 804
    assert orders.ts.iloc[0] == pd.Timestamp("2019-01-03")  # "03/01/19", day first
    assert orders.quantity.sum() == raw.Quantity.sum() and set(orders.sku) == set(raw["Product ID"])
    # an order's lines share one type; each customer has exactly one first order
    assert (orders.groupby("order_id").order_type.nunique() == 1).all()
    assert (orders[orders.order_type == "new"].groupby("customer_id").order_id.nunique() == 1).all()


def test_cdnow_whitespace_purchases_load_whole(real_data):
    raw = pd.read_csv(real_data / "cdnow" / "CDNOW_master.txt", sep=r"\s+", dtype={"customer_id": "str"})
    result = _real(real_data, "cdnow")
    orders = result.tables["orders"]
    assert result.counts["orders"] == {"rows_in": 69659, "accepted": 69659, "rejected": 0}
    assert orders.amount.sum() == pytest.approx(raw.dollar_value.sum())
    assert orders.customer_id.nunique() == 23570
    assert orders.order_id.nunique() == raw.groupby(["customer_id", "date"]).ngroups
    assert (orders.ts.min(), orders.ts.max()) == (pd.Timestamp("1997-01-01"), pd.Timestamp("1998-06-30"))


def test_hillstrom_results_export_loads_as_contacts_without_orders(real_data):
    from toolkit.pipeline import load

    raw = pd.read_csv(real_data / "hillstrom" / "hillstrom_half_a.csv")
    dataset = load(real_data / "hillstrom", TEST_DATA / "real" / "hillstrom.yml")
    result = dataset.ingested
    contacts = dataset.tables["contacts"]
    assert result.counts["contacts"] == {"rows_in": 32043, "accepted": 32043, "rejected": 0}
    assert dataset.tables["orders"].empty and result.counts["orders"]["rows_in"] == 0
    assert [(n.level, n.text.split(":")[0]) for n in dataset.notes] == [("missing", "No orders")]
    assert contacts.variant.value_counts().to_dict() == {"Mens E-Mail": 10734, "Womens E-Mail": 10682,
                                                         "No E-Mail": 10627}
    assert (contacts.group == "control").sum() == 10627 == (contacts.variant == "No E-Mail").sum()
    assert set(contacts.campaign_id) == {"hillstrom-2008-03"} and set(contacts.ts) == {pd.Timestamp("2008-03-01")}
    # no id in the export: the line number, so that a reject and a contact can be found in the file
    assert contacts.customer_id.iloc[0] == "row 2" and contacts.customer_id.is_unique
    assert "no customer id in 32,043 rows" in result.format_summary()
    spend = contacts.groupby("group").revenue.mean()
    expected = raw.assign(group=raw.segment.eq("No E-Mail").map({True: "control", False: "treatment"}))
    assert spend.to_dict() == pytest.approx(expected.groupby("group").spend.mean().to_dict(), rel=1e-12)
    # the arms' means published with the data (../shared/data/README.md)
    assert contacts.groupby("variant").revenue.mean().to_dict() == pytest.approx(
        {"Mens E-Mail": 1.35382, "Womens E-Mail": 0.84689, "No E-Mail": 0.61010}, abs=5e-6)
    # further columns pass through: numbers as floats, the rest as text
    assert contacts.visit.dtype == "float64" and contacts.visit.mean() == pytest.approx(raw.visit.mean())
    assert contacts.history_segment.tolist() == raw.history_segment.tolist()
    assert contacts.converted.sum() == raw.conversion.sum()


def _load_table(folder, name: str, text: str, **source):
    """Load one table written as CSV beside a one-line orders file; assert the counts add up."""
    _write(folder, "order_id,customer_id,ts,amount\nO1,C1,2024-01-05,75\n")
    _write(folder, text, f"{name}.csv")
    config = config_from_dict({"sources": {name: {"path": f"{name}.csv", **source}}})
    result = load_tables(folder, config, now=NOW)
    counts = result.counts[name]
    assert counts["rows_in"] == counts["accepted"] + counts["rejected"] == text.count("\n") - 1
    return result


def test_contacts_rows_with_problems_are_rejects_and_test_holdout_are_groups(tmp_path):
    result = _load_table(tmp_path, "contacts",
                         "campaign_id,customer_id,ts,group,converted,revenue,age\n"
                         "A,C1,2024-01-05,Test,1,20,31\n"
                         "A,C2,2024-01-05,HOLDOUT,0,0,40\n"
                         ",C3,2024-01-05,test,0,0,22\n"
                         "A,C4,2024-01-05,maybe,0,0,\n"
                         "A,C5,2024-01-05,control,2,0,50\n"
                         "A,C6,2024-01-05,control,0,lots,50\n"
                         "A,C7,2030-01-05,control,0,0,50\n"
                         "A,,2024-01-05,control,0,5,n/a\n")
    contacts = result.tables["contacts"]
    assert contacts.group.tolist() == ["treatment", "control", "control"]
    assert contacts.variant.tolist() == ["treatment", "control", "control"]  # no variant: the group
    assert contacts.customer_id.tolist() == ["C1", "C2", "row 9"]
    assert contacts.age.dtype == "str"  # "n/a" is not a number: the column stays text, unchanged
    assert _rejected(result) == {4: "missing campaign_id",
                                 5: "group is neither treatment nor control (test and holdout are read as such)",
                                 6: "converted is not 0 or 1", 7: "revenue is not a number",
                                 8: "timestamp after now (2026-11-01 00:00)"}
    assert "1 campaigns; 1 treatment, 2 control; no customer id in 1 rows" in result.format_summary()


def test_contacts_group_from_the_control_variant(tmp_path):
    result = _load_table(tmp_path, "contacts",
                         "campaign,email,sent,arm,bought\n"
                         "X,a@x,2024-02-01,Offer A,1\nX,b@x,2024-02-01,no mail,0\nX,c@x,2024-02-01,,0\n",
                         columns={"campaign": "campaign_id", "email": "customer_id", "sent": "ts",
                                  "arm": "variant", "bought": "converted"},
                         control_variant="No Mail")
    assert result.tables["contacts"].group.tolist() == ["treatment", "control"]
    assert _rejected(result) == {4: "missing variant (the group is read from it)"}


def test_values_must_name_a_column_the_source_lacks(tmp_path):
    with pytest.raises(IngestError, match="values sets 'ts', but the source has it already"):
        _load_table(tmp_path, "contacts", "campaign_id,ts,group\nA,2024-01-05,test\n", values={"ts": "2024-01-01"})
    with pytest.raises(IngestError, match="values sets 'when', which is not a contacts column"):
        _load_table(tmp_path, "contacts", "campaign_id,ts,group\nA,2024-01-05,test\n", values={"when": "x"})


def test_campaigns_shares_and_costs_are_checked_and_planned_dates_kept(tmp_path):
    result = _load_table(tmp_path, "campaigns",
                         "campaign_id,ts,discount,cost_per_contact,fixed_cost,control_share,response_window_days\n"
                         "spring,2024-03-01,0.1,2,500,0.1,\n"
                         "planned,2030-03-01,0,0,0,1,7\n"
                         "free,2024-03-01,1,2,500,0.1,\n"
                         "neg,2024-03-01,0.1,-2,500,0.1,\n"
                         "share,2024-03-01,0.1,2,500,1.5,\n"
                         "window,2024-03-01,0.1,2,500,0.1,2.5\n")
    campaigns = result.tables["campaigns"]
    assert campaigns.campaign_id.tolist() == ["spring", "planned"]
    assert campaigns.name.tolist() == ["spring", "planned"] and campaigns.response_window_days.tolist() == [14, 7]
    assert _rejected(result) == {4: "discount outside [0, 1)", 5: "negative cost_per_contact",
                                 6: "control_share outside [0, 1]",
                                 7: "response_window_days is not a whole number of days from 1"}


def test_balances_need_a_number_and_default_to_the_main_account(tmp_path):
    result = _load_table(tmp_path, "balances", "ts,balance\n2024-01-31,1500.5\n2024-02-29,\n2024-03-31,abc\n")
    balances = result.tables["balances"]
    assert balances.account.tolist() == ["main"] and balances.balance.tolist() == [1500.5]
    assert _rejected(result) == {3: "missing balance", 4: "balance is not a number"}


def test_commitments_words_amounts_and_dates_are_checked_and_may_lie_ahead(tmp_path):
    result = _load_table(tmp_path, "commitments",
                         "ts,amount,direction,frequency,until,business_day,stage\n"
                         "2024-01-01,4000,out,Monthly,2031-12-01,following,\n"
                         "2030-06-30,900,IN,,,,\n"
                         "2024-01-01,-5,out,once,,,\n"
                         "2024-01-01,5,sideways,once,,,\n"
                         "2024-01-01,5,out,fortnightly,,,\n"
                         "2024-01-01,5,out,monthly,2023-01-01,,\n"
                         "2024-01-01,5,out,monthly,,weekend,\n"
                         "2024-01-01,5,out,monthly,soon,,\n"
                         "2024-01-01,5,out,monthly,,,marketing\n")
    commitments = result.tables["commitments"]
    assert commitments.frequency.tolist() == ["monthly", "once"] and commitments.direction.tolist() == ["out", "in"]
    assert commitments.until.tolist()[0] == pd.Timestamp("2031-12-01") and pd.isna(commitments.until.iloc[1])
    assert commitments.business_day.tolist() == ["following", "none"]
    assert commitments.stage.tolist() == ["operations", "operations"] and commitments.category.tolist() == ["other"] * 2
    reasons = _rejected(result)
    assert reasons[4].startswith("amount is not above 0") and reasons[5].startswith("unknown direction")
    assert reasons[6].startswith("unknown frequency (expected one of once, weekly")
    assert reasons[7] == "until is before ts" and reasons[8].startswith("unknown business_day")
    assert reasons[9].startswith("unparseable until date") and reasons[10].startswith("unknown stage")


def test_without_orders_or_contact_outcomes_nothing_loads(tmp_path):
    from toolkit.pipeline import load

    _write(tmp_path, "campaign_id,ts,group\nA,2024-01-05,test\n", "contacts.csv")
    (tmp_path / "journeycast.yml").write_text("sources:\n  orders: {path: orders.csv, required: false}\n")
    with pytest.raises(IngestError, match="no orders source found, and no contacts with outcomes"):
        load(tmp_path)
    _write(tmp_path, "campaign_id,ts,group,revenue\nA,2024-01-05,test,5\n", "contacts.csv")
    assert load(tmp_path).tables["contacts"].revenue.tolist() == [5.0]


# --------------------------------------------------------------------------- hardening

UNCLOSED_QUOTES = ('order_id,customer_id,ts,amount,sku\n'
                   'O1,C1,2024-01-05,75,"a, b"\n'
                   'O2,C2,2024-01-06,80,"broken\n'
                   'O3,C3,2024-01-07,10,"x, y"\n'
                   'O4,C4,2024-01-08,abc,b\n'
                   'O5,C5,2024-01-09,12,"q ""z"""\n'
                   'O6,C6,2024-01-10,5,"also broken\n'
                   'O7,C7,2024-01-11,6,ok\n'
                   'O8,C8,2024-13-45,7,s\n')


def test_an_unclosed_quote_is_one_reject_and_the_lines_after_it_read_as_before(tmp_path):
    result = _load_bad_text(tmp_path, UNCLOSED_QUOTES)
    orders = result.tables["orders"]
    assert orders.order_id.tolist() == ["O1", "O3", "O5", "O7"]
    assert orders.sku.tolist() == ["a, b", "x, y", 'q "z"', "ok"]
    reasons = _rejected(result)
    assert sorted(reasons) == [3, 5, 7, 9]  # each reject on its own line
    assert reasons[3].startswith("unreadable line (unterminated quote") and reasons[7] == reasons[3]
    assert reasons[5] == "amount is not a number" and reasons[9].startswith("unparseable timestamp")
    assert result.rejects.set_index("row").value[3] == 'O2,C2,2024-01-06,80,"broken'


def test_an_unclosed_quote_in_a_windows_file_is_rejected_with_its_text(tmp_path):
    result = _load_bad_text(tmp_path, UNCLOSED_QUOTES.replace("\n", "\r\n"))
    assert result.tables["orders"].order_id.tolist() == ["O1", "O3", "O5", "O7"]
    rejects = result.rejects.set_index("row")
    assert sorted(rejects.index) == [3, 5, 7, 9]
    assert rejects.value[3] == 'O2,C2,2024-01-06,80,"broken' and rejects.value[7] == 'O6,C6,2024-01-10,5,"also broken'


def test_lines_joined_by_a_stray_closing_quote_are_not_accepted_as_one_order(tmp_path):
    text = ('order_id,customer_id,ts,amount,sku\n'
            'O1,C1,2024-01-05,75,"broken\n'
            'O2,C2,2024-01-06,80,Monitor 27"\n'
            'O3,C3,2024-01-07,10,P3\n')
    _write(tmp_path, text)
    result = load_tables(tmp_path, config_from_dict({}), now=NOW)
    assert result.tables["orders"].order_id.tolist() == ["O3"]
    reject = result.rejects.iloc[0]
    assert reject.reason == "line break inside sku (an unclosed quote may have joined lines)"
    assert reject.value == 'broken\nO2,C2,2024-01-06,80,Monitor 27'  # the joined line is shown, not lost


def _load_bad_text(folder, text: str, **settings):
    path = _write(folder, text)
    result = load_tables(folder, config_from_dict(settings), now=NOW)
    counts = result.counts["orders"]
    assert counts["rows_in"] == counts["accepted"] + counts["rejected"] == text.count("\n") - 1
    assert path.read_bytes() == text.encode()
    return result


def test_ids_are_nfc_and_stripped_of_unicode_blanks(tmp_path):
    result = _load_bad_text(tmp_path, "order_id,customer_id,ts,amount,sku\n"
                                      "O1,C1,2024-01-05,75,P1\n"
                                      "O1\u00a0,C1\u00a0,2024-01-06,80,\ufeffP1\u2009\n"
                                      "O3,\u200b C1 ,2024-01-07,10,P1\n"
                                      "O4,Cafe\u0301,2024-01-08,12,P2\n"
                                      "O5,Caf\u00e9,2024-01-09,12,P2\n")
    orders = result.tables["orders"]
    assert orders.customer_id.tolist() == ["C1", "C1", "C1", "Caf\u00e9", "Caf\u00e9"]
    assert orders.order_id.nunique() == 4 and set(orders.sku) == {"P1", "P2"}


@pytest.mark.parametrize(("header", "settings", "message"), [
    ("order_id,customer_id,ts,amount,amount", {}, "column 'amount' appears twice (columns 4 and 5)"),
    ("order_id,customer_id,ts,amount, Amount ", {}, "columns 'amount' and ' Amount ' differ only in case"),
    ("order_id,customer_id,ts,Total,Sum", {"columns": {"Total": "amount", "Sum": "amount"}},
     "columns 'Total' and 'Sum' are both mapped to 'amount' under sources.orders.columns"),
])
def test_columns_that_could_be_read_as_one_are_refused(tmp_path, header, settings, message):
    _write(tmp_path, header + "\nO1,C1,2024-01-05,75,7\n")
    with pytest.raises(IngestError, match="^" + re.escape(f"orders.csv: {message}")):
        load_tables(tmp_path, config_from_dict({"sources": {"orders": {"path": "orders.csv", **settings}}}), now=NOW)


def test_a_file_that_is_no_table_is_not_shown_in_the_error(tmp_path):
    _write(tmp_path, "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    with pytest.raises(IngestError) as caught:
        load_tables(tmp_path, config_from_dict({}), now=NOW)
    assert "found one column, whose name does not look like a header" in str(caught.value)
    assert "root" not in str(caught.value)


def test_the_data_period_ends_with_what_happened_not_with_plans(tmp_path):
    from toolkit.pipeline import load

    _write(tmp_path, "order_id,customer_id,ts,amount\nO1,C1,2024-01-05,75\nO2,C2,2024-03-06,25\n")
    _write(tmp_path, "ts,amount,frequency\n2023-12-01,900,monthly\n2031-01-01,5000,once\n", "commitments.csv")
    _write(tmp_path, "campaign_id,ts\nnext-spring,2030-03-01\n", "campaigns.csv")
    dataset = load(tmp_path)
    assert dataset.tables["commitments"].ts.max() == pd.Timestamp("2031-01-01")
    assert dataset.period == (pd.Timestamp("2024-01-05"), pd.Timestamp("2024-03-06"))


def test_a_system_file_split_at_its_colons_is_not_shown_either(tmp_path):
    _write(tmp_path, "root:x:0:1:admin:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    with pytest.raises(IngestError) as caught:
        load_tables(tmp_path, config_from_dict({"delimiter": ":"}), now=NOW)
    assert "found 7 columns whose names do not look like a header" in str(caught.value)
    assert "root" not in str(caught.value) and "bash" not in str(caught.value)
