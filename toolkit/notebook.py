"""What every notebook calls first: offline charts, quiet logs, readable tables.

A notebook's first code cell is ``from toolkit.notebook import setup; setup()``.
That makes the notebook behave the same in JupyterLab, under ``nbval`` and when
``journeycast report`` runs it headlessly with papermill:

* Altair charts render with no network. The stock ``html`` renderer loads Vega
  from a CDN (blank charts offline); its ``inline`` template embeds the 0.9 MB
  Vega bundle in every chart and the second chart on a page then fails
  (``Identifier already declared``). ``setup`` emits
  ``vl_convert.javascript_bundle()`` once, in its own cell's output, wrapped in
  a function so its top-level declarations stay private; the ``journeycast``
  renderer then writes a small ``vegaEmbed`` call per chart. Outputs are plain
  ``text/html``, which papermill and nbformat accept.
* The ``vegafusion`` data transformer is enabled, so charts over more than
  5,000 rows work: VegaFusion evaluates the chart's aggregations in Python and
  the renderer embeds the resulting (small) Vega spec.
* cmdstanpy's per-fit INFO lines and Prophet's plotly notice are silenced.
* Importing the toolkit keeps jsonschema from loading ``rfc3987_syntax``
  (see ``toolkit/__init__.py``): Altair imports jsonschema in every kernel.
* The working directory is the project root, so relative paths in parameters
  (``data_dir="data/sample"``) mean the same wherever the notebook is opened.

Notebooks also use ``in_report``/``show`` to put a static equivalent in place
of an ipywidgets explorer (widgets never render in a static report),
``show_notes`` to say what a page's results lack, assume or doubt,
``show_data_period`` (or ``show_run``, with the run settings the page used) to
state the period the data covers, and ``record`` to
hand small results (the data period, headline forecasts) to the report's
``summary.json``, where the next run can compare them with what happened;
recorded values are not shown on the page.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML, Markdown

    from toolkit.config import Config
    from toolkit.notes import Note


__all__ = [
    "CACHE_DIR",
    "PROJECT_ROOT",
    "RECORD_MIMETYPE",
    "RENDERER_NAME",
    "REPORT_RUN_PARAMETER",
    "in_report",
    "markdown",
    "offline_renderer",
    "data_period_text",
    "notes_html",
    "record",
    "record_data_period",
    "setup",
    "show",
    "show_data_period",
    "settings_text",
    "show_notes",
    "show_run",
]

#: The directory holding ``toolkit/`` and ``notebooks/``.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Where runtime state and the built Vega bundle are kept.
CACHE_DIR = PROJECT_ROOT / ".cache"

#: Name under which the offline renderer is registered with Altair.
RENDERER_NAME = "journeycast"

#: MIME type of the outputs written by ``record``; JSON, so nbformat accepts a mapping.
RECORD_MIMETYPE = "application/vnd.journeycast.record+json"

#: The parameter ``journeycast report`` injects into every notebook it runs.
REPORT_RUN_PARAMETER = "report_run_id"

#: Quiet by default: vega-embed's menu keeps the offline exports, drops links to online editors.
_EMBED_OPTIONS = {
    "renderer": "svg",
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}


@functools.lru_cache(maxsize=1)
def _vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script, matching Altair's Vega-Lite version.

    Building the bundle takes vl-convert about 5 s and every report notebook runs
    in a fresh kernel, so it is kept in the project's ``.cache``.
    """
    import altair as alt
    import vl_convert as vlc

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    version = major_minor if major_minor in vlc.get_vegalite_versions() else None
    cached = CACHE_DIR / f"vega-bundle-{vlc.__version__}-vl{version or 'latest'}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    bundle = vlc.javascript_bundle(vl_version=version)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        partial.write_text(bundle, encoding="utf-8")
        os.replace(partial, cached)
    except OSError:
        pass  # a read-only checkout still renders charts, only slower
    return bundle


def _script_json(value: Any) -> str:
    """JSON safe to place inside a <script> element (no ``</script>`` can close it early)."""
    return json.dumps(value).replace("<", "\\u003c")


def offline_renderer(spec: dict, **embed_options: Any) -> dict[str, str]:
    """Altair renderer: a ``text/html`` output that draws the chart with no network.

    It only calls ``vegaEmbed``; ``setup`` put the Vega bundle in the page.
    ``embed_options`` are passed to vega-embed (e.g. ``renderer="canvas"`` for
    charts with very many marks).
    """
    from altair.utils.display import compile_with_vegafusion, using_vegafusion

    mode = "vega-lite"
    if using_vegafusion():
        spec, mode = compile_with_vegafusion(spec), "vega"
    options = {**_EMBED_OPTIONS, **embed_options, "mode": mode}
    chart_id = f"journeycast-chart-{uuid.uuid4().hex}"
    html = (
        f'<div id="{chart_id}" class="journeycast-chart"></div>\n'
        "<script>(function () {\n"
        f'  var el = document.getElementById("{chart_id}");\n'
        '  function fail(message) { el.textContent = "Chart not shown: " + message; }\n'
        "  if (typeof window.vegaEmbed !== 'function') {\n"
        "    fail('the chart library is missing; run toolkit.notebook.setup() and then this cell again');\n"
        "    return;\n"
        "  }\n"
        f"  window.vegaEmbed(el, {_script_json(spec)}, {_script_json(options)})"
        ".catch(function (err) { fail(String(err)); });\n"
        "})();</script>"
    )
    return {"text/html": html, "text/plain": f"<{mode} chart>"}


def _send_vega_bundle() -> None:
    """Put Vega, Vega-Lite and vega-embed in the page, once, ahead of every chart.

    It goes in the output of the cell calling ``setup`` rather than with the first
    chart: a chart drawn into an ipywidgets ``Output`` first (an explorer's
    initial view) would otherwise carry the bundle where a static report never
    shows it. The function wrapper keeps the bundle's top-level declarations
    private, so running ``setup`` twice on a page does not break it.
    """
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is None:
        return
    script = f"<script>(function () {{\n{_vega_bundle()}\n}})();</script>"
    display({"text/html": script, "text/plain": ""}, raw=True)


def _quiet_logs() -> None:
    # cmdstanpy resets its logger's level on first use, so the logger is disabled instead.
    for name in ("cmdstanpy", "prophet.plot"):
        logging.getLogger(name).disabled = True
    for name in ("prophet", "pymc", "pymc_marketing", "pytensor", "papermill"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _table_display() -> None:
    import pandas as pd

    pd.set_option("display.max_columns", 50)
    pd.set_option("display.max_rows", 60)
    pd.set_option("display.max_colwidth", 80)
    pd.set_option("display.width", 160)
    pd.set_option("display.precision", 3)


def setup(chdir: bool = True, **embed_options: Any) -> None:
    """Prepare the notebook: offline Altair charts, vegafusion, quiet logs, table display.

    Call it in the first code cell: its output carries the Vega bundle every
    chart below it uses.

    Parameters
    ----------
    chdir
        Change the working directory to the project root, so relative paths in
        parameters resolve the same from JupyterLab, nbval and ``journeycast report``.
    embed_options
        Default vega-embed options for every chart (e.g. ``renderer="canvas"``).
    """
    import altair as alt

    _send_vega_bundle()
    alt.renderers.register(RENDERER_NAME, offline_renderer)
    alt.renderers.enable(RENDERER_NAME, **embed_options)
    alt.data_transformers.enable("vegafusion")
    _quiet_logs()
    _table_display()
    if chdir and (PROJECT_ROOT / "notebooks").is_dir():
        os.chdir(PROJECT_ROOT)


def _user_namespace() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def in_report() -> bool:
    """True when the notebook runs under ``journeycast report``.

    The report run injects ``report_run_id`` (see ``REPORT_RUN_PARAMETER``) with
    papermill; run by hand it is absent or ``None``.
    """
    return _user_namespace().get(REPORT_RUN_PARAMETER) is not None


def show(interactive: Any, static: Any | Callable[[], Any]) -> None:
    """Display a widget explorer when exploring, its static equivalent in a report.

    ``static`` may be a zero-argument callable, built only when a report needs it.
    """
    from IPython.display import display

    if in_report():
        display(static() if callable(static) else static)
    else:
        display(interactive)


def _plain(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Series, pd.Index)):
        return value.tolist()
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def record(name: str, value: Any) -> None:
    """Keep a small JSON-able result in the notebook, for the report's ``summary.json``.

    ``journeycast report`` collects every record into ``summary.json`` (under the
    notebook's ``records``), where the next run finds it with
    ``toolkit.reports.previous_run``. Timestamps become ISO strings and NumPy
    values plain numbers.
    """
    from IPython.display import display

    plain = json.loads(json.dumps(value, default=_plain))
    # An empty text/plain: JupyterLab and the pages show nothing, summary.json gets the value.
    display({RECORD_MIMETYPE: {"name": name, "value": plain}, "text/plain": ""}, raw=True)


def record_data_period(tables: dict[str, pd.DataFrame]) -> dict[str, str | None]:
    """Record (as ``data_period``) the first and last day over the tables' ``ts``.

    The report shows this period beside its parameters.
    """
    from toolkit.journey import data_period

    found = data_period(tables)
    period = {"start": f"{found[0]:%Y-%m-%d}", "end": f"{found[1]:%Y-%m-%d}"} if found else {
        "start": None, "end": None}
    record("data_period", period)
    return period


def data_period_text(tables: dict[str, pd.DataFrame]) -> str:
    """The period the data covers as a sentence, naming the tables that hold rows.

    ``"Data from 1 Nov 2023 to 31 Oct 2026 (orders, events, costs)."``
    """
    from toolkit.journey import data_period
    from toolkit.schema import PLANNED_TABLES

    found = data_period(tables)
    if not found:
        return "The data holds no dated rows."
    held = ", ".join(name for name, table in tables.items()
                     if name not in PLANNED_TABLES and table is not None and len(table))
    first, last = found
    return f"Data from {first.day} {first:%b %Y} to {last.day} {last:%b %Y} ({held})."


def show_data_period(tables: dict[str, pd.DataFrame]) -> Markdown:
    """Record the data period for the report (``record_data_period``) and state it as a sentence."""
    from IPython.display import Markdown

    record_data_period(tables)
    return Markdown(data_period_text(tables))


def markdown(text: str) -> Markdown:
    """``text`` as a Markdown output whose dollars never open LaTeX math.

    JupyterLab reads the text between two ``$`` as LaTeX math ("$184.6k
    (173.3k to ...": a formula), escaped or not (``toolkit.charts.MARKDOWN_DOLLAR``).
    Amounts a page formats itself go through ``toolkit.charts.money_markdown``;
    sentences written elsewhere (a recommendation, an explanation) go through this.
    """
    from IPython.display import Markdown

    from toolkit.charts import markdown_dollars

    return Markdown(markdown_dollars(text))


#: How a page states each setting it ran with (``settings_text``), by setting name.
_SETTING_TEXT: dict[str, Callable[[Config], str]] = {
    "horizon": lambda c: f"horizon {c.horizon} {dict(D='days', W='weeks', MS='months')[c.frequency]}",
    "segment": lambda c: f"series split by {c.segment}" if c.segment else "one series per stage and direction",
    "seed": lambda c: f"seed {c.seed}",
    "uncertainty_samples": lambda c: f"{c.uncertainty_samples:,} simulated paths per series",
    "risk_limit": lambda c: f"risk limit {c.risk_limit:.0%}",
    "budget": lambda c: ("no campaign budget cap" if c.campaign.budget is None else
                         "campaign budget " + _money_markdown(c.campaign.budget, c.currency)),
}


def _money_markdown(value: float, currency: str) -> str:
    from toolkit.charts import money_markdown

    return money_markdown(value, currency, compact=False)


def settings_text(config: Config, names: Iterable[str]) -> str:
    """The settings ``names`` of the run configuration as one Markdown sentence.

    Pages read their settings from the run configuration (``journeycast.yml``,
    with the report's ``-p NAME VALUE`` applied), so a page says which values
    it used rather than each page carrying its own copy.
    """
    shown = "; ".join(_SETTING_TEXT[name](config) for name in names)
    return (f"Run settings: {shown} (from the run configuration; `journeycast report -p NAME VALUE` "
            "changes one for every page).")


def show_run(dataset: Any, settings: Iterable[str] = ()) -> Markdown:
    """Record the data period and state it, with the ``settings`` of the run configuration the page used.

    ``dataset`` is a ``toolkit.pipeline.Dataset``; ``settings`` names settings
    (``horizon``, ``seed``, ``uncertainty_samples``, ``segment``, ``risk_limit``,
    ``budget``).
    """
    from IPython.display import Markdown

    record_data_period(dataset.tables)
    names = list(settings)
    text = data_period_text(dataset.tables)
    return Markdown(f"{text} {settings_text(dataset.config, names)}" if names else text)



#: How each level of note is headed on a page, in the order shown.
NOTE_HEADINGS = {
    "missing": "Missing from the data",
    "assumed": "Assumed, not found in the data",
    "warning": "Treat with care",
}


def _collect_notes(sources: tuple[Any, ...]) -> list[Note]:
    from toolkit.notes import Note

    found: list[Note] = []
    for source in sources:
        if source is None:
            continue
        if isinstance(source, Note):
            items = [source]
        elif hasattr(source, "notes"):
            items = list(source.notes)
        elif isinstance(source, (list, tuple)):
            items = _collect_notes(tuple(source))
        else:
            raise TypeError(f"show_notes takes notes or objects with .notes, not {type(source).__name__}")
        found += [note for note in items if note not in found]
    return found


#: A stage series named by its id at the start of a note ("Series purchase|inflow|all: ..."): said in words on a page.
_SERIES_ID = re.compile(r"^Series ([^|\s:]+\|(?:inflow|outflow)\|[^:]*): ")


def _in_words(text: str) -> str:
    """A note's text with a stage series' id said as the charts say it ("Purchase: money in -- ...")."""
    from toolkit.charts import series_label

    return _SERIES_ID.sub(lambda found: f"{series_label(found.group(1))} -- ", text)


def notes_html(*sources: Any) -> str:
    """The notes of ``sources`` as an HTML block grouped by level; ``""`` when there are none.

    ``sources`` are objects with a ``notes`` list (``Dataset``, ``JourneyView``,
    ``CashForecast``, ``ForecastResult``, ``Opportunities``), single ``Note``\\ s or
    lists of them; ``None`` is skipped. Each note shows once.
    """
    import html

    notes = _collect_notes(sources)
    if not notes:
        return ""
    from toolkit.charts import NO_MATH_CLASSES

    parts = [f'<div class="jc-notes {NO_MATH_CLASSES}" style="border-left: 4px solid #f59e0b; '
             'padding: 0.2em 0.9em; margin: 0.6em 0; background: #fffbeb">']
    for level, heading in NOTE_HEADINGS.items():
        texts = [_in_words(note.text) for note in notes if note.level == level]
        if texts:
            items = "".join(f"<li>{html.escape(text)}</li>" for text in texts)
            parts.append(f'<p style="margin: 0.4em 0 0.1em 0"><strong>{heading}</strong></p>'
                         f'<ul style="margin: 0.1em 0 0.4em 0">{items}</ul>')
    parts.append("</div>")
    return "".join(parts)


def show_notes(*sources: Any) -> HTML | None:
    """What the results of ``sources`` lack, assume or doubt, grouped by level; None when nothing.

    Put it near the top of a page for the page's results, and beside the numbers
    a note concerns. Returning None leaves no output at all in the page.
    """
    from IPython.display import HTML

    block = notes_html(*sources)
    return HTML(block) if block else None
