"""The live notebooks in a real JupyterLab, driven by headless Chromium through Playwright.

One JupyterLab server for the session serves copies of the notebooks with an
explorer (the committed ones are never saved over). Each notebook is opened,
run with JupyterLab's Run All, and then every control of its explorer is
moved the way a person moves it (arrow keys on a slider, a new choice in a
drop-down): the chart must be redrawn with different content each time, and
no output anywhere may hold an error, a widget error or a chart not shown.
A notebook saved, closed and reopened must show its charts before it is run
again, with no "model not found" in sight.

Nothing is fetched from the network: JupyterLab runs on 127.0.0.1 with no news
or update checks, and Playwright drives the system's Chromium (never
``playwright install``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, JupyterLab, LabNotebook, slider_can_move_forward
from conftest import ROOT

#: The notebooks with an explorer (copies are served: JupyterLab never saves over the committed ones).
NOTEBOOKS = ["03_forecasts.ipynb", "04_cash.ipynb", "07_campaigns.ipynb"]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-notebooks")
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, root / name)
    server = JupyterLab(root, tmp_path_factory.mktemp("lab-state"), sys.executable).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium_browser():
    assert Path(CHROMIUM).exists(), "Chromium is needed: apt-get install -y chromium (make test does it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    yield page
    context.close()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_control_of_the_explorer_redraws_its_chart(lab, page, name):
    notebook = LabNotebook(page, lab, name).open()
    notebook.run_all()
    assert notebook.errors() == []
    explorers = notebook.explorers()
    assert explorers.count() == 1, f"{name}: one live explorer expected"
    explorer = explorers.first
    explorer.scroll_into_view_if_needed()
    sliders, picked_any = notebook.sliders(explorer), False
    assert sliders, f"{name}: the explorer offers no slider to move"

    for handle in sliders:
        forward = slider_can_move_forward(handle)
        before = notebook.chart(0)
        moved = notebook.nudge(0, handle, forward)
        assert moved.text != before.text, f"{name}: a slider moved and the chart says the same"
        back = notebook.nudge(0, handle, not forward)
        assert back.text == before.text, f"{name}: a slider moved back and the chart does not say what it said"

    for select in explorer.locator("select").all():
        labels = select.locator("option").all_text_contents()
        if select.is_disabled() or len(labels) < 2:
            continue  # one choice (a stage with money only going out): nothing to pick
        current = select.evaluate("e => e.options[e.selectedIndex].text")
        other = next(label for label in labels if label != current)
        before = notebook.chart(0)
        picked = notebook.pick(0, select, other)
        assert picked.text != before.text, f"{name}: {other!r} chosen and the chart says the same"
        picked_any = True
    assert picked_any or name != "03_forecasts.ipynb", "the forecast explorer offers no stage to pick"

    assert notebook.errors() == []
    assert page.problems == []


def test_a_saved_notebook_reopened_shows_its_chart_and_no_widget_error(lab, page):
    notebook = LabNotebook(page, lab, "03_forecasts.ipynb").open()
    notebook.run_all()
    notebook.save_and_close()

    notebook.open()  # a new kernel, which has never drawn the explorer
    fallback = page.locator(".jc-explorer-fallback .marks")
    fallback.first.wait_for(state="visible", timeout=60_000)
    # the widget manager gives up on a model after 2 s; its message must stay hidden
    page.wait_for_function("() => document.body.innerText.indexOf('Loading widget') < 0 "
                           "|| document.querySelector('.jc-explorer-fallback')", timeout=30_000)
    page.wait_for_timeout(3000)
    assert fallback.first.is_visible()
    assert not page.get_by_text("model not found").first.is_visible()
    assert notebook.errors() == []
    assert page.problems == []
