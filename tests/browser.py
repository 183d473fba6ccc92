"""Headless Chromium for the tests that check what a person sees in a report."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium with no network, a fresh profile, and 15 s of virtual time for scripts."""
    assert Path(CHROMIUM).exists(), "Chromium is needed: apt-get install -y chromium (make test does it)"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--virtual-time-budget=15000", *args],
        capture_output=True, text=True, timeout=120,
    )


def drawn_charts(dom: str) -> dict[str, bool]:
    """Per chart container: does it hold a drawn Vega view (an svg or canvas of class marks)?

    vega-embed draws inside the container, which the chart's own <script> follows.
    """
    drawn = {}
    for match in re.finditer(r'id="(journeycast-chart-[0-9a-f]+)"', dom):
        inside = dom[match.end():dom.find("<script", match.end())]
        drawn[match.group(1)] = bool(re.search(r'<(svg|canvas)[^>]*class="marks"', inside))
    return drawn
