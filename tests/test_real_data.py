"""The full report on real exports journeycast was not built on, configured by a journeycast.yml alone.

Superstore order lines (day-first dates, four years), CDNOW orders only (no
order id, whitespace-separated) and the messy one-year shop (guests,
C-invoices, no costs) each run through ``journeycast report`` as a user would:
every page succeeds, no page shows a traceback or a raw missing value, every
chart draws in headless Chromium, and the headline numbers agree with the
file they came from. The data stays in ``../shared/data`` beside the project
(``JOURNEYCAST_REAL_DATA`` points elsewhere); the configurations live in
``tests/data/real/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from browser import chromium, drawn_charts
from conftest import ROOT, TEST_DATA

REAL_CONFIGS = TEST_DATA / "real"
#: Values a table for people must never show.
RAW_MISSING = re.compile(r"<td[^>]*>\s*(nan|NaN|None|NaT|&lt;NA&gt;)\s*</td>")


def _real_data() -> Path:
    folder = Path(os.environ.get("JOURNEYCAST_REAL_DATA", ROOT.parent / "shared" / "data"))
    if not folder.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{folder}: the real reference data is missing (set JOURNEYCAST_REAL_DATA)")
        pytest.skip(f"{folder}: no real reference data on this machine")
    return folder


def _report(data: Path, config: Path, out: Path) -> tuple[subprocess.CompletedProcess, Path]:
    done = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "report", str(data), "--config", str(config), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "JOURNEYCAST_STORE": str(out / ".store")},
    )
    runs = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    return done, runs[-1] if runs else out


@pytest.fixture(scope="module", params=["superstore", "cdnow", "messy"])
def real_report(request, tmp_path_factory):
    """One dataset's full report: (name, completed process, run folder, canonical input)."""
    name = request.param
    out = tmp_path_factory.mktemp(f"report-{name}")
    if name == "messy":
        from toolkit.sample import write_messy_shop

        data = tmp_path_factory.mktemp("messy-shop")
        write_messy_shop(data)
        config = data / "journeycast.yml"
    else:
        data = _real_data() / name
        config = REAL_CONFIGS / f"{name}.yml"
    done, run_dir = _report(data, config, out)
    return name, done, run_dir, data


def _headline(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    (headline,) = [nb["records"]["headline"] for nb in summary["notebooks"] if "headline" in nb["records"]]
    return headline


def _daily_sales(name: str, data: Path) -> pd.Series:
    """Money in per day, summed straight from the export with pandas (not through the toolkit)."""
    if name == "superstore":
        raw = pd.read_csv(data / "Sample - Superstore.csv", encoding="utf-8-sig")
        days = pd.to_datetime(raw["Order Date"], format="%d/%m/%y")
        return raw["Sales"].groupby(days).sum()
    if name == "cdnow":
        raw = pd.read_csv(data / "CDNOW_master.txt", sep=r"\s+")
        return raw["dollar_value"].groupby(pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")).sum()
    raw = pd.read_csv(data / "orders.csv", dtype={"CustomerID": str})
    money = raw["Quantity"] * raw["UnitPrice"]  # C-invoices (returns, cancellations) are negative
    return money.groupby(pd.to_datetime(raw["InvoiceDate"], format="%d/%m/%Y %H:%M").dt.normalize()).sum()


def _messy_net_flow(data: Path) -> pd.Series:
    """The messy shop's net cash flow per day as the toolkit states its rule: sales less the cost of
    goods estimated at (1 - gross_margin 0.55) of the sales, less refunds in full."""
    raw = pd.read_csv(data / "orders.csv", dtype={"CustomerID": str})
    money = raw["Quantity"] * raw["UnitPrice"]
    net = money.where(money < 0, 0.55 * money)
    return net.groupby(pd.to_datetime(raw["InvoiceDate"], format="%d/%m/%Y %H:%M").dt.normalize()).sum()


def test_every_page_succeeds_without_traceback_or_raw_values(real_report, tmp_path):
    name, done, run_dir, _ = real_report
    assert done.returncode == 0, f"{name}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert {nb["status"] for nb in summary["notebooks"]} == {"succeeded"}, summary["notebooks"]
    for nb in summary["notebooks"]:
        html = (run_dir / f"{nb['name']}.html").read_text(encoding="utf-8")
        assert "Traceback" not in html, (name, nb["name"])
        assert not RAW_MISSING.search(html), (name, nb["name"], RAW_MISSING.search(html).group(0))
        executed = nbformat.read(run_dir / f"{nb['name']}.ipynb", as_version=4)
        expected = sum('class="journeycast-chart"' in out.get("data", {}).get("text/html", "")
                       for cell in executed.cells for out in cell.get("outputs", []))
        dom = chromium("--dump-dom", (run_dir / f"{nb['name']}.html").as_uri(),
                       profile=tmp_path / nb["name"]).stdout
        drawn = drawn_charts(dom)
        assert len(drawn) == expected and all(drawn.values()), (name, nb["name"], drawn)


def test_headline_numbers_agree_with_the_export(real_report):
    """The run's own headline against sums taken from the file itself: period, money, the outlook."""
    name, done, run_dir, data = real_report
    assert done.returncode == 0, done.stderr[-3000:]
    headline = _headline(run_dir)
    sales = _daily_sales(name, data)
    assert headline["data through"] == f"{sales.index.max():%Y-%m-%d}"
    # none of these exports has an opening balance or a minimum: no balance and no risk is claimed
    assert headline["shortfall probability"] is None and headline["runway (days)"] is None
    assert not any(key.startswith("cash on") for key in headline)
    if name == "messy":
        # no costs: the cost of goods is estimated from the configured margin, refunds go out in full
        per_day = _messy_net_flow(data)
        assert headline["cumulative net cash flow on the last day"] == pytest.approx(per_day.sum(), abs=0.01)
        ahead = headline["median cumulative net cash flow at the horizon"] - headline[
            "cumulative net cash flow on the last day"]
    else:
        # orders only, no margin: what is carried is the money in, to the cent
        assert headline["cumulative money in on the last day"] == pytest.approx(sales.sum(), abs=0.01)
        ahead = headline["median cumulative money in at the horizon"] - headline["cumulative money in on the last day"]
        per_day = sales
    # the next 90 days against the last 90 days and the same 90 days a year before
    last = sales.index.max()
    recent = per_day[per_day.index > last - pd.Timedelta(days=90)].sum()
    a_year_before = per_day[(per_day.index > last - pd.Timedelta(days=365))
                            & (per_day.index <= last - pd.Timedelta(days=275))].sum()
    references = [r for r in (recent, a_year_before) if r > 0]
    assert any(0.5 * r <= ahead <= 2.0 * r for r in references), (name, ahead, recent, a_year_before)


def test_the_repurchase_model_says_when_the_data_show_no_drop_out(real_report):
    """Superstore's customers show no drop-out (the plain fit lands on its boundary); CDNOW's do."""
    name, done, run_dir, _ = real_report
    assert done.returncode == 0, done.stderr[-3000:]
    degenerate = name == "superstore"
    served = _headline(run_dir)["re-purchase model"]
    assert served == ("BG/NBD with assumed drop-out" if degenerate else "BG/NBD")
    page = (run_dir / "05_opportunities.html").read_text(encoding="utf-8")
    assert ("The BG/NBD fit is degenerate" in page) == degenerate
