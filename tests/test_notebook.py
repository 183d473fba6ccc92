"""The notebook set-up: offline chart output, vegafusion, quiet logs, working directory."""

from __future__ import annotations

import json
import logging
import os
import re

import altair as alt
import numpy as np
import pandas as pd
import pytest

from toolkit import notebook
from toolkit.notebook import PROJECT_ROOT, in_report, setup


@pytest.fixture
def charts(monkeypatch, tmp_path):
    """setup() as a notebook calls it; Altair's and pandas' global state restored afterwards."""
    monkeypatch.chdir(tmp_path)
    renderer, transformer = alt.renderers.active, alt.data_transformers.active
    with pd.option_context("display.max_columns", pd.get_option("display.max_columns")):
        setup()
        yield
    alt.renderers.enable(renderer)
    alt.data_transformers.enable(transformer)


def _html(chart: alt.TopLevelMixin) -> str:
    bundle = chart._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}  # nbformat-valid: no Vega-Lite mimetype
    return bundle["text/html"]


def _embedded_spec(html: str) -> dict:
    call = re.search(r"vegaEmbed\(el, (\{.*\}), (\{.*\})\)\.catch", html)
    return json.loads(call.group(1)), json.loads(call.group(2))


def test_charts_are_small_embed_calls_and_the_bundle_is_built_once(charts):
    small = alt.Chart(pd.DataFrame({"a": list("xyz"), "b": [1, 2, 3]})).mark_bar().encode(x="a", y="b")
    first, second = _html(small), _html(small)
    assert "window.vegaEmbed=" not in first + second  # the bundle comes with setup's output
    assert len(first) < 5_000 and "<script src" not in first + second
    ids = re.findall(r'id="(journeycast-chart-[0-9a-f]+)"', first + second)
    assert len(ids) == len(set(ids)) == 2
    bundle = notebook._vega_bundle()
    assert "window.vegaEmbed=" in bundle and "<script" not in bundle
    assert any(p.read_text(encoding="utf-8") == bundle for p in notebook.CACHE_DIR.glob("vega-bundle-*.js"))


def test_large_frames_are_aggregated_by_vegafusion_before_embedding(charts):
    frame = pd.DataFrame({"weekday": np.arange(20_000) % 7})
    chart = alt.Chart(frame).mark_bar().encode(x="weekday:O", y="count():Q")
    spec, options = _embedded_spec(_html(chart))
    assert options["mode"] == "vega"  # pre-transformed with VegaFusion, not raw Vega-Lite
    rows = [row for data in spec["data"] for row in data.get("values", [])]
    counts = {row["weekday"]: row["__count"] for row in rows if "__count" in row}
    assert counts == {day: int((frame.weekday == day).sum()) for day in range(7)}
    assert len(json.dumps(spec)) < 20_000  # 7 bars travel to the browser, not 20,000 rows


def test_chart_text_cannot_close_the_script_early(charts):
    chart = alt.Chart(pd.DataFrame({"a": [1]}), title="</script><b>x</b>").mark_point().encode(x="a")
    html = _html(chart)
    tail = html.split('class="journeycast-chart"></div>', 1)[1]
    assert tail.count("</script>") == 1
    assert _embedded_spec(html)[0]["title"]["text"] == "</script><b>x</b>"


def test_setup_quiets_model_logs_and_works_from_the_project_root(charts):
    assert logging.getLogger("cmdstanpy").disabled
    assert logging.getLogger("prophet.plot").disabled
    assert pd.get_option("display.max_columns") == 50
    assert os.getcwd() == str(PROJECT_ROOT)


class _Widget:
    def __repr__(self) -> str:
        return "the widget"


def test_outside_a_report_run_the_interactive_view_is_shown(capsys):
    assert not in_report()
    notebook.show(_Widget(), lambda: pytest.fail("the static view must not be built"))
    assert capsys.readouterr().out.strip() == "the widget"


def test_records_are_plain_json(capsys):
    period = notebook.record_data_period({
        "orders": pd.DataFrame({"ts": pd.to_datetime(["2024-03-01 10:00", "2024-05-02 09:00"])}),
        "costs": pd.DataFrame({"ts": pd.to_datetime(["2024-02-28", "2024-04-30"])}),
        "events": pd.DataFrame({"ts": pd.to_datetime([])}),
    })
    assert period == {"start": "2024-02-28", "end": "2024-05-02"}
    assert notebook._plain(np.int64(3)) == 3 and notebook._plain(pd.Timestamp("2024-01-02")) == "2024-01-02T00:00:00"
    with pytest.raises(TypeError):
        notebook.record("bad", object())


def test_a_record_goes_to_the_summary_and_shows_nothing_on_the_page(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    notebook.record("stage_forecast", {"purchase|inflow|all": [1.5, 2.5]})
    (output,) = shown
    assert output[notebook.RECORD_MIMETYPE] == {"name": "stage_forecast", "value": {"purchase|inflow|all": [1.5, 2.5]}}
    assert output["text/plain"] == ""


def test_the_data_period_is_a_sentence_naming_the_tables_with_rows():
    tables = {
        "orders": pd.DataFrame({"ts": pd.to_datetime(["2023-11-01 10:00", "2026-10-31 09:00"])}),
        "events": pd.DataFrame({"ts": pd.to_datetime(["2024-01-02"])}),
        "costs": pd.DataFrame({"ts": pd.to_datetime([])}),
    }
    assert notebook.data_period_text(tables) == "Data from 1 Nov 2023 to 31 Oct 2026 (orders, events)."
    assert notebook.data_period_text({"orders": tables["costs"]}) == "The data holds no dated rows."


def test_notes_are_grouped_by_level_each_once_and_nothing_without_notes():
    from types import SimpleNamespace

    from toolkit.notes import Note

    costs = Note("cash", "No cost data: add a costs file to use real costs ($ and all).", "missing")
    margin = Note("cash", "Outflows are estimated from gross_margin 0.6.", "assumed")
    boundary = Note("forecast", "The re-purchase model landed on a boundary <r=0>.", "warning")
    result = SimpleNamespace(notes=[boundary, costs])
    html = notebook.notes_html(result, [margin, costs], None, costs)
    headings = re.findall(r"<strong>(.*?)</strong>", html)
    assert headings == list(notebook.NOTE_HEADINGS.values())  # missing, assumed, warning, in that order
    assert html.count("No cost data") == 1
    assert html.index("No cost data") < html.index("gross_margin") < html.index("boundary")
    assert "&lt;r=0&gt;" in html and "mathjax_ignore" in html
    assert notebook.notes_html(SimpleNamespace(notes=[]), None) == ""
    assert notebook.show_notes(SimpleNamespace(notes=[])) is None
    assert notebook.show_notes(costs).data == notebook.notes_html(costs)
    # a stage series is said in words, as the charts name it; other ids stay as they are
    series = Note("forecast", "Series consideration|outflow|email: the forecast totals $2,250.", "warning")
    other = Note("forecast", "Series shop-1: its forecast failed.", "warning")
    said = notebook.notes_html(series, other)
    assert "Consideration: money out (email) -- the forecast totals" in said and "|" not in said
    assert "Series shop-1: its forecast failed." in said
    with pytest.raises(TypeError, match="not str"):
        notebook.notes_html("a note")


# --- one set of parameters ------------------------------------------------------------

#: The settings of the run configuration a forecast depends on: every page that forecasts declares them all,
#: so `journeycast report -p NAME VALUE` reaches each of those pages alike.
FORECAST_SETTINGS = {"horizon", "segment", "seed", "uncertainty_samples"}


def _pages() -> dict[str, tuple[dict, str]]:
    """Each page's declared parameters and its code (outside the parameters cell)."""
    import nbformat
    import papermill

    pages = {}
    for path in sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        code = "\n".join(c.source for c in cells
                         if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
        pages[path.stem] = (papermill.inspect_notebook(str(path)), code)
    return pages


def test_every_page_reads_its_settings_from_the_one_run_configuration():
    from toolkit.config import CampaignSettings, Config

    settings = set(Config.model_fields) | set(CampaignSettings.model_fields)
    pages = _pages()
    seen: dict[str, tuple[str, str]] = {}
    for page, (declared, code) in pages.items():
        for name in settings & set(declared):
            parameter = declared[name]
            # None: the configuration's value, so journeycast.yml and -p are the one place to change it
            assert parameter["default"] == "None", (page, name)
            # the page hands it to the configuration, and never past it to a step
            assert re.search(rf"\bload\([^)]*\b{name}={name}\b", code), (page, name)
            assert not re.search(rf"\b(forecast_cash|opportunities|campaign_study|study_campaigns)\([^)]*\b{name}=",
                                 code), (page, name)
            # a name means one thing on every page
            said = (parameter["inferred_type_name"], parameter["help"])
            assert seen.setdefault(name, said) == said, (page, name)
        if _forecasts(code):
            assert FORECAST_SETTINGS <= set(declared), (page, FORECAST_SETTINGS - set(declared))
    assert {"03_forecasts", "04_cash", "05_opportunities", "06_executive_summary"} <= {
        page for page, (_, code) in pages.items() if _forecasts(code)}


def _forecasts(code: str) -> bool:
    """Whether a page's code forecasts cash: itself, or through ``study_campaigns`` (which starts with it)."""
    return "forecast_cash(" in code or "study_campaigns(" in code


def test_a_page_states_the_run_settings_it_used():
    from toolkit.config import Config

    config = Config(horizon=30, seed=7, campaign={"budget": 2500})
    text = notebook.settings_text(config, ["horizon", "segment", "seed", "uncertainty_samples", "budget"])
    assert text.startswith("Run settings: horizon 30 days; one series per stage and direction; seed 7; "
                           "300 simulated paths per series; campaign budget <span>\\$</span>2,500")
    assert "$" not in text.replace("<span>\\$</span>", "")  # two dollars of one text run would read as LaTeX
    assert "series split by channel" in notebook.settings_text(Config(segment="channel"), ["segment"])


def test_markdown_says_every_dollar_once_in_an_element_of_its_own():
    text = "expected added profit $3.4k (8 in 10 futures $2.6k to \\$4k)"
    # two dollars of one text run are typeset as LaTeX in JupyterLab, escaped or not
    safe = notebook.markdown(text).data
    assert safe == ("expected added profit <span>\\$</span>3.4k (8 in 10 futures <span>\\$</span>2.6k to "
                    "<span>\\$</span>4k)")
    assert notebook.markdown(safe).data == safe
