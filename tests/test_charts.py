"""Chart builders: valid Vega-Lite, offline SVG with the marks the story needs.

The frames are small synthetic ones in the shapes the toolkit's modules hand
to the builders, so each expected mark can be counted by hand.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import altair as alt
import numpy as np
import pandas as pd
import pytest

from toolkit import charts

SVG = "{http://www.w3.org/2000/svg}"
MINIMUM = 100_000.0
BREACH = pd.Timestamp("2026-12-20")
IDS = ["purchase|inflow|all", "awareness|outflow|all", "post-purchase|outflow|new"]


def synthetic_frames(seed: int = 0, customers: int = 400) -> dict[str, pd.DataFrame]:
    """One small frame of each shape the chart builders draw."""
    rng = np.random.default_rng(seed)
    past = pd.date_range("2026-08-01", "2026-10-31", freq="D")
    ahead = pd.date_range("2026-11-01", periods=60, freq="D")
    wave = 200 * np.sin(np.arange(len(ahead)) / 7 * 2 * np.pi)
    series = pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": past,
                    "y": 1000.0 * (i + 1) + rng.normal(0, 100, len(past)),
                    "stage": uid.split("|")[0],
                    "direction": uid.split("|")[1],
                    "segment": uid.split("|")[2],
                }
            )
            for i, uid in enumerate(IDS)
        ],
        ignore_index=True,
    )
    forecast = pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": ahead,
                    "yhat": 1000.0 * (i + 1) + wave,
                    "yhat_lower": 1000.0 * (i + 1) + wave - 300,
                    "yhat_upper": 1000.0 * (i + 1) + wave + 300,
                    "model": "prophet",
                }
            )
            for i, uid in enumerate(IDS)
        ],
        ignore_index=True,
    )
    history = 150_000 + np.cumsum(rng.normal(-100, 1500, len(past)))
    median = np.linspace(history[-1], 120_000, len(ahead))
    spread = np.linspace(0, 50_000, len(ahead))
    bands = pd.DataFrame(
        {
            "ds": past.append(ahead),
            "p10": np.r_[np.full(len(past), np.nan), median - spread],
            "p50": np.r_[np.full(len(past), np.nan), median],
            "p90": np.r_[np.full(len(past), np.nan), median + spread],
            "actual": np.r_[history, np.full(len(ahead), np.nan)],
            "is_forecast": np.r_[np.zeros(len(past), bool), np.ones(len(ahead), bool)],
        }
    )
    shortfall = pd.DataFrame({"ds": ahead, "probability": np.linspace(0.0, 0.12, len(ahead))})
    funnel = pd.DataFrame(
        {
            "stage": ["awareness", "consideration", "evaluation", "purchase", "post-purchase"],
            "customers": [9000, 7000, 4200, 3100, 1800],
        }
    )
    previous = funnel["customers"].shift(1).fillna(funnel["customers"].iloc[0])
    funnel["stage_conversion"] = funnel["customers"] / previous
    funnel["overall_conversion"] = funnel["customers"] / funnel["customers"].iloc[0]
    funnel["drop_off"] = previous - funnel["customers"]
    cohorts = pd.date_range("2026-01-01", periods=6, freq="MS")
    retention = pd.DataFrame(
        [(c, p, 1.0 if p == 0 else 0.3 * 0.8**p) for i, c in enumerate(cohorts) for p in range(6 - i)],
        columns=["cohort", "period", "retention"],
    )
    kpis = pd.DataFrame(
        {
            "ds": pd.date_range("2026-05-01", periods=6, freq="MS"),
            "revenue": [50_000.0, 60_000, 55_000, 70_000, 80_000, 100_000],
            "orders": rng.integers(300, 600, 6),
            "customers": rng.integers(250, 500, 6),
            "average_order_value": rng.uniform(80, 140, 6),
            "conversion_rate": rng.uniform(0.3, 0.5, 6),
            "repeat_purchase_rate": rng.uniform(0.1, 0.3, 6),
            "new_revenue": rng.uniform(20_000, 40_000, 6),
            "returning_revenue": rng.uniform(20_000, 50_000, 6),
            "satisfaction": rng.uniform(3.5, 4.6, 6),
        }
    )
    segments = np.array(["Champions", "Loyal", "At risk", "Hibernating"])
    window_start = pd.Timestamp("2026-11-02") + pd.to_timedelta(rng.integers(0, 56, customers), unit="D")
    scores = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(customers)],
            "segment": segments[rng.integers(0, len(segments), customers)],
            "recency": rng.integers(0, 700, customers),
            "frequency": rng.poisson(2, customers),
            "monetary": rng.gamma(2, 60, customers),
            "probability_alive": rng.uniform(0, 1, customers),
            "expected_purchases": rng.gamma(1, 0.5, customers),
            "clv": rng.gamma(2, 100, customers),
            "upsell_propensity": rng.uniform(0, 1, customers),
            "window_start": window_start,
            "window_end": window_start + pd.Timedelta(days=14),
        }
    )
    scores["expected_value"] = scores["clv"] * scores["upsell_propensity"] * 0.2
    frequency, recency = np.meshgrid(np.arange(0, 8), np.arange(0, 20))
    matrix = pd.DataFrame({"frequency": frequency.ravel(), "recency": recency.ravel()})
    fading = np.exp(-(matrix["recency"] + 1) / 5) * matrix["frequency"] / 8
    matrix["probability_alive"] = np.clip(1 - fading, 0, 1)
    weeks = pd.date_range("2026-11-02", periods=8, freq="W-MON")
    before = np.linspace(0.01, 0.08, 8)
    evaluations = pd.DataFrame(
        {
            "launch_week": weeks,
            "shortfall_probability_before": before,
            "shortfall_probability_after": before + 0.02,
            "expected_net_gain": np.linspace(12_000, 4_000, 8),
        }
    )
    evaluations["feasible"] = evaluations["shortfall_probability_after"] <= 0.05
    diagnostics = pd.DataFrame(
        {
            "unique_id": IDS,
            "status": "ok",
            "model": ["prophet", "seasonal_naive", "prophet"],
            "prophet_mae": [100.0, 120, 90],
            "prophet_mase": [0.8, 1.1, 0.7],
            "prophet_coverage": [0.78, 0.7, 0.82],
            "seasonal_naive_mae": [130.0, 100, 120],
            "seasonal_naive_mase": [1.0, 0.95, 1.05],
            "seasonal_naive_coverage": [0.6, 0.65, 0.7],
            "coverage_calibrated": [0.8, 0.8, 0.8],
        }
    )
    comparison = pd.DataFrame(
        {
            "scenario": ["baseline", "demand -20%", "receipts +14 days"],
            "shortfall_probability": [0.03, 0.18, 0.07],
            "first_breach_date": [pd.NaT, pd.Timestamp("2026-12-15"), pd.Timestamp("2027-01-20")],
            "runway_days": [60, 44, 60],
            "ending_p10": [90_000.0, 40_000, 70_000],
            "ending_p50": [140_000.0, 95_000, 120_000],
            "ending_p90": [190_000.0, 150_000, 170_000],
        }
    )
    return {
        "series": series, "forecast": forecast, "bands": bands, "shortfall": shortfall,
        "funnel": funnel, "retention": retention, "kpis": kpis, "scores": scores,
        "matrix": matrix, "evaluations": evaluations, "diagnostics": diagnostics,
        "comparison": comparison,
    }


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return synthetic_frames()


def vegalite(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec, validated against the schema."""
    with alt.data_transformers.enable("default"):
        return chart.to_dict(validate=True)


def vega_rows(chart: alt.TopLevelMixin) -> list[dict]:
    """Every inline data row of the chart's Vega spec, after vegafusion's pre-transform."""
    return [row for data in chart.to_dict(format="vega")["data"] for row in data.get("values", [])]


def marks(svg: str, kind: str, name: str | None = None) -> list[ET.Element]:
    """The drawn items of every mark group of ``kind`` (rect, line, text, ...)."""
    root = ET.fromstring(svg)
    found = []
    for group in root.iter(f"{SVG}g"):
        cls = group.get("class", "")
        if f"mark-{kind} role-mark" in cls and (name is None or name in cls):
            found.extend(child for child in group if child.tag != f"{SVG}g")
    return found


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def layers_of(spec: dict) -> list[dict]:
    """Every unit spec inside a (nested) layer/concat spec."""
    if "mark" in spec:
        return [spec]
    out = []
    for key in ("layer", "vconcat", "hconcat", "concat"):
        for sub in spec.get(key, []):
            out.extend(layers_of(sub))
    if "spec" in spec:
        out.extend(layers_of(spec["spec"]))
    return out


def builders(f: dict[str, pd.DataFrame]) -> dict[str, alt.TopLevelMixin]:
    return {
        "forecast_one": charts.forecast_bands(f["series"], f["forecast"], [IDS[0]]),
        "forecast_all": charts.forecast_bands(f["series"], f["forecast"]),
        "cash": charts.cash_balance(f["bands"], MINIMUM, BREACH, 0.12),
        "shortfall": charts.shortfall_probability(f["shortfall"], 0.05),
        "scenarios": charts.scenario_comparison(f["comparison"]),
        "funnel": charts.funnel(f["funnel"]),
        "cohorts": charts.cohort_retention(f["retention"]),
        "kpis": charts.kpi_small_multiples(f["kpis"]),
        "segments": charts.segment_value(f["scores"]),
        "rfm": charts.rfm_scatter(f["scores"]),
        "p_alive": charts.probability_alive_matrix(f["matrix"]),
        "campaign": charts.campaign_timing(f["evaluations"], 0.05),
        "linked": charts.cash_opportunities_linked(f["bands"], f["scores"], MINIMUM),
        "backtest": charts.backtest_scores(f["diagnostics"]),
    }


@pytest.fixture(scope="module")
def built(frames) -> dict[str, alt.TopLevelMixin]:
    return builders(frames)


@pytest.fixture(scope="module")
def svgs(built) -> dict[str, str]:
    return {name: charts.to_svg(chart) for name, chart in built.items()}


def test_theme_is_registered_once_and_active(built):
    assert alt.theme.active == charts.THEME
    assert charts.THEME in alt.theme.names()
    config = vegalite(built["funnel"])["config"]
    assert config["font"].startswith("Helvetica")
    assert config["range"]["category"] == charts.CATEGORY


@pytest.mark.parametrize("name", list(builders(synthetic_frames(customers=40))))
def test_every_builder_gives_valid_vegalite_and_svg(name, built, svgs):
    spec = vegalite(built[name])
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")
    svg = svgs[name]
    assert svg.startswith("<svg") and 'class="marks"' in svg
    title = spec["title"]["text"] if isinstance(spec.get("title"), dict) else spec.get("title")
    if title is None:  # the linked view titles its first panel
        title = spec["vconcat"][0]["title"]["text"]
    assert title in texts(svg)


def test_cash_balance_is_solid_in_the_past_and_dashed_ahead(built, frames):
    lines = [unit for unit in layers_of(vegalite(built["cash"])) if unit["mark"]["type"] == "line"]
    by_part = {
        part: unit["mark"]
        for unit in lines
        for part in ("actual", "forecast")
        if f"'{part}'" in str(unit["transform"])
    }
    assert len(by_part) == 2
    assert "strokeDash" not in by_part["actual"]
    assert by_part["forecast"]["strokeDash"] == charts.FUTURE_DASH
    svg_lines = marks(charts.to_svg(built["cash"]), "line")
    dashes = [line.get("stroke-dasharray") for line in svg_lines]
    assert dashes.count("6,4") == 1 and dashes.count(None) == 1


def test_cash_balance_dashed_line_starts_where_the_actuals_end(built, frames):
    rows = [row for row in vega_rows(built["cash"]) if "part" in row]
    last_actual = frames["bands"]["actual"].dropna().iloc[-1]
    first_forecast = min((r for r in rows if r["part"] == "forecast"), key=lambda r: r["ds"])
    assert first_forecast["balance"] == pytest.approx(last_actual)


def test_cash_balance_marks_the_minimum_and_the_first_breach(svgs):
    words = texts(svgs["cash"])
    assert "Minimum cash $100,000" in words
    assert "First breach 20 Dec 2026" in words
    assert "Cash may fall below the $100k minimum from 20 Dec 2026 (12% probability)" in words
    assert "$100,000" in words  # the money axis carries the currency symbol
    assert len(marks(svgs["cash"], "symbol")) == 1  # one breach marker


def test_cash_balance_without_breach_says_cash_stays_above(frames):
    chart = charts.cash_balance(frames["bands"], 50_000, None, 0.03, currency="EUR")
    words = texts(charts.to_svg(chart))
    assert "Cash stays above the €50k minimum with 97% probability" in words
    assert "Minimum cash €50,000" in words
    assert not any(w.startswith("First breach") for w in words)


def test_minimum_cash_rule_sits_at_its_value(frames):
    chart = charts.cash_balance(frames["bands"], MINIMUM)
    rule_values = [row["minimum_cash"] for row in vega_rows(chart) if "minimum_cash" in row]
    assert rule_values and set(rule_values) == {MINIMUM}


def test_funnel_draws_one_bar_per_stage_proportional_to_customers(svgs, frames):
    bars = marks(svgs["funnel"], "rect")
    assert len(bars) == len(frames["funnel"])
    widths = [float(b.get("d").split("h")[1].split("v")[0]) for b in bars]
    customers = frames["funnel"]["customers"].to_numpy()
    assert np.allclose(np.array(widths) / widths[0], customers / customers[0])
    assert "7,000 · 78% of previous" in texts(svgs["funnel"])


def test_funnel_title_names_the_weakest_step(built):
    # 1800/3100 = 58% is the lowest step conversion in the synthetic funnel.
    assert built["funnel"].title == (
        "20% reach post-purchase; biggest drop from purchase to post-purchase (58% continue)"
    )


def test_cohort_heatmap_has_one_cell_per_cohort_and_period(svgs, frames):
    assert len(marks(svgs["cohorts"], "rect")) == len(frames["retention"])
    assert "24%" in texts(svgs["cohorts"])  # 0.3 * 0.8 one period after the first purchase


def test_probability_alive_matrix_fills_the_grid(svgs, frames):
    assert len(marks(svgs["p_alive"], "rect")) == len(frames["matrix"])
    # recency in days, in words a reader can check against the axis
    words = texts(svgs["p_alive"])
    assert "A customer with 7 repeat purchases is 28% likely still active if the last came 0 days after the first, " \
           "98% if 19 days after" in words
    assert "Days from the first purchase to the last (recency)" in words


def test_kpi_small_multiples_has_one_panel_per_kpi(svgs, built):
    assert len(built["kpis"].concat) == len(charts.KPI_FORMATS)
    assert len(marks(svgs["kpis"], "line")) == len(charts.KPI_FORMATS)
    # without a comparison of complete months the title claims no change
    assert "Key figures by period" in texts(svgs["kpis"])


def _orders_to_march(last_day: str) -> dict[str, pd.DataFrame]:
    """One order a day from 1 Jan 2023, 10 a day in 2023 and 12 a day in 2024; no events."""
    days = pd.date_range("2023-01-01", last_day, freq="D")
    return {"orders": pd.DataFrame({
        "order_id": [f"O{i}" for i in range(len(days))], "customer_id": [f"C{i % 9}" for i in range(len(days))],
        "ts": (days + pd.Timedelta(hours=12)).astype("datetime64[ns]"),
        "amount": np.where(days.year == 2023, 10.0, 12.0), "order_type": "repeat", "sku": "S",
        "quantity": 1, "unit_price": np.where(days.year == 2023, 10.0, 12.0), "status": "completed"})}


def test_kpi_title_quotes_the_last_complete_month_and_leaves_out_empty_figures():
    from toolkit import journey

    # March 2024 has 9 days: its 108 against February's 348 is no 69% drop
    kpis = journey.kpis(_orders_to_march("2024-03-09"), freq="MS")
    comparison = journey.compare_months(kpis)
    chart = charts.kpi_small_multiples(kpis, currency="EUR", comparison=comparison)
    assert chart.title.text == ("In Feb 2024, the last complete month: revenue €348, down 6% on Jan 2024 (€372) "
                                "and up 24% on Feb 2023 (€280).")
    # orders only: no conversion rate, no satisfaction, so no empty panels
    drawn = [panel.title.text for panel in chart.concat]
    assert "Conversion rate" not in drawn and "Satisfaction (rating 1–5)" not in drawn
    assert len(drawn) == len(charts.KPI_FORMATS) - 2
    assert chart.title.subtitle == "No data for: conversion rate, satisfaction (rating 1–5)"
    words = texts(charts.to_svg(chart))
    assert "No data for: conversion rate, satisfaction (rating 1–5)" in words
    page = charts.month_comparison_text(comparison, ("revenue", "orders"), "USD", markdown=True)
    assert page == ("In Feb 2024, the last complete month: revenue <span>\\$</span>348, down 6% on Jan 2024 "
                    "(<span>\\$</span>372) and up 24% on Feb 2023 (<span>\\$</span>280); orders 29, down 6% on "
                    "Jan 2024 (31) and up 4% on Feb 2023 (28).")


def test_month_comparison_text_without_an_earlier_complete_month():
    from toolkit import journey

    only_january = journey.compare_months(journey.kpis(_orders_to_march("2023-02-10"), freq="MS"))
    assert charts.month_comparison_text(only_january) == (
        "In Jan 2023, the last complete month: revenue $310. "
        "The data holds no complete month before it to compare with.")


def test_segment_value_bars_sum_to_the_expected_value(built, frames):
    rows = [r for r in vega_rows(built["segments"]) if "expected_value" in r and "segment" in r]
    totals = {r["segment"]: r["expected_value"] for r in rows}
    expected = frames["scores"].groupby("segment")["expected_value"].sum()
    assert totals == pytest.approx(expected.to_dict())
    assert built["segments"].title.startswith(f"{expected.idxmax()[:1].upper()}{expected.idxmax()[1:]} hold ")


def test_campaign_shades_exactly_the_feasible_weeks(svgs, frames, built):
    feasible = frames["evaluations"]["feasible"]
    assert len(marks(svgs["campaign"], "rect", "concat_0_layer_0_marks")) == feasible.sum()
    best = frames["evaluations"][feasible].sort_values("expected_net_gain").iloc[-1]
    assert f"{best['launch_week'].day} {best['launch_week']:%b %Y}" in built["campaign"].title.text


def test_campaign_title_for_a_chosen_week_states_its_effect(frames):
    week = frames["evaluations"]["launch_week"].iloc[4]
    chart = charts.campaign_timing(frames["evaluations"], 0.05, week)
    row = frames["evaluations"].iloc[4]
    assert chart.title.text == (
        f"Launching the week of {week.day} {week:%b %Y}: shortfall risk "
        f"{row['shortfall_probability_before']:.0%} → {row['shortfall_probability_after']:.0%}, "
        f"net gain {charts.money_text(row['expected_net_gain'])}, too risky (limit 5%)"
    )


def test_campaign_timing_names_the_best_feasible_week():
    weeks = pd.date_range("2026-11-01", periods=3, freq="7D")
    frame = pd.DataFrame({"launch_week": weeks, "shortfall_probability_before": [0.01] * 3,
                          "shortfall_probability_after": [0.08, 0.04, 0.02],
                          "expected_net_gain": [6_000.0, 5_000.0, 4_000.0], "feasible": [False, True, True]})
    title = charts.campaign_timing(frame, 0.05).title.text
    assert title == "Best feasible launch: week of 8 Nov 2026, net gain $5k at 4% shortfall risk"


def test_no_feasible_week_is_said_plainly(frames):
    evaluations = frames["evaluations"].assign(feasible=False)
    title = charts.campaign_timing(evaluations, 0.05).title.text
    assert title == "No launch week keeps the shortfall risk within 5%"


def test_scenario_comparison_names_the_riskiest_scenario(svgs):
    words = texts(svgs["scenarios"])
    assert "demand -20% raises shortfall risk to 18% (baseline: 3%)" in words
    assert {"runway 60 days", "runway 44 days"} <= set(words)


def test_backtest_reads_per_model_score_columns(built, svgs):
    title = built["backtest"].title
    assert title.text == "How each model did on the past"
    assert title.subtitle == ["Median MASE (lower is better): prophet 0.80, seasonal_naive 1.00"]
    assert len(built["backtest"].hconcat) == 2  # MASE and coverage
    # 3 series x 2 models on each of the two panels.
    assert len(marks(svgs["backtest"], "symbol")) == 12
    # series in words, not ids
    assert {"Purchase: money in", "Awareness: money out"} <= set(texts(svgs["backtest"]))


def test_backtest_says_a_series_without_money_in_its_windows_has_nothing_to_score(frames):
    quiet = frames["diagnostics"].assign(seasonal_naive_mase=[1.0, 0.0, 1.05], prophet_mase=[0.8, 0.48, 0.7])
    chart = charts.backtest_scores(quiet)
    # the exact copy of an empty week scores 0: not a model that is perfect, but nothing to score
    assert chart.title.subtitle == ["Median MASE (lower is better): prophet 0.75, seasonal_naive 1.02",
                                    "1 series moved no money in the tested weeks: their scores say nothing"]
    quiet_label = f"{charts.series_label(IDS[1])} – no money in the tested weeks"
    assert quiet_label in texts(charts.to_svg(chart))


def test_backtest_shows_the_served_band_as_scaled(frames):
    # The served model's band is calibrated after the backtest: its point must be the coverage
    # that band reaches, not the unscaled one beside the 80% line.
    diagnostics = frames["diagnostics"].assign(prophet_coverage=[0.35, 0.7, 0.40],
                                               coverage_calibrated=[0.81, 0.79, np.nan])
    data = vegalite(charts.backtest_scores(diagnostics))
    points = pd.concat([pd.DataFrame(rows) for rows in data["datasets"].values()
                        if rows and "metric" in rows[0]])
    coverage = points[points["metric"] == "coverage"].set_index(["unique_id", "candidate"])["value"]
    assert coverage[(IDS[0], "prophet")] == 0.81  # served: as scaled
    assert coverage[(IDS[1], "prophet")] == 0.7  # not served there: as it came
    assert coverage[(IDS[2], "prophet")] == 0.40  # no calibrated coverage known: as it came


def test_each_model_keeps_its_colour_whichever_models_a_chart_shows(frames):
    def colours(diagnostics):
        scale = vegalite(charts.backtest_scores(diagnostics))["hconcat"][0]["layer"][0]["encoding"]["color"]["scale"]
        return dict(zip(scale["domain"], scale["range"], strict=True))

    both = colours(frames["diagnostics"])
    alone = colours(frames["diagnostics"].drop(columns=[c for c in frames["diagnostics"] if c.startswith("prophet_")]))
    assert both["seasonal_naive"] == alone["seasonal_naive"] == charts.MODEL_COLORS["seasonal_naive"]
    assert both["prophet"] != both["seasonal_naive"]


@pytest.mark.parametrize("unique_id, words", [
    ("purchase|inflow|all", "Purchase: money in"),
    ("post-purchase|outflow|all", "Post-purchase: money out"),
    ("awareness|outflow|email", "Awareness: money out (email)"),
])
def test_series_label_names_a_series_in_words(unique_id, words):
    assert charts.series_label(unique_id) == words


def test_backtest_without_mase_columns_is_refused(frames):
    with pytest.raises(charts.ChartDataError, match="<model>_mase"):
        charts.backtest_scores(frames["diagnostics"][["unique_id", "model", "prophet_mae"]])


def test_forecast_bands_draw_actuals_forecast_and_band_per_series(svgs, frames):
    assert len(marks(svgs["forecast_all"], "area")) == len(IDS)
    lines = marks(svgs["forecast_all"], "line")
    assert [line.get("stroke-dasharray") for line in lines].count("6,4") == len(IDS)
    assert {"Purchase: money in", "Awareness: money out"} <= set(texts(svgs["forecast_all"]))
    total = frames["forecast"].loc[frames["forecast"]["unique_id"] == IDS[0], "yhat"].sum()
    assert f"Purchase inflow (all): {charts.money_text(total)} expected over the next 60 days" in texts(
        svgs["forecast_one"]
    )


def test_shortfall_chart_states_the_peak_and_the_limit(svgs):
    words = texts(svgs["shortfall"])
    assert "Shortfall risk peaks at 12% on 30 Dec 2026 (limit 5%)" in words
    assert "Risk limit 5%" in words


def test_linked_view_brush_filters_the_opportunities(built, svgs, frames):
    spec = vegalite(built["linked"])
    upper, lower = spec["vconcat"]
    assert [(p["name"], p["select"]["type"]) for p in spec["params"]] == [("period", "interval")]
    bars, empty = lower["layer"]
    assert {"filter": {"param": "period"}} in bars["transform"]
    # each segment keeps its colour whatever the selection leaves: the domain is every segment
    assert bars["encoding"]["color"]["scale"]["domain"] == sorted(frames["scores"]["segment"].unique())
    # an empty selection says so instead of leaving a blank panel
    assert "No buying window opens in the selected period" in empty["encoding"]["text"]["value"]
    assert "period_store" in json.dumps(empty["transform"])
    # The selection survives vegafusion's pre-transform: it is client-side Vega.
    vega = built["linked"].to_dict(format="vega")
    assert any(s["name"].startswith("period") for s in vega["signals"])
    assert len(marks(svgs["linked"], "rect")) > 0
    # with nothing selected every opportunity shows and the empty-selection words do not
    assert not any(w.startswith("No buying window") for w in texts(svgs["linked"]))


def test_missing_column_is_named(frames):
    with pytest.raises(charts.ChartDataError, match="required column 'is_forecast' missing"):
        charts.cash_balance(frames["bands"].drop(columns="is_forecast"), MINIMUM)


def test_vegafusion_draws_twenty_thousand_rows(frames):
    rng = np.random.default_rng(1)
    many = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(20_000)],
            "segment": rng.choice(["Champions", "Loyal", "At risk"], 20_000),
            "recency": rng.integers(0, 700, 20_000),
            "frequency": rng.poisson(2, 20_000),
            "monetary": rng.gamma(2, 60, 20_000),
        }
    )
    chart = charts.rfm_scatter(many)
    with alt.data_transformers.enable("default"), pytest.raises(alt.MaxRowsError):
        chart.to_dict()
    svg = charts.to_svg(chart)
    assert len(marks(svg, "symbol")) == 20_000
    assert charts.to_png(chart)[:8] == b"\x89PNG\r\n\x1a\n"


def test_svg_output_is_deterministic(built):
    assert charts.to_svg(built["cash"]) == charts.to_svg(built["cash"])


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [(100_000, "USD", "$100k"), (1_500_000, "EUR", "€1.5M"), (-950, "GBP", "-£950"), (2_000, "USD", "$2k")],
)
def test_money_text(value, currency, text):
    assert charts.money_text(value, currency) == text


def test_cash_title_without_probability_or_breach():
    assert charts.cash_title(100_000) == "Cash stays above the $100k minimum"


def test_a_history_below_the_minimum_is_said_in_the_title_and_the_page_sentence(frames):
    bands = frames["bands"]
    minimum = float(bands["actual"].dropna().median())  # half the shown history lies below it
    below, shown = charts.history_below_minimum(bands, minimum)
    assert shown == bands["actual"].notna().sum() and 0 < below < shown
    words = texts(charts.to_svg(charts.cash_balance(bands, minimum, None, 0.03)))
    title = next(w for w in words if w.startswith("Cash was below"))
    assert title == (f"Cash was below the {charts.money_text(minimum)} minimum on {below} of the last {shown} days; "
                     "ahead it stays above with 97% probability")
    assert not any(w.startswith("Cash stays above") for w in words)
    outlook = SimpleNamespace(bands=bands, minimum_cash=minimum, balance_known=True)
    sentence = charts.below_minimum_sentence(outlook, history_days=None)
    assert sentence == (f"The actual balance was below the {charts.money_markdown(minimum)} minimum on {below} "
                        f"of the last {shown} days.")
    assert charts.below_minimum_sentence(SimpleNamespace(bands=bands, minimum_cash=0.0, balance_known=True)) == ""


def test_funnel_leaves_out_stages_the_data_cannot_show(frames):
    partial = frames["funnel"].copy()
    partial.loc[2, ["customers", "stage_conversion", "overall_conversion", "drop_off"]] = np.nan
    svg = charts.to_svg(charts.funnel(partial))
    assert len(marks(svg, "rect")) == len(partial) - 1
    assert "evaluation" not in texts(svg)
    assert charts.funnel(partial).title.subtitle == "Not in the data: evaluation"


def test_funnel_of_orders_alone_names_the_stages_before_purchase():
    from toolkit import journey

    stages = journey.customer_stages(_orders_to_march("2023-03-31"))
    chart = charts.funnel(journey.funnel(stages, 90))
    assert chart.title.subtitle == "Not in the data: awareness, consideration, evaluation"
    assert len(marks(charts.to_svg(chart), "rect")) == 2  # purchase and post-purchase


def test_journey_charts_on_the_sample_shop(sample_tables, sample_config):
    from toolkit import journey

    stages = journey.funnel(journey.customer_stages(sample_tables), sample_config.conversion_window_days)
    observed = stages["customers"].notna().sum()
    funnel_svg = charts.to_svg(charts.funnel(stages))
    assert len(marks(funnel_svg, "rect")) == observed
    last = stages.loc[stages["customers"].notna()].iloc[-1]
    assert texts(funnel_svg)[-1].startswith(f"{last['overall_conversion']:.0%} reach {last['stage']}")

    retention = journey.cohort_retention(sample_tables["orders"])
    assert len(marks(charts.to_svg(charts.cohort_retention(retention)), "rect")) == len(retention)

    kpis = journey.kpis(sample_tables)
    chart = charts.kpi_small_multiples(kpis, currency=sample_config.currency)
    assert len(chart.concat) == sum(k in kpis.columns for k in charts.KPI_FORMATS)
    vegalite(chart)


def test_data_quality_charts_count_what_came_in_and_what_was_rejected(small_shop_tables):
    months = charts.rows_per_month(small_shop_tables)
    data = months.data.set_index(["table", "month"])["rows"]
    # the hand-made shop: 8 orders in Jan (4), Feb (3) and May (1)
    assert data.loc["orders"].tolist() == [4, 3, 1]
    assert data.sum() == sum(len(t) for t in small_shop_tables.values())
    assert "Accepted rows per month" in texts(charts.to_svg(months))

    summary = {"orders": {"rejects_by_reason": {"unparseable date": 3, "duplicate order_id": 1}},
               "events": {"rejects_by_reason": {}}}
    svg = charts.to_svg(charts.rejects_by_reason(summary))
    assert len(marks(svg, "rect")) >= 2 and "Rejected: 4 problems" in texts(svg)
    empty = charts.rejects_by_reason({"orders": {"rejects_by_reason": {}}})
    assert empty.title == "No row was rejected"
    assert "Nothing to show: every row of every table was accepted" in texts(charts.to_svg(empty))
    assert not marks(charts.to_svg(empty), "rect")


# --- thin data: a small "nothing to show" chart instead of an error -----------------------

def _empty(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[0:0]


def empty_builders(f: dict[str, pd.DataFrame]) -> dict[str, tuple[alt.TopLevelMixin, str]]:
    """Each builder given frames with the right columns but no rows, and the reason it should give."""
    e = {name: _empty(frame) for name, frame in f.items()}
    return {
        "forecast": (charts.forecast_bands(f["series"], e["forecast"]), "no series could be forecast"),
        "cash": (charts.cash_balance(e["bands"], MINIMUM), "no cash balance could be computed"),
        "shortfall": (charts.shortfall_probability(e["shortfall"], 0.05), "no shortfall risk was computed"),
        "scenarios": (charts.scenario_comparison(e["comparison"]), "no scenario could be compared"),
        "funnel": (charts.funnel(e["funnel"]), "no stage was reached"),
        "cohorts": (charts.cohort_retention(e["retention"]), "no customer cohort yet"),
        "kpis": (charts.kpi_small_multiples(e["kpis"]), "no period with key figures"),
        "segments": (charts.segment_value(e["scores"]), "no customer was scored"),
        "rfm": (charts.rfm_scatter(e["scores"]), "no customer was scored"),
        "p_alive": (charts.probability_alive_matrix(e["matrix"]), "no repeat-buying model was fitted"),
        "campaign": (charts.campaign_timing(e["evaluations"], 0.05), "no launch week was evaluated"),
        "linked": (charts.cash_opportunities_linked(e["bands"], f["scores"], MINIMUM),
                   "no cash balance could be computed"),
        "backtest": (charts.backtest_scores(e["diagnostics"]), "no series was forecast"),
        "rows": (charts.rows_per_month({"orders": pd.DataFrame({"ts": pd.to_datetime([])})}),
                 "no table holds an accepted row"),
    }


def test_every_builder_on_an_empty_frame_says_there_is_nothing_to_show_and_why(frames):
    for name, (chart, why) in empty_builders(frames).items():
        words = texts(charts.to_svg(chart))
        assert f"Nothing to show: {why}" in words, (name, words)


def test_campaign_timing_without_risk_assessed_draws_the_gain_and_claims_no_risk(frames):
    unassessed = frames["evaluations"].assign(shortfall_probability_before=np.nan,
                                              shortfall_probability_after=np.nan, feasible=False)
    week = unassessed["launch_week"].iloc[2]
    gain = unassessed["expected_net_gain"].iloc[2]
    chosen = charts.campaign_timing(unassessed, 0.05, week)
    assert chosen.title.text == (f"Launching the week of {week.day} {week:%b %Y}: net gain "
                                 f"{charts.money_text(gain)}; shortfall risk not assessed")
    words = texts(charts.to_svg(chosen))
    assert "Expected net gain" in words and "risk not assessed" in words
    assert "Shortfall probability" not in words and not any("Risk limit" in w for w in words)
    assert not any("nan" in w.lower() or "too risky" in w for w in words)
    best = charts.campaign_timing(unassessed, 0.05).title.text
    assert best == (f"Expected net gain by launch week, up to {charts.money_text(unassessed['expected_net_gain'].max())}"
                    "; shortfall risk not assessed")


def test_only_the_part_without_data_is_replaced(frames):
    no_opportunities = charts.cash_opportunities_linked(frames["bands"], _empty(frames["scores"]), MINIMUM)
    words = texts(charts.to_svg(no_opportunities))
    assert "Nothing to show: no customer is likely to buy again within the horizon" in words
    assert "Minimum cash $100,000" in words


def test_a_missing_column_is_still_an_error_on_an_empty_frame(frames):
    with pytest.raises(charts.ChartDataError, match="required column 'probability' missing"):
        charts.shortfall_probability(pd.DataFrame({"ds": pd.to_datetime([])}))


def test_cash_without_opening_balance_is_a_cumulative_flow_without_minimum(frames):
    chart = charts.cash_balance(frames["bands"], None, balance_known=False)
    words = texts(charts.to_svg(chart))
    assert "Cumulative net cash flow since the data starts: actual and forecast" in words
    assert "Cumulative net cash flow" in words  # the axis
    assert not any(w.startswith("Minimum cash") for w in words)
    unassessed = frames["shortfall"].assign(probability=np.nan)
    assert "Nothing to show: the shortfall risk was not assessed (it needs an opening balance and a minimum cash)" \
        in texts(charts.to_svg(charts.shortfall_probability(unassessed, 0.05)))
    no_risk = frames["comparison"].assign(shortfall_probability=np.nan, runway_days=np.nan)
    words = texts(charts.to_svg(charts.scenario_comparison(no_risk)))
    assert "Where each scenario leaves cash at the end of the horizon" in words
    assert "The shortfall risk was not assessed" in words and "Shortfall probability" not in words
    assert not any("nan" in w.lower() for w in words)


def test_money_text_with_cents_and_no_negative_zero():
    assert charts.money_text(1234.5, compact=False, decimals=2) == "$1,234.50"
    assert charts.money_text(-0.3, compact=False) == "$0"
    assert charts.money_text(-1234.567, "EUR", compact=False, decimals=2) == "-€1,234.57"


# --------------------------------------------------------------------------- campaign charts

def _measured_campaigns() -> pd.DataFrame:
    return pd.DataFrame({"campaign_id": ["spring", "autumn"], "variant": ["10% off", "10% off"],
                         "incremental_response": [0.05, 0.01], "incremental_response_low": [0.02, -0.02],
                         "incremental_response_high": [0.08, 0.04]})


def test_campaign_effects_draws_each_interval_against_zero():
    chart = charts.campaign_effects(_measured_campaigns())
    drawn = texts(charts.to_svg(chart))
    assert "spring · 10% off" in drawn and "autumn · 10% off" in drawn
    assert "What past campaigns added" in drawn
    assert any(row.get("incremental_response_low") == -0.02 for row in vega_rows(chart))
    # nothing measured: a chart that says why instead of failing
    empty = charts.campaign_effects(_measured_campaigns().iloc[:0])
    assert "Nothing to show: no campaign could be measured" in texts(charts.to_svg(empty))


def test_campaign_cash_bands_show_both_scenarios_and_the_minimum():
    days = pd.date_range("2026-11-01", periods=10, freq="D")
    bands = pd.concat([pd.DataFrame({"ds": days, "scenario": name, "p10": base - 50, "p50": base, "p90": base + 50})
                       for name, base in (("without the campaign", 120_000.0), ("with the campaign", 118_000.0))])
    drawn = texts(charts.to_svg(charts.campaign_cash_bands(bands, 100_000, "USD")))
    assert "with the campaign" in drawn and "without the campaign" in drawn
    assert any("minimum $100k" in t or "minimum $100,000" in t for t in drawn), drawn
    unknown = charts.campaign_cash_bands(bands.iloc[:0], None)
    assert "cash position is unknown" in " ".join(texts(charts.to_svg(unknown)))


def test_shortfall_sentence_weighs_the_risk_against_the_limit_and_says_what_is_missing():
    from types import SimpleNamespace

    risky = SimpleNamespace(shortfall_probability=0.3, first_breach_date=pd.Timestamp("2026-11-09"),
                            minimum_cash=100_000.0, runway_days=8)
    text = charts.shortfall_sentence(risky, 0.05, "USD")
    assert "**30%** (**above** the 5% the business accepts)" in text
    assert "first likely on **09 Nov 2026**" in text and "runway **8 days**" in text
    assert charts.MARKDOWN_DOLLAR + "100k" in text  # money never opens LaTeX
    calm = SimpleNamespace(shortfall_probability=0.0, first_breach_date=None, minimum_cash=100_000.0, runway_days=90)
    assert "(within the 5% the business accepts), with no day on which a shortfall is likely" in (
        charts.shortfall_sentence(calm, 0.05))
    unknown = SimpleNamespace(shortfall_probability=None)
    assert charts.shortfall_sentence(unknown, 0.05).startswith("The chance of running short of cash is not assessed")
