"""Ingest: every row of the sample accepted, every bad row kept as a reject with its reason."""

from __future__ import annotations

import hashlib
import sqlite3

import duckdb
import pandas as pd
import pytest

from conftest import TEST_DATA
from toolkit.cli import main
from toolkit.config import config_from_dict
from toolkit.ingest import IngestError, derive_order_types, load_tables
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


def test_sample_is_accepted_whole(sample_dir, sample_config):
    result = load_tables(sample_dir, sample_config)
    assert result.rejects.empty
    for name in ("orders", "events", "costs"):
        lines = _data_lines(sample_dir / f"{name}.csv")
        assert result.counts[name] == {"rows_in": lines, "accepted": lines, "rejected": 0}
        table = result.tables[name]
        assert list(table.columns) == list(SCHEMAS[name].columns)
    # values come through unchanged: compare with a plain read of the files
    raw = pd.read_csv(sample_dir / "orders.csv")
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
    assert f"{lines:,} rows in, {lines:,} accepted, 0 rejected" in out
    rejects = pd.read_csv(tmp_path / "reports" / "validate" / "rejects.csv")
    assert rejects.empty and list(rejects.columns) == ["table", "file", "row", "column", "value", "reason"]
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
    return pd.read_csv(sample_dir / "orders.csv", parse_dates=["ts"]).head(500)


def test_parquet_source(tmp_path, sample_orders):
    sample_orders.to_parquet(tmp_path / "orders.parquet")
    config = config_from_dict({"sources": {"orders": {"path": "orders.parquet"}}})
    result = load_tables(tmp_path, config, now=NOW)
    orders = result.tables["orders"]
    assert result.counts["orders"]["accepted"] == 500
    assert (orders.ts.to_numpy() == sample_orders.ts.to_numpy()).all()
    assert orders.amount.sum() == pytest.approx(sample_orders.amount.sum())
    assert result.rejects.row.tolist() == []


def test_duckdb_table_and_query(tmp_path, sample_orders, sample_dir):
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE sales AS SELECT * FROM read_csv('{sample_dir / 'orders.csv'}')")
    before = _digest(path)
    table = load_tables(tmp_path, config_from_dict(
        {"sources": {"orders": {"database": "shop.duckdb", "table": "sales"}}}), now=NOW)
    assert table.counts["orders"]["accepted"] == _data_lines(sample_dir / "orders.csv")
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
    assert main(["validate", str(BAD), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "6 rows in, 4 accepted, 2 rejected" in out and "2  duplicate line" in out
