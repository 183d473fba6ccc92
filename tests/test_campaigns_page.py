"""Page 07 (campaigns) as a report runs it: the sample shop with its past campaigns, and a results export alone.

Each run goes through ``journeycast report`` as a user's would; the page must
succeed without a traceback or a raw missing value, draw its charts in headless
Chromium, and say what it could not do (no plan without orders, an assumed
lift without past campaigns).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from browser import chromium, drawn_charts
from conftest import ROOT, SAMPLE_DIR, TEST_DATA

RAW_MISSING = re.compile(r"<td[^>]*>\s*(nan|NaN|None|NaT|&lt;NA&gt;)\s*</td>")
PAGE = "07_campaigns"


def _page(data, out, *config) -> str:
    done = subprocess.run([sys.executable, "-m", "toolkit.cli", "report", str(data), *config, "--notebooks",
                           f"{PAGE}.ipynb", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = out / "latest"
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert [nb["status"] for nb in summary["notebooks"]] == ["succeeded"]
    html = (run_dir / f"{PAGE}.html").read_text(encoding="utf-8")
    assert "Traceback" not in html
    assert not RAW_MISSING.search(html), RAW_MISSING.search(html).group(0)
    drawn = drawn_charts(chromium("--dump-dom", (run_dir / f"{PAGE}.html").as_uri(), profile=out / "chromium").stdout)
    assert drawn and all(drawn.values()), drawn
    return html


def test_the_page_on_the_sample_measures_three_campaigns_and_plans_within_the_cash_risk(tmp_path):
    html = _page(SAMPLE_DIR, tmp_path)
    for campaign_id in ("spring-2025", "autumn-2025", "spring-2026"):
        assert campaign_id in html
    assert "What past campaigns added" in html
    assert "Runners-up" in html and "Why not" in html
    assert "measured on past campaigns with control groups" in html or "uplift model fitted" in html


def test_the_page_on_a_results_export_alone_measures_only_and_says_so(tmp_path):
    html = _page(ROOT.parent / "shared" / "data" / "hillstrom", tmp_path, "--config",
                 str(TEST_DATA / "real" / "hillstrom.yml"))
    assert "Mens E-Mail" in html and "Womens E-Mail" in html
    assert "No campaign is planned" in html
    assert "Nothing to explore" in html
    # visit is an outcome (sources.contacts.outcomes): no pre-send imbalance in it; the uplift check is said honestly
    assert "differed before the send" not in html
    assert "does not rank customers better than random targeting" in html


def test_the_page_without_past_campaigns_says_the_lift_is_assumed(tmp_path):
    data = tmp_path / "shop"
    data.mkdir()
    for name in ("orders.csv", "events.csv", "costs.csv", "journeycast.yml"):
        shutil.copy(SAMPLE_DIR / name, data / name)
    html = _page(data, tmp_path / "out")
    assert "No past campaigns to measure" in html
    assert "assumed, not measured" in html
