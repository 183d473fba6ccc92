"""Tables for people: what a reader sees in the HTML of a table, not the frame behind it."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from toolkit.tables import key_figures, people_table


def cells(html: str) -> list[list[str]]:
    """The text of every row of a rendered table, header first."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [[c.strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)] for row in rows]


@pytest.fixture
def opportunities() -> pd.DataFrame:
    """Ranked opportunities as the toolkit hands them: float ids, gaps, a shuffled index."""
    return pd.DataFrame({
        "customer_id": [14911.0, 12346.0, np.nan],
        "score": [0.125, 0.5, None],
        "expected_value": [1234.5, 8300065.81, np.nan],
        "window_start": pd.to_datetime(["2024-01-05 13:00", None, "2023-11-01 00:00"]),
        "orders": [3, 1200, 0],
        "reason": ["cart <abandoned>", None, "wishlist"],
    }, index=[17, 3, 9])


def test_people_table_formats_every_kind_of_value(opportunities):
    html = people_table(opportunities, money=["expected_value"], percent=["score"], dates=["window_start"],
                        labels={"customer_id": "Customer"}).to_html()
    assert cells(html) == [
        ["Customer", "Score", "Expected value", "Window start", "Orders", "Reason"],
        ["14911", "12.5%", "$1,234.50", "5 Jan 2024", "3", "cart &lt;abandoned&gt;"],
        ["12346", "50.0%", "$8,300,065.81", "-", "1,200", "-"],
        ["-", "-", "-", "1 Nov 2023", "0", "wishlist"],
    ]
    for raw in ("NaN", "None", "NaT", "nan", "14911.0", "e+0", "row_heading", ">17<"):
        assert raw not in html, raw  # no raw missing values, float ids, exponents or index column
    assert "mathjax_ignore" in html  # two dollar amounts must not become LaTeX in JupyterLab


def test_people_table_words_for_missing_values_and_other_currencies(opportunities):
    html = people_table(opportunities, money=["expected_value"], dates=["window_start"], currency="EUR",
                        missing={"window_start": "not yet"}, money_decimals=0).to_html()
    rows = cells(html)
    assert rows[2][2:4] == ["€8,300,066", "not yet"]
    assert rows[3][0] == "-"


def test_people_table_refuses_a_column_it_does_not_have(opportunities):
    with pytest.raises(KeyError, match="no column \\['revenue'\\]"):
        people_table(opportunities, money=["revenue"])


def test_people_table_renders_the_same_html_every_time(opportunities):
    assert people_table(opportunities).to_html() == people_table(opportunities.copy()).to_html()


def test_key_figures_is_a_label_value_table_not_a_dict():
    figures = {"cash on the last day": 1234567.8, "shortfall probability": 0.031, "first likely breach": None,
               "data through": "2026-10-31", "runway (days)": 90, "customers likely active": 1200}
    html = key_figures(figures, money=["cash on the last day", "campaign net gain"],
                       percent=["shortfall probability"], dates=["data through", "first likely breach"],
                       integers=["customers likely active"]).to_html()
    assert cells(html) == [
        ["Figure", "Value"],
        ["Cash on the last day", "$1,234,568"],
        ["Shortfall probability", "3.1%"],
        ["First likely breach", "-"],
        ["Data through", "31 Oct 2026"],
        ["Runway (days)", "90"],
        ["Customers likely active", "1,200"],
    ]
    assert "{" not in html.split("</style>")[1]


def test_key_figures_side_by_side_formats_each_row_by_its_figure():
    changes = pd.DataFrame({"measure": ["cash on the last day", "shortfall probability", "data through"],
                            "previous": [1000.0, None, "2026-10-01"], "now": [1500.0, 0.2, "2026-10-31"],
                            "change": [500.0, None, None]})
    html = key_figures(changes, money=["cash on the last day"], percent=["shortfall probability"],
                       dates=["data through"]).to_html()
    assert cells(html) == [
        ["Measure", "Previous", "Now", "Change"],
        ["Cash on the last day", "$1,000", "$1,500", "$500"],
        ["Shortfall probability", "-", "20.0%", "-"],
        ["Data through", "1 Oct 2026", "31 Oct 2026", "-"],
    ]


def test_a_share_rounded_to_nothing_is_not_negative():
    html = people_table(pd.DataFrame({"share": [-1e-9, -0.176]}), percent=["share"]).to_html()
    assert cells(html)[1:] == [["0.0%"], ["-17.6%"]]


def test_counts_by_name_read_as_words_not_a_dict():
    html = people_table(pd.DataFrame({"table": ["contacts", "orders"],
                                      "groups": [{"treatment": 5707, "control": 1000}, None]})).to_html()
    assert cells(html)[1:] == [["contacts", "5,707 treatment, 1,000 control"], ["orders", "-"]]
