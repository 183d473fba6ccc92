"""Interactive explorers for notebooks, composed from :mod:`toolkit.charts`.

Each explorer holds controls and an output area, and nothing else: the numbers
come from the frames it is given or from the toolkit callables it is handed
(recomputing a cash outlook, evaluating a campaign), so no business logic
lives here. Every explorer exposes

- ``widget``: the ipywidgets container to display in JupyterLab;
- ``chart``: the chart currently shown (updated on every redraw);
- ``static()``: the chart for the default selection, which is what a static
  report shows, since ipywidgets do not render in exported HTML.

An explorer given nothing to explore (no forecast series, no launch week, no
one to contact) shows :func:`toolkit.charts.nothing_to_show` saying why, with
the controls that cannot help disabled, instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import altair as alt
import ipywidgets as widgets
import pandas as pd

from toolkit import charts

__all__ = [
    "CampaignEvaluationLike",
    "CampaignPlanExplorer",
    "CashOutlookLike",
    "ForecastExplorer",
    "ScenarioExplorer",
    "UpsellTimingExplorer",
]


class CashOutlookLike(Protocol):
    """What the scenario explorer needs from a cash outlook."""

    bands: pd.DataFrame
    minimum_cash: float
    first_breach_date: pd.Timestamp | None
    shortfall_probability: float


class CampaignEvaluationLike(Protocol):
    """What the upsell-timing explorer needs from a campaign evaluation."""

    verdict: str

    def launch_weeks(self) -> pd.DataFrame:
        """One row per candidate launch week, as :func:`toolkit.charts.campaign_timing` draws them."""
        ...


class _Explorer:
    """Shared plumbing: an output area that shows the latest chart."""

    def __init__(self) -> None:
        self.output = widgets.Output()
        self.chart: alt.TopLevelMixin | None = None
        self.widget: widgets.Box = widgets.VBox([self.output])
        # Set while controls are re-populated, so one change draws once.
        self._updating = False

    def _show(self, chart: alt.TopLevelMixin) -> None:
        self.chart = chart
        # Replacing ``outputs`` works with or without a running kernel.
        self.output.outputs = ()
        self.output.append_display_data(chart)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _series_keys(series: pd.DataFrame) -> pd.DataFrame:
    """``unique_id, stage, direction, segment`` for each series."""
    if {"stage", "direction", "segment"}.issubset(series.columns):
        keys = series[["unique_id", "stage", "direction", "segment"]].drop_duplicates("unique_id")
    else:
        ids = pd.Series(series["unique_id"].unique())
        parts = ids.str.split("|", n=2, expand=True)
        keys = pd.DataFrame({"unique_id": ids, "stage": parts[0], "direction": parts[1], "segment": parts[2]})
    return keys.astype(str).reset_index(drop=True)


class ForecastExplorer(_Explorer):
    """Pick a stage, direction and segment and how far ahead to look.

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
        self.keys = self.keys[self.keys["unique_id"].isin(forecast["unique_id"].unique())]
        steps = int(forecast.groupby("unique_id")["ds"].nunique().max()) if len(self.keys) else 1
        stages = list(dict.fromkeys(self.keys["stage"]))
        self.stage = widgets.Dropdown(description="Stage", options=stages, value=stages[0] if stages else None)
        self.direction = widgets.Dropdown(description="Direction")
        self.segment = widgets.Dropdown(description="Segment")
        self.horizon = widgets.IntSlider(
            description="Horizon", min=1, max=steps, value=steps, continuous_update=False
        )
        if self.keys.empty:
            for control in (self.stage, self.direction, self.segment, self.horizon):
                control.disabled = True
        else:
            self._refresh_options()
        self.stage.observe(self._on_stage, names="value")
        self.direction.observe(self._on_direction, names="value")
        self.segment.observe(self._on_change, names="value")
        self.horizon.observe(self._on_change, names="value")
        self.widget = widgets.VBox(
            [widgets.HBox([self.stage, self.direction, self.segment]), self.horizon, self.output]
        )
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
        kept = sorted(fc["ds"].unique())[:horizon]
        return charts.forecast_bands(
            self.series, fc[fc["ds"].isin(kept)], [unique_id],
            history_days=self.history_days, currency=self.currency,
        )

    def static(self) -> alt.TopLevelMixin:
        """The chart for the default selection: the first series, full horizon."""
        if self.keys.empty:
            return charts.nothing_to_show("no series has a forecast")
        return self.chart_for(self.keys["unique_id"].iloc[0], self.horizon.max)

    def _refresh_options(self) -> None:
        """Offer only directions and segments that exist for the chosen stage."""
        self._updating = True
        at_stage = self.keys[self.keys["stage"] == self.stage.value]
        directions = list(dict.fromkeys(at_stage["direction"]))
        direction = self.direction.value if self.direction.value in directions else directions[0]
        self.direction.options = directions
        self.direction.value = direction
        segments = list(dict.fromkeys(at_stage.loc[at_stage["direction"] == direction, "segment"]))
        segment = self.segment.value if self.segment.value in segments else segments[0]
        self.segment.options = segments
        self.segment.value = segment
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

    def _redraw(self) -> None:
        self._show(self.static() if self.keys.empty else self.chart_for(self.unique_id, self.horizon.value))


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
        expects. ``stage`` is None when there is no stage to change.
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
        percent = dict(min=-max_change_pct, max=max_change_pct, step=5, value=0, continuous_update=False)
        stages = list(stages)
        self.stage = widgets.Dropdown(description="Stage", options=stages, value=stages[0] if stages else None)
        self.outflow_change = widgets.IntSlider(description="Outflow %", **percent)
        self.demand_shock = widgets.IntSlider(description="Demand %", **percent)
        self.receipt_delay = widgets.IntSlider(
            description="Delay (days)", min=0, max=max_delay_days, step=1, value=0, continuous_update=False
        )
        for control in (self.stage, self.outflow_change, self.demand_shock, self.receipt_delay):
            control.observe(lambda _change: self._redraw(), names="value")
        # without money going out there is no spending to change; sales and their timing still are
        self.stage.disabled = self.outflow_change.disabled = not stages
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.stage, self.outflow_change]),
                widgets.HBox([self.demand_shock, self.receipt_delay]),
                self.output,
            ]
        )
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
                           charts.scenario_comparison(comparison, currency=self.currency))

    def static(self) -> alt.TopLevelMixin:
        """The chart for the default controls (no change: the baseline)."""
        return self.chart_for(self._default)

    def _redraw(self) -> None:
        self._show(self.chart_for(self.values))


#: The start week slider's only option when no launch week was evaluated.
_NO_WEEK = "none"


def _launch_weeks(
    evaluations: pd.DataFrame, keep: pd.Timestamp | None
) -> tuple[list[tuple[str, pd.Timestamp | None]], pd.Timestamp | None]:
    """Slider options for the evaluated launch weeks, and the week to select.

    The week to select is ``keep`` when still evaluated, else the feasible week
    with the highest expected net gain, else the first week. With no week
    evaluated, the one option "none" (``_NO_WEEK``: a slider cannot hold None) and None.
    """
    weeks = [pd.Timestamp(w) for w in sorted(pd.to_datetime(evaluations["launch_week"]).unique())]
    if not weeks:
        return [("none", _NO_WEEK)], None
    if keep is None or pd.Timestamp(keep) not in weeks:
        feasible = evaluations[evaluations["feasible"].astype(bool)]
        keep = (
            feasible.loc[feasible["expected_net_gain"].idxmax(), "launch_week"] if not feasible.empty else weeks[0]
        )
    return [(f"{w:%d %b %Y}", w) for w in weeks], pd.Timestamp(keep)


class UpsellTimingExplorer(_Explorer):
    """When to launch an upsell campaign: value by week against cash risk.

    Parameters
    ----------
    plan
        Called as ``plan(target_threshold=..., discount=..., cost_per_contact=...)``
        whenever one of those controls changes. Returns ``(targets,
        evaluation)``: the customers the campaign would contact (``customer_id,
        segment, window_start, expected_value``) and the campaign's evaluation
        (``toolkit.opportunities.CampaignEvaluation``): its ``verdict`` and,
        from ``launch_weeks()``, one row per candidate launch week
        (``launch_week, shortfall_probability_before,
        shortfall_probability_after, expected_net_gain, feasible``).
    risk_limit
        The highest acceptable shortfall probability (run configuration).
    target_threshold, discount, cost_per_contact
        Starting values of the controls (discount as a fraction).

    Moving the start week only redraws: every launch week is already evaluated.
    With no one to contact there is nothing to time: the chart says the verdict.
    """

    def __init__(
        self,
        plan: Callable[..., tuple[pd.DataFrame, CampaignEvaluationLike]],
        risk_limit: float,
        currency: str = "USD",
        target_threshold: float = 0.5,
        discount: float = 0.10,
        cost_per_contact: float = 2.0,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.risk_limit = risk_limit
        self.currency = currency
        symbol = charts.currency_symbol(currency)
        self.target_threshold = widgets.FloatSlider(
            description="Target ≥", min=0.0, max=1.0, step=0.05, value=target_threshold,
            continuous_update=False, readout_format=".2f",
        )
        self.discount = widgets.IntSlider(
            description="Discount %", min=0, max=50, step=5, value=round(discount * 100), continuous_update=False
        )
        self.cost_per_contact = widgets.BoundedFloatText(
            description=f"Cost/contact {symbol}", min=0.0, max=1_000.0, step=0.5, value=cost_per_contact
        )
        self._defaults = self.plan_values
        self._plan(self._defaults)
        options, self._default_week = _launch_weeks(self.evaluations, keep=None)
        self.start_week = widgets.SelectionSlider(
            description="Start week", options=options, value=options[0][1] if self._default_week is None
            else self._default_week, continuous_update=False,
            disabled=self._default_week is None,
        )
        for control in (self.target_threshold, self.discount, self.cost_per_contact):
            control.observe(lambda _change: self._replan(), names="value")
        self.start_week.observe(lambda _change: self._redraw(), names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.target_threshold, self.discount]),
                widgets.HBox([self.cost_per_contact, self.start_week]),
                self.output,
            ]
        )
        self._redraw()

    @property
    def plan_values(self) -> dict[str, float]:
        """The controls as keyword arguments for ``plan``."""
        return {
            "target_threshold": float(self.target_threshold.value),
            "discount": self.discount.value / 100,
            "cost_per_contact": float(self.cost_per_contact.value),
        }

    @property
    def week(self) -> pd.Timestamp | None:
        """The launch week selected; None when no week was evaluated."""
        return None if self.start_week.value is _NO_WEEK else self.start_week.value

    def _plan(self, values: dict[str, float]) -> None:
        """Evaluate the campaign for ``values``: ``targets``, ``verdict`` and the launch weeks' ``evaluations``."""
        self.targets, evaluation = self.plan(**values)
        self.verdict = evaluation.verdict
        self.evaluations = evaluation.launch_weeks()

    def chart_for(
        self, targets: pd.DataFrame, evaluations: pd.DataFrame, week: pd.Timestamp | None, verdict: str = ""
    ) -> alt.TopLevelMixin:
        """Opportunity value by week over the campaign's risk, ``week`` marked; the verdict when no one is targeted."""
        if targets.empty and verdict:
            return charts.nothing_to_show(f"the campaign is {verdict}")
        return charts.upsell_timing(targets, evaluations, self.risk_limit, week, self.currency)

    def static(self) -> alt.TopLevelMixin:
        """The chart for the starting controls and the recommended launch week."""
        targets, evaluation = self.plan(**self._defaults)
        return self.chart_for(targets, evaluation.launch_weeks(), self._default_week, evaluation.verdict)

    def _replan(self) -> None:
        self._plan(self.plan_values)
        options, week = _launch_weeks(self.evaluations, keep=self.week)
        self._updating = True
        self.start_week.options = options
        self.start_week.value = options[0][1] if week is None else week
        self.start_week.disabled = week is None
        self._updating = False
        self._redraw()

    def _redraw(self) -> None:
        if not self._updating:
            self._show(self.chart_for(self.targets, self.evaluations, self.week, self.verdict))


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
        self.budget = widgets.BoundedFloatText(description=f"Budget {symbol}", min=0.0, max=1e9, step=500.0,
                                               value=0.0 if budget is None else float(budget))
        self.risk_limit = widgets.FloatSlider(description="Risk limit", min=0.0, max=0.5, step=0.01,
                                              value=risk_limit, continuous_update=False, readout_format=".0%")
        self.max_discount = widgets.SelectionSlider(description="Discount ≤", value=menu[-1],
                                                    options=[(f"{d:.0%}", d) for d in menu],
                                                    continuous_update=False)
        self._defaults = self.plan_values
        for control in (self.budget, self.risk_limit, self.max_discount):
            control.observe(lambda _change: self._redraw(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.budget, self.risk_limit, self.max_discount]), self.output])
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
        if not plan.recommended or self.minimum_cash is None:
            return timing  # no campaign (the cash stays as forecast), or no balance to draw it on
        return alt.vconcat(timing, charts.campaign_cash_bands(plan.balance_bands, self.minimum_cash, self.currency))

    def static(self) -> alt.TopLevelMixin:
        """The chart for the starting values."""
        return self.chart_for(self._defaults)

    def _redraw(self) -> None:
        self._show(self.chart_for(self.plan_values))
