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
    "CampaignPlanExplorer",
    "CashOutlookLike",
    "ForecastExplorer",
    "ScenarioExplorer",
]


class CashOutlookLike(Protocol):
    """What the scenario explorer needs from a cash outlook."""

    bands: pd.DataFrame
    minimum_cash: float
    first_breach_date: pd.Timestamp | None
    shortfall_probability: float


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
