"""Explorers: controls redraw through the supplied callables; static() is the report's chart.

Controls are driven the way a user drives them, by setting ``.value``.
"""

from __future__ import annotations

import re
import threading

import altair as alt
import ipywidgets
import numpy as np
import pandas as pd
import pytest
from test_charts import IDS, MINIMUM, synthetic_frames, texts, vega_rows

from toolkit import charts
from toolkit.cash import (
    DemandShock,
    OutflowChange,
    ReceiptDelay,
    Scenario,
    apply_scenario,
    cash_position,
    compare_scenarios,
)
from toolkit.widgets import CampaignPlanExplorer, ForecastExplorer, ScenarioExplorer


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return synthetic_frames(customers=120)


def shown(explorer) -> alt.TopLevelMixin:
    """The chart in the explorer's output area: exactly one display, the latest chart."""
    assert len(explorer.output.outputs) == 1
    assert explorer.output.outputs[0]["output_type"] == "display_data"
    return explorer.chart


def test_forecast_explorer_offers_only_existing_series(frames):
    explorer = ForecastExplorer(frames["series"], frames["forecast"])
    assert isinstance(explorer.widget, ipywidgets.VBox)
    assert explorer.unique_id == IDS[0]
    explorer.stage.value = "post-purchase"
    assert explorer.direction.options == ("outflow",)
    assert explorer.segment.options == ("new",)
    assert explorer.unique_id == IDS[2]
    assert "Post-purchase outflow (new)" in shown(explorer).title.text


def test_forecast_explorer_horizon_slider_cuts_the_forecast(frames):
    explorer = ForecastExplorer(frames["series"], frames["forecast"])
    assert [days for _, days in explorer.horizon.options] == [7, 14, 21, 28, 35, 42, 49, 56, 60]
    assert explorer.horizon.value == 60
    explorer.horizon.value = 14
    dates = {row["ds"] for row in vega_rows(shown(explorer)) if row.get("yhat") is not None}
    assert len(dates) == 14
    assert "next 14 days" in explorer.chart.title.text


def test_forecast_explorer_static_is_the_first_series_full_horizon(frames):
    explorer = ForecastExplorer(frames["series"], frames["forecast"])
    explorer.stage.value = "awareness"
    static = explorer.static()
    assert static.title.text.startswith("Purchase inflow (all)")
    assert "next 60 days" in static.title.text


HORIZON_START = pd.Timestamp("2026-11-01")
OPENING = 105_000.0


@pytest.fixture(scope="module")
def cash_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """60 days of actual flows and 60 days x 200 draws of forecast paths, three series."""
    rng = np.random.default_rng(3)
    daily = {"purchase|inflow|all": 1000.0, "awareness|outflow|all": 150.0, "operations|outflow|all": 800.0}
    past = pd.date_range(HORIZON_START - pd.Timedelta(days=60), periods=60)
    history = pd.DataFrame(
        [(uid, ds, amount, *uid.split("|")) for uid, amount in daily.items() for ds in past],
        columns=["unique_id", "ds", "y", "stage", "direction", "segment"],
    )
    ahead = pd.date_range(HORIZON_START, periods=60)
    paths = pd.concat(
        [
            pd.DataFrame(
                rng.gamma(4.0, amount / 4.0, (60, 200)),
                index=pd.MultiIndex.from_product([[uid], ahead], names=["unique_id", "ds"]),
                columns=[f"draw_{i}" for i in range(200)],
            )
            for uid, amount in daily.items()
        ]
    )
    return history, paths


@pytest.fixture
def recompute(cash_inputs):
    """The toolkit's cash model behind the sliders, recording what it was asked."""
    history, paths = cash_inputs
    calls = []

    def run(stage: str, outflow_change_pct: int, demand_shock_pct: int, receipt_delay_days: int):
        calls.append(dict(stage=stage, outflow_change_pct=outflow_change_pct,
                          demand_shock_pct=demand_shock_pct, receipt_delay_days=receipt_delay_days))
        scenario = Scenario(
            "what-if",
            (
                OutflowChange(stage, outflow_change_pct, HORIZON_START),
                DemandShock(demand_shock_pct, HORIZON_START),
                ReceiptDelay(receipt_delay_days),
            ),
        )
        outlook = cash_position(history, apply_scenario(paths, scenario), OPENING, MINIMUM)
        return outlook, compare_scenarios(history, paths, [scenario], OPENING, MINIMUM)

    run.calls = calls
    return run


def test_scenario_explorer_recomputes_with_the_new_control_values(recompute):
    explorer = ScenarioExplorer(recompute, ["awareness", "operations"])
    assert recompute.calls == [
        dict(stage="awareness", outflow_change_pct=0, demand_shock_pct=0, receipt_delay_days=0)
    ]
    explorer.demand_shock.value = -20
    explorer.receipt_delay.value = 14
    explorer.stage.value = "operations"
    explorer.outflow_change.value = 10
    assert recompute.calls[1:] == [
        dict(stage="awareness", outflow_change_pct=0, demand_shock_pct=-20, receipt_delay_days=0),
        dict(stage="awareness", outflow_change_pct=0, demand_shock_pct=-20, receipt_delay_days=14),
        dict(stage="operations", outflow_change_pct=0, demand_shock_pct=-20, receipt_delay_days=14),
        dict(stage="operations", outflow_change_pct=10, demand_shock_pct=-20, receipt_delay_days=14),
    ]
    outlook, comparison = recompute(**explorer.values)
    # Net flow +50 a day as forecast, -230 a day in the what-if (plus 14 days of no receipts).
    assert comparison["shortfall_probability"].iloc[0] < comparison["shortfall_probability"].iloc[1]
    balance, scenarios = shown(explorer).vconcat
    assert balance.title.text == charts.cash_title(
        MINIMUM, outlook.shortfall_probability, outlook.first_breach_date
    )
    assert outlook.first_breach_date is not None
    assert scenarios.title.text.startswith("what-if raises shortfall risk")
    assert "What if: operations spending +10%, sales -20%, customers pay 14 days later" in texts(
        charts.to_svg(explorer.chart))


def test_scenario_explorer_static_is_the_baseline(recompute):
    explorer = ScenarioExplorer(recompute, ["awareness"])
    explorer.demand_shock.value = -30
    static = explorer.static()
    assert recompute.calls[-1]["demand_shock_pct"] == 0
    words = texts(charts.to_svg(static))
    assert "Minimum cash $100,000" in words
    assert not any(w.startswith("First breach") for w in words)


# --- nothing to explore: the explorers say so instead of failing -----------------------------

def test_explorers_with_nothing_to_explore_show_why_with_controls_disabled(frames):
    no_forecast = ForecastExplorer(frames["series"], frames["forecast"].iloc[0:0])
    assert no_forecast.stage.disabled and no_forecast.horizon.disabled
    assert "Nothing to show: no series has a forecast" in texts(charts.to_svg(shown(no_forecast)))
    assert "Nothing to show: no series has a forecast" in texts(charts.to_svg(no_forecast.static()))


def test_forecast_explorer_opens_on_the_money_still_coming_in(frames):
    # A closed cohort's first orders forecast nothing; the repeat money is what people look for.
    repeat = "post-purchase|inflow|all"
    series = pd.concat([frames["series"], frames["series"][frames["series"]["unique_id"] == IDS[0]].assign(
        unique_id=repeat, stage="post-purchase")], ignore_index=True)
    first = frames["forecast"]["unique_id"] == IDS[0]
    forecast = pd.concat([frames["forecast"].assign(yhat=np.where(first, 0.0, frames["forecast"]["yhat"])),
                          frames["forecast"][first].assign(unique_id=repeat)], ignore_index=True)
    explorer = ForecastExplorer(series, forecast)
    assert explorer.unique_id == repeat
    assert explorer.static().title.text.startswith("Post-purchase inflow (all)")


def test_without_costs_the_scenario_explorer_still_moves_demand_and_payment_delay(cash_inputs):
    """No outflow series: only the stage controls are disabled, and the static view is the forecast as it stands."""
    history, paths = cash_inputs
    inflow = "purchase|inflow|all"
    history, paths = history[history["unique_id"] == inflow], paths.loc[[inflow]]
    calls = []

    def recompute(stage, outflow_change_pct, demand_shock_pct, receipt_delay_days):
        calls.append(stage)
        scenario = Scenario("what-if", (DemandShock(demand_shock_pct, HORIZON_START),
                                        ReceiptDelay(receipt_delay_days)))
        outlook = cash_position(history, apply_scenario(paths, scenario), OPENING, None)
        return outlook, compare_scenarios(history, paths, [scenario], OPENING, None)

    explorer = ScenarioExplorer(recompute, stages=[])
    assert explorer.stage.disabled and explorer.outflow_change.disabled
    assert not explorer.demand_shock.disabled and not explorer.receipt_delay.disabled
    baseline = texts(charts.to_svg(explorer.static()))
    assert not any(w.startswith("Nothing to show") for w in baseline)
    assert "Where each scenario leaves cash at the end of the horizon" in baseline
    explorer.demand_shock.value = -50
    outlook, comparison = recompute(**explorer.values)
    assert calls == [None] * 4  # the first view, the static view, the slider, and this check
    assert comparison["ending_p50"].iloc[1] < comparison["ending_p50"].iloc[0]
    assert shown(explorer).vconcat[0].title.text == charts.cash_title(
        None, outlook.shortfall_probability, outlook.first_breach_date)


# --------------------------------------------------------------------------- campaign plan explorer

@pytest.fixture(scope="module")
def planner():
    """A planner fitted on 300 customers whose purchase chance peaks mid-horizon, 150k in the bank."""
    from test_planner import PEAKED, _customers, _outlook, _timing
    from toolkit.opportunities import CampaignPlanner, assumed_lift

    customers = _customers(300, value=400.0)
    timing = _timing(customers, PEAKED)
    planner = CampaignPlanner(discounts=(0.0, 0.1), cost_per_contact=0.5, fixed_cost=500.0, gross_margin=0.6,
                              response_window_days=14, risk_limit=0.05)
    return planner.fit(customers, _outlook(np.full(84, 150_000.0)), timing, assumed_lift(timing, (0.0, 0.1)))


def test_campaign_plan_explorer_replans_on_every_control(planner):
    explorer = CampaignPlanExplorer(planner, 100_000.0, budget=None, risk_limit=0.05)
    assert explorer.plan_values["budget"] == float("inf")
    first = charts.to_svg(explorer.chart)
    assert planner.plan().verdict.split(":")[0][:40] in " ".join(texts(first))
    assert "Cash with and without the campaign" in texts(first)
    # a budget smaller than the fixed cost leaves no campaign: the chart says so and no cash bands are drawn
    explorer.budget.value = 100.0
    small = texts(charts.to_svg(explorer.chart))
    assert "Cash with and without the campaign" not in small
    assert texts(charts.to_svg(explorer.static())) == texts(first)  # the report shows the starting values
    explorer.max_discount.value = 0.0
    assert explorer.plan_values["discounts"] == [0.0]


# --------------------------------------------------------------------------- answering at once

def test_a_selection_seen_before_is_shown_again_without_recomputing(recompute):
    explorer = ScenarioExplorer(recompute, ["awareness", "operations"])
    first = texts(charts.to_svg(explorer.chart))
    explorer.demand_shock.value = -20
    explorer.demand_shock.value = 0
    assert len(recompute.calls) == 2  # the first view and -20; back at 0 the kept chart is shown
    assert texts(charts.to_svg(shown(explorer))) == first


def test_a_selection_that_cannot_be_drawn_says_why_instead_of_keeping_the_old_chart(recompute):
    def failing(**values):
        if values["receipt_delay_days"] > 30:
            raise ValueError("no receipts are left in the horizon")
        return recompute(**values)

    explorer = ScenarioExplorer(failing, ["awareness"])
    explorer.receipt_delay.value = 45
    (output,) = explorer.output.outputs
    assert output["data"]["text/plain"] == "Nothing to show for this selection: no receipts are left in the horizon"
    assert "jc-message" in output["data"]["text/html"]
    assert texts(charts.to_svg(explorer.chart)) == ["Nothing to show: no receipts are left in the horizon"]
    explorer.receipt_delay.value = 7  # a drawable selection draws again
    assert explorer.chart.vconcat[0].title.text.startswith(("Cash", "No"))


def test_the_next_step_of_a_nudged_slider_is_drawn_first(recompute):
    explorer = ScenarioExplorer(recompute, ["awareness", "operations"])
    explorer.demand_shock.value = 5
    ahead = explorer._reachable(explorer._key())
    assert ahead[0] == ("awareness", 0, 10, 0)  # the same slider, the same way
    assert ("operations", 0, 5, 0) in ahead[:3]  # then the other stage
    assert {("awareness", 5, 5, 0), ("awareness", -5, 5, 0), ("awareness", 0, 5, 1)} <= set(ahead[:8])
    assert len(ahead) == len(set(ahead))


def test_a_displayed_explorer_draws_ahead_in_the_background(recompute):
    from IPython.utils.capture import capture_output

    from toolkit.notebook import RENDERER_NAME, offline_renderer

    alt.renderers.register(RENDERER_NAME, offline_renderer)
    with alt.renderers.enable(RENDERER_NAME), capture_output() as captured:  # the notebooks' renderer
        explorer = ScenarioExplorer(recompute, ["awareness"])
        explorer.widget._ipython_display_()
    for _ in range(600):  # the background thread draws the first step of each slider
        if all(key in explorer._drawn for key in explorer._reachable(explorer._key())[:4]):
            break
        threading.Event().wait(0.1)
    calls = len(recompute.calls)
    explorer.outflow_change.value = 5
    assert len(recompute.calls) == calls  # drawn already: the move only swaps the output
    fallback, live = captured.outputs
    assert "jc-explorer-fallback" in fallback.data["text/html"] and "<style>" in fallback.data["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in live.data
    # the copy draws into its own element: the live chart's script finds its element by id
    chart_ids = re.findall(r'id="(journeycast-chart-[0-9a-f]+)"', fallback.data["text/html"])
    assert chart_ids and chart_ids[0] not in str(explorer.output.outputs)
    explorer.close()
    explorer._ahead.join(timeout=60)
    assert not explorer._ahead.is_alive()


def test_labels_are_whole_and_amounts_name_their_currency(planner):
    explorer = CampaignPlanExplorer(planner, 100_000.0, currency="EUR")
    assert explorer.budget.description.startswith("Budget €")
    for control in (explorer.budget, explorer.risk_limit, explorer.max_discount):
        assert control.style.description_width == "initial"
