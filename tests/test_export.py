"""Shareable CSVs are safe to open in a spreadsheet and can hide customer ids."""

from __future__ import annotations

import json

import pandas as pd

from toolkit.export import neutralise_formulas, pseudonymise, write_shareable_csv, write_summary


def test_formula_cells_are_neutralised_and_numbers_kept():
    frame = pd.DataFrame({
        "customer_id": ["C1", "=HYPERLINK(\"http://x\")", "+1", "@SUM(A1)", "-2", "ok"],
        "reason": ["\tcmd", "abandoned cart", None, "x", "y", "=1+1"],
        "amount": [-5.0, 1.0, 2.0, 3.0, 4.0, 5.0],
    })
    safe = neutralise_formulas(frame)
    assert safe.customer_id.tolist() == ["C1", "'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)", "'-2", "ok"]
    assert safe.reason.tolist()[:2] == ["'\tcmd", "abandoned cart"] and pd.isna(safe.reason[2])
    assert safe.reason.iloc[-1] == "'=1+1"
    assert safe.amount.tolist() == frame.amount.tolist()  # negative numbers are numbers, not formulas
    assert frame.customer_id[1].startswith("=")  # the input is not modified


def test_pseudonyms_are_stable_keyed_and_distinct():
    frame = pd.DataFrame({"customer_id": ["C1", "C2", "C1"], "score": [0.1, 0.2, 0.3]})
    one = pseudonymise(frame, key="k1")
    assert one.customer_id[0] == one.customer_id[2] != one.customer_id[1]
    assert one.customer_id.str.fullmatch(r"cust-[0-9a-f]{12}").all()
    assert pseudonymise(frame, key="k1").equals(one)
    assert pseudonymise(frame, key="k2").customer_id[0] != one.customer_id[0]
    assert "C1" not in set(one.customer_id)


def test_shareable_csv_round_trip(tmp_path):
    frame = pd.DataFrame({"customer_id": ["C1", "=evil"], "value": [1.5, 2.5]})
    path = write_shareable_csv(frame, tmp_path / "out" / "list.csv", pseudonym_key="secret")
    back = pd.read_csv(path)
    assert len(back) == 2 and back.value.tolist() == [1.5, 2.5]
    assert not back.customer_id.str.startswith(("=", "C1")).any()


def test_summary_json_has_iso_dates_and_nulls(tmp_path):
    path = write_summary(tmp_path, {"when": pd.Timestamp("2026-11-01"), "missing": float("nan"),
                                    "count": __import__("numpy").int64(3)})
    assert json.loads(path.read_text()) == {"when": "2026-11-01", "missing": None, "count": 3}


def test_a_guest_keeps_no_id_when_pseudonymised():
    frame = pd.DataFrame({"customer_id": pd.array(["C1", None], dtype="str")})
    out = pseudonymise(frame, key="k1")
    assert out.customer_id.iloc[0].startswith("cust-") and pd.isna(out.customer_id.iloc[1])
