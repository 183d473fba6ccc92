"""Headless Chromium for the tests that check what a person sees in a report."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------- JupyterLab in a browser

#: Chromium switches for a headless run with no network of its own (no sandbox: the tests may run as root).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving ``root``, with its own config, runtime and settings.

    Nothing is fetched from the network: no news, no update check, a read-only
    extension manager. ``window.jupyterapp`` is exposed so a test can run
    JupyterLab's own commands (run all cells, save, close) rather than guess
    at keyboard shortcuts.
    """

    def __init__(self, root: Path, state: Path, python: str) -> None:
        import secrets

        self.root, self.state, self.python = root, state, python
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "JupyterLab":
        import os
        import time
        import urllib.request

        dirs = {name: self.state / name for name in ("config", "data", "runtime", "settings", "workspaces")}
        for folder in dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
               "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "JUPYTER_PLATFORM_DIRS": "1"}
        # no "get notified about Jupyter news?" prompt: the news are not fetched
        news = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
        self.log = open(self.state / "jupyterlab.log", "w")
        self.process = subprocess.Popen(
            [self.python, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", "--port-retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root}", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
             f"--LabApp.user_settings_dir={dirs['settings']}", f"--LabApp.workspaces_dir={dirs['workspaces']}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.state / "jupyterlab.log").read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


#: In the page: watch an explorer's output area for the next chart drawn (or message shown) after an input.
#: vega-embed adds its svg before the view has run; the chart is drawn once the svg holds its text (every chart has a title).
_WATCH_JS = """
(index) => {
  const box = document.querySelectorAll('.jc-explorer-live')[index];
  const out = box.querySelector('.widget-output');
  const before = Array.from(out.querySelectorAll('.journeycast-chart')).map(e => e.id).join();
  const state = {t0: null, t1: null, svg: null, text: null};
  const start = () => { if (state.t0 === null) state.t0 = performance.now(); };
  for (const type of ['keydown', 'input', 'change', 'pointerdown'])
    document.addEventListener(type, start, {capture: true, once: true});
  const check = () => {
    const drawn = Array.from(out.querySelectorAll('.journeycast-chart'));
    const ids = drawn.map(e => e.id).join();
    const message = out.querySelector('.jc-message');
    if (message || (ids !== before && drawn.length && drawn.every(e => e.querySelector('svg.marks text, canvas.marks')))) {
      state.t1 = performance.now();
      const marks = drawn.map(e => e.querySelector('.marks'));
      state.svg = message ? message.textContent : marks.map(e => e.outerHTML).join();
      state.text = message ? message.textContent : marks.map(e => e.textContent).join();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(out, {childList: true, subtree: true, attributes: true});
  window.__jcWatch = state;
}
"""

#: Every code cell's error outputs (name: value), from the notebook model.
_ERRORS_JS = """
() => {
  const cells = jupyterapp.shell.currentWidget.content.model.cells;
  const found = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    for (const output of cell.outputs.toJSON())
      if (output.output_type === 'error') found.push(`cell ${i}: ${output.ename}: ${output.evalue}`);
  }
  return found;
}
"""

_KERNEL_IDLE_JS = """
() => {
  const panel = window.jupyterapp && jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return Boolean(kernel) && kernel.status === 'idle' && panel.context.isReady;
}
"""


@dataclass(frozen=True)
class Redraw:
    """A chart drawn after an input: milliseconds from the input to the chart drawn, its markup and its words.

    The markup is the svg (or canvas) element, or the message shown instead of a chart.
    """

    ms: float
    markup: str
    text: str


class LabNotebook:
    """A notebook open in JupyterLab, driven through JupyterLab's own commands and the explorers' controls."""

    def __init__(self, page: Any, lab: JupyterLab, name: str) -> None:
        self.page, self.lab, self.name = page, lab, name

    def open(self, timeout: float = 120.0) -> "LabNotebook":
        self.page.goto(self.lab.notebook_url(self.name))
        self.page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout * 1000)
        return self

    def run_all(self, timeout: float = 600.0) -> None:
        """Run every cell (JupyterLab's Run All) and wait until the last one is done."""
        done = self.page.evaluate("() => jupyterapp.commands.execute('notebook:run-all-cells')")
        assert done is not False, f"{self.name}: Run All stopped on an error"
        self.page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout * 1000)

    def errors(self) -> list[str]:
        """Error outputs, widget errors, charts not shown and text typeset as LaTeX, anywhere in the notebook."""
        found = self.page.evaluate(_ERRORS_JS)
        # money read as LaTeX: the text between two dollars typeset as a formula
        formulas = self.page.locator(".jp-OutputArea-output mjx-container")
        found += [f"typeset as LaTeX: {formulas.nth(i).inner_text()[:200]}" for i in range(formulas.count())]
        for text in ("Error displaying widget", "Chart not shown", "Nothing to show for this selection"):
            shown = self.page.get_by_text(text)
            found += [f"{text}: {shown.nth(i).inner_text()[:200]}" for i in range(shown.count())
                      if shown.nth(i).is_visible()]
        return found

    def explorers(self) -> Any:
        return self.page.locator(".jc-explorer-live")

    def sliders(self, explorer: Any) -> list[Any]:
        handles = explorer.locator(".noUi-handle")
        return [handles.nth(i) for i in range(handles.count())
                if not handles.nth(i).evaluate("e => e.closest('[disabled]') !== null || "
                                               "e.closest('.noUi-target').hasAttribute('disabled')")]

    def watch(self, index: int, action: Callable[[], None], timeout: float = 60.0) -> Redraw:
        """Do ``action`` on explorer ``index`` and wait for the chart it redraws."""
        self.page.evaluate(_WATCH_JS, index)
        action()
        self.page.wait_for_function("() => window.__jcWatch.t1 !== null", timeout=timeout * 1000)
        state = self.page.evaluate("() => window.__jcWatch")
        return Redraw(state["t1"] - state["t0"], state["svg"], state["text"])

    def chart(self, index: int) -> Redraw:
        """The chart explorer ``index`` shows now."""
        marks = self.explorers().nth(index).locator(".widget-output .marks").first
        return Redraw(0.0, marks.evaluate("e => e.outerHTML"), marks.evaluate("e => e.textContent"))

    def nudge(self, index: int, handle: Any, forward: bool) -> Redraw:
        """Move a slider one step with the arrow keys, as a person fine-tuning it does."""
        handle.focus()
        return self.watch(index, lambda: self.page.keyboard.press("ArrowRight" if forward else "ArrowLeft"))

    def pick(self, index: int, select: Any, label: str) -> Redraw:
        return self.watch(index, lambda: select.select_option(label=label))

    def save_and_close(self) -> None:
        """Save the notebook, close it and shut its kernel down, as at the end of a working day."""
        self.page.evaluate("() => jupyterapp.commands.execute('docmanager:save')")
        self.page.wait_for_function("() => !jupyterapp.shell.currentWidget.context.model.dirty")
        self.page.evaluate("async () => { await jupyterapp.serviceManager.sessions.shutdownAll(); }")
        self.page.evaluate("() => jupyterapp.commands.execute('application:close-all')")


def slider_can_move(handle: Any, forward: bool) -> bool:
    """Whether one arrow-key step that way changes the slider (it is not at that end)."""
    now = float(handle.get_attribute("aria-valuenow"))
    return now < float(handle.get_attribute("aria-valuemax")) if forward else now > float(
        handle.get_attribute("aria-valuemin"))


def slider_can_move_forward(handle: Any) -> bool:
    return slider_can_move(handle, True)
