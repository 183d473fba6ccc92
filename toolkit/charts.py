"""Chart builders: DataFrames in, Altair charts out.

Every builder is a pure function of the frames the toolkit produces (stage
series, forecasts, cash bands, funnel, cohorts, KPIs, customer scores,
campaign evaluations, backtest scores, scenarios). Builders neither read files
nor display anything, so the same chart serves a notebook, a widget and a
static report. Each builder lists the columns it expects in its docstring.

Importing this module registers and enables one theme (``journeycast``) and the
``vegafusion`` data transformer, which evaluates transforms in Python and keeps
frames above Altair's 5,000-row limit working. With vegafusion on, a chart's
spec is obtained with ``chart.to_dict(format="vega")`` (a custom notebook
renderer must compile with ``altair.utils.display.compile_with_vegafusion``);
:func:`to_svg` and :func:`to_png` render a chart offline with vl-convert.

A builder given no rows to draw (no forecast, no cohorts, no customer to
contact) returns :func:`nothing_to_show`: a small chart saying "Nothing to show"
and why, so a page on thin data still renders; ``ChartDataError`` is kept for
misuse (a column missing).

Titles state the finding (e.g. "Cash stays above the $100k minimum with 97%
probability"); every builder accepts ``title`` to override the computed one.
Money axes and tooltips carry the run's currency symbol (``currency`` is the
ISO code from the run configuration).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc
from babel.numbers import get_currency_symbol

from toolkit.commitments import known_payments
from toolkit.errors import JourneycastError, require_columns

if TYPE_CHECKING:
    from toolkit.journey import MonthComparison

__all__ = [
    "MODEL_COLORS",
    "THEME",
    "ChartDataError",
    "backtest_scores",
    "bank_reconciliation",
    "below_minimum_sentence",
    "campaign_cash_bands",
    "campaign_effects",
    "campaign_timing",
    "cash_balance",
    "cash_outlook",
    "cash_opportunities_linked",
    "cash_title",
    "cash_with_commitments",
    "cohort_retention",
    "currency_symbol",
    "forecast_bands",
    "funnel",
    "historical_clv",
    "history_below_minimum",
    "kpi_small_multiples",
    "MARKDOWN_DOLLAR",
    "NO_MATH_CLASSES",
    "markdown_dollars",
    "money_markdown",
    "money_text",
    "month_comparison_text",
    "nothing_to_show",
    "opportunity_weeks",
    "probability_alive_matrix",
    "rejects_by_reason",
    "rows_per_month",
    "recent_history",
    "rfm_scatter",
    "scenario_comparison",
    "segment_value",
    "series_label",
    "shortfall_sentence",
    "shortfall_probability",
    "time_to_convert",
    "to_png",
    "to_svg",
]

THEME = "journeycast"

# Colours chosen to stay readable in print and for the common colour-vision deficiencies.
INK = "#1f2937"
FORECAST = "#2563eb"
BAND = "#93c5fd"
DANGER = "#dc2626"
GOOD = "#16a34a"
MUTED = "#9ca3af"
CATEGORY = [
    "#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6",
    "#0ea5e9", "#84cc16", "#ec4899", "#6b7280", "#14b8a6",
]
FUTURE_DASH = [6, 4]
WEEK_FORMAT = "%d %b"
WIDTH = 560
HEIGHT = 240


class ChartDataError(JourneycastError, ValueError):
    """A frame handed to a chart builder lacks a column it needs."""


class _NothingToDraw(Exception):
    """Raised inside a builder whose frame has no rows; its decorator draws :func:`nothing_to_show`."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@alt.theme.register(THEME, enable=True)
def _theme() -> alt.theme.ThemeConfig:
    return {
        "config": {
            "font": "Helvetica, Arial, sans-serif",
            "background": "white",
            "view": {"continuousWidth": WIDTH, "continuousHeight": HEIGHT, "stroke": None},
            "title": {
                "anchor": "start",
                "fontSize": 15,
                "fontWeight": 600,
                "color": INK,
                "subtitleColor": "#4b5563",
                "subtitleFontSize": 12,
                "offset": 12,
            },
            "axis": {
                "labelColor": "#374151",
                "titleColor": "#374151",
                "labelFontSize": 11,
                "titleFontSize": 12,
                "titleFontWeight": 500,
                "gridColor": "#e5e7eb",
                "domainColor": MUTED,
                "tickColor": MUTED,
            },
            "legend": {"orient": "bottom", "labelFontSize": 11, "titleFontSize": 12},
            "header": {"labelFontSize": 12, "titleFontSize": 12, "labelColor": INK},
            "range": {"category": CATEGORY},
            "line": {"strokeWidth": 2},
            "point": {"filled": True, "size": 40},
            "text": {"fontSize": 11, "color": INK},
        }
    }


alt.data_transformers.enable("vegafusion")


# ---------------------------------------------------------------- formatting


def currency_symbol(currency: str) -> str:
    """The symbol shown for an ISO currency code ("USD" -> "$", "EUR" -> "€")."""
    return get_currency_symbol(currency.upper(), locale="en_US")


def money_text(value: float, currency: str = "USD", compact: bool = True, decimals: int = 0) -> str:
    """Format an amount for a title or a table: ``$100k``, ``-$1.2M``, ``$950``, ``$1,234.50``.

    ``compact`` shortens thousands, millions and billions; ``decimals`` applies otherwise.
    """
    symbol = currency_symbol(currency)
    amount = abs(value)
    sign = "-" if value < 0 and round(amount, decimals) > 0 else ""
    if compact:
        for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if amount >= limit:
                scaled = f"{amount / limit:.1f}".rstrip("0").rstrip(".")
                return f"{sign}{symbol}{scaled}{suffix}"
    return f"{sign}{symbol}{amount:,.{decimals}f}"


#: A dollar sign as Markdown says it. JupyterLab reads the text between two ``$`` of one run of text
#: as LaTeX math, even escaped ones: the escape is gone once the Markdown is rendered, before the
#: math is typeset. An element of its own ends the run; its escape keeps the Markdown step from
#: pairing it too. nbconvert's HTML shows it as a plain ``$``.
MARKDOWN_DOLLAR = "<span>\\$</span>"


#: The classes that keep an HTML output's text from being typeset as LaTeX: MathJax 3 (JupyterLab 4)
#: skips ``mathjax_ignore``, MathJax 2 (older front ends) ``tex2jax_ignore``. A table with two amounts
#: in dollars in one cell would otherwise show a formula.
NO_MATH_CLASSES = "tex2jax_ignore mathjax_ignore"


def markdown_dollars(text: str) -> str:
    """``text`` with every ``$`` (bare, escaped or already safe) written as ``MARKDOWN_DOLLAR``."""
    return text.replace(MARKDOWN_DOLLAR, "$").replace("\\$", "$").replace("$", MARKDOWN_DOLLAR)


def money_markdown(value: float, currency: str = "USD", compact: bool = True) -> str:
    """``money_text`` for Markdown: its ``$`` never opens LaTeX math (see ``MARKDOWN_DOLLAR``)."""
    return markdown_dollars(money_text(value, currency, compact))


def _money_expr(value: str, currency: str) -> str:
    """A Vega expression formatting ``value`` as money with the currency symbol."""
    symbol = json.dumps(currency_symbol(currency))
    return f"({value} < 0 ? '-' : '') + {symbol} + format(abs({value}), ',.0f')"


def _money_axis(currency: str, title: str | None = None, tick_count: int | None = None) -> alt.Axis:
    """An axis of money labels; ``tick_count`` thins them where a narrow panel would make them collide."""
    return alt.Axis(title=title, labelExpr=_money_expr("datum.value", currency),
                    **({"tickCount": tick_count} if tick_count else {}))


def _money_labels(chart: alt.Chart, currency: str, *fields: str) -> alt.Chart:
    """Add ``<field>_label`` columns holding money strings for tooltips and text."""
    return chart.transform_calculate(
        **{f"{f}_label": _money_expr(f"datum[{json.dumps(f)}]", currency) for f in fields}
    )


def _labelled_rule(
    field: str, value: float, label: str, color: str, dash: list[int] | None = None
) -> list[alt.Chart]:
    """A horizontal rule at ``value`` with its label above the left end."""
    data = alt.Chart(pd.DataFrame({field: [value], "label": [label]}))
    rule = data.mark_rule(color=color, strokeWidth=1.5, **({"strokeDash": dash} if dash else {}))
    text = data.mark_text(align="left", baseline="bottom", dx=4, dy=-3, color=color, fontWeight=600)
    return [
        rule.encode(y=f"{field}:Q"),
        text.encode(x=alt.value(0), y=f"{field}:Q", text="label:N"),
    ]


#: How a series' direction reads on a page.
_DIRECTION_WORDS = {"inflow": "money in", "outflow": "money out"}


def series_label(unique_id: str) -> str:
    """A stage series' id in words: ``purchase|inflow|all`` -> ``Purchase: money in``.

    A segment other than ``all`` follows in brackets (``Awareness: money out (email)``).
    """
    stage, direction, *rest = str(unique_id).split("|") + [""]
    segment = rest[0] if rest and rest[0] not in ("", "all") else None
    words = f"{stage[:1].upper()}{stage[1:]}: {_DIRECTION_WORDS.get(direction, direction)}"
    return f"{words} ({segment})" if segment else words


def _date_text(value: pd.Timestamp) -> str:
    return f"{value.day} {value:%b %Y}"


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str, why: str) -> None:
    """Columns missing are misuse (``ChartDataError``); no rows is thin data, said as ``why``."""
    require_columns(frame, columns, what, ChartDataError)
    if frame.empty:
        raise _NothingToDraw(why)


def nothing_to_show(why: str, title: str | None = None) -> alt.Chart:
    """A small chart in place of one that has no data: "Nothing to show: ``why``"."""
    data = pd.DataFrame({"text": [f"Nothing to show: {why}"]})
    chart = alt.Chart(data).mark_text(align="left", baseline="middle", fontSize=13, color="#4b5563").encode(
        text="text:N", x=alt.value(0), y=alt.value(15))
    return chart.properties(width=WIDTH, height=30, **({"title": title} if title else {}))


def _or_nothing_to_show(builder: Callable[..., Any]) -> Callable[..., Any]:
    """Let ``builder`` return :func:`nothing_to_show` when a frame it needs has no rows."""
    @functools.wraps(builder)
    def build(*args: Any, **kwargs: Any) -> Any:
        try:
            return builder(*args, **kwargs)
        except _NothingToDraw as empty:
            return nothing_to_show(empty.why)

    return build


# ---------------------------------------------------------------- rendering


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render a chart to SVG text offline (vl-convert), whatever its row count."""
    return vlc.vega_to_svg(chart.to_dict(format="vega"))


def to_png(chart: alt.TopLevelMixin, scale: float = 1.0) -> bytes:
    """Render a chart to PNG bytes offline (vl-convert)."""
    return vlc.vega_to_png(chart.to_dict(format="vega"), scale=scale)


# ---------------------------------------------------------------- forecasts


@_or_nothing_to_show
def forecast_bands(
    series: pd.DataFrame,
    forecast: pd.DataFrame,
    unique_ids: Sequence[str] | None = None,
    history_days: int | None = 180,
    currency: str = "USD",
    title: str | None = None,
    columns: int = 2,
) -> alt.Chart:
    """Actuals, forecast and its P10-P90 band for each stage series.

    Parameters
    ----------
    series
        Stage series: ``unique_id, ds, y`` (stage, direction, segment may follow).
    forecast
        ``unique_id, ds, yhat, yhat_lower, yhat_upper`` (and ``model``).
    unique_ids
        Series to draw (default: every series in ``forecast``); more than one
        gives one panel per series with its own y scale.
    history_days
        Days of actuals shown before the forecast starts (None: all).
    """
    _require(series, ["unique_id", "ds", "y"], "forecast_bands series", "no stage series in the data")
    _require(forecast, ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"], "forecast_bands forecast",
             "no series could be forecast")
    ids = list(unique_ids) if unique_ids is not None else list(dict.fromkeys(forecast["unique_id"]))
    fc = forecast[forecast["unique_id"].isin(ids)]
    if fc.empty:
        raise _NothingToDraw(f"no forecast for {', '.join(ids) or 'any series'}")
    hist = series.loc[series["unique_id"].isin(ids), ["unique_id", "ds", "y"]]
    start = fc["ds"].min()
    hist = hist[hist["ds"] < start]
    if history_days is not None:
        hist = hist[hist["ds"] >= start - pd.Timedelta(days=history_days)]
    fc_cols = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"] + (
        ["model"] if "model" in fc.columns else []
    )
    data = pd.concat(
        [hist.assign(part="actual"), fc[fc_cols].assign(part="forecast")], ignore_index=True
    )
    data["series"] = data["unique_id"].map(series_label)
    if title is None:
        days = fc["ds"].nunique()
        if len(ids) == 1:
            total = fc["yhat"].sum()
            parts = ids[0].split("|")
            name = f"{parts[0].capitalize()} {' '.join(parts[1:2])}" + (f" ({parts[2]})" if len(parts) > 2 else "")
            title = f"{name}: {money_text(total, currency)} expected over the next {days} days"
        else:
            title = f"Next {days} days by stage: forecast with P10–P90 band"

    base = alt.Chart(data)
    x = alt.X("ds:T", title=None)
    band = (
        base.transform_filter(alt.datum.part == "forecast")
        .mark_area(color=BAND, opacity=0.45)
        .encode(x=x, y=alt.Y("yhat_lower:Q", axis=_money_axis(currency)), y2="yhat_upper:Q")
    )
    actual = (
        _money_labels(base.transform_filter(alt.datum.part == "actual"), currency, "y")
        .mark_line(color=INK, strokeWidth=1.2)
        .encode(
            x=x, y="y:Q", tooltip=[alt.Tooltip("ds:T", title="Date"), alt.Tooltip("y_label:N", title="Actual")]
        )
    )
    predicted = (
        _money_labels(
            base.transform_filter(alt.datum.part == "forecast"),
            currency, "yhat", "yhat_lower", "yhat_upper",
        )
        .mark_line(color=FORECAST, strokeDash=FUTURE_DASH)
        .encode(
            x=x,
            y="yhat:Q",
            tooltip=[
                alt.Tooltip("ds:T", title="Date"),
                alt.Tooltip("yhat_label:N", title="Forecast"),
                alt.Tooltip("yhat_lower_label:N", title="P10"),
                alt.Tooltip("yhat_upper_label:N", title="P90"),
            ],
        )
    )
    subtitle = "Solid: actual · dashed: forecast · band: P10–P90"
    layered = alt.layer(band, actual, predicted)
    if len(ids) == 1:
        return layered.properties(title=alt.Title(title, subtitle=subtitle))
    return (
        layered.properties(width=WIDTH // columns, height=160)
        .facet(
            facet=alt.Facet("series:N", title=None, sort=[series_label(i) for i in ids]), columns=columns
        )
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title, subtitle=subtitle))
    )


# ---------------------------------------------------------------- cash


def history_below_minimum(bands: pd.DataFrame, minimum_cash: float | None) -> tuple[int, int]:
    """Days of the actual balance in ``bands`` below ``minimum_cash``, and the actual days there are.

    ``bands`` as for :func:`cash_balance`; (0, days) without a minimum.
    """
    require_columns(bands, ["actual", "is_forecast"], "history_below_minimum", ChartDataError)
    actual = bands.loc[~bands["is_forecast"].astype(bool), "actual"].dropna()
    below = 0 if minimum_cash is None else int((actual < minimum_cash).sum())
    return below, len(actual)


def below_minimum_sentence(outlook: Any, currency: str = "USD", history_days: int | None = 180,
                           markdown: bool = True) -> str:
    """A sentence on the days the actual balance was below the minimum; ``""`` when it never was.

    It covers the history the balance chart shows (:func:`recent_history`), so
    a page's words and its chart agree.
    """
    if not getattr(outlook, "balance_known", True) or outlook.minimum_cash is None:
        return ""
    below, days = history_below_minimum(recent_history(outlook.bands, history_days), outlook.minimum_cash)
    if not below:
        return ""
    minimum = (money_markdown if markdown else money_text)(outlook.minimum_cash, currency)
    return f"The actual balance was below the {minimum} minimum on {below} of the last {days} days."


def shortfall_sentence(outlook: Any, risk_limit: float, currency: str = "USD") -> str:
    """The shortfall risk in one Markdown sentence: its chance against the accepted limit, first breach and runway.

    Said the same on every page that states it; when the risk is not assessed
    (no balance or no minimum), the sentence says what would assess it.
    """
    if outlook.shortfall_probability is None:
        return ("The chance of running short of cash is not assessed: it needs an opening balance and a minimum "
                "cash (`opening_balance`, `minimum_cash` in journeycast.yml).")
    within = "**above**" if outlook.shortfall_probability > risk_limit else "within"
    breach = (f"a shortfall first likely on **{outlook.first_breach_date:%d %b %Y}**"
              if outlook.first_breach_date is not None else "no day on which a shortfall is likely")
    return (f"The chance of falling below the **{money_markdown(outlook.minimum_cash, currency)}** minimum on at "
            f"least one day is **{outlook.shortfall_probability:.0%}** ({within} the {risk_limit:.0%} the business "
            f"accepts), with {breach}; runway **{outlook.runway_days} days** (the middle balance stays at or above "
            "the minimum).")


def cash_title(
    minimum_cash: float | None,
    shortfall_probability: float | None = None,
    first_breach_date: pd.Timestamp | None = None,
    currency: str = "USD",
    balance_known: bool = True,
    days_below: tuple[int, int] = (0, 0),
) -> str:
    """A title stating the cash finding.

    ``shortfall_probability`` is the chance the balance falls below the minimum
    within the horizon; ``first_breach_date`` the first date the outlook marks
    as a breach (None: no breach); ``days_below`` the days of the shown history
    below the minimum and the days shown (:func:`history_below_minimum`), said
    first, since a title that says cash "stays above" would contradict the
    chart. Without a minimum, or without an opening balance (``balance_known``
    False: the line is a cumulative net cash flow), there is no finding about
    the minimum to state.
    """
    if not balance_known:
        return "Cumulative net cash flow since the data starts: actual and forecast"
    if minimum_cash is None:
        return "Cash balance: actual and forecast"
    minimum = money_text(minimum_cash, currency)
    below, shown = days_below
    past = f"Cash was below the {minimum} minimum on {below} of the last {shown} days; " if below else ""
    if first_breach_date is not None and not pd.isna(first_breach_date):
        risk = (
            f" ({shortfall_probability:.0%} probability)" if shortfall_probability is not None else ""
        )
        breach = _date_text(pd.Timestamp(first_breach_date))
        ahead = f"may fall below it from {breach}{risk}" if below else (
            f"Cash may fall below the {minimum} minimum from {breach}{risk}")
        return past + ahead
    if shortfall_probability is not None and not pd.isna(shortfall_probability):
        if below:
            return past + f"ahead it stays above with {1 - shortfall_probability:.0%} probability"
        return f"Cash stays above the {minimum} minimum with {1 - shortfall_probability:.0%} probability"
    return past + "ahead it stays above" if below else f"Cash stays above the {minimum} minimum"


def _balance_layers(
    bands: pd.DataFrame,
    minimum_cash: float | None,
    first_breach_date: pd.Timestamp | None,
    currency: str,
    balance_known: bool = True,
) -> list[alt.Chart]:
    """Band, past (solid) and future (dashed) balance, minimum rule (when given), breach marker."""
    _require(bands, ["ds", "p10", "p50", "p90", "actual", "is_forecast"], "cash_balance bands",
             "no cash balance could be computed")
    frame = bands.sort_values("ds").reset_index(drop=True)
    future_mask = frame["is_forecast"].astype(bool)
    past = frame.loc[~future_mask].assign(balance=lambda f: f["actual"], part="actual")
    future = frame.loc[future_mask].assign(balance=lambda f: f["p50"], part="forecast")
    if not past.empty and not future.empty:
        # Start the dashed line where the solid one ends so the two join.
        joint = past.iloc[[-1]].assign(part="forecast", p10=past["actual"].iloc[-1], p90=past["actual"].iloc[-1])
        future = pd.concat([joint, future], ignore_index=True)
    data = pd.concat([past, future], ignore_index=True)[["ds", "balance", "p10", "p50", "p90", "part"]]

    base = _money_labels(alt.Chart(data), currency, "balance", "p10", "p90")
    x = alt.X("ds:T", title=None)
    y_axis = _money_axis(currency, "Cash balance" if balance_known else "Cumulative net cash flow")
    tooltip = [
        alt.Tooltip("ds:T", title="Date"),
        alt.Tooltip("balance_label:N", title="Balance (median ahead)"),
        alt.Tooltip("p10_label:N", title="P10"),
        alt.Tooltip("p90_label:N", title="P90"),
    ]
    band = (
        base.transform_filter(alt.datum.part == "forecast")
        .mark_area(color=BAND, opacity=0.45)
        .encode(x=x, y=alt.Y("p10:Q", axis=y_axis, scale=alt.Scale(zero=False)), y2="p90:Q")
    )
    solid = (
        base.transform_filter(alt.datum.part == "actual")
        .mark_line(color=INK)
        .encode(x=x, y=alt.Y("balance:Q", axis=y_axis, scale=alt.Scale(zero=False)), tooltip=tooltip)
    )
    dashed = (
        base.transform_filter(alt.datum.part == "forecast")
        .mark_line(color=FORECAST, strokeDash=FUTURE_DASH)
        .encode(x=x, y="balance:Q", tooltip=tooltip)
    )
    layers = [band, solid, dashed]
    if minimum_cash is None or not balance_known:
        return layers
    label = f"Minimum cash {money_text(minimum_cash, currency, compact=False)}"
    layers += _labelled_rule("minimum_cash", minimum_cash, label, DANGER)
    if first_breach_date is not None and not pd.isna(first_breach_date):
        breach_at = pd.Timestamp(first_breach_date)
        marker = alt.Chart(
            pd.DataFrame(
                {
                    "ds": [breach_at],
                    "minimum_cash": [minimum_cash],
                    "label": [f"First breach {_date_text(breach_at)}"],
                }
            )
        )
        layers += [
            marker.mark_rule(color=DANGER, strokeDash=[2, 2]).encode(x="ds:T"),
            marker.mark_point(color=DANGER, shape="triangle-down", size=120, filled=True).encode(
                x="ds:T", y="minimum_cash:Q", tooltip=[alt.Tooltip("label:N", title="Breach")]
            ),
            marker.mark_text(align="right", baseline="top", dx=-4, dy=6, color=DANGER).encode(
                x="ds:T", y="minimum_cash:Q", text="label:N"
            ),
        ]
    return layers


def recent_history(bands: pd.DataFrame, history_days: int | None = 180) -> pd.DataFrame:
    """Cash bands cut to the last ``history_days`` actual days and the whole forecast.

    ``bands`` as for :func:`cash_balance`; None keeps the whole history. Zooms
    the balance chart onto the forecast when years of history would squeeze it.
    """
    require_columns(bands, ["ds", "is_forecast"], "recent_history", ChartDataError)
    if history_days is None or bands.empty:
        return bands
    past = bands.loc[~bands["is_forecast"].astype(bool), "ds"]
    start = past.max() - pd.Timedelta(days=history_days) if len(past) else bands["ds"].min()
    return bands[bands["ds"] > start].reset_index(drop=True)


@_or_nothing_to_show
def cash_balance(
    bands: pd.DataFrame,
    minimum_cash: float | None,
    first_breach_date: pd.Timestamp | None = None,
    shortfall_probability: float | None = None,
    currency: str = "USD",
    title: str | None = None,
    balance_known: bool = True,
) -> alt.LayerChart:
    """The cash balance: solid in the past, dashed median ahead, P10-P90 band.

    Parameters
    ----------
    bands
        ``ds, p10, p50, p90, actual, is_forecast`` (CashOutlook.bands): ``actual``
        is drawn for past rows, ``p50`` for forecast rows.
    minimum_cash
        Drawn as a red rule with its value as label (None: no minimum to draw).
    first_breach_date
        Marked with a red triangle on the minimum line (None: no breach).
    shortfall_probability
        Probability of falling below the minimum, used in the default title.
    balance_known
        False when the opening balance is unknown: the line is then the
        cumulative net cash flow, drawn without the minimum.
    """
    layers = _balance_layers(bands, minimum_cash, first_breach_date, currency, balance_known)
    if title is None:
        title = cash_title(minimum_cash, shortfall_probability, first_breach_date, currency, balance_known,
                           history_below_minimum(bands, minimum_cash))
    return alt.layer(*layers).properties(
        title=alt.Title(title, subtitle="Solid: actual · dashed: median forecast · band: P10–P90")
    )


@_or_nothing_to_show
def cash_outlook(outlook: Any, currency: str = "USD", history_days: int | None = 180) -> alt.LayerChart:
    """:func:`cash_balance` of a ``toolkit.cash.CashOutlook``, zoomed by :func:`recent_history`.

    ``outlook`` needs ``bands``, ``minimum_cash``, ``first_breach_date`` and
    ``shortfall_probability`` (a what-if's outlook has them too), and may say
    ``balance_known`` (default True).
    """
    return cash_balance(recent_history(outlook.bands, history_days), outlook.minimum_cash,
                        outlook.first_breach_date, outlook.shortfall_probability, currency=currency,
                        balance_known=getattr(outlook, "balance_known", True))


@_or_nothing_to_show
def cash_with_commitments(outlook: Any, known: pd.DataFrame | None, currency: str = "USD",
                          history_days: int | None = 180) -> alt.VConcatChart | alt.LayerChart:
    """:func:`cash_outlook` above the money known ahead of time, day by day, on the same dates.

    ``known``: ``unique_id, ds, y, direction`` (``CashForecast.known``:
    commitments and sales already made but not yet settled; series
    ``<stage>|<direction>|committed:<category>``). The bars show what each
    dip of the balance is made of; without known money only the balance is drawn.
    """
    balance = cash_outlook(outlook, currency=currency, history_days=history_days)
    bands = recent_history(outlook.bands, history_days)
    if known is None or known.empty:
        return balance
    payments = known_payments(known[(known["ds"] >= bands["ds"].min()) & (known["ds"] <= bands["ds"].max())])
    if payments.empty:
        return balance
    bars = _money_labels(alt.Chart(payments), currency, "amount").mark_bar(size=4).encode(
        x=alt.X("ds:T", title=None, scale=alt.Scale(domain=[f"{bands['ds'].min():%Y-%m-%d}",
                                                            f"{bands['ds'].max():%Y-%m-%d}"])),
        y=alt.Y("amount:Q", axis=_money_axis(currency, "Known money (out < 0)")),
        color=alt.Color("what:N", title="Commitment / owed"),
        tooltip=[alt.Tooltip("ds:T", title="Date"), alt.Tooltip("what:N", title="What"),
                 alt.Tooltip("amount_label:N", title="Amount")],
    ).properties(height=110, title="Commitments and money owed: the same in every simulated future")
    return alt.vconcat(balance, bars).resolve_scale(color="independent")


@_or_nothing_to_show
def bank_reconciliation(table: pd.DataFrame, currency: str = "USD", tolerance: float | None = None,
                        title: str | None = None) -> alt.VConcatChart:
    """The bank's balance against the one the cash flows imply, and the difference the data does not explain.

    ``table``: ``ds, bank, flows, difference`` (``toolkit.balances.reconcile``);
    ``tolerance`` (a share of the median bank balance) is drawn around zero.
    """
    _require(table, ["ds", "bank", "flows", "difference"], "bank_reconciliation",
             "no bank balance falls within the data's period")
    long = table.melt(id_vars="ds", value_vars=["bank", "flows"], var_name="source", value_name="balance")
    long["source"] = long["source"].map({"bank": "Bank statement", "flows": "Cash flows in the data"})
    lines = _money_labels(alt.Chart(long), currency, "balance").mark_line().encode(
        x=alt.X("ds:T", title=None), y=alt.Y("balance:Q", axis=_money_axis(currency, "Balance"),
                                             scale=alt.Scale(zero=False)),
        color=alt.Color("source:N", title=None, scale=alt.Scale(range=[INK, FORECAST])),
        strokeDash=alt.StrokeDash("source:N", legend=None, scale=alt.Scale(range=[[1, 0], FUTURE_DASH])),
        tooltip=[alt.Tooltip("ds:T", title="Date"), alt.Tooltip("source:N", title="Source"),
                 alt.Tooltip("balance_label:N", title="Balance")])
    worst = table.loc[table["difference"].abs().idxmax()]
    if title is None:
        title = (f"Largest unexplained difference: {money_text(worst['difference'], currency, compact=False)} "
                 f"on {_date_text(pd.Timestamp(worst['ds']))}")
    gap = [_money_labels(alt.Chart(table[["ds", "difference"]]), currency, "difference").mark_area(
        color=DANGER, opacity=0.35, line={"color": DANGER}).encode(
        x=alt.X("ds:T", title=None), y=alt.Y("difference:Q", axis=_money_axis(currency, "Bank - flows")),
        tooltip=[alt.Tooltip("ds:T", title="Date"), alt.Tooltip("difference_label:N", title="Unexplained")])]
    if tolerance is not None:
        limit = tolerance * float(table["bank"].abs().median())
        gap += _labelled_rule("limit", limit, f"Tolerance ±{money_text(limit, currency)}", MUTED, [4, 3])
        gap += _labelled_rule("limit", -limit, "", MUTED, [4, 3])
    return alt.vconcat(lines.properties(title=title), alt.layer(*gap).properties(height=110))


@_or_nothing_to_show
def shortfall_probability(
    shortfall: pd.DataFrame, risk_limit: float | None = None, title: str | None = None
) -> alt.LayerChart:
    """Probability that cash is below the minimum, day by day.

    ``shortfall``: ``ds, probability``. ``risk_limit`` (e.g. 0.05) is drawn as a rule.
    """
    _require(shortfall, ["ds", "probability"], "shortfall_probability", "no shortfall risk was computed")
    if shortfall["probability"].isna().all():
        raise _NothingToDraw("the shortfall risk was not assessed (it needs an opening balance and a minimum cash)")
    peak = shortfall.loc[shortfall["probability"].idxmax()]
    if title is None:
        limit = f" (limit {risk_limit:.0%})" if risk_limit is not None else ""
        if peak["probability"] <= 0:
            title = f"No simulated path falls below the minimum{limit}"
        else:
            when = _date_text(pd.Timestamp(peak["ds"]))
            title = f"Shortfall risk peaks at {peak['probability']:.0%} on {when}{limit}"
    top = max(float(peak["probability"]), risk_limit or 0.0, 0.05) * 1.15
    base = alt.Chart(shortfall[["ds", "probability"]])
    y = alt.Y(
        "probability:Q", title="P(balance < minimum)", axis=alt.Axis(format="%"),
        scale=alt.Scale(domain=[0, min(top, 1.0)]),
    )
    area = base.mark_area(color=DANGER, opacity=0.25, line={"color": DANGER}).encode(
        x=alt.X("ds:T", title=None),
        y=y,
        tooltip=[
            alt.Tooltip("ds:T", title="Date"),
            alt.Tooltip("probability:Q", title="Shortfall probability", format=".1%"),
        ],
    )
    layers = [area]
    if risk_limit is not None:
        layers += _labelled_rule("risk_limit", risk_limit, f"Risk limit {risk_limit:.0%}", INK, [4, 3])
    return alt.layer(*layers).properties(title=title)


@_or_nothing_to_show
def scenario_comparison(
    comparison: pd.DataFrame, currency: str = "USD", title: str | None = None
) -> alt.HConcatChart:
    """Ending balance (P10-P90, median) and shortfall risk per scenario.

    ``comparison``: one row per scenario, the baseline first, with ``scenario,
    shortfall_probability, first_breach_date, runway_days, ending_p10,
    ending_p50, ending_p90`` (``toolkit.cash.compare_scenarios``).
    """
    cols = [
        "scenario", "shortfall_probability", "first_breach_date", "runway_days",
        "ending_p10", "ending_p50", "ending_p90",
    ]
    _require(comparison, cols, "scenario_comparison", "no scenario could be compared")
    data = comparison[cols].rename(columns=lambda c: c.removeprefix("ending_"))
    data["scenario"] = data["scenario"].astype(str)
    data["breach"] = [
        _date_text(pd.Timestamp(d)) if not pd.isna(d) else "none" for d in data["first_breach_date"]
    ]
    data["runway"] = [f"runway {r:,.0f} days" if not pd.isna(r) else "runway not assessed"
                      for r in data["runway_days"]]
    data = data.drop(columns="first_breach_date")
    if title is None and data["shortfall_probability"].isna().all():
        title = "Where each scenario leaves cash at the end of the horizon"
    if title is None:
        baseline = data.iloc[0]
        worst = data.loc[data["shortfall_probability"].idxmax()]
        if len(data) == 1 or worst["scenario"] == baseline["scenario"]:
            title = f"{baseline['scenario']}: {baseline['shortfall_probability']:.0%} shortfall risk"
        else:
            title = (
                f"{worst['scenario']} raises shortfall risk to {worst['shortfall_probability']:.0%} "
                f"({baseline['scenario']}: {baseline['shortfall_probability']:.0%})"
            )
    order = list(data["scenario"])
    base = _money_labels(alt.Chart(data), currency, "p10", "p50", "p90")
    y = alt.Y("scenario:N", title=None, sort=order)
    tooltip = [
        alt.Tooltip("scenario:N", title="Scenario"),
        alt.Tooltip("p50_label:N", title="Ending balance (median)"),
        alt.Tooltip("p10_label:N", title="P10"),
        alt.Tooltip("p90_label:N", title="P90"),
        alt.Tooltip("shortfall_probability:Q", title="Shortfall probability", format=".1%"),
        alt.Tooltip("breach:N", title="First breach"),
        alt.Tooltip("runway:N", title="Runway"),
    ]
    ending = alt.layer(
        base.mark_rule(color=BAND, strokeWidth=8).encode(
            y=y,
            x=alt.X(
                "p10:Q", axis=_money_axis(currency, "Ending balance (P10–P90, median)"),
                scale=alt.Scale(zero=False),
            ),
            x2="p90:Q",
            tooltip=tooltip,
        ),
        base.mark_point(color=FORECAST, size=90, shape="diamond").encode(y=y, x="p50:Q", tooltip=tooltip),
    ).properties(width=WIDTH // 2, height={"step": 28})
    risk = alt.layer(
        base.mark_bar(color=DANGER, opacity=0.75).encode(
            y=alt.Y("scenario:N", sort=order, axis=None),
            x=alt.X("shortfall_probability:Q", title="Shortfall probability", axis=alt.Axis(format="%")),
            tooltip=tooltip,
        ),
        base.mark_text(align="left", dx=4).encode(
            y=alt.Y("scenario:N", sort=order, axis=None), x="shortfall_probability:Q", text="runway:N"
        ),
    ).properties(width=WIDTH // 2, height={"step": 28})
    if data["shortfall_probability"].isna().all():
        # no opening balance or no minimum: no risk to compare, only where each scenario ends
        return ending.properties(title=alt.Title(title, subtitle="The shortfall risk was not assessed"))
    return alt.hconcat(ending, risk).properties(
        title=alt.Title(title, subtitle="Runway: days the median balance stays at or above the minimum")
    )


# ---------------------------------------------------------------- journey


@_or_nothing_to_show
def rows_per_month(tables: dict[str, pd.DataFrame], title: str | None = None) -> alt.Chart:
    """Accepted rows per month and table: a month near zero usually means a missing export.

    ``tables``: the canonical tables by name (each with a ``ts`` column).
    """
    if not any(len(table) for table in tables.values()):
        raise _NothingToDraw("no table holds an accepted row")
    counts = pd.concat(
        [table["ts"].dt.to_period("M").dt.to_timestamp().value_counts().rename_axis("month")
         .rename("rows").reset_index().assign(table=name)
         for name, table in tables.items() if len(table)],
        ignore_index=True,
    )
    return alt.Chart(counts, title=title or "Accepted rows per month").mark_line(point=True).encode(
        x=alt.X("month:T", title="Month"),
        y=alt.Y("rows:Q", title="Rows", axis=alt.Axis(format=",.0f")),
        color=alt.Color("table:N", title="Table"),
        tooltip=[alt.Tooltip("table:N", title="Table"), alt.Tooltip("month:T", title="Month", format="%b %Y"),
                 alt.Tooltip("rows:Q", title="Rows", format=",")],
    ).properties(width=640, height=260)


def rejects_by_reason(summary: dict[str, dict], title: str | None = None) -> alt.Chart:
    """Rejected rows by table and reason, most frequent first.

    ``summary``: ``toolkit.ingest.Ingested.summary()`` (per table a
    ``rejects_by_reason`` mapping of reason to count).
    """
    data = pd.DataFrame(
        [(table, reason, count) for table, info in summary.items()
         for reason, count in info["rejects_by_reason"].items()],
        columns=["table", "reason", "problems"],
    )
    total = int(data["problems"].sum())
    if not total:  # an empty axis and a legend of no table would read as a broken chart
        return nothing_to_show("every row of every table was accepted", title=title or "No row was rejected")
    return alt.Chart(data, title=title or f"Rejected: {total:,} problems").mark_bar().encode(
        # whole problems: a handful of rejects must not read as fractions on the axis
        x=alt.X("problems:Q", title="Problems", axis=alt.Axis(format=",d", tickMinStep=1)),
        y=alt.Y("reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
        color=alt.Color("table:N", title="Table"),
        tooltip=[alt.Tooltip("table:N", title="Table"), alt.Tooltip("reason:N", title="Reason"),
                 alt.Tooltip("problems:Q", title="Problems", format=",")],
    ).properties(width=520)


@_or_nothing_to_show
def funnel(frame: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """Customers reaching each stage, in journey order, with step conversion.

    ``frame``: one funnel (``toolkit.journey.funnel`` without ``by``) in
    journey order: ``stage, customers, stage_conversion`` (share of the
    previous stage), ``overall_conversion, drop_off``. Stages the data cannot
    show (no customer count) are left out and named in the subtitle.
    """
    cols = ["stage", "customers", "stage_conversion", "overall_conversion", "drop_off"]
    _require(frame, cols, "funnel", "no stage was reached")
    data = frame.loc[frame["customers"].notna(), cols].reset_index(drop=True)
    if data.empty:
        raise _NothingToDraw("the data shows no stage's customers")
    unseen = frame.loc[frame["customers"].isna(), "stage"].astype(str).tolist()
    data = data.rename(columns={"stage_conversion": "conversion"})
    data["stage"] = data["stage"].astype(str)
    data["label"] = [
        f"{c:,.0f}" if i == 0 else f"{c:,.0f} · {conv:.0%} of previous"
        for i, (c, conv) in enumerate(zip(data["customers"], data["conversion"], strict=True))
    ]
    if title is None and len(data) > 1:
        steps = data.iloc[1:]
        worst = steps.loc[steps["conversion"].idxmin()]
        before = data.loc[worst.name - 1, "stage"]
        title = (
            f"{data['overall_conversion'].iloc[-1]:.0%} reach {data['stage'].iloc[-1]}; "
            f"biggest drop from {before} to {worst['stage']} ({worst['conversion']:.0%} continue)"
        )
    order = list(data["stage"])
    base = alt.Chart(data)
    y = alt.Y("stage:N", sort=order, title=None)
    tooltip = [
        alt.Tooltip("stage:N", title="Stage"),
        alt.Tooltip("customers:Q", title="Customers", format=","),
        alt.Tooltip("conversion:Q", title="From previous stage", format=".1%"),
        alt.Tooltip("overall_conversion:Q", title="From first stage", format=".1%"),
        alt.Tooltip("drop_off:Q", title="Drop-off", format=",.3~r"),
    ]
    bars = base.mark_bar(color=FORECAST).encode(
        y=y, x=alt.X("customers:Q", title="Customers", axis=alt.Axis(format=",.0f")), tooltip=tooltip
    )
    text = base.mark_text(align="left", dx=4).encode(y=y, x="customers:Q", text="label:N")
    title = title or "Customers by journey stage"
    if unseen:
        title = alt.Title(title, subtitle=f"Not in the data: {', '.join(unseen)}")
    return alt.layer(bars, text).properties(title=title, height={"step": 34})


def _period_encoding(values: pd.Series, field: str, title: str | None) -> alt.X:
    if pd.api.types.is_datetime64_any_dtype(values):
        return alt.X(f"{field}:T", title=title)
    return alt.X(f"{field}:O", title=title)


@_or_nothing_to_show
def cohort_retention(retention: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """Retention heatmap: cohorts (rows) by periods since first purchase (columns).

    ``retention``: ``cohort, period`` (int, periods since first purchase),
    ``retention`` (share of the cohort buying in that period).
    """
    _require(retention, ["cohort", "period", "retention"], "cohort_retention", "no customer cohort yet")
    data = retention[["cohort", "period", "retention"]].copy()
    if pd.api.types.is_datetime64_any_dtype(data["cohort"]):
        data["cohort"] = data["cohort"].dt.strftime("%Y-%m")
    data["cohort"] = data["cohort"].astype(str)
    if title is None:
        later = data[data["period"] > 0]
        if later.empty:
            title = "Cohort retention by periods since first purchase"
        else:
            first = later["period"].min()
            share = later.loc[later["period"] == first, "retention"].mean()
            periods = f"{first} period{'s' if first > 1 else ''}"
            title = f"On average {share:.0%} of a cohort buys again {periods} after its first purchase"
    cohorts = sorted(data["cohort"].unique())
    after_first = data.loc[data["period"] > 0, "retention"]
    top = float(after_first.max()) if not after_first.empty and after_first.max() > 0 else 1.0
    base = alt.Chart(data).encode(
        x=alt.X("period:O", title="Periods since first purchase", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cohort:O", title="Cohort", sort=cohorts),
    )
    tooltip = [
        alt.Tooltip("cohort:O", title="Cohort"),
        alt.Tooltip("period:O", title="Period"),
        alt.Tooltip("retention:Q", title="Retention", format=".1%"),
    ]
    heat = base.mark_rect().encode(
        color=alt.Color(
            "retention:Q", title="Retention",
            # Period 0 is 100% by definition: scale to the later periods so their differences show.
            scale=alt.Scale(scheme="blues", domain=[0, top], clamp=True),
            legend=alt.Legend(format=".0%", orient="right"),
        ),
        tooltip=tooltip,
    )
    show_text = data["period"].nunique() <= 24 and len(cohorts) <= 40
    layers = [heat]
    if show_text:
        layers.append(
            base.mark_text(fontSize=9).encode(
                text=alt.Text("retention:Q", format=".0%"),
                color=alt.condition(alt.datum.retention > top * 0.6, alt.value("white"), alt.value(INK)),
            )
        )
    step = max(14, min(30, 900 // max(1, data["period"].nunique())))
    return alt.layer(*layers).properties(title=title, width={"step": step}, height={"step": 18})


#: How each KPI is labelled and formatted: "money", else d3 formats for axis and tooltip.
KPI_FORMATS: dict[str, tuple[str, str, str]] = {
    "revenue": ("Revenue", "money", "money"),
    "orders": ("Orders", ",.0f", ",.0f"),
    "customers": ("Customers", ",.0f", ",.0f"),
    "average_order_value": ("Average order value", "money", "money"),
    "conversion_rate": ("Conversion rate", ".0%", ".1%"),
    "repeat_purchase_rate": ("Repeat purchase rate", ".0%", ".1%"),
    "new_revenue": ("Revenue from new customers", "money", "money"),
    "returning_revenue": ("Revenue from returning customers", "money", "money"),
    "satisfaction": ("Satisfaction (rating 1–5)", ".1f", ".2f"),
}


def _figure_text(value: float, figure: str, currency: str, markdown: bool) -> str:
    """One KPI value as a reader writes it: money with its symbol, counts with separators."""
    kind = KPI_FORMATS[figure][1]
    if kind == "money":
        return (money_markdown if markdown else money_text)(value, currency)
    return format(value, kind)


def month_comparison_text(comparison: MonthComparison, figures: Sequence[str] = ("revenue",),
                          currency: str = "USD", markdown: bool = False) -> str:
    """One sentence on ``figures`` in the last complete month, against the month before and a year before.

    ``comparison`` is ``toolkit.journey.compare_months``'s: complete months
    only, so a month the export cut short never reads as a collapse in sales.
    ``markdown`` escapes the currency symbol for a Markdown cell.
    """
    said = []
    for figure in figures:
        row = comparison.figures.loc[figure]
        changes = [
            f"{'up' if change >= 0 else 'down'} {abs(change):.0%} on {month:%b %Y} "
            f"({_figure_text(before, figure, currency, markdown)})"
            for month, before, change in (
                (comparison.previous_month, row["previous_month"], row["change_vs_previous_month"]),
                (comparison.year_before, row["year_before"], row["change_vs_year_before"]))
            if month is not None and not pd.isna(change)
        ]
        now = f"{KPI_FORMATS[figure][0].lower()} {_figure_text(row['month'], figure, currency, markdown)}"
        said.append(", ".join([now, " and ".join(changes)]) if changes else now)
    sentence = f"In {comparison.month:%b %Y}, the last complete month: {'; '.join(said)}."
    if comparison.previous_month is None and comparison.year_before is None:
        sentence += " The data holds no complete month before it to compare with."
    return sentence


@_or_nothing_to_show
def kpi_small_multiples(
    kpis: pd.DataFrame, currency: str = "USD", columns: int = 3, title: str | None = None,
    comparison: MonthComparison | None = None,
) -> alt.ConcatChart:
    """One small line chart per KPI over the periods; a KPI without any value gets no panel.

    ``kpis``: ``ds`` (the period, as ``toolkit.journey.kpis`` names it) plus
    any of ``revenue, orders, customers, average_order_value,
    conversion_rate, repeat_purchase_rate, new_revenue, returning_revenue,
    satisfaction``. The default title quotes ``comparison``
    (``toolkit.journey.compare_months``): revenue in the last complete month,
    never in a period the data covers only in part. KPIs left out are named
    in the subtitle.
    """
    _require(kpis, ["ds"], "kpi_small_multiples", "no period with key figures")
    given = [k for k in KPI_FORMATS if k in kpis.columns]
    if not given:
        raise ChartDataError(f"kpi_small_multiples: no KPI column found (expected some of {list(KPI_FORMATS)})")
    present = [k for k in given if kpis[k].notna().any()]
    if not present:
        raise _NothingToDraw("no key figure has a value yet")
    empty = [KPI_FORMATS[k][0].lower() for k in given if k not in present]
    data = kpis[["ds", *present]].rename(columns={"ds": "period"}).sort_values("period").reset_index(drop=True)
    if title is None and comparison is not None:
        title = month_comparison_text(comparison, ("revenue",), currency)
    x = _period_encoding(data["period"], "period", None)
    panels = []
    for kpi in present:
        label, axis_format, tip_format = KPI_FORMATS[kpi]
        base = alt.Chart(data[["period", kpi]])
        if axis_format == "money":
            base = _money_labels(base, currency, kpi)
            axis = _money_axis(currency)
            tip = alt.Tooltip(f"{kpi}_label:N", title=label)
        else:
            axis = alt.Axis(format=axis_format)
            tip = alt.Tooltip(f"{kpi}:Q", title=label, format=tip_format)
        panels.append(
            base.mark_line(color=FORECAST, point=True)
            .encode(
                x=x,
                y=alt.Y(f"{kpi}:Q", title=None, axis=axis, scale=alt.Scale(zero=False)),
                tooltip=[alt.Tooltip(x.shorthand, title="Period"), tip],
            )
            .properties(title=alt.Title(label, fontSize=12), width=200, height=120)
        )
    title = title or "Key figures by period"
    if empty:
        title = alt.Title(title, subtitle=f"No data for: {', '.join(empty)}")
    return alt.concat(*panels, columns=columns).properties(title=title)


@_or_nothing_to_show
def time_to_convert(histogram: pd.DataFrame, median_days: float | None = None,
                    to_stage: str = "purchase", title: str | None = None) -> alt.LayerChart:
    """How many days converted customers took to reach a stage, as a histogram.

    ``histogram``: ``from_day, to_day, customers, share`` (``toolkit.journey.TimeToConvert.histogram``);
    ``median_days`` is drawn as a rule and stated in the default title.
    """
    _require(histogram, ["from_day", "to_day", "customers", "share"], "time_to_convert",
             "nobody reached the stage within the window")
    data = histogram[["from_day", "to_day", "customers", "share"]]
    if title is None:
        title = (f"Half of those who reach {to_stage} get there within {median_days:.0f} days of their first touch"
                 if median_days is not None and not pd.isna(median_days)
                 else f"Days from the first touch to {to_stage}")
    bars = alt.Chart(data).mark_rect(color=FORECAST).encode(
        x=alt.X("from_day:Q", title="Days after the first touch"),
        x2="to_day:Q",
        y=alt.Y("customers:Q", title="Customers", axis=alt.Axis(format=",.0f")),
        y2=alt.datum(0),
        tooltip=[
            alt.Tooltip("from_day:Q", title="From day", format=",.0f"),
            alt.Tooltip("to_day:Q", title="To day", format=",.0f"),
            alt.Tooltip("customers:Q", title="Customers", format=","),
            alt.Tooltip("share:Q", title="Share of converted", format=".1%"),
        ],
    )
    layers = [bars]
    if median_days is not None and not pd.isna(median_days):
        median = alt.Chart(pd.DataFrame({"days": [median_days], "label": [f"median {median_days:.1f} days"]}))
        layers += [
            median.mark_rule(color=INK, strokeDash=[4, 3]).encode(x="days:Q"),
            median.mark_text(align="left", baseline="top", dx=4, y=4, color=INK).encode(x="days:Q", text="label:N"),
        ]
    return alt.layer(*layers).properties(title=title, width=WIDTH, height=HEIGHT)


@_or_nothing_to_show
def historical_clv(kpis: pd.DataFrame, currency: str = "USD", title: str | None = None) -> alt.Chart:
    """Revenue so far per customer acquired so far, period by period.

    ``kpis``: ``ds, historical_clv`` (``toolkit.journey.kpis``).
    """
    _require(kpis, ["ds", "historical_clv"], "historical_clv", "no period with customer value")
    data = kpis[["ds", "historical_clv"]].dropna().rename(columns={"ds": "period"})
    if data.empty:
        raise _NothingToDraw("no customer was won yet")
    if title is None and not data.empty:
        title = (f"A customer has brought in {money_text(data['historical_clv'].iloc[-1], currency)} "
                 "on average so far")
    base = _money_labels(alt.Chart(data), currency, "historical_clv")
    return base.mark_line(color=FORECAST, point=True).encode(
        x=_period_encoding(data["period"], "period", None),
        y=alt.Y("historical_clv:Q", axis=_money_axis(currency, "Historical CLV"), scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("period:T", title="Period"), alt.Tooltip("historical_clv_label:N", title="Historical CLV")],
    ).properties(title=title or "Historical customer value", width=WIDTH, height=HEIGHT // 2 + 40)



# ---------------------------------------------------------------- opportunities


@_or_nothing_to_show
def segment_value(scores: pd.DataFrame, currency: str = "USD", title: str | None = None) -> alt.HConcatChart:
    """Customers and expected opportunity value per RFM segment.

    ``scores``: ``customer_id, segment, expected_value`` (one row per customer).
    """
    _require(scores, ["customer_id", "segment", "expected_value"], "segment_value", "no customer was scored")
    totals = (
        scores.groupby("segment", observed=True)
        .agg(customers=("customer_id", "nunique"), expected_value=("expected_value", "sum"))
        .reset_index()
        .sort_values("expected_value", ascending=False)
    )
    totals["segment"] = totals["segment"].astype(str)
    totals["share"] = totals["expected_value"] / totals["expected_value"].sum()
    if title is None:
        top = totals.iloc[0]
        title = (
            f"{str(top['segment']).capitalize()} hold {top['share']:.0%} of the expected opportunity value "
            f"with {top['customers'] / totals['customers'].sum():.0%} of customers"
        )
    order = list(totals["segment"])
    base = _money_labels(alt.Chart(totals), currency, "expected_value")
    y = alt.Y("segment:N", sort=order, title=None)
    tooltip = [
        alt.Tooltip("segment:N", title="Segment"),
        alt.Tooltip("customers:Q", title="Customers", format=","),
        alt.Tooltip("expected_value_label:N", title="Expected value"),
        alt.Tooltip("share:Q", title="Share of value", format=".0%"),
    ]
    customers = base.mark_bar(color=MUTED).encode(
        y=y, x=alt.X("customers:Q", title="Customers"), tooltip=tooltip
    ).properties(width=WIDTH // 2 - 40, height={"step": 24})
    value = base.mark_bar(color=FORECAST).encode(
        y=alt.Y("segment:N", sort=order, axis=None),
        x=alt.X("expected_value:Q", axis=_money_axis(currency, "Expected opportunity value", tick_count=4)),
        tooltip=tooltip,
    ).properties(width=WIDTH // 2 - 40, height={"step": 24})
    return alt.hconcat(customers, value).properties(title=title)


@_or_nothing_to_show
def rfm_scatter(scores: pd.DataFrame, currency: str = "USD", title: str | None = None) -> alt.Chart:
    """Customers by recency and frequency, coloured by RFM segment, sized by spend.

    ``scores``: ``customer_id, segment, recency, frequency, monetary`` (plus
    ``probability_alive``, ``clv`` shown in tooltips when present).
    """
    cols = ["customer_id", "segment", "recency", "frequency", "monetary"]
    _require(scores, cols, "rfm_scatter", "no customer was scored")
    extra = [c for c in ("probability_alive", "clv") if c in scores.columns]
    data = scores[cols + extra].copy()
    data["segment"] = data["segment"].astype(str)
    base = _money_labels(alt.Chart(data), currency, "monetary", *(["clv"] if "clv" in extra else []))
    tooltip = [
        alt.Tooltip("customer_id:N", title="Customer"),
        alt.Tooltip("segment:N", title="Segment"),
        alt.Tooltip("recency:Q", title="Recency"),
        alt.Tooltip("frequency:Q", title="Frequency"),
        alt.Tooltip("monetary_label:N", title="Monetary"),
    ]
    if "probability_alive" in extra:
        tooltip.append(alt.Tooltip("probability_alive:Q", title="P(active)", format=".0%"))
    if "clv" in extra:
        tooltip.append(alt.Tooltip("clv_label:N", title="CLV"))
    return base.mark_circle(opacity=0.55).encode(
        x=alt.X("recency:Q", title="Recency"),
        y=alt.Y("frequency:Q", title="Frequency (repeat purchases)"),
        color=alt.Color("segment:N", title="Segment"),
        size=alt.Size("monetary:Q", title="Monetary", legend=None, scale=alt.Scale(range=[10, 160])),
        tooltip=tooltip,
    ).properties(title=title or f"{data['customer_id'].nunique():,} customers by recency and frequency")


def _sparse_ticks(values: pd.Series, most: int = 15) -> list:
    """About ``most`` evenly spaced tick values, so dense ordinal axes stay legible."""
    unique = sorted(values.unique())
    step = max(1, math.ceil(len(unique) / most))
    return [v.item() if hasattr(v, "item") else v for v in unique[::step]]


@_or_nothing_to_show
def probability_alive_matrix(matrix: pd.DataFrame, title: str | None = None) -> alt.Chart:
    """Heatmap of P(active) over purchase frequency (rows) and recency (columns).

    ``matrix``: ``frequency, recency, probability_alive`` (one row per cell).
    """
    _require(matrix, ["frequency", "recency", "probability_alive"], "probability_alive_matrix",
             "no repeat-buying model was fitted")
    data = matrix[["frequency", "recency", "probability_alive"]]
    if title is None:
        top = data["frequency"].max()
        stale = data[(data["frequency"] == top)].sort_values("recency")
        first, last = stale.iloc[0], stale.iloc[-1]
        title = (
            f"A customer with {top:g} repeat purchases is {first['probability_alive']:.0%} likely still active if "
            f"the last came {first['recency']:,.0f} days after the first, {last['probability_alive']:.0%} if "
            f"{last['recency']:,.0f} days after"
        )
    return alt.Chart(data).mark_rect().encode(
        x=alt.X("recency:O", title="Days from the first purchase to the last (recency)",
                axis=alt.Axis(values=_sparse_ticks(data["recency"]), labelAngle=0)),
        y=alt.Y(
            "frequency:O", title="Frequency (repeat purchases)", sort="descending",
            axis=alt.Axis(values=_sparse_ticks(data["frequency"])),
        ),
        color=alt.Color(
            "probability_alive:Q", title="P(active)", scale=alt.Scale(scheme="viridis", domain=[0, 1]),
            legend=alt.Legend(format=".0%", orient="right"),
        ),
        tooltip=[
            alt.Tooltip("frequency:Q", title="Frequency"),
            alt.Tooltip("recency:Q", title="Days from first to last purchase"),
            alt.Tooltip("probability_alive:Q", title="P(active)", format=".1%"),
        ],
    ).properties(title=title, width=WIDTH, height=HEIGHT)


def opportunity_weeks(scores: pd.DataFrame, freq: str = "W-SUN") -> pd.DataFrame:
    """Expected opportunity value and customers per week and segment.

    Weeks run Monday to Sunday (``W-SUN``) and are labelled by their Monday;
    each customer counts in the week their best window starts. ``scores``:
    ``customer_id, segment, window_start, expected_value``. Returns ``ds,
    segment, expected_value, customers``.
    """
    require_columns(scores, ["customer_id", "segment", "window_start", "expected_value"], "opportunity_weeks",
                    ChartDataError)
    weeks = pd.to_datetime(scores["window_start"]).dt.to_period(freq).dt.start_time
    return (
        scores.assign(ds=weeks, segment=scores["segment"].astype(str))
        .groupby(["ds", "segment"], observed=True)
        .agg(expected_value=("expected_value", "sum"), customers=("customer_id", "nunique"))
        .reset_index()
    )


def _opportunity_bars(weekly: pd.DataFrame, currency: str, x_title: str | None) -> alt.Chart:
    """Weekly bars of expected opportunity value, stacked by segment, spanning their week.

    Each segment keeps its colour whatever part of the weeks a selection shows:
    the colour scale's domain is every segment in ``weekly``.
    """
    data = weekly.sort_values(["ds", "segment"]).reset_index(drop=True)
    data["top"] = data.groupby("ds")["expected_value"].cumsum()
    data["bottom"] = data["top"] - data["expected_value"]
    data["bar_start"] = data["ds"] + pd.Timedelta(hours=12)
    data["bar_end"] = data["ds"] + pd.Timedelta(days=7) - pd.Timedelta(hours=12)
    base = _money_labels(alt.Chart(data), currency, "expected_value")
    return base.mark_rect().encode(
        x=alt.X("bar_start:T", title=x_title, axis=alt.Axis(format=WEEK_FORMAT)),
        x2="bar_end:T",
        y=alt.Y("bottom:Q", axis=_money_axis(currency, "Expected opportunity value")),
        y2="top:Q",
        color=alt.Color("segment:N", title="Segment", scale=alt.Scale(domain=sorted(data["segment"].unique()))),
        tooltip=[
            alt.Tooltip("ds:T", title="Week of"),
            alt.Tooltip("segment:N", title="Segment"),
            alt.Tooltip("expected_value_label:N", title="Expected value"),
            alt.Tooltip("customers:Q", title="Customers", format=","),
        ],
    )


@_or_nothing_to_show
def campaign_timing(
    evaluations: pd.DataFrame,
    risk_limit: float,
    selected_week: pd.Timestamp | None = None,
    currency: str = "USD",
    title: str | None = None,
) -> alt.VConcatChart:
    """Shortfall risk before/after a campaign by launch week, feasible weeks shaded.

    ``evaluations``: ``launch_week, shortfall_probability_before,
    shortfall_probability_after, expected_net_gain, feasible`` (one row per
    candidate launch week). ``selected_week`` is marked with a rule.

    When the shortfall risk was not assessed (NaN: no opening balance or no
    costs), only the expected net gain by launch week is drawn, and the title
    and subtitle say the risk was not assessed.
    """
    cols = [
        "launch_week", "shortfall_probability_before", "shortfall_probability_after",
        "expected_net_gain", "feasible",
    ]
    _require(evaluations, cols, "campaign_timing", "no launch week was evaluated")
    data = evaluations[cols].sort_values("launch_week").reset_index(drop=True)
    data["feasible"] = data["feasible"].astype(bool)
    data["week_end"] = data["launch_week"] + pd.Timedelta(days=7)
    # Bars span their week, with a small gap between neighbours.
    data["bar_start"] = data["launch_week"] + pd.Timedelta(hours=12)
    data["bar_end"] = data["week_end"] - pd.Timedelta(hours=12)
    risk_assessed = bool(data["shortfall_probability_after"].notna().any())
    data["verdict"] = np.where(data["feasible"], "feasible", "too risky" if risk_assessed else "risk not assessed")
    if title is None:
        title = _campaign_title(data, risk_limit, selected_week, currency, risk_assessed)

    long = data.melt(
        id_vars=["launch_week"],
        value_vars=["shortfall_probability_before", "shortfall_probability_after"],
        var_name="when",
        value_name="probability",
    )
    long["when"] = long["when"].map(
        {"shortfall_probability_before": "without campaign", "shortfall_probability_after": "with campaign"}
    )
    x = alt.X("launch_week:T", title="Launch week", axis=alt.Axis(format=WEEK_FORMAT))
    shade = alt.Chart(data[data["feasible"]]).mark_rect(color=GOOD, opacity=0.15).encode(
        x=x, x2="week_end:T", tooltip=[alt.Tooltip("launch_week:T", title="Feasible launch week")]
    )
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=x,
        y=alt.Y("probability:Q", title="Shortfall probability", axis=alt.Axis(format="%")),
        color=alt.Color(
            "when:N", title=None,
            scale=alt.Scale(domain=["without campaign", "with campaign"], range=[MUTED, DANGER]),
        ),
        tooltip=[
            alt.Tooltip("launch_week:T", title="Launch week"),
            alt.Tooltip("when:N", title="Case"),
            alt.Tooltip("probability:Q", title="Shortfall probability", format=".1%"),
        ],
    )
    risk_layers = [
        shade, lines, *_labelled_rule("risk_limit", risk_limit, f"Risk limit {risk_limit:.0%}", INK, [4, 3])
    ]
    gain_base = _money_labels(alt.Chart(data), currency, "expected_net_gain")
    gain_layers = [
        gain_base.mark_rect().encode(
            x=alt.X("bar_start:T", title="Launch week", axis=alt.Axis(format=WEEK_FORMAT)),
            x2="bar_end:T",
            y=alt.Y("expected_net_gain:Q", axis=_money_axis(currency, "Expected net gain")),
            y2=alt.datum(0),
            color=alt.Color(
                "verdict:N", title=None,
                scale=alt.Scale(domain=["feasible", "too risky"], range=[GOOD, MUTED]) if risk_assessed
                else alt.Scale(domain=["risk not assessed"], range=[MUTED]),
            ),
            tooltip=[
                alt.Tooltip("launch_week:T", title="Launch week"),
                alt.Tooltip("expected_net_gain_label:N", title="Expected net gain"),
                alt.Tooltip("verdict:N", title="Verdict"),
            ],
        )
    ]
    if selected_week is not None:
        chosen = alt.Chart(pd.DataFrame({"launch_week": [pd.Timestamp(selected_week)]}))
        marker = chosen.mark_rule(color=INK, strokeWidth=2).encode(x="launch_week:T")
        risk_layers.append(marker)
        gain_layers.append(marker)
    gain = alt.layer(*gain_layers).properties(height=120)
    if not risk_assessed:
        # a risk panel of NaN would be empty: the gain by week is what can be said
        return alt.vconcat(gain).resolve_scale(color="independent").properties(title=alt.Title(
            title, subtitle="The shortfall risk was not assessed: it needs an opening balance, a minimum cash "
                            "and costs"))
    risk = alt.layer(*risk_layers).properties(height=180)
    return alt.vconcat(risk, gain).resolve_scale(x="shared", color="independent").properties(
        title=alt.Title(title, subtitle="Green weeks keep the shortfall risk within the limit")
    )


def _campaign_title(
    data: pd.DataFrame, risk_limit: float, selected_week: pd.Timestamp | None, currency: str,
    risk_assessed: bool = True,
) -> str:
    if selected_week is not None:
        rows = data[data["launch_week"] == pd.Timestamp(selected_week)]
        if not rows.empty:
            row = rows.iloc[0]
            if not risk_assessed:
                return (f"Launching the week of {_date_text(row['launch_week'])}: net gain "
                        f"{money_text(row['expected_net_gain'], currency)}; shortfall risk not assessed")
            verdict = "feasible" if row["feasible"] else f"too risky (limit {risk_limit:.0%})"
            return (
                f"Launching the week of {_date_text(row['launch_week'])}: shortfall risk "
                f"{row['shortfall_probability_before']:.0%} → {row['shortfall_probability_after']:.0%}, "
                f"net gain {money_text(row['expected_net_gain'], currency)}, {verdict}"
            )
    if not risk_assessed:
        best = data.loc[data["expected_net_gain"].idxmax()]
        return (f"Expected net gain by launch week, up to {money_text(best['expected_net_gain'], currency)}; "
                "shortfall risk not assessed")
    feasible = data[data["feasible"]]
    if feasible.empty:
        return f"No launch week keeps the shortfall risk within {risk_limit:.0%}"
    best = feasible.loc[feasible["expected_net_gain"].idxmax()]
    return (
        f"Best feasible launch: week of {_date_text(best['launch_week'])}, "
        f"net gain {money_text(best['expected_net_gain'], currency)} at "
        f"{best['shortfall_probability_after']:.0%} shortfall risk"
    )


@_or_nothing_to_show
def cash_opportunities_linked(
    bands: pd.DataFrame,
    scores: pd.DataFrame,
    minimum_cash: float | None,
    first_breach_date: pd.Timestamp | None = None,
    currency: str = "USD",
    title: str | None = None,
    balance_known: bool = True,
) -> alt.VConcatChart:
    """Brush a period on the balance chart to see the opportunities opening in it.

    Pure Vega-Lite (an interval selection filtering the chart below), so it
    stays interactive in a static HTML report. ``bands`` as for
    :func:`cash_balance`; ``scores`` as for :func:`opportunity_weeks`.
    """
    brush = alt.selection_interval(encodings=["x"], name="period")
    layers = _balance_layers(bands, minimum_cash, first_breach_date, currency, balance_known)
    layers[0] = layers[0].add_params(brush)
    upper = alt.layer(*layers).properties(
        title=alt.Title(
            title or cash_title(minimum_cash, None, first_breach_date, currency, balance_known,
                                history_below_minimum(bands, minimum_cash)),
            subtitle="Drag across the balance to pick a period, click it to pick all; the bars below follow",
        )
    )
    if scores.empty:
        lower = nothing_to_show("no customer is likely to buy again within the horizon")
    else:
        weekly = opportunity_weeks(scores)
        bars = _opportunity_bars(weekly, currency, "Week the buying window opens").transform_filter(brush)
        # an empty period would leave a blank panel: say why instead
        selected = f"!length(data('{brush.name}_store')) || vlSelectionTest('{brush.name}_store', datum)"
        empty = (
            alt.Chart(weekly).transform_calculate(inside=f"({selected}) ? 1 : 0")
            .transform_aggregate(inside="sum(inside)")
            .transform_filter(alt.datum.inside == 0)
            .mark_text(fontSize=13, color=MUTED, align="center")
            .encode(text=alt.value("No buying window opens in the selected period"),
                    x=alt.value(WIDTH / 2), y=alt.value(70))
        )
        lower = alt.layer(bars, empty).properties(
            height=160, title="Opportunities opening in the selected period (all when none)")
    return alt.vconcat(upper, lower).resolve_scale(color="independent")


# ---------------------------------------------------------------- backtests

_SCORE_COLUMN = re.compile(r"^(.+)_(mae|mase|coverage)$")

#: A MASE at or below this is no error at all: the windows held nothing to get wrong.
_NO_ERROR = 1e-9

#: One colour per forecasting model on every chart: the served models in blues and greens, the
#: simple rules they must beat in warm colours.
MODEL_COLORS = {
    "prophet": "#2563eb",
    "ets": "#0d9488",
    "theta": "#7c3aed",
    "combined": "#1f2937",
    "weekday_mean": "#f59e0b",
    "seasonal_naive": "#dc2626",
}


@_or_nothing_to_show
def backtest_scores(
    diagnostics: pd.DataFrame, nominal_coverage: float = 0.8, title: str | None = None
) -> alt.HConcatChart:
    """Backtest MASE and interval coverage per series, the served model against baselines.

    ``diagnostics`` (``ForecastResult.diagnostics``): ``unique_id, model``
    (the model served) and score columns named ``<model>_<metric>`` for
    metrics ``mase`` and ``coverage`` (``mae`` optional), e.g.
    ``prophet_mase, seasonal_naive_mase, prophet_coverage``.

    The served model's coverage is ``coverage_calibrated`` when the
    diagnostics have it: its band is scaled after the backtest, and a point
    at its unscaled coverage (a third of days for a combination of models
    whose paths agree) beside the 80% line would say the band served is
    useless when it holds. The other models' points are as they came.

    A series whose every tested window moved no money gives a rule that
    copies last week a MASE of 0: nothing was there to score, so its label
    says so and it stays out of the medians in the title. Each model keeps
    its colour from chart to chart (``MODEL_COLORS``).
    """
    _require(diagnostics, ["unique_id", "model"], "backtest_scores", "no series was forecast")
    score_cols = [c for c in diagnostics.columns if _SCORE_COLUMN.match(c)]
    if not any(c.endswith("_mase") for c in score_cols):
        raise ChartDataError(
            f"backtest_scores: required columns '<model>_mase' missing (got {list(diagnostics.columns)})"
        )
    long = diagnostics.melt(
        id_vars=["unique_id", "model"], value_vars=score_cols, var_name="score", value_name="value"
    ).rename(columns={"model": "served"})
    parts = long["score"].str.extract(_SCORE_COLUMN)
    long["candidate"], long["metric"] = parts[0], parts[1]
    long["is_served"] = np.where(long["candidate"] == long["served"], "served", "not served")
    if "coverage_calibrated" in diagnostics:  # the served band is scaled: show what it reaches
        scaled = long["unique_id"].map(diagnostics.set_index("unique_id")["coverage_calibrated"])
        served_coverage = (long["is_served"] == "served") & (long["metric"] == "coverage") & scaled.notna()
        long.loc[served_coverage, "value"] = scaled[served_coverage]
    long = long.dropna(subset=["value"]).drop(columns="score")
    mase = long[long["metric"] == "mase"]
    if mase.empty:
        raise _NothingToDraw("no series had enough history to be tried on the past")
    unscored = set(mase.loc[mase["value"] <= _NO_ERROR, "unique_id"])
    long["series"] = [series_label(uid) + (" – no money in the tested weeks" if uid in unscored else "")
                      for uid in long["unique_id"]]
    scored = mase[~mase["unique_id"].isin(unscored)]
    if title is None:
        title = "How each model did on the past"
    medians = scored.groupby("candidate")["value"].median().sort_values()
    subtitle = ["Median MASE (lower is better): " + ", ".join(f"{m} {v:.2f}" for m, v in medians.items())
                if len(medians) else "No series moved money in the tested weeks: nothing to score"]
    if unscored:
        subtitle.append(f"{len(unscored)} series moved no money in the tested weeks: their scores say nothing")
    labels = long.drop_duplicates("unique_id").sort_values("unique_id")["series"].tolist()
    y = alt.Y("series:N", title=None, sort=labels, axis=alt.Axis(labelLimit=360))
    known = list(MODEL_COLORS)
    candidates = sorted(long["candidate"].unique(), key=lambda m: (known.index(m) if m in known else len(known), m))
    color = alt.Color("candidate:N", title="Model", scale=alt.Scale(
        domain=candidates, range=[MODEL_COLORS.get(m, MUTED) for m in candidates]),
        legend=alt.Legend(orient="bottom", columns=4))
    shape = alt.Shape(
        "is_served:N", title=None, scale=alt.Scale(domain=["served", "not served"], range=["diamond", "circle"]),
        legend=alt.Legend(orient="bottom"),
    )
    tooltip = [
        alt.Tooltip("series:N", title="Series"),
        alt.Tooltip("candidate:N", title="Model"),
        alt.Tooltip("value:Q", title="Score", format=".3f"),
        alt.Tooltip("served:N", title="Model served"),
    ]
    height = {"step": 22}

    def panel(metric: str, reference: float, x_title: str, fmt: str, labelled: bool) -> alt.LayerChart:
        points = alt.Chart(long[long["metric"] == metric]).mark_point(size=70, filled=True, opacity=0.85).encode(
            y=y if labelled else alt.Y("series:N", sort=labels, axis=None),
            x=alt.X("value:Q", title=x_title, axis=alt.Axis(format=fmt, tickCount=5)),
            color=color,
            shape=shape,
            tooltip=tooltip,
        )
        rule = alt.Chart(pd.DataFrame({"value": [reference]})).mark_rule(color=INK, strokeDash=[4, 3])
        rule = rule.encode(x="value:Q")
        return alt.layer(points, rule).properties(width=260, height=height)

    panels = [panel("mase", 1.0, "MASE (1 = as good as last week's copy)", ".1f", True)]
    if (long["metric"] == "coverage").any():
        coverage_title = f"Share of days inside the band (aim {nominal_coverage:.0%}; served: as scaled)"
        panels.append(panel("coverage", nominal_coverage, coverage_title, "%", False))
    return alt.hconcat(*panels).properties(title=alt.Title(title, subtitle=subtitle))


# ---------------------------------------------------------------- campaigns


@_or_nothing_to_show
def campaign_effects(table: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """Each past campaign's incremental response over its control group, with its interval and a zero line.

    ``table``: ``campaign_id, variant, incremental_response`` and its ``_low``/``_high``
    (``CampaignResults.table``). An interval that crosses the zero line is an
    effect not distinguishable from zero.
    """
    cols = ["campaign_id", "variant", "incremental_response", "incremental_response_low",
            "incremental_response_high"]
    _require(table, cols, "campaign_effects", "no campaign could be measured")
    data = table[cols].dropna(subset=["incremental_response"]).assign(
        campaign=lambda f: f["campaign_id"].astype(str) + " · " + f["variant"].astype(str))
    if data.empty:
        raise _NothingToDraw("no campaign had outcomes and a control group")
    y = alt.Y("campaign:N", title=None, sort=None)
    axis = alt.Axis(format="+.1%", title="Added purchase rate over the control group (95% interval)")
    bars = alt.Chart(data).mark_rule(strokeWidth=3, color="#9ca3af").encode(
        y=y, x=alt.X("incremental_response_low:Q", axis=axis), x2="incremental_response_high:Q")
    points = alt.Chart(data).mark_point(filled=True, size=80, color="#1f77b4").encode(
        y=y, x="incremental_response:Q",
        tooltip=[alt.Tooltip("campaign:N", title="Campaign"),
                 alt.Tooltip("incremental_response:Q", format="+.1%", title="Added purchase rate"),
                 alt.Tooltip("incremental_response_low:Q", format="+.1%", title="from"),
                 alt.Tooltip("incremental_response_high:Q", format="+.1%", title="to")])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#111827", strokeDash=[4, 3]).encode(x="x:Q")
    return (bars + points + zero).properties(
        width=WIDTH, height=max(60, 28 * len(data)),
        title=title or alt.TitleParams("What past campaigns added",
                                       subtitle="An interval that crosses the dashed line is not "
                                                "distinguishable from zero"))


@_or_nothing_to_show
def campaign_cash_bands(bands: pd.DataFrame, minimum_cash: float | None = None, currency: str = "USD",
                        title: str | None = None) -> alt.LayerChart:
    """The balance with and without the planned campaign: P10-P90 bands and medians, the minimum as a line.

    ``bands``: ``ds, scenario, p10, p50, p90`` (``CampaignPlan.balance_bands``).
    """
    _require(bands, ["ds", "scenario", "p10", "p50", "p90"], "campaign_cash_bands",
             "the cash position is unknown, so the plan's effect on it cannot be drawn")
    colour = alt.Color("scenario:N", title=None, scale=alt.Scale(
        domain=["without the campaign", "with the campaign"], range=["#9ca3af", "#1f77b4"]))
    x = alt.X("ds:T", title=None)
    base = alt.Chart(bands)
    band = base.mark_area(opacity=0.25).encode(x=x, y=alt.Y("p10:Q", axis=_money_axis(currency, "Balance")),
                                               y2="p90:Q", color=colour)
    median = base.mark_line().encode(
        x=x, y="p50:Q", color=colour,
        tooltip=[alt.Tooltip("ds:T", title="Day"), alt.Tooltip("scenario:N", title="Scenario"),
                 alt.Tooltip("p50:Q", format=",.0f", title="Median balance")])
    layers = [band, median]
    if minimum_cash is not None:
        layers += _labelled_rule("minimum", minimum_cash, f"minimum {money_text(minimum_cash, currency)}", "#b91c1c",
                                 [4, 3])
    return alt.layer(*layers).properties(
        width=WIDTH, height=260,
        title=title or alt.TitleParams("Cash with and without the campaign",
                                       subtitle="Median balance and the band in which 8 of 10 futures fall"))
