"""Report runs end to end: real papermill kernels, real HTML, a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from browser import chromium, drawn_charts
from toolkit.cli import main
from toolkit.config import load_config
from toolkit.journey import data_period
from toolkit.notebook import PROJECT_ROOT
from toolkit.reports import (
    NotebookParameter,
    ReportError,
    load_parameters_file,
    parse_parameter_value,
    previous_run,
    run_report,
    validate_parameters,
)


def _journeycast(*args: str) -> subprocess.CompletedProcess:
    """The ``journeycast`` command as a user runs it, from the project root."""
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )


def _write_notebook(path: Path, *sources: str, parameters: str = "report_run_id = None\nreports_dir = None") -> Path:
    """A small report notebook: imports, a parameters cell, then ``sources`` as code cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from toolkit.notebook import setup, record, in_report, show"),
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        *[nbformat.v4.new_code_cell(source) for source in sources],
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def _run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.is_symlink())


# --- the sample report -----------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_report(tmp_path_factory):
    """``journeycast report data/sample`` on the data-quality notebook, into a fresh folder."""
    out = tmp_path_factory.mktemp("reports")
    done = _journeycast("report", "data/sample", "--out", str(out), "--notebooks", "01_*", "-p", "seed", "7")
    return done, out


def test_sample_report_is_published_with_index_summary_and_latest(sample_report, sample_tables):
    done, out = sample_report
    assert done.returncode == 0, done.stderr
    (run_dir,) = _run_dirs(out)
    assert done.stdout.strip().splitlines()[-1] == str(run_dir / "index.html")
    assert {p.name for p in run_dir.iterdir()} == {
        "01_data_quality.ipynb", "01_data_quality.html", "index.html", "summary.json"}
    assert (out / "latest").is_symlink() and (out / "latest").resolve() == run_dir
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary build folders left behind"

    summary = _summary(run_dir)
    assert summary["run_id"] == run_dir.name and summary["status"] == "succeeded"
    assert summary["parameters"] == {
        "data_dir": str(PROJECT_ROOT / "data" / "sample"), "config_file": None, "seed": 7}
    # what happened: planned tables (commitments, campaigns) may lie ahead and do not count
    first, last = data_period(sample_tables)
    assert summary["data_period"] == {"start": f"{first:%Y-%m-%d}", "end": f"{last:%Y-%m-%d}"}
    (nb,) = summary["notebooks"]
    assert (nb["name"], nb["status"], nb["error"]) == ("01_data_quality", "succeeded", None)
    assert nb["parameters"]["seed"] == 7 and isinstance(nb["parameters"]["seed"], int)

    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert 'href="01_data_quality.html"' in index and "succeeded" in index
    assert f"Data period: <strong>{first.day} {first:%b %Y} to {last.day} {last:%b %Y}</strong>" in index


def test_sample_report_html_is_offline_with_code_hidden(sample_report):
    _, out = sample_report
    html = (out / "latest" / "01_data_quality.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc\s*=", html, re.I), "a script is loaded from a file or URL"
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", html, re.I)
    assert not re.search(r"(import|@import)\s*\(?\s*[\"']https?://", html)
    assert "load_tables(data_dir" not in html, "code cells must be hidden"
    assert html.count("window.vegaEmbed=") == 1, "the Vega bundle belongs once in a page"
    assert "Rows in, accepted and rejected" in html  # the story (markdown) stays
    header = html.split('<header class="jc-run">', 1)[1].split("</header>", 1)[0]
    assert "data_dir" in header and "seed" in header and "Data period: 1 Nov 2023 to " in header
    executed = nbformat.read(out / "latest" / "01_data_quality.ipynb", as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "seed = 7" in injected.source and "report_run_id = " in injected.source


def test_every_chart_renders_offline_in_headlesschromium(sample_report, tmp_path):
    _, out = sample_report
    run_dir = (out / "latest").resolve()
    executed = nbformat.read(run_dir / "01_data_quality.ipynb", as_version=4)
    expected = sum(
        'class="journeycast-chart"' in output.get("data", {}).get("text/html", "")
        for cell in executed.cells for output in cell.get("outputs", [])
    )
    assert expected == 2  # rows per month, rejects by reason

    page = (run_dir / "01_data_quality.html").as_uri()
    done = chromium("--dump-dom", page, profile=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    drawn = drawn_charts(done.stdout)
    assert len(drawn) == expected
    assert all(drawn.values()), f"charts that did not render: {[k for k, v in drawn.items() if not v]}"
    assert "Chart not shown" not in done.stdout.replace('"Chart not shown: "', "")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """The README's main job: every notebook of ``journeycast report data/sample``."""
    out = tmp_path_factory.mktemp("full")
    done = _journeycast("report", "data/sample", "--out", str(out))
    return done, (out / "latest").resolve()


def test_full_report_renders_every_chart_of_every_page_offline(full_report, tmp_path):
    done, run_dir = full_report
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    names = sorted(p.stem for p in (PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    summary = _summary(run_dir)
    assert [nb["name"] for nb in summary["notebooks"]] == names
    assert {nb["status"] for nb in summary["notebooks"]} == {"succeeded"}
    for name in names:
        executed = nbformat.read(run_dir / f"{name}.ipynb", as_version=4)
        expected = sum('class="journeycast-chart"' in output.get("data", {}).get("text/html", "")
                       for cell in executed.cells for output in cell.get("outputs", []))
        assert expected >= 1, f"{name} shows no chart"
        html = (run_dir / f"{name}.html").read_text(encoding="utf-8")
        assert not re.search(r"<script[^>]*\ssrc\s*=", html, re.I), f"{name} loads a script"
        dom = chromium("--dump-dom", (run_dir / f"{name}.html").as_uri(), profile=tmp_path / name).stdout
        drawn = drawn_charts(dom)
        assert len(drawn) == expected and all(drawn.values()), (name, expected, drawn)


def test_full_report_pages_read_cleanly(full_report):
    """Money in text never opens LaTeX, nothing is dumped raw, and the pages state one set of settings."""
    _, run_dir = full_report
    settings = set()
    for path in sorted(run_dir.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                assert output["output_type"] != "stream", (path.stem, output.get("text", "")[:200])
                data = output.get("data", {})
                text = data.get("text/markdown", "")
                # two dollars of one text run read as LaTeX in JupyterLab, escaped or not
                assert not re.search(r"(?<!<span>\\)\$", text), (path.stem, text[:200])
                assert set(data) - {"text/plain"} or not data.get("text/plain", "").strip(), (
                    path.stem, "raw output", data.get("text/plain", "")[:200])
                settings.update(re.findall(r"Run settings: horizon \d+ days[^(]*", text))
    # the pages that forecast state the same horizon, segments, seed and paths
    assert len({"; ".join(s.strip().split("; ")[:4]) for s in settings}) == 1, settings


def test_data_quality_page_shows_the_rejected_lines_of_the_sample(sample_report):
    _, out = sample_report
    html = (out / "latest" / "01_data_quality.html").read_text(encoding="utf-8")
    assert "No row was rejected" not in html
    for reason in ("unparseable timestamp", "unknown order_type", "duplicate line",
                   "quantity is not a whole number", "amount is not a number"):
        assert reason in html, reason
    assert "2024-02-30 14:05:11" in html  # the value as found, for the user to fix


# --- failures, parameters, concurrency -------------------------------------------------

def test_failing_notebook_keeps_its_traceback_and_the_others_still_run(tmp_path):
    """Also: a static view shown in place of a widget draws in the report."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_broken.ipynb", "print('before the failure')",
                    "## Where it breaks",
                    "raise ValueError('planted failure in the first notebook\\nsecond line of the message')",
                    parameters="report_run_id = None\nreports_dir = None\nseed = 1")
    broken = nbformat.read(notebooks / "01_broken.ipynb", as_version=4)
    broken.cells[3] = nbformat.v4.new_markdown_cell("## Where it breaks")
    nbformat.write(broken, notebooks / "01_broken.ipynb")
    _write_notebook(notebooks / "02_after.ipynb",
                    "import sys, warnings\nprint('noise from a library', file=sys.stderr)\n"
                    "warnings.warn('a deprecation nobody reads')",
                    "import altair as alt, ipywidgets, pandas as pd\nsetup()\n"
                    "chart = alt.Chart(pd.DataFrame({'x': [1, 2]})).mark_bar().encode(x='x:O', y='x:Q')",
                    # an explorer draws its first view into a widget before any static chart
                    "explorer = ipywidgets.Output()\nexplorer.append_display_data(chart)\n"
                    "show(explorer, lambda: chart)",
                    "record('in_report', in_report())")
    out = tmp_path / "reports"

    done = _journeycast("report", "data/sample", "--out", str(out), "--notebooks", str(notebooks / "*.ipynb"),
                        "-p", "seed", "3")
    assert done.returncode == 1, done.stderr
    (run_dir,) = _run_dirs(out)
    summary = _summary(run_dir)
    assert summary["status"] == "failed"
    assert [(nb["name"], nb["status"]) for nb in summary["notebooks"]] == [
        ("01_broken", "failed"), ("02_after", "succeeded")]
    assert summary["notebooks"][0]["error"] == "ValueError: planted failure in the first notebook"
    failure = summary["notebooks"][0]["failure"]
    command = (f"journeycast report {PROJECT_ROOT / 'data' / 'sample'} --out {out} "
               f"--notebooks {notebooks / '01_broken.ipynb'} -p seed 3")
    assert failure == {
        "message": "ValueError: planted failure in the first notebook", "section": "Where it breaks",
        "cell": 5, "command": command,  # In [5]: after the import, parameters and injected ones, print
        "sentence": ("01_broken failed in the section \"Where it breaks\" (cell In [5]) with ValueError: "
                     f"planted failure in the first notebook; reproduce it with: {command}")}
    assert summary["notebooks"][1]["failure"] is None
    assert summary["notebooks"][1]["records"] == {"in_report": True}

    broken = nbformat.read(run_dir / "01_broken.ipynb", as_version=4)
    errors = [o for c in broken.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and errors[0].ename == "ValueError" and any("planted failure" in line for line in errors[0].traceback)
    page = (run_dir / "01_broken.html").read_text(encoding="utf-8")
    # the page says where and why in words, and how to reproduce it; the traceback stays in the .ipynb
    assert "Traceback" not in page
    assert page.count("ValueError: planted failure in the first notebook") == 2  # header and in place
    assert "second line of the message" not in page and "An Exception was encountered" not in page
    assert command in page and "before the failure" in page
    after = (run_dir / "02_after.html").read_text(encoding="utf-8")
    assert "noise from a library" not in after and "deprecation nobody reads" not in after
    dom = chromium("--dump-dom", (run_dir / "02_after.html").as_uri(), profile=tmp_path / "profile").stdout
    assert list(drawn_charts(dom).values()) == [True]
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert index.count('class="failed"') >= 2  # the run and the notebook
    assert "1 notebook failed" in index and "did not become <code>latest</code>" in index
    assert f'<code class="command">{command}</code>' in index and "&ldquo;Where it breaks&rdquo;" in index
    assert "failed" in done.stdout and "01_broken" in done.stdout
    assert not (out / "latest").exists(), "a failed run must not become 'latest'"


def test_notebooks_of_a_run_execute_side_by_side_and_are_listed_in_name_order(tmp_path):
    """Each notebook waits for the other to have started: only two kernels at once finish both."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    for me, other in (("b", "a"), ("a", "b")):
        _write_notebook(
            notebooks / f"0{1 if me == 'a' else 2}_{me}.ipynb",
            "import time\nfrom pathlib import Path\n"
            f"here = Path({str(meeting)!r})\n(here / {me!r}).touch()\n"
            "deadline = time.monotonic() + 120\n"
            f"while not (here / {other!r}).exists():\n"
            "    assert time.monotonic() < deadline, 'the other notebook never started'\n"
            "    time.sleep(0.1)\n"
            f"record('met', {other!r})")
    out = tmp_path / "reports"

    run = run_report("data/sample", out_dir=out, notebooks=str(notebooks / "*.ipynb"), jobs=2, progress=False)
    assert run.status == "succeeded", [nb.error for nb in run.notebooks]
    assert [(nb.name, nb.records) for nb in run.notebooks] == [("01_a", {"met": "b"}), ("02_b", {"met": "a"})]


def test_a_lane_reuses_its_kernel_clean_and_replaces_a_dead_one(tmp_path):
    """One lane runs four pages: the second finds nothing of the first (names, working directory,
    cell numbers) in the same kernel; a page that kills its kernel fails alone and the next gets a new one.
    The run's overrides are what summary.json records as its configuration."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_a.ipynb", "import os\nsecret = 1\nos.chdir('/tmp')\nrecord('pid', os.getpid())\n"
                    "record('count', get_ipython().execution_count)",
                    parameters="report_run_id = None\nreports_dir = None\nhorizon = None")
    _write_notebook(notebooks / "02_b.ipynb",
                    "import os\nassert 'secret' not in globals()\nrecord('pid', os.getpid())\n"
                    "record('cwd', os.getcwd())\nrecord('count', get_ipython().execution_count)")
    _write_notebook(notebooks / "03_c.ipynb", "import os\nos._exit(1)")
    _write_notebook(notebooks / "04_d.ipynb", "import os\nrecord('pid', os.getpid())")
    out = tmp_path / "reports"

    run = run_report("data/sample", out_dir=out, notebooks=str(notebooks / "*.ipynb"), jobs=1, progress=False,
                     parameters={"horizon": 30})
    status = {nb.name: nb.status for nb in run.notebooks}
    assert status == {"01_a": "succeeded", "02_b": "succeeded", "03_c": "failed", "04_d": "succeeded"}
    records = {nb.name: nb.records for nb in run.notebooks}
    assert records["01_a"]["pid"] == records["02_b"]["pid"] != records["04_d"]["pid"]
    assert records["02_b"]["cwd"] == str(PROJECT_ROOT)
    assert records["02_b"]["count"] == records["01_a"]["count"]  # numbered as in the fresh kernel of 01
    summary = _summary(out / run.run_id)
    assert summary["config"]["horizon"] == 30 != load_config(PROJECT_ROOT / "data/sample").horizon


def test_two_concurrent_runs_both_complete_and_the_next_run_sees_the_last(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_rolling.ipynb",
                    "from toolkit.reports import previous_run\n"
                    "before = previous_run(reports_dir)\n"
                    "record('previous', before['run_id'] if before else None)")
    out = tmp_path / "reports"
    command = [sys.executable, "-m", "toolkit.cli", "report", "data/sample", "--out", str(out),
               "--notebooks", str(notebooks / "*.ipynb")]
    runs = [subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]

    run_dirs = _run_dirs(out)
    assert len(run_dirs) == 2
    assert {Path(stdout.strip().splitlines()[-1]).parent for _, stdout, _ in results} == set(run_dirs)
    for run_dir in run_dirs:
        assert _summary(run_dir)["status"] == "succeeded"
        assert (run_dir / "01_rolling.html").exists()
    latest = (out / "latest").resolve()
    # the run that started last is latest, whichever finished last
    assert latest == max(run_dirs, key=lambda d: (_summary(d)["started"], d.name))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    done = _journeycast("report", "data/sample", "--out", str(out), "--notebooks", str(notebooks / "*.ipynb"))
    assert done.returncode == 0, done.stderr
    third = _summary(Path(done.stdout.strip().splitlines()[-1]).parent)
    assert third["previous_run_id"] == latest.name
    assert third["notebooks"][0]["records"] == {"previous": latest.name}
    assert previous_run(out)["run_id"] == third["run_id"]


def test_a_run_killed_mid_page_publishes_nothing_and_the_next_run_cleans_up(tmp_path):
    """kill -9 of a report (and its kernel) half-way: no run, no latest; the next run removes the build."""
    import os
    import signal
    import time

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    started = tmp_path / "started"
    # the first run stops in the middle of its page; the one after it finds the mark and goes through
    _write_notebook(notebooks / "01_slow.ipynb",
                    "import time\nfrom pathlib import Path\n"
                    f"mark = Path({str(started)!r})\n"
                    "if not mark.exists():\n    mark.touch()\n    time.sleep(300)\n"
                    "record('finished', True)")
    out = tmp_path / "reports"
    command = [sys.executable, "-m", "toolkit.cli", "report", "data/sample", "--out", str(out),
               "--notebooks", str(notebooks / "*.ipynb")]
    killed = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while not started.exists():
        assert killed.poll() is None and time.monotonic() < deadline, "the page never started"
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)  # the command and its kernel, as a kill -9 of the job would
    assert killed.wait(timeout=60) == -signal.SIGKILL

    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []  # nothing published, no latest
    abandoned = [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert len(abandoned) == 1 and abandoned[0].name.endswith(f"-{killed.pid}")

    done = _journeycast(*command[3:])
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1]).parent
    assert _summary(run_dir)["notebooks"][0]["records"] == {"finished": True}
    assert (out / "latest").resolve() == run_dir.resolve()
    assert not abandoned[0].exists()
    assert [p for p in out.iterdir() if p.name.startswith(".")] == []


def test_unknown_or_mistyped_parameters_are_rejected_before_anything_runs(tmp_path, sample_dir):
    out = tmp_path / "reports"
    with pytest.raises(ReportError) as unknown:
        run_report(sample_dir, parameters={"sed": 1}, out_dir=out, notebooks="01_*")
    message = str(unknown.value)
    assert "unknown parameter 'sed'" in message
    assert "01_data_quality: data_dir (str), config_file (Optional[str]), accept_rejects (bool), seed (Optional[int])" in message

    with pytest.raises(ReportError, match=r"'seed' = 'abc' is str, but 01_data_quality expects Optional\[int\]"):
        run_report(sample_dir, parameters={"seed": "abc"}, out_dir=out, notebooks="01_*")
    with pytest.raises(ReportError, match="set by the report run itself"):
        run_report(sample_dir, parameters={"report_run_id": "x"}, out_dir=out, notebooks="01_*")
    with pytest.raises(ReportError, match="no such data directory or orders file"):
        run_report(tmp_path / "nowhere", out_dir=out, notebooks="01_*")
    assert not out.exists(), "nothing may be written when a run is refused"

    assert main(["report", str(sample_dir), "--out", str(out), "--notebooks", "01_*", "-p", "seed", "1.5"]) == 2
    assert not out.exists()


def test_parameter_checks_follow_each_notebooks_declared_types():
    declared = {
        "01_a": {"seed": NotebookParameter("seed", "int", "42", ""),
                 "rate": NotebookParameter("rate", "float", "0.1", "")},
        "02_b": {"seed": NotebookParameter("seed", "int", "1", ""),
                 "label": NotebookParameter("label", "Optional[str]", "None", ""),
                 "anything": NotebookParameter("anything", None, "None", "")},
    }
    got = validate_parameters({"seed": 3, "rate": 1, "label": None, "anything": [1]}, declared)
    assert got == {"01_a": {"seed": 3, "rate": 1.0}, "02_b": {"seed": 3, "label": None, "anything": [1]}}
    assert isinstance(got["01_a"]["rate"], float)
    with pytest.raises(ReportError, match="'seed' = True is bool, but 01_a expects int"):
        validate_parameters({"seed": True}, declared)
    with pytest.raises(ReportError, match="'label' = 5 is int, but 02_b expects Optional\\[str\\]"):
        validate_parameters({"label": 5}, declared)


def test_cli_values_are_yaml_scalars_and_files_are_yaml_mappings(tmp_path):
    assert parse_parameter_value("42") == 42 and isinstance(parse_parameter_value("42"), int)
    assert parse_parameter_value("0.25") == 0.25
    assert parse_parameter_value("true") is True and parse_parameter_value("null") is None
    assert parse_parameter_value("data/sample") == "data/sample"
    assert parse_parameter_value("2024-01-31") == "2024-01-31"  # a date stays text
    assert parse_parameter_value("a: b") == "a: b"
    params = tmp_path / "params.yml"
    params.write_text("seed: 3\nstart: 2024-01-31\nstages: [awareness, purchase]\n", encoding="utf-8")
    assert load_parameters_file(params) == {"seed": 3, "start": "2024-01-31", "stages": ["awareness", "purchase"]}
    params.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(ReportError, match="expected a mapping"):
        load_parameters_file(params)


def test_latest_as_a_file_where_symlinks_are_unavailable(tmp_path):
    run_dir = tmp_path / "20260101T000000Z-abc123"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(json.dumps({"run_id": run_dir.name}), encoding="utf-8")
    assert previous_run(tmp_path) is None
    (tmp_path / "latest").write_text(run_dir.name + "\n", encoding="utf-8")
    assert previous_run(tmp_path) == {"run_id": run_dir.name, "path": str(run_dir)}
    shutil.rmtree(run_dir)
    assert previous_run(tmp_path) is None


def test_reproduce_command_gives_scalars_on_the_command_line_and_lists_to_papermill(tmp_path):
    from toolkit.reports import NOTEBOOKS_DIR, reproduce_command

    data = tmp_path / "my shop"
    command = reproduce_command(NOTEBOOKS_DIR / "05_opportunities.ipynb", data, None, tmp_path / "out",
                                {"discount": 0.2, "segment": None, "accept_rejects": True, "label": "a b"})
    assert command == (f"journeycast report '{data}' --out {tmp_path / 'out'} --notebooks 05_opportunities.ipynb "
                       "-p discount 0.2 -p segment null -p accept_rejects true -p label 'a b'")
    scenarios = [{"name": "push", "adjustments": []}]
    command = reproduce_command(NOTEBOOKS_DIR / "04_cash.ipynb", data, tmp_path / "shop.yml", tmp_path / "out",
                                {"scenarios": scenarios})
    assert command.startswith(f"papermill {NOTEBOOKS_DIR / '04_cash.ipynb'} 04_cash-rerun.ipynb -k python3 --cwd ")
    assert '"scenarios": [{"name": "push", "adjustments": []}]' in command and str(tmp_path / "shop.yml") in command


def test_data_that_lost_too_many_rows_is_refused_except_by_the_page_that_shows_them(tmp_path):
    data = tmp_path / "shop"
    data.mkdir()
    lines = ["order_id,customer_id,ts,amount"] + [
        f"O{i},C{i % 7},2024-03-{1 + i % 28:02d},{'12.50' if i % 3 else 'twelve'}" for i in range(90)]
    (data / "orders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "reports"

    refused = _journeycast("report", str(data), "--out", str(out), "--notebooks", "0[12]_*")
    assert refused.returncode == 1
    (run_dir,) = _run_dirs(out)
    statuses = {nb["name"]: nb for nb in _summary(run_dir)["notebooks"]}
    assert statuses["01_data_quality"]["status"] == "succeeded"
    assert statuses["02_journey"]["status"] == "failed"
    assert "33.3%" in statuses["02_journey"]["error"] and "--accept-rejects" in statuses["02_journey"]["error"]
    assert "The other pages of this report refuse this data" in (run_dir / "01_data_quality.html").read_text(
        encoding="utf-8")

    accepted = _journeycast("report", str(data), "--out", str(out), "--notebooks", "0[12]_*", "--accept-rejects")
    assert accepted.returncode == 0, accepted.stdout[-2000:]
