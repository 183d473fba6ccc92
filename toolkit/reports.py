"""Run the notebooks headlessly into reports that open offline, and publish them atomically.

``run_report`` is the one entry point (``journeycast report`` calls it):

1. Parameters are checked against every notebook's ``parameters`` cell before
   anything runs: a name no notebook declares, or a value of the wrong type, is a
   ``ReportError`` that says which notebooks accept what.
2. Each ``notebooks/NN_*.ipynb`` runs with papermill in a kernel of this
   environment (``python3`` from the project's venv), with the project root
   as working directory, two at a time on two cores (``jobs``), started in
   name order. Each of the ``jobs`` lanes keeps its kernel for its next
   notebook, with the namespace emptied in between, so the kernel start and
   the imports are paid once a lane, not once a page. A failing notebook
   does not stop the others; its executed copy keeps the traceback (a
   notebook whose kernel died has none: the run says so and how to rerun it).
3. Each executed notebook becomes an HTML page with code hidden and no remote
   scripts (``toolkit/templates/journeycast``), headed by the run's parameters
   and data period. A page is for people: tracebacks and stderr (warnings,
   library logs) stay in the executed ``.ipynb``; a failed notebook's page says
   in one sentence where it stopped, why, and the command that reproduces it.
   ``index.html`` links the pages with status and duration and lists the failed
   notebooks with that command; ``summary.json`` holds the same facts plus what
   notebooks ``record``-ed.
4. The run is built in ``<out>/.tmp-<run-id>-<pid>/`` and renamed to
   ``<out>/<run-id>/`` when done, so a reader never sees half a report and two
   runs never write into the same folder. ``<out>/latest`` then points at the
   run (a symlink replaced atomically, or a one-line file where symlinks are
   unavailable) -- only when every notebook succeeded, so that ``latest`` is
   always a whole report and the run the next forecast compares itself with
   (``previous_run``).

Notebooks get two parameters from the run itself when they declare them:
``report_run_id`` (what ``toolkit.notebook.in_report`` looks at) and
``reports_dir`` (where ``previous_run`` looks).
"""

from __future__ import annotations

import ast
import datetime as dt
import fnmatch
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit import __version__
from toolkit.config import (
    CampaignSettings,
    Config,
    ConfigError,
    check_setting,
    load_config,
    read_yaml_file,
    with_settings,
)
from toolkit.errors import JourneycastError
from toolkit.notebook import CACHE_DIR, PROJECT_ROOT, RECORD_MIMETYPE, REPORT_RUN_PARAMETER

__all__ = [
    "DEFAULT_NOTEBOOKS",
    "NotebookParameter",
    "NotebookResult",
    "REPORTS_DIR_PARAMETER",
    "ReportError",
    "ReportRun",
    "default_jobs",
    "failure_sentence",
    "load_parameters_file",
    "notebook_parameters",
    "parse_parameter_value",
    "previous_run",
    "reproduce_command",
    "run_report",
    "validate_parameters",
]

#: The notebooks a report runs: numbered in the order of the flow.
DEFAULT_NOTEBOOKS = "[0-9][0-9]_*.ipynb"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
HTML_TEMPLATE = "journeycast"
KERNEL_NAME = "python3"
LATEST = "latest"

#: The parameter through which a notebook learns where earlier runs are published.
REPORTS_DIR_PARAMETER = "reports_dir"
_RUN_PARAMETERS = (REPORT_RUN_PARAMETER, REPORTS_DIR_PARAMETER)
#: Given as ``run_report(data_dir, config_file)``, injected where a notebook declares them.
_INPUT_PARAMETERS = ("data_dir", "config_file")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ReportError(JourneycastError):
    """A report cannot start: bad parameters, no notebooks, a missing data directory."""


@dataclass(frozen=True)
class NotebookParameter:
    """One assignment of a notebook's ``parameters`` cell.

    ``type`` is the annotation (``seed: int = 42``; quote optional ones:
    ``config_file: "Optional[str]" = None``) or else the type of the default
    literal; ``None`` when neither says (any value is accepted).
    """

    name: str
    type: str | None
    default: str
    help: str

    def coerce(self, value: Any) -> Any:
        """``value`` as this parameter takes it; ``TypeError`` when it does not fit."""
        return _coerce(self.type, value)


_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (float, int), "bool": (bool,),
    "list": (list,), "dict": (dict,),
}


def _coerce(type_name: str | None, value: Any) -> Any:
    if type_name is None or type_name in ("Any", "object"):
        return value
    optional = re.fullmatch(r"Optional\[(.+)\]", type_name)
    if optional:
        return None if value is None else _coerce(optional.group(1).strip(), value)
    accepted = _SIMPLE_TYPES.get(type_name)
    if accepted is None:
        return value  # an annotation this check does not know: the notebook decides
    if isinstance(value, bool) and bool not in accepted:
        raise TypeError(type_name)
    if not isinstance(value, accepted):
        raise TypeError(type_name)
    return float(value) if type_name == "float" else value


def _declared_type(annotation: str, default: str) -> str | None:
    if annotation != "None":
        return annotation.strip()
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return None
    name = type(value).__name__
    return name if name in _SIMPLE_TYPES else None


def notebook_parameters(path: str | Path) -> dict[str, NotebookParameter]:
    """The parameters a notebook declares in its cell tagged ``parameters``."""
    import papermill

    found = papermill.inspect_notebook(str(path))
    return {
        name: NotebookParameter(
            name=name,
            type=_declared_type(p["inferred_type_name"], p["default"]),
            default=p["default"],
            help=p["help"],
        )
        for name, p in found.items()
    }


def _describe(params: Mapping[str, NotebookParameter]) -> str:
    shown = [f"{p.name} ({p.type or 'any'})" for p in params.values() if p.name not in _RUN_PARAMETERS]
    return ", ".join(shown) or "no parameters"


def validate_parameters(
    parameters: Mapping[str, Any], declared: Mapping[str, Mapping[str, NotebookParameter]]
) -> dict[str, dict[str, Any]]:
    """Check ``parameters`` against each notebook's declared ones; per notebook, what it gets.

    Every name must be declared by at least one notebook and its value must fit
    every notebook that declares it, and a parameter that overrides a setting
    (``horizon``, ``discount``...) obeys that setting's rule. Raises one
    ``ReportError`` listing all problems.
    """
    problems = []
    per_notebook: dict[str, dict[str, Any]] = {name: {} for name in declared}
    for name, value in parameters.items():
        if name in _RUN_PARAMETERS:
            problems.append(f"parameter '{name}' is set by the report run itself")
            continue
        takers = [nb for nb, params in declared.items() if name in params]
        if not takers:
            accepted = "; ".join(f"{nb}: {_describe(params)}" for nb, params in declared.items())
            problems.append(f"unknown parameter '{name}' (accepted -- {accepted})")
            continue
        mistyped = len(problems)
        for nb in takers:
            spec = declared[nb][name]
            try:
                per_notebook[nb][name] = spec.coerce(value)
            except TypeError:
                problems.append(
                    f"parameter '{name}' = {value!r} is {type(value).__name__}, "
                    f"but {nb} expects {spec.type}"
                )
        if len(problems) == mistyped:
            try:
                check_setting(name, value, f"parameter '{name}'")
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        raise ReportError("; ".join(problems))
    return per_notebook


def parse_parameter_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: a YAML scalar (``42`` int, ``0.5`` float, ``true``, ``null``).

    Anything that is not a plain scalar (a date, a mapping, a list) stays the
    text as given, so a string parameter never turns into something else.
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return text


def load_parameters_file(path: str | Path) -> dict[str, Any]:
    """Parameters from a YAML mapping (``--params-file``); dates become ISO strings.

    Read like the configuration: aliases are refused before they can expand.
    """
    path = Path(path)
    raw = read_yaml_file(path, "parameters file", ReportError)
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise ReportError(f"{path}: expected a mapping of parameter names to values")
    return json.loads(json.dumps(raw, default=_iso))


def _iso(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"cannot pass a {type(value).__name__} as a notebook parameter")


@dataclass(frozen=True)
class NotebookResult:
    """How one notebook of a run went; paths are relative to the run folder."""

    name: str
    status: str  # "succeeded" or "failed"
    duration_s: float
    notebook: str | None
    html: str | None
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    #: For a failed notebook: ``message``, ``section``, ``cell`` and the ``command`` that reproduces it.
    failure: dict[str, Any] | None = None


@dataclass(frozen=True)
class ReportRun:
    """A published run: where it is and how each notebook went."""

    run_id: str
    path: Path
    status: str  # "succeeded" when every notebook did, else "failed"
    notebooks: tuple[NotebookResult, ...]
    parameters: dict[str, Any]
    data_period: dict[str, Any] | None
    started: str
    finished: str
    duration_s: float

    @property
    def index(self) -> Path:
        """The page to open: links to every notebook's report."""
        return self.path / "index.html"

    @property
    def failed(self) -> list[str]:
        """Names of the notebooks that failed."""
        return [nb.name for nb in self.notebooks if nb.status == "failed"]


def previous_run(out_dir: str | Path = "reports") -> dict | None:
    """``summary.json`` of the last complete run under ``out_dir`` (via ``latest``), or None.

    The returned mapping also has ``path``, the run's folder. Called during a
    run, this is the run before it: a run is published only when it is done.
    """
    run_dir = _latest_dir(Path(out_dir))
    if run_dir is None:
        return None
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    summary["path"] = str(run_dir)
    return summary


def _latest_dir(out_dir: Path) -> Path | None:
    latest = out_dir / LATEST
    if latest.is_symlink():
        target = latest.resolve()
    elif latest.is_file():
        target = out_dir / latest.read_text(encoding="utf-8").strip()
    else:
        return None
    return target if target.is_dir() else None


def default_jobs() -> int:
    """Notebooks run at once by default: one per core, at most two.

    A report's notebooks are mostly single-threaded (kernel start, imports,
    charts), so two at a time nearly halve a run on two cores; more would
    mostly contend for the same cores and memory.
    """
    return max(1, min(2, os.cpu_count() or 1))


def _new_run_id() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def _select_notebooks(notebooks: str | Sequence[str | Path] | None, notebooks_dir: Path) -> list[Path]:
    if notebooks is None or isinstance(notebooks, str):
        pattern = notebooks or DEFAULT_NOTEBOOKS
        if os.sep in pattern or "/" in pattern:
            base, pattern = Path(pattern).parent, Path(pattern).name
        else:
            base = notebooks_dir
        found = sorted(p for p in base.glob("*.ipynb") if fnmatch.fnmatch(p.name, pattern))
        if not found:
            raise ReportError(f"no notebooks match '{pattern}' in {base}")
        return [p.resolve() for p in found]
    paths = [Path(p) if Path(p).is_absolute() or Path(p).exists() else notebooks_dir / p for p in notebooks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ReportError(f"notebook not found: {', '.join(missing)}")
    return [p.resolve() for p in paths]


def _runtime_environment() -> None:
    """Keep Jupyter, IPython, matplotlib and PyTensor state in the project's .cache.

    Set in this process so the kernels it starts inherit it; values already set win.
    """
    defaults = {
        "IPYTHONDIR": CACHE_DIR / "ipython",
        "JUPYTER_RUNTIME_DIR": CACHE_DIR / "jupyter" / "runtime",
        "MPLCONFIGDIR": CACHE_DIR / "matplotlib",
        "PYTENSOR_FLAGS": f"base_compiledir={CACHE_DIR / 'pytensor'}",
        # debugpy's warning about frozen modules would otherwise reach every report's stderr
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, str(value))
    # The kernel spec of this environment first, so "python3" is this venv's Python.
    share = str(Path(sys.prefix) / "share" / "jupyter")
    paths = os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
    if share not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([share, *filter(None, paths)])


def _kernel_manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class EncryptedKernelManager(AsyncKernelManager):
        """Kernels talk over 127.0.0.1; CurveZMQ keys keep that traffic private."""

        @default("transport_encryption")
        def _transport_encryption_default(self) -> str:
            import zmq

            return "auto" if zmq.has("curve") else "disabled"

    return EncryptedKernelManager


class _RunParameterNotice(logging.Filter):
    """papermill warns about injected parameters a notebook does not declare; these are expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message == f"Passed unknown parameter: {name}" for name in _RUN_PARAMETERS)


def _records(nb) -> dict[str, Any]:
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIMETYPE in data:
                found[data[RECORD_MIMETYPE]["name"]] = data[RECORD_MIMETYPE]["value"]
    return found


def _one_line(ename: str | None, evalue: str | None) -> str:
    """An error as one line: its type and the first line of its message."""
    first = next((line.strip() for line in str(evalue or "").splitlines() if line.strip()), "")
    return f"{ename}: {first}" if first else str(ename)


#: Cells papermill adds to a failed notebook (a banner and an anchor); the page says it its own way.
_PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"


def _failed_cell(nb) -> tuple[int, dict] | None:
    """The first cell with an error output and that output, or None."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, output
    return None


def _section_of(nb, index: int) -> str | None:
    """The last Markdown heading above cell ``index``: the section a reader knows it by."""
    for cell in reversed(nb.cells[:index]):
        if cell.cell_type == "markdown" and _PAPERMILL_ERROR_TAG not in cell.metadata.get("tags", []):
            headings = [line.lstrip("#").strip() for line in cell.source.splitlines() if line.startswith("#")]
            if headings:
                return headings[-1]
    return None


def _failure_of(nb, command: str) -> dict[str, Any] | None:
    """Where and why an executed notebook stopped, and how to reproduce it; None when it did not."""
    found = _failed_cell(nb)
    if found is None:
        return None
    index, output = found
    return {"message": _one_line(output.get("ename"), output.get("evalue")),
            "section": _section_of(nb, index), "cell": nb.cells[index].get("execution_count"),
            "command": command}


def failure_sentence(name: str, failure: Mapping[str, Any]) -> str:
    """One sentence for people: which notebook failed, where, why, and the command that reproduces it."""
    where = f' in the section "{failure["section"]}"' if failure.get("section") else ""
    cell = f" (cell In [{failure['cell']}])" if failure.get("cell") else ""
    return (f"{name} failed{where}{cell} with {failure['message']}; "
            f"reproduce it with: {failure['command']}")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def reproduce_command(notebook: Path, data_dir: Path, config_file: Path | None, out_dir: Path,
                      parameters: Mapping[str, Any]) -> str:
    """The command that runs one notebook again as the report ran it.

    ``journeycast report`` with the notebook's parameters as ``-p NAME VALUE``;
    a parameter that is not a scalar (a list of scenarios) cannot be given
    that way, so the papermill call with the parameters as YAML is given then.
    """
    if all(_is_scalar(v) for v in parameters.values()):
        selected = notebook.name if notebook.parent == NOTEBOOKS_DIR.resolve() else str(notebook)
        words = ["journeycast", "report", str(data_dir)]
        words += ["--config", str(config_file)] if config_file else []
        words += ["--out", str(out_dir), "--notebooks", selected]
        for name, value in parameters.items():
            words += ["-p", name, yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")]
        return shlex.join(words)
    inputs = {"data_dir": str(data_dir), "config_file": str(config_file) if config_file else None}
    return shlex.join(["papermill", str(notebook), f"{notebook.stem}-rerun.ipynb", "-k", KERNEL_NAME,
                       "--cwd", str(PROJECT_ROOT), "-y", json.dumps({**inputs, **parameters})])


def _execute(source: Path, target: Path, parameters: dict[str, Any], kernel: Any = None) -> tuple[str, str | None]:
    """Run one notebook into ``target``; (status, error). Never raises for a notebook's own failure.

    ``kernel``: the kernel manager of a running kernel to run it in (see :class:`_Lane`);
    ``None`` starts a kernel for this notebook alone.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            cwd=str(PROJECT_ROOT),
            kernel_manager_class=_kernel_manager_class(),
            # written once at the end (and on a failure), not at each cell's start and end: those writes
            # (the notebook validated and serialised, charts and all) took 3-4 s of a report's CPU
            request_save_on_cell_execute=False,
            **({"km": kernel} if kernel is not None else {}),
        )
    except PapermillExecutionError as exc:
        return "failed", _one_line(exc.ename, exc.evalue)
    except Exception as exc:  # a dead kernel or a broken file must not stop the other notebooks
        return "failed", f"{type(exc).__name__}: {exc}"
    return "succeeded", None


#: Run in a lane's kernel before each notebook after its first: what a fresh kernel would hold. The
#: namespace is emptied, the history restarts at In [1] (a failure says its cell by that number) and
#: the working directory is the project root again; imported modules stay, which is the point.
_FRESH_NAMESPACE = (
    "get_ipython().reset(new_session=True)\n"
    "get_ipython().execution_count = 1\n"
    f"__import__('os').chdir({str(PROJECT_ROOT)!r})\n"
)


class _Lane:
    """One kernel that runs a lane's notebooks one after another.

    Starting a kernel and importing the toolkit (pandas, Altair, the pipeline,
    PyMC on the opportunity pages) was a third to a half of a page's time on
    the sample; a lane pays it once. Between notebooks the kernel's namespace
    is emptied (``_FRESH_NAMESPACE``), so each notebook sees only what it
    defines, as in a kernel of its own. A kernel that died or cannot be reset
    is replaced by a new one before the next notebook.
    """

    def __init__(self) -> None:
        self.kernel: Any = None

    def execute(self, source: Path, target: Path, parameters: dict[str, Any]) -> tuple[str, str | None]:
        if self.kernel is not None and not self._reset():
            self.close()
        if self.kernel is None:
            self.kernel = _kernel_manager_class()(kernel_name=KERNEL_NAME)
        return _execute(source, target, parameters, self.kernel)

    def _reset(self) -> bool:
        """Empty the namespace of the running kernel; False when it is dead or the reset failed."""
        import nbformat
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient

        try:
            if not run_sync(self.kernel.is_alive)():
                return False
            reset = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_FRESH_NAMESPACE)])
            client = NotebookClient(reset, km=self.kernel, kernel_name=KERNEL_NAME, timeout=60)
            client.execute()
            client.kc.stop_channels()
        except Exception:  # whatever went wrong, a new kernel is the way on
            return False
        return True

    def close(self) -> None:
        """Shut the kernel down (in the lane's thread, whose event loop started it)."""
        from jupyter_core.utils import run_sync

        if self.kernel is None:
            return
        try:
            if run_sync(self.kernel.is_alive)():
                run_sync(self.kernel.shutdown_kernel)(now=True)
        except Exception:  # a kernel that is already gone has nothing left to stop
            pass
        finally:
            self.kernel = None


def _html(nb, title: str) -> str:
    from nbconvert import HTMLExporter

    nb = _page_copy(nb)
    exporter = HTMLExporter(
        template_name=HTML_TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def _for_people(output, failure: Mapping[str, Any] | None):
    """An output as the page shows it: None for what only a developer needs.

    ``record`` outputs feed summary.json; stderr carries warnings and library
    logs; a traceback is replaced by one sentence saying where the notebook
    stopped and how to reproduce it (the executed notebook keeps the traceback).
    """
    import html

    import nbformat

    if RECORD_MIMETYPE in output.get("data", {}):
        return None
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return None
    if output.get("output_type") == "error":
        if failure is None:
            return None
        text = html.escape(f"This section could not be completed: {failure['message']}. "
                           f"To reproduce it: {failure['command']}")
        return nbformat.v4.new_output("display_data", data={
            "text/html": f'<p class="jc-failure">{text}</p>', "text/plain": text})
    return output


def _page_copy(nb):
    """A copy of an executed notebook holding only what its page shows (see ``_for_people``)."""
    import copy

    nb = copy.deepcopy(nb)
    failure = nb.metadata.get("journeycast", {}).get("failure")
    nb.cells = [c for c in nb.cells if _PAPERMILL_ERROR_TAG not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if "outputs" in cell:
            shown = (_for_people(o, failure) for o in cell.outputs)
            cell.outputs = [o for o in shown if o is not None]
    return nb


def _title(name: str) -> str:
    words = re.sub(r"^\d+_", "", name).replace("_", " ")
    return words[:1].upper() + words[1:]


def _render_index(run: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["notebook_title"] = _title
    return env.get_template("run_index.html.j2").render(run=run, latest=LATEST)


def _period_text(period: Mapping[str, Any] | None) -> str:
    """The recorded data period as words: ``1 Nov 2023 to 31 Oct 2026``."""
    if not period or not period.get("start"):
        return "not recorded by any notebook"
    first, last = (dt.date.fromisoformat(period[k]) for k in ("start", "end"))
    return f"{first.day} {first:%b %Y} to {last.day} {last:%b %Y}"


def _publish(tmp: Path, out_dir: Path, run_id: str) -> Path:
    final = out_dir / run_id
    try:
        os.rename(tmp, final)
    except OSError as exc:
        raise ReportError(f"cannot publish {tmp} as {final}: {exc}") from None
    return final


_BUILD_FOLDER = re.compile(r"^\.tmp-.+-(\d+)$")


def _remove_abandoned_builds(out_dir: Path) -> list[Path]:
    """Delete the build folders of runs whose process is gone (killed runs); return them.

    A folder ``.tmp-<run>-<pid>`` whose process still runs is another run at
    work and is left alone.
    """
    removed = []
    for folder in out_dir.glob(".tmp-*"):
        found = _BUILD_FOLDER.match(folder.name)
        if found and folder.is_dir() and not _process_alive(int(found.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_alive(pid: int) -> bool:
    # on Windows os.kill would end the process instead of probing it: keep the folder there
    if pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        # someone else's process, or a pid this system cannot check: keep the folder
        return True
    return True


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself, so no lock file is left among the runs (none without fcntl)."""
    try:
        import fcntl
    except ImportError:  # Windows: runs side by side may then both point latest, the last one winning
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _point_latest(out_dir: Path, run_id: str, started: str) -> None:
    """Point ``latest`` at the run in one atomic step (readers never see it missing).

    Of runs finishing side by side, the one that started last stays ``latest``
    whichever finishes last; a lock keeps the look and the move together.
    """
    with _folder_lock(out_dir):
        current = previous_run(out_dir)
        if current is not None and (current.get("started", ""), current.get("run_id", "")) > (started, run_id):
            return
        partial = out_dir / f".{LATEST}-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            os.symlink(run_id, partial, target_is_directory=True)
        except (OSError, NotImplementedError):
            partial.write_text(run_id + "\n", encoding="utf-8")
        os.replace(partial, out_dir / LATEST)


def run_report(
    data_dir: str | Path,
    config_file: str | Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    out_dir: str | Path = "reports",
    run_id: str | None = None,
    notebooks: str | Sequence[str | Path] | None = None,
    progress: bool = True,
    notebooks_dir: str | Path | None = None,
    jobs: int | None = None,
) -> ReportRun:
    """Run the report notebooks on ``data_dir`` and publish them under ``out_dir/<run-id>``.

    Parameters
    ----------
    data_dir, config_file
        The data and run configuration; passed to every notebook declaring
        ``data_dir`` / ``config_file`` (as absolute paths). The configuration is
        validated before anything runs.
    parameters
        Further notebook parameters by name; each goes to the notebooks declaring it.
    out_dir
        Where runs are published (``<out_dir>/<run-id>/``, ``<out_dir>/latest``).
    run_id
        Name of the run folder; default a UTC timestamp with a random suffix.
    notebooks
        A glob of notebook file names (default ``NN_*.ipynb``; a glob with a
        directory part is taken relative to the working directory) or a list
        of notebook paths. They run in name order.
    progress
        Show a progress bar over the notebooks (on stderr).
    notebooks_dir
        Where the notebooks are; default the project's ``notebooks/``.
    jobs
        How many notebooks run at once (each in its own kernel); default
        ``default_jobs()``, one per core up to two.

    Returns
    -------
    ReportRun
        ``status`` is "failed" when any notebook failed; the run is published either way.

    Raises
    ------
    ReportError, ConfigError
        Before any notebook runs: unknown or mistyped parameters, a missing data
        directory, an invalid configuration, no notebooks, a run id in use.
    """
    started_clock = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    data_dir = Path(data_dir).resolve()
    if not data_dir.exists():
        raise ReportError(f"{data_dir}: no such data directory or orders file")
    config_path = Path(config_file).resolve() if config_file is not None else None
    config = load_config(data_dir, config_path)
    parameters = dict(parameters or {})
    given_twice = [name for name in _INPUT_PARAMETERS if name in parameters]
    if given_twice:
        raise ReportError(f"give {', '.join(given_twice)} as arguments, not as parameters")

    paths = _select_notebooks(notebooks, Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR)
    declared = {p.stem: notebook_parameters(p) for p in paths}
    per_notebook = validate_parameters(parameters, declared)
    # summary.json records the settings the pages ran with: the configuration with the run's overrides
    config = with_settings(config, {name: value for name, value in parameters.items()
                                    if name in Config.model_fields or name in CampaignSettings.model_fields},
                           source="report parameters")

    out_dir = Path(out_dir).resolve()
    run_id = run_id or _new_run_id()
    if not _RUN_ID.match(run_id):
        raise ReportError(f"run id '{run_id}' may only hold letters, digits, '.', '_' and '-'")
    if (out_dir / run_id).exists():
        raise ReportError(f"{out_dir / run_id} already exists; choose another run id")
    inputs = {"data_dir": str(data_dir), "config_file": str(config_path) if config_path else None}
    run_values = {REPORT_RUN_PARAMETER: run_id, REPORTS_DIR_PARAMETER: str(out_dir)}
    previous = previous_run(out_dir)

    _runtime_environment()
    _remove_abandoned_builds(out_dir)
    tmp = out_dir / f".tmp-{run_id}-{os.getpid()}"
    tmp.mkdir(parents=True)
    quiet = _RunParameterNotice()
    logging.getLogger("papermill").addFilter(quiet)
    try:
        executed = _execute_all(paths, tmp, declared, per_notebook, inputs, run_values, progress,
                                jobs or default_jobs())
        run = _write_run(
            tmp, run_id, executed, {**inputs, **parameters}, config.model_dump(mode="json"),
            previous, started, started_clock,
        )
        final = _publish(tmp, out_dir, run_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        logging.getLogger("papermill").removeFilter(quiet)
    if run["status"] == "succeeded":
        _point_latest(out_dir, run_id, run["started"])
    results = tuple(NotebookResult(**nb) for nb in run["notebooks"])
    return ReportRun(
        run_id=run_id, path=final, status=run["status"], notebooks=results,
        parameters=run["parameters"], data_period=run["data_period"],
        started=run["started"], finished=run["finished"], duration_s=run["duration_s"],
    )


def _execute_all(
    paths: Iterable[Path], tmp: Path, declared: Mapping[str, Mapping[str, NotebookParameter]],
    per_notebook: Mapping[str, dict[str, Any]], inputs: dict[str, Any], run_values: dict[str, Any],
    progress: bool, jobs: int,
) -> list[dict[str, Any]]:
    """Run the notebooks, ``jobs`` at a time in name order, and render their pages; results in name order.

    ``jobs`` lanes each keep one kernel (:class:`_Lane`) and take the next
    notebook in name order when their last one is done. Each notebook starts
    from an empty namespace, so running them side by side or one after
    another in a lane changes no result; what two of them need alike (a
    forecast, the opportunity scores) is computed once by whichever asks
    first (``pipeline.computed_once``).
    """
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    def run(path: Path, lane: _Lane) -> dict[str, Any]:
        own = declared[path.stem]
        params = {k: v for k, v in inputs.items() if k in own}
        params.update(per_notebook[path.stem])
        started = time.perf_counter()
        status, error = lane.execute(path, tmp / path.name, {**params, **run_values})
        config_file = inputs["config_file"]
        result = {
            "name": path.stem, "status": status, "error": error,
            "duration_s": round(time.perf_counter() - started, 2),
            "notebook": path.name if (tmp / path.name).exists() else None,
            "parameters": params, "html": None,
        }
        command = reproduce_command(path, Path(inputs["data_dir"]), config_file and Path(config_file),
                                    tmp.parent, per_notebook[path.stem])
        nb = _read_page(tmp, result, command)
        if nb is not None and "data_period" in result["records"]:
            # rendered beside the next notebooks; a page that records no period waits for the run's
            pages.append(renderer.submit(_render_page, tmp, result, nb, run_values[REPORT_RUN_PARAMETER],
                                         result["records"]["data_period"]))
        elif nb is not None:
            result["executed"] = nb
        return result

    paths = list(paths)
    todo: queue.SimpleQueue[Path] = queue.SimpleQueue()
    for path in paths:
        todo.put(path)
    results: dict[str, dict[str, Any]] = {}
    done = threading.Lock()
    pages: list[Any] = []

    def work_lane(bar: Any) -> None:
        lane = _Lane()
        try:
            while True:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                result = run(path, lane)
                with done:
                    results[path.stem] = result
                    bar.set_postfix_str(path.stem)
                    bar.update()
        finally:
            lane.close()

    with tqdm(total=len(paths), desc="report", unit="notebook", disable=not progress,
              file=sys.stderr) as bar, ThreadPoolExecutor(max_workers=jobs) as pool, \
            ThreadPoolExecutor(max_workers=1) as renderer:
        for lane in [pool.submit(work_lane, bar) for _ in range(min(jobs, len(paths)))]:
            lane.result()
        for page in pages:
            page.result()
    return [results[path.stem] for path in paths]


def _read_page(tmp: Path, result: dict[str, Any], command: str) -> Any:
    """Read an executed notebook's records and failure into ``result``; the notebook, or None if none was written."""
    import nbformat

    nb = None
    result["records"], result["failure"] = {}, None
    if result["notebook"]:
        nb = nbformat.read(tmp / result["notebook"], as_version=4)
        result["records"] = _records(nb)
        result["failure"] = _failure_of(nb, command)
    if result["status"] == "failed" and result["failure"] is None:
        # the kernel died or the file could not be run: nothing in the notebook says where
        result["failure"] = {"message": result["error"], "section": None, "cell": None, "command": command}
    if result["failure"] is not None:
        result["error"] = result["error"] or result["failure"]["message"]
        result["failure"]["sentence"] = failure_sentence(result["name"], result["failure"])
    return nb


def _render_page(tmp: Path, result: dict[str, Any], nb: Any, run_id: str,
                 data_period: Mapping[str, Any] | None) -> None:
    """Write a notebook's page (HTML) and put the run's facts into its executed copy."""
    import nbformat

    nb.metadata["journeycast"] = {
        "run_id": run_id, "status": result["status"], "parameters": result["parameters"],
        "data_period": data_period, "executed": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "data_period_text": _period_text(data_period), "failure": result["failure"],
    }
    nbformat.write(nb, tmp / result["notebook"])
    result["html"] = f"{result['name']}.html"
    (tmp / result["html"]).write_text(_html(nb, _title(result["name"])), encoding="utf-8")


def _write_run(
    tmp: Path, run_id: str, executed: list[dict[str, Any]], parameters: dict[str, Any],
    config: dict[str, Any], previous: dict | None, started: dt.datetime, started_clock: float,
) -> dict[str, Any]:
    """Render the pages still to render (those that recorded no data period), index.html and summary.json."""
    data_period = next(
        (r["records"]["data_period"] for r in executed if "data_period" in r["records"]), None
    )
    status = "succeeded" if all(r["status"] == "succeeded" for r in executed) else "failed"
    for result in executed:
        nb = result.pop("executed", None)
        if nb is not None:
            _render_page(tmp, result, nb, run_id, data_period)
    finished = dt.datetime.now(dt.timezone.utc)
    run = {
        "run_id": run_id,
        "status": status,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started_clock, 2),
        "parameters": parameters,
        "data_period": data_period,
        "config": config,
        "previous_run_id": previous["run_id"] if previous else None,
        "journeycast_version": __version__,
        "notebooks": [
            {k: r[k] for k in ("name", "status", "duration_s", "notebook", "html", "error", "failure",
                               "parameters", "records")}
            for r in executed
        ],
    }
    run["data_period_text"] = _period_text(data_period)
    (tmp / "index.html").write_text(_render_index(run), encoding="utf-8")
    (tmp / "summary.json").write_text(json.dumps(run, indent=2, default=str) + "\n", encoding="utf-8")
    return run
