"""Interactive explorers for notebooks, composed from :mod:`toolkit.charts`.

Each explorer holds controls and an output area, and nothing else: the numbers
come from the frames it is given or from the toolkit callables it is handed
(recomputing a cash outlook, re-planning a campaign), so no business logic
lives here. Every explorer exposes

- ``widget``: the ipywidgets container to display in JupyterLab;
- ``chart``: the chart currently shown (updated on every redraw);
- ``static()``: the chart for the default selection, which is what a static
  report shows, since ipywidgets do not render in exported HTML.

An explorer given nothing to explore (no forecast series, no launch week, no
one to contact) shows :func:`toolkit.charts.nothing_to_show` saying why, with
the controls that cannot help disabled, instead of failing. A selection whose
chart cannot be drawn shows why in the output area, never the previous chart.

Answering at once
-----------------
Drawing a chart (the toolkit's numbers, Altair, VegaFusion) takes 0.1-0.5 s,
too slow for a slider nudged with the arrow keys. So every drawn selection is
kept (its chart and its display data), and once an explorer is on screen a
background thread draws what the controls can reach next -- one step either
way on each slider, every option of each drop-down -- while the analyst looks
at the current chart. A move to a selection already drawn only swaps the
output, in one update, so no empty area flashes in between. Explorers that are
never displayed (a report, a test, a script) draw nothing ahead.

Reopened notebooks
------------------
A saved notebook keeps the widget's output, but the widget itself lives in the
kernel: reopened, JupyterLab would show "Error displaying widget: model not
found" until the cell runs again. Displaying an explorer therefore also
displays the chart it shows as plain HTML (``jc-explorer-fallback``) with a
small style sheet: while the live explorer is on screen the copy is hidden;
without it, the copy shows and the widget's error does not.
"""

from __future__ import annotations

import html
import logging
import math
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import altair as alt
import ipywidgets as widgets
import pandas as pd

from toolkit import charts

__all__ = [
    "CampaignPlanExplorer",
    "CashOutlookLike",
    "ForecastExplorer",
    "ScenarioExplorer",
]

log = logging.getLogger(__name__)

#: Labels are shown whole ("Customers pay later (days)", "Budget $"), never cut to fit a fixed width.
LABEL_STYLE = {"description_width": "initial"}

#: Room for a whole label and a slider long enough to aim with the mouse.
SLIDER_LAYOUT = {"width": "430px"}

#: Class of the live explorer's container, and of the static copy shown when it cannot be.
LIVE_CLASS = "jc-explorer-live"
FALLBACK_CLASS = "jc-explorer-fallback"

#: The static copy and the widget are displayed one after the other, so the style
#: works on that pair alone: it hides the copy while the live explorer is on
#: screen, and otherwise hides the widget's output ("Loading widget...", "Error
#: displaying widget: model not found"). CSS ``:has``, in JupyterLab 4's browsers.
_FALLBACK_STYLE = (
    "<style>"
    f".jp-OutputArea-child:has(.{FALLBACK_CLASS}):has(+ .jp-OutputArea-child .{LIVE_CLASS}) {{display: none;}}"
    f".jp-OutputArea-child:has(.{FALLBACK_CLASS}) + .jp-OutputArea-child:not(:has(.{LIVE_CLASS})) "
    "{display: none;}"
    "</style>"
)


class CashOutlookLike(Protocol):
    """What the scenario explorer needs from a cash outlook."""

    bands: pd.DataFrame
    minimum_cash: float
    first_breach_date: pd.Timestamp | None
    shortfall_probability: float


def _display_data(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart as notebook display data, through the renderer the notebook enabled."""
    from IPython.core.formatters import format_display_data

    data, metadata = format_display_data(chart)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _message(text: str) -> dict[str, Any]:
    """Display data for a sentence shown in the output area instead of a chart."""
    escaped = html.escape(text)
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": f'<div class="jc-message" style="padding: 0.5em 0">{escaped}</div>',
                     "text/plain": text}}


class _ExplorerBox(widgets.VBox):
    """The explorer's container: displayed, it brings its static copy and starts drawing ahead."""

    def __init__(self, explorer: _Explorer, children: Sequence[widgets.Widget]) -> None:
        super().__init__(list(children))
        self.add_class(LIVE_CLASS)
        self._explorer = explorer

    def _ipython_display_(self) -> None:
        from IPython.display import display

        explorer = self._explorer
        fallback = explorer._current["data"].get("text/html")
        if fallback is not None:  # an HTML chart (the notebook's renderer): it can stand in for the widget
            # its own element id: the live chart's script looks its element up by id
            fallback = re.sub(r"journeycast-chart-[0-9a-f]+", f"journeycast-chart-{uuid.uuid4().hex}", fallback)
            display({"text/html": f'{_FALLBACK_STYLE}<div class="{FALLBACK_CLASS}">{fallback}</div>',
                     "text/plain": ""}, raw=True)
        display(self._repr_mimebundle_(), raw=True)
        explorer._draw_ahead()


class _Explorer:
    """Shared plumbing: one key per selection, drawn selections kept, the next ones drawn ahead.

    A subclass says what its controls' current selection is (``_key``, a tuple
    with one value per control), how to chart a selection (``_chart``) and what
    each control can take (``_axes``); ``_redraw`` does the rest.
    """

    #: Drawn selections kept per explorer; each is a chart and its display data (about 0.1 MB).
    kept = 256

    def __init__(self) -> None:
        self.output = widgets.Output()
        self.chart: alt.TopLevelMixin | None = None
        self.widget: widgets.Box  # the controls and the output, built by each explorer with ``_box``
        self._drawn: dict[tuple | None, tuple[alt.TopLevelMixin, dict[str, Any]]] = {}
        self._current: dict[str, Any] = {"data": {}}
        self._lock = threading.Lock()
        self._drawing: dict[tuple | None, threading.Event] = {}  # selections being drawn right now
        self._moved = threading.Event()
        self._ahead: threading.Thread | None = None
        self._last_move: tuple[int, int] | None = None  # (control, +1 or -1) of the latest slider move
        self._shown_key: tuple | None = None
        self._closed = False
        # Set while controls are re-populated, so one change draws once.
        self._updating = False

    # -- what a subclass provides
    def _key(self) -> tuple | None:
        raise NotImplementedError

    def _chart(self, key: tuple | None) -> alt.TopLevelMixin:
        raise NotImplementedError

    def _axes(self, key: tuple) -> list[tuple[list[Any], bool]]:
        """Per control: the values it offers and whether they are ordered (a slider) or not (a drop-down)."""
        return []

    def _reachable(self, key: tuple | None) -> list[tuple]:
        """Selections one or a few moves away, the likeliest first.

        A slider nudged with the arrow keys tends to go on the same way, so its
        next step comes first; then every option of the drop-downs (there are
        few), one step of every slider, and a few more steps either way.
        """
        if key is None:
            return []
        axes = self._axes(key)
        positions = [values.index(key[i]) if key[i] in values else None for i, (values, _) in enumerate(axes)]

        def step(i: int, by: int) -> list[tuple]:
            values, ordered = axes[i]
            at = positions[i]
            if not ordered or at is None or not 0 <= at + by < len(values):
                return []
            return [(*key[:i], values[at + by], *key[i + 1:])]

        sliders = [i for i, (_, ordered) in enumerate(axes) if ordered]
        moved, way = self._last_move if self._last_move is not None else (None, 1)
        found = step(moved, way) if moved is not None else []
        found += [(*key[:i], v, *key[i + 1:]) for i, (values, ordered) in enumerate(axes) if not ordered
                  for v in values if v != key[i]]
        found += [k for i in sliders for by in (-1, 1) for k in step(i, by)]
        found += [k for by in (2, 3) for k in (step(moved, way * by) if moved is not None else [])]
        found += [k for by in (2, 3) for i in sliders for k in step(i, -by) + step(i, by)]
        return list(dict.fromkeys(found))

    def _box(self, children: Sequence[widgets.Widget]) -> _ExplorerBox:
        return _ExplorerBox(self, [*children, self.output])

    # -- drawing
    def _draw(self, key: tuple | None) -> tuple[alt.TopLevelMixin, dict[str, Any]]:
        """The chart of a selection and its display data, drawn once.

        A selection that cannot be drawn gets a message saying why: in an
        ipywidgets callback the error would otherwise reach only the browser's
        log, and the output area would keep the previous, wrong, chart.
        """
        with self._lock:
            found = self._drawn.get(key)
            drawing = self._drawing.get(key)
            if found is None and drawing is None:
                drawing = self._drawing[key] = threading.Event()
                mine = True
            else:
                mine = False
        if found is not None:
            return found
        if not mine:  # the other thread is drawing it already: wait rather than draw it twice
            drawing.wait()
            return self._draw(key)
        try:
            chart = self._chart(key)
            drawn = (chart, _display_data(chart))
        except Exception as error:  # noqa: BLE001 -- any failure must show in the page, see above
            log.warning("explorer could not draw %r", key, exc_info=True)
            reason = str(error) or type(error).__name__
            drawn = (charts.nothing_to_show(reason), _message(f"Nothing to show for this selection: {reason}"))
        with self._lock:
            if len(self._drawn) >= self.kept:
                self._drawn.pop(next(iter(self._drawn)))
            self._drawn[key] = drawn
            del self._drawing[key]
        drawing.set()
        return drawn

    def _redraw(self) -> None:
        """Show the current selection, replacing the output in one update."""
        key = self._key()
        self._note_move(self._shown_key, key)
        self._shown_key = key
        self.chart, self._current = self._draw(key)
        # Replacing ``outputs`` works with or without a running kernel.
        self.output.outputs = (self._current,)
        self._moved.set()

    def _note_move(self, before: tuple | None, after: tuple | None) -> None:
        """Remember which slider moved and which way, to draw its next step first."""
        if before is None or after is None or len(before) != len(after):
            return
        changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        if len(changed) == 1 and isinstance(after[changed[0]], (int, float)):
            i = changed[0]
            self._last_move = (i, 1 if after[i] > before[i] else -1)

    def _draw_ahead(self) -> None:
        """Start drawing, in the background, what one move of a control can reach."""
        if self._ahead is None:
            self._ahead = threading.Thread(target=self._keep_drawing_ahead, name="explorer-draw-ahead",
                                           daemon=True)
            self._ahead.start()
        self._moved.set()

    def close(self) -> None:
        """Stop drawing ahead and close the explorer's widgets; it cannot be shown again."""
        self._closed = True
        self._moved.set()
        boxes = [self.widget]
        while boxes:
            box = boxes.pop()
            boxes += [child for child in getattr(box, "children", ()) if isinstance(child, widgets.Widget)]
            box.close()

    def _keep_drawing_ahead(self) -> None:
        while not self._closed:
            self._moved.wait()
            self._moved.clear()
            try:
                for key in self._reachable(self._shown_key):
                    if self._moved.is_set() or self._closed:
                        break  # the analyst moved on: draw around the new selection first
                    self._draw(key)
            except Exception:  # noqa: BLE001 -- drawing ahead only saves time; the live redraw reports errors
                log.warning("explorer stopped drawing ahead", exc_info=True)

    def _ipython_display_(self) -> None:
        self.widget._ipython_display_()


def _selection_title(text: str) -> alt.TitleParams:
    """A line above an explorer's chart saying which settings it shows: a move that changes no
    number still changes what the chart says it is."""
    return alt.TitleParams(text, anchor="start", fontSize=12, fontWeight="normal", color="#374151")


def _row(*controls: widgets.Widget) -> widgets.HBox:
    """Controls side by side, wrapping onto the next line in a narrow notebook rather than overflowing it."""
    return widgets.HBox(list(controls), layout=widgets.Layout(flex_flow="row wrap"))


def _series_keys(series: pd.DataFrame) -> pd.DataFrame:
    """``unique_id, stage, direction, segment`` for each series."""
    if {"stage", "direction", "segment"}.issubset(series.columns):
        keys = series[["unique_id", "stage", "direction", "segment"]].drop_duplicates("unique_id")
    else:
        ids = pd.Series(series["unique_id"].unique())
        parts = ids.str.split("|", n=2, expand=True)
        keys = pd.DataFrame({"unique_id": ids, "stage": parts[0], "direction": parts[1], "segment": parts[2]})
    return keys.astype(str).reset_index(drop=True)


def _horizon_options(steps: int) -> list[tuple[str, int]]:
    """Whole weeks up to the forecast's length, and the full length: what the horizon slider offers."""
    days = sorted({*range(7, steps, 7), steps})
    return [(f"{d} days", d) for d in days]


class ForecastExplorer(_Explorer):
    """Pick a stage, direction and segment and how far ahead to look.

    It opens on the money coming in (the inflow series that forecasts the most
    money), the figure most people look for first: not a series that moves no
    money any more, such as first orders of a closed customer cohort. The
    horizon moves in whole weeks.

    Parameters
    ----------
    series
        Stage series ``unique_id, ds, y, stage, direction, segment``.
    forecast
        ``unique_id, ds, yhat, yhat_lower, yhat_upper`` for the same ids.
    currency, history_days
        Passed to :func:`toolkit.charts.forecast_bands`.
    """

    def __init__(
        self,
        series: pd.DataFrame,
        forecast: pd.DataFrame,
        currency: str = "USD",
        history_days: int | None = 180,
    ) -> None:
        super().__init__()
        self.series = series
        self.forecast = forecast
        self.currency = currency
        self.history_days = history_days
        self.keys = _series_keys(series)
        self.keys = self.keys[self.keys["unique_id"].isin(forecast["unique_id"].unique())].reset_index(drop=True)
        self._forecast_days = {uid: sorted(days["ds"].unique()) for uid, days in forecast.groupby("unique_id")}
        steps = max((len(days) for days in self._forecast_days.values()), default=1)
        first = self.keys[self.keys["unique_id"] == self._opening_series()]
        stages = list(dict.fromkeys(self.keys["stage"]))
        self.stage = widgets.Dropdown(description="Stage", options=stages,
                                      value=first["stage"].iloc[0] if len(first) else None, style=LABEL_STYLE)
        self.direction = widgets.Dropdown(description="Money", style=LABEL_STYLE)
        self.segment = widgets.Dropdown(description="Segment", style=LABEL_STYLE)
        options = _horizon_options(steps)
        self.horizon = widgets.SelectionSlider(description="Days ahead", options=options, value=options[-1][1],
                                               continuous_update=False, style=LABEL_STYLE,
                                               layout=widgets.Layout(**SLIDER_LAYOUT))
        if self.keys.empty:
            for control in (self.stage, self.direction, self.segment, self.horizon):
                control.disabled = True
        else:
            self._refresh_options(first["direction"].iloc[0])
        self.stage.observe(self._on_stage, names="value")
        self.direction.observe(self._on_direction, names="value")
        self.segment.observe(self._on_change, names="value")
        self.horizon.observe(self._on_change, names="value")
        self.widget = self._box([_row(self.stage, self.direction, self.segment), self.horizon])
        self._redraw()

    @property
    def unique_id(self) -> str:
        """The series currently selected."""
        rows = self.keys[
            (self.keys["stage"] == self.stage.value)
            & (self.keys["direction"] == self.direction.value)
            & (self.keys["segment"] == self.segment.value)
        ]
        return rows["unique_id"].iloc[0]

    def chart_for(self, unique_id: str, horizon: int) -> alt.TopLevelMixin:
        """The forecast chart of one series over its first ``horizon`` forecast steps."""
        fc = self.forecast[self.forecast["unique_id"] == unique_id]
        kept = self._forecast_days.get(unique_id, [])[:horizon]
        return charts.forecast_bands(
            self.series, fc[fc["ds"].isin(kept)], [unique_id],
            history_days=self.history_days, currency=self.currency,
        )

    def _opening_series(self) -> str | None:
        """The series shown first: the inflow series with the most forecast money (else the first series)."""
        inflows = self.keys[self.keys["direction"] == "inflow"]
        if inflows.empty:
            return self.keys["unique_id"].iloc[0] if len(self.keys) else None
        totals = self.forecast.groupby("unique_id")["yhat"].sum()
        return max(inflows["unique_id"], key=lambda uid: totals.get(uid, 0.0))

    def static(self) -> alt.TopLevelMixin:
        """The chart for the default selection (see :meth:`_opening_series`), full horizon."""
        if self.keys.empty:
            return charts.nothing_to_show("no series has a forecast")
        return self.chart_for(self._opening_series(), self.horizon.options[-1][1])

    def _refresh_options(self, direction: str | None = None) -> None:
        """Offer only directions and segments that exist for the chosen stage."""
        self._updating = True
        at_stage = self.keys[self.keys["stage"] == self.stage.value]
        directions = list(dict.fromkeys(at_stage["direction"]))
        wanted = direction or self.direction.value
        direction = wanted if wanted in directions else directions[0]
        self.direction.options = directions
        self.direction.value = direction
        segments = list(dict.fromkeys(at_stage.loc[at_stage["direction"] == direction, "segment"]))
        segment = self.segment.value if self.segment.value in segments else segments[0]
        self.segment.options = segments
        self.segment.value = segment
        # a single choice is shown but cannot be changed
        self.direction.disabled = len(directions) < 2
        self.segment.disabled = len(segments) < 2
        self._updating = False

    def _on_stage(self, _change: dict) -> None:
        self._refresh_options()
        self._redraw()

    def _on_direction(self, _change: dict) -> None:
        if not self._updating:
            self._refresh_options()
            self._redraw()

    def _on_change(self, _change: dict) -> None:
        if not self._updating:
            self._redraw()

    def _key(self) -> tuple | None:
        return None if self.keys.empty else (self.unique_id, self.horizon.value)

    def _chart(self, key: tuple | None) -> alt.TopLevelMixin:
        return self.static() if key is None else self.chart_for(*key)

    def _axes(self, key: tuple) -> list[tuple[list[Any], bool]]:
        return [(list(self.keys["unique_id"]), False), ([days for _, days in self.horizon.options], True)]


class ScenarioExplorer(_Explorer):
    """What-if sliders for the cash outlook: costs, demand and late receipts.

    Parameters
    ----------
    recompute
        Called as ``recompute(stage=..., outflow_change_pct=..., demand_shock_pct=...,
        receipt_delay_days=...)`` whenever a control changes; the changes are in
        percent (20 = +20%, as ``toolkit.cash.OutflowChange.pct``). Returns
        ``(outlook, comparison)``: the scenario's ``toolkit.cash.CashOutlook``
        (``bands``, ``minimum_cash``, ``first_breach_date``,
        ``shortfall_probability``) and the ``toolkit.cash.compare_scenarios``
        frame (the baseline first) as :func:`toolkit.charts.scenario_comparison`
        expects. ``stage`` is None when there is no stage to change. It must
        not depend on anything but its arguments: each answer is kept.
    stages
        The stages whose outflow can be changed (e.g. ``CashForecast.cost_stages``).
        With none (no cost data), the stage and outflow controls are disabled;
        demand and payment delay still apply to the money coming in.
    """

    def __init__(
        self,
        recompute: Callable[..., tuple[CashOutlookLike, pd.DataFrame]],
        stages: Sequence[str],
        currency: str = "USD",
        max_change_pct: int = 50,
        max_delay_days: int = 60,
    ) -> None:
        super().__init__()
        self.recompute = recompute
        self.currency = currency
        percent = dict(min=-max_change_pct, max=max_change_pct, step=5, value=0, continuous_update=False,
                       style=LABEL_STYLE, layout=widgets.Layout(**SLIDER_LAYOUT), readout_format="+d")
        stages = list(stages)
        self.stage = widgets.Dropdown(description="Spending of stage", options=stages,
                                      value=stages[0] if stages else None, style=LABEL_STYLE)
        self.outflow_change = widgets.IntSlider(description="Spending change %", **percent)
        self.demand_shock = widgets.IntSlider(description="Sales change %", **percent)
        self.receipt_delay = widgets.IntSlider(
            description="Customers pay later (days)", min=0, max=max_delay_days, step=1, value=0,
            continuous_update=False, style=LABEL_STYLE, layout=widgets.Layout(**SLIDER_LAYOUT),
        )
        for control in (self.stage, self.outflow_change, self.demand_shock, self.receipt_delay):
            control.observe(lambda _change: self._redraw(), names="value")
        # without money going out there is no spending to change; sales and their timing still are
        self.stage.disabled = self.outflow_change.disabled = not stages
        self.widget = self._box([_row(self.stage, self.outflow_change), _row(self.demand_shock, self.receipt_delay)])
        self._default = self.values
        self._redraw()

    @property
    def values(self) -> dict[str, Any]:
        """The controls as keyword arguments for ``recompute``."""
        return {
            "stage": self.stage.value,
            "outflow_change_pct": self.outflow_change.value,
            "demand_shock_pct": self.demand_shock.value,
            "receipt_delay_days": self.receipt_delay.value,
        }

    def chart_for(self, values: dict[str, Any]) -> alt.TopLevelMixin:
        """Recompute the outlook for ``values`` and draw balance and comparison."""
        outlook, comparison = self.recompute(**values)
        return alt.vconcat(charts.cash_outlook(outlook, currency=self.currency),
                           charts.scenario_comparison(comparison, currency=self.currency),
                           title=_selection_title(self._describe(values)))

    @staticmethod
    def _describe(values: dict[str, Any]) -> str:
        """The what-if in words, so the chart says which settings it shows."""
        parts = [] if values["stage"] is None else [f"{values['stage']} spending {values['outflow_change_pct']:+d}%"]
        parts += [f"sales {values['demand_shock_pct']:+d}%",
                  f"customers pay {values['receipt_delay_days']} days later"]
        return "What if: " + ", ".join(parts)

    def static(self) -> alt.TopLevelMixin:
        """The chart for the default controls (no change: the baseline)."""
        return self.chart_for(self._default)

    def _key(self) -> tuple:
        return tuple(self.values.values())

    def _chart(self, key: tuple) -> alt.TopLevelMixin:
        return self.chart_for(dict(zip(self.values, key)))

    def _axes(self, key: tuple) -> list[tuple[list[Any], bool]]:
        def offered(slider: widgets.IntSlider) -> list[int]:
            return [] if slider.disabled else list(range(slider.min, slider.max + 1, slider.step))

        stages = [] if self.stage.disabled else list(self.stage.options)
        return [(stages, False), (offered(self.outflow_change), True), (offered(self.demand_shock), True),
                (offered(self.receipt_delay), True)]


class CampaignPlanExplorer(_Explorer):
    """The campaign plan re-optimised as the analyst changes the budget, the risk limit and the largest discount.

    Parameters
    ----------
    planner
        A fitted ``toolkit.opportunities.CampaignPlanner``: ``planner.plan(budget=...,
        risk_limit=..., discounts=...)`` returns a ``CampaignPlan`` in a fraction of a
        second, so every move of a control re-plans.
    minimum_cash
        The balance the business must keep (drawn on the cash bands); None when unknown: then
        only the launch weeks are drawn.
    budget, risk_limit
        Starting values (budget None: no cap, shown as 0).
    currency
        For the amounts in the charts.

    The chart shows the plan's verdict, its risk by launch week and the cash
    with and without it; ``static()`` draws the starting values, as the report shows them.
    """

    def __init__(self, planner: Any, minimum_cash: float | None = None, budget: float | None = None,
                 risk_limit: float = 0.05, currency: str = "USD") -> None:
        super().__init__()
        self.planner = planner
        self.minimum_cash = minimum_cash
        self.currency = currency
        symbol = charts.currency_symbol(currency)
        menu = [float(d) for d in planner.discounts]
        self.budget = widgets.BoundedFloatText(description=f"Budget {symbol} (0: no cap)", min=0.0, max=1e9,
                                               step=500.0, value=0.0 if budget is None else float(budget),
                                               style=LABEL_STYLE, layout=widgets.Layout(width="260px"))
        self.risk_limit = widgets.FloatSlider(description="Shortfall risk limit", min=0.0, max=0.5, step=0.01,
                                              value=risk_limit, continuous_update=False, readout_format=".0%",
                                              style=LABEL_STYLE, layout=widgets.Layout(**SLIDER_LAYOUT))
        self.max_discount = widgets.SelectionSlider(description="Largest discount", value=menu[-1],
                                                    options=[(f"{d:.0%}", d) for d in menu],
                                                    continuous_update=False, style=LABEL_STYLE,
                                                    layout=widgets.Layout(width="300px"))
        self._defaults = self.plan_values
        for control in (self.budget, self.risk_limit, self.max_discount):
            control.observe(lambda _change: self._redraw(), names="value")
        self.widget = self._box([_row(self.budget, self.risk_limit, self.max_discount)])
        self._redraw()

    @property
    def plan_values(self) -> dict[str, Any]:
        """The controls as keyword arguments for ``planner.plan`` (a budget of 0 means no cap)."""
        return {"budget": float(self.budget.value) or math.inf, "risk_limit": float(self.risk_limit.value),
                "discounts": [d for d in self.planner.discounts if d <= self.max_discount.value]}

    def chart_for(self, values: dict[str, Any]) -> alt.TopLevelMixin:
        """The plan for ``values``: its verdict as the title, risk by launch week, cash with and without it."""
        plan = self.planner.plan(**values)
        timing = charts.campaign_timing(plan.launch_weeks(), values["risk_limit"], plan.launch_week,
                                        self.currency, title=plan.verdict)
        budget = "no cap" if math.isinf(values["budget"]) else charts.money_text(values["budget"], self.currency)
        title = _selection_title(f"Plan for: budget {budget}, shortfall risk at most {values['risk_limit']:.0%}, "
                                 f"discounts up to {max(values['discounts']):.0%}")
        if not plan.recommended or self.minimum_cash is None:
            # no campaign (the cash stays as forecast), or no balance to draw it on
            return alt.vconcat(timing, title=title)
        return alt.vconcat(timing, charts.campaign_cash_bands(plan.balance_bands, self.minimum_cash, self.currency),
                           title=title)

    def static(self) -> alt.TopLevelMixin:
        """The chart for the starting values."""
        return self.chart_for(self._defaults)

    def _key(self) -> tuple | None:
        return (float(self.budget.value), round(float(self.risk_limit.value), 4), float(self.max_discount.value))

    def _chart(self, key: tuple | None) -> alt.TopLevelMixin:
        budget, risk_limit, largest = key
        return self.chart_for({"budget": budget or math.inf, "risk_limit": risk_limit,
                               "discounts": [d for d in self.planner.discounts if d <= largest]})

    def _axes(self, key: tuple) -> list[tuple[list[Any], bool]]:
        # a budget is typed, not stepped: no amount is likelier than another, so none is drawn ahead
        limits = [round(i * self.risk_limit.step, 4)
                  for i in range(round(self.risk_limit.max / self.risk_limit.step) + 1)]
        return [([key[0]], True), (limits, True), ([d for _, d in self.max_discount.options], True)]
