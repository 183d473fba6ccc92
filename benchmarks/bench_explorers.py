"""Redraw latency of the notebooks' explorers in a real JupyterLab, measured in the browser.

For each notebook with an explorer (03 forecasts, 04 cash what-ifs, 07 campaign
plan) on data/sample: JupyterLab on 127.0.0.1 opens a copy, runs it (Run All),
and after ``--settle`` seconds (a person reading the page) Playwright moves every
control the way a person does: each slider nudged with the arrow keys
``--nudges`` times one way and as many back, each drop-down set to each of its
other options and back, with ``--think`` seconds between moves. A move's
latency is the time from the key press (or choice) to the new chart drawn in
the page (its svg holds its text), taken by the page's own clock.

Then five quick nudges: five arrow-key presses on the first slider with no
pause, timed from the first press to the last chart drawn, counting the charts
drawn in between.

Usage: ``.venv/bin/python benchmarks/bench_explorers.py [--think 1.0] [--nudges 3]``.
It needs Chromium (``make browser``) and prints one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    JupyterLab,
    LabNotebook,
    slider_can_move,
    slider_can_move_forward,
)

EXPLORERS = {"03_forecasts.ipynb": "ForecastExplorer", "04_cash.ipynb": "ScenarioExplorer",
             "07_campaigns.ipynb": "CampaignPlanExplorer"}

#: Counts charts drawn into explorer ``index`` from the first key press on, and when the last one was drawn.
_COUNT_JS = """
(index) => {
  const out = document.querySelectorAll('.jc-explorer-live')[index].querySelector('.widget-output');
  const state = {t0: null, last: null, drawn: 0, seen: new Set(
      Array.from(out.querySelectorAll('.journeycast-chart')).map(e => e.id))};
  document.addEventListener('keydown', () => { if (state.t0 === null) state.t0 = performance.now(); },
                            {capture: true, once: true});
  new MutationObserver(() => {
    for (const chart of out.querySelectorAll('.journeycast-chart'))
      if (!state.seen.has(chart.id) && chart.querySelector('svg.marks text, canvas.marks')) {
        state.seen.add(chart.id); state.drawn += 1; state.last = performance.now();
      }
  }).observe(out, {childList: true, subtree: true, attributes: true});
  window.__jcCount = state;
}
"""


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (no interpolation: a value that was measured)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def moves(notebook: LabNotebook, nudges: int, think: float) -> list[float]:
    """Every control moved and moved back; the latency of each move in ms."""
    explorer = notebook.explorers().first
    explorer.scroll_into_view_if_needed()
    found = []
    for handle in notebook.sliders(explorer):
        forward, done = slider_can_move_forward(handle), 0
        while done < nudges and slider_can_move(handle, forward):  # a short slider ends sooner
            found.append(notebook.nudge(0, handle, forward).ms)
            notebook.page.wait_for_timeout(think * 1000)
            done += 1
        for _ in range(done):
            found.append(notebook.nudge(0, handle, not forward).ms)
            notebook.page.wait_for_timeout(think * 1000)
    for select in explorer.locator("select").all():
        labels = select.locator("option").all_text_contents()
        if select.is_disabled() or len(labels) < 2:
            continue
        current = select.evaluate("e => e.options[e.selectedIndex].text")
        for label in [*(label for label in labels if label != current), current]:
            found.append(notebook.pick(0, select, label).ms)
            notebook.page.wait_for_timeout(think * 1000)
    return found


def quick_nudges(notebook: LabNotebook, presses: int = 5) -> tuple[float, int]:
    """``presses`` arrow keys in a row on the first slider: ms to the last chart, and charts drawn."""
    page = notebook.page
    handle = notebook.sliders(notebook.explorers().first)[0]
    key = "ArrowRight" if slider_can_move_forward(handle) else "ArrowLeft"
    handle.focus()
    page.evaluate(_COUNT_JS, 0)
    for _ in range(presses):
        page.keyboard.press(key)
    drawn, still = -1, 0
    while still < 10:  # settled: nothing new drawn for a second and the kernel idle
        page.wait_for_timeout(100)
        state = page.evaluate("() => [window.__jcCount.drawn, jupyterapp.shell.currentWidget"
                              ".sessionContext.session.kernel.status]")
        still = still + 1 if state[0] == drawn and state[1] == "idle" else 0
        drawn = state[0]
    state = page.evaluate("() => window.__jcCount")
    return state["last"] - state["t0"], state["drawn"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--think", type=float, default=1.0, help="seconds between moves (default 1)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after Run All before the first move")
    parser.add_argument("--nudges", type=int, default=3, help="arrow-key steps each way per slider")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-explorers-"))
    for name in EXPLORERS:
        shutil.copy(ROOT / "notebooks" / name, work / name)
    lab = JupyterLab(work, work / "state", sys.executable).start()
    rows = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, explorer in EXPLORERS.items():
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                notebook = LabNotebook(page, lab, name).open()
                started = time.perf_counter()
                notebook.run_all()
                run_all = time.perf_counter() - started
                page.wait_for_timeout(args.settle * 1000)
                latencies = moves(notebook, args.nudges, args.think)
                settle, drawn = quick_nudges(notebook)
                rows.append((explorer, len(latencies), statistics.median(latencies), percentile(latencies, 0.95),
                             max(latencies), settle, drawn, run_all))
                page.close()
            browser.close()
    finally:
        lab.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"cores: {os.cpu_count()}, load average at the end: {os.getloadavg()[0]:.1f}, think {args.think} s, "
          f"{args.nudges} nudges each way per slider")
    print("| explorer | moves | median ms | p95 ms | max ms | 5 quick nudges: settled after ms (charts drawn) "
          "| Run All s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for explorer, count, median, p95, worst, settle, drawn, run_all in rows:
        print(f"| {explorer} | {count} | {median:.0f} | {p95:.0f} | {worst:.0f} | {settle:.0f} ({drawn}) "
              f"| {run_all:.0f} |")


if __name__ == "__main__":
    main()
