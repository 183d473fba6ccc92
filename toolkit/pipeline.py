"""The run's steps in the order of the flow, shared by the command line and the notebooks.

Each step is a plain function of the previous step's output, so a notebook can
run them one cell at a time and the ``journeycast`` commands run them in a row:

    dataset = load("data/sample")                 # canonical tables + rejects
    view = journey(dataset)                       # funnel, time to convert, KPIs
    outlook = forecast_cash(dataset)              # series -> forecasts -> cash position
    export.write_tables(out_dir, forecast_tables(outlook))
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from toolkit.balances import bank_start, reconcile, reconciliation_notes
from toolkit.cash import (Adjustment, CashOutlook, DemandShock, LowPoint, OutflowChange, ReceiptDelay, Scenario,
                          apply_scenario, cash_position, compare_scenarios, compare_scenarios_with_notes,
                          days_of_cash, low_point, with_known_flows)
from toolkit.commitments import cash_flows, detect_schedules, holiday_dates, split_committed_costs
from toolkit.config import Config, load_config, with_settings
from toolkit.errors import JourneycastError
from toolkit.export import plain
from toolkit.flows import FLOW_TABLES, has_costs
from toolkit.forecast import ForecastResult, StageForecaster
from toolkit.forecast.calendar import holiday_calendar
from toolkit.ingest import FUTURE_REASON, Ingested, RejectShareError, load_tables, source_stamp
from toolkit.notes import Note, notes_frame
from toolkit.journey import (MonthComparison, TimeToConvert, cohort_retention, compare_months, customer_stages,
                             data_period, funnel, guest_sales, is_guest, is_sale, kpis, missing_figures,
                             time_to_convert, zero_amount_orders)
from toolkit.schema import STAGES
from toolkit.opportunities import (RepurchaseModel, UpsellEvaluation,
                                   UpsellModel, customer_segments, empty_offers,
                                   evaluate_upsell, offer_ladder_problem, repurchase_opportunities,
                                   gross_margin_or_assumed, suggest_offers, summary_from_orders,
                                   upsell_features)
from toolkit.opportunities import MIN_REPEAT_CUSTOMERS, no_predictions, repeat_customers
from toolkit.opportunities import (ASSUMED_LIFT_NOTE, LIFT_COLUMNS, CampaignPlan, CampaignPlanner, CampaignResults,
                                   UpliftEvaluation,
                                   UpliftModel, assumed_lift, contact_outcomes, customer_features,
                                   evaluate_uplift, features_when_silent, lift_table, measure_campaigns, measured_lift,
                                   launch_days, personal_offers, planner_customers, purchase_timing,
                                   reachable_share, recent_signals, segments_at_send, weekly_seasonality)
from toolkit.opportunities.experiments import default_attributes
from toolkit.opportunities.segments import OpportunityError
from toolkit.charts import money_markdown, money_text

__all__ = [
    "CampaignEvidence",
    "CampaignStudy",
    "CashForecast",
    "Dataset",
    "JourneyView",
    "Opportunities",
    "campaign_evidence",
    "campaign_recommendation",
    "campaign_study",
    "campaign_summary",
    "campaign_tables",
    "dated_scenario",
    "cash_figure_names",
    "forecast_cash",
    "forecast_from_record",
    "forecast_record",
    "computed_once",
    "forecast_summary",
    "forecast_tables",
    "forecast_variance",
    "headline",
    "headline_changes",
    "headline_kinds",
    "journey",
    "load",
    "opportunities",
    "recorded",
    "repeat_revenue_reconciliation",
    "result_store",
    "study_campaigns",
    "what_if",
]


@dataclass
class Dataset:
    """One data directory read under one configuration."""

    data_dir: Path
    config: Config
    ingested: Ingested
    notes: list[Note] = field(default_factory=list)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The canonical tables: ``orders`` (empty for a campaign results export alone), and ``events``,
        ``costs``, ``contacts``, ``campaigns``, ``balances``, ``commitments`` when present."""
        return self.ingested.tables

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last timestamp across the tables of what happened (``journey.data_period``)."""
        return data_period(self.tables)


def load(data_dir: str | Path, config_file: str | Path | None = None, accept_rejects: bool = False,
         **overrides: Any) -> Dataset:
    """Read and validate a data directory (or an orders file); ``overrides`` replace configuration settings.

    ``overrides`` are settings by name (``horizon=60``, ``budget=2000``; None
    leaves a setting as configured), so a page's parameters and the command
    line change the one configuration every later step reads.

    Raises ``JourneycastError`` when no usable order remains, since every later
    step starts from the orders -- unless the contacts carry campaign outcomes:
    a results export alone loads with an empty orders table and a note saying
    so -- and ``RejectShareError`` when a table lost more
    than ``config.max_reject_share`` of its rows -- results built on what is
    left would mislead -- unless ``accept_rejects`` (then a warning note says it).
    """
    config = with_settings(load_config(data_dir, config_file), overrides, source=f"settings {sorted(overrides)}")
    ingested = _ingested(data_dir, config)
    notes = []
    if not len(ingested.tables["orders"]):
        if not ingested.has_outcomes:
            raise JourneycastError(f"{ingested.files['orders']}: no usable orders remain; "
                                   "see the rejects for why")
        notes.append(Note("data", "No orders: only campaign results are analysed; add an orders source "
                                  "(sources.orders in journeycast.yml) for the journey, cash and re-purchase "
                                  "pages.", "missing"))
    too_many = ingested.reject_share_error(config.max_reject_share)
    if too_many and not accept_rejects:
        raise RejectShareError(too_many)
    if too_many:
        notes.append(Note("data", f"Rejects accepted: {too_many.split('. Fix')[0]}; every figure "
                                  "leaves those rows out.", "warning"))
    orders = ingested.summary()["orders"]
    if orders["guest_lines"]:
        notes.append(Note("customers", f"{orders['guest_lines']:,} order lines are guest checkouts without a "
                                       f"customer id ({orders['guest_revenue_share']:.1%} of revenue): they "
                                       "count in revenue and cash, but per-customer models (cohorts, "
                                       "re-purchase, upsell) leave them out.", "assumed"))
    return Dataset(Path(data_dir), config, ingested, notes)


def _ingested(data_dir: str | Path, config: Config) -> Ingested:
    """The checked sources, from the result store while their files are unchanged.

    Every page of a report reads the same files (about a second each on the
    sample); the first read is kept under the files' stamp
    (``ingest.source_stamp``) and the configuration. A database server is
    read every time, and so is a read that rejected rows as later than now:
    by the next read they may have become valid.
    """
    stamp = source_stamp(data_dir, config)
    if stamp is None:
        return load_tables(data_dir, config)
    ingested = computed_once(_read_sources, str(Path(data_dir).resolve()), config, stamp)
    if ingested.rejects["reason"].str.startswith(FUTURE_REASON).any():
        return load_tables(data_dir, config)
    return ingested


def _read_sources(data_dir: str, config: Config, stamp: tuple) -> Ingested:
    """``load_tables`` keyed by the sources' ``stamp`` as well (see :func:`_ingested`)."""
    return load_tables(data_dir, config)


@dataclass
class JourneyView:
    """How customers move through the stages, and the business's KPIs over time.

    ``kpis`` marks partial periods (``complete``); ``comparison`` is the last
    complete month beside the month before and a year before (None when the
    data covers no month in full): the one to quote as "revenue up x%".
    ``has_events`` is False for orders alone: then the first touch *is* the
    first order, so ``time_to_purchase`` is 0 days for every buyer and means
    nothing.
    """

    stages: pd.DataFrame
    funnel: pd.DataFrame
    time_to_purchase: TimeToConvert
    retention: pd.DataFrame
    kpis: pd.DataFrame
    notes: list[Note] = field(default_factory=list)
    comparison: MonthComparison | None = None
    has_events: bool = True


def journey(dataset: Dataset, freq: str = "MS", by: str | None = None) -> JourneyView:
    """Funnel (within the conversion window), time from first touch to purchase, cohorts, KPIs."""
    window = dataset.config.conversion_window_days
    tables = dataset.tables
    stages = customer_stages(tables)
    figures = kpis(tables, freq=freq, conversion_window_days=window)
    monthly = figures if freq == "MS" else kpis(tables, freq="MS", conversion_window_days=window)
    comparison = compare_months(monthly)
    events = tables.get("events")
    has_events = events is not None and len(events) > 0
    return JourneyView(
        stages=stages,
        funnel=funnel(stages, window, by=by),
        time_to_purchase=time_to_convert(stages, "first_touch", "purchase", window),
        retention=cohort_retention(tables["orders"], freq=freq),
        kpis=figures,
        notes=_journey_notes(tables["orders"], figures, comparison, has_events),
        comparison=comparison,
        has_events=has_events,
    )


def _journey_notes(orders: pd.DataFrame, figures: pd.DataFrame, comparison: MonthComparison | None,
                   has_events: bool) -> list[Note]:
    """What the journey figures leave out or assume: events, figures, guests, deals at zero, partial periods."""
    notes = []
    if not has_events:
        before = ", ".join(STAGES[:STAGES.index("purchase")])
        notes.append(Note(
            "events",
            f"No touchpoint events: the funnel starts at the purchase, and the stages before it ({before}) "
            "and the time from first touch to purchase cannot be measured; add an events source to "
            "journeycast.yml to see them.", "missing"))
    missing = missing_figures(figures)
    if missing:
        figures_text = " and ".join(f"{figure.replace('_', ' ')} (it needs {needs})"
                                    for figure, needs in missing.items())
        notes.append(Note("key figures", f"Left out of the key figures for lack of data: {figures_text}; "
                                         "add them as an events source in journeycast.yml.", "missing"))
    if guest_sales(orders)[0]:
        # the data set's note gives the guests' share of revenue; this one says what it means on this page
        notes.append(Note(
            "guests",
            "Customers, the funnel, repeat purchase and customer value follow customers by their id, so "
            "guest checkouts are not in them; export a customer id with every order to include them.",
            "missing"))
    zero = zero_amount_orders(orders)
    if zero:
        notes.append(Note(
            "zero-amount orders",
            f"Completed orders that add up to zero (deals closed at 0): {zero:,}; they count as purchases in "
            "the funnel and the customer stages, but bring no revenue.", "assumed"))
    partial = figures[~figures["complete"]]
    if len(partial):
        periods = ", ".join(f"{row.ds:%d %b %Y} ({row.days_covered} of {row.days_in_period} days)"
                            for row in partial.itertuples())
        notes.append(Note(
            "periods",
            f"Periods the data covers only in part: {periods}; their figures are not comparable with "
            "full periods and period-on-period changes leave them out.", "warning"))
    if comparison is None:
        notes.append(Note("periods", "The data covers no calendar month in full: there is no month to "
                                     "compare with the one before.", "missing"))
    return notes


#: Where the outflows of a cash forecast come from: the costs table, the gross margin, or nowhere.
COST_BASES: tuple[str, ...] = ("actual", "estimated", "none")


@dataclass
class CashForecast:
    """Stage series, their forecasts, and the cash position they add up to.

    ``costs`` says where the outflows come from: ``"actual"`` (the costs
    table), ``"estimated"`` (cost of goods from ``gross_margin``) or
    ``"none"`` (only money in is known: no shortfall risk is assessed).

    ``series`` are the series that were forecast; ``history`` adds the actual
    money of committed categories (series ``<stage>|<direction>|committed:<category>``)
    and is what the balance is built from. ``paths`` are the forecast's sample
    paths plus the money known ahead -- commitments and sales already made but
    not yet settled -- the same in every draw; ``known`` lists that money and the
    past committed payments (``unique_id, ds, y, direction``). ``reconciliation``
    sets the bank's balance against the flows (None without a bank balance);
    ``schedules`` lists cost categories that look like schedules and are not
    commitments yet; ``low_point`` and ``days_of_cash`` are the working-capital
    figures (None without a balance).
    """

    config: Config
    series: pd.DataFrame
    result: ForecastResult
    outlook: CashOutlook
    scenarios: pd.DataFrame
    notes: list[Note] = field(default_factory=list)
    costs: str = "actual"
    history: pd.DataFrame | None = None
    paths: pd.DataFrame | None = None
    known: pd.DataFrame | None = None
    reconciliation: pd.DataFrame | None = None
    schedules: pd.DataFrame | None = None
    low_point: LowPoint | None = None
    days_of_cash: float | None = None

    def __post_init__(self) -> None:
        # built without known money (by hand, or by older callers): the balance comes from the forecast alone
        if self.history is None:
            self.history = self.series
        if self.paths is None:
            self.paths = self.result.paths

    @property
    def cost_stages(self) -> list[str]:
        """Stages with money going out, in journey order (what a cost what-if can change); may be empty."""
        return list(dict.fromkeys(self.series.loc[self.series["direction"] == "outflow", "stage"]))

    @property
    def measure(self) -> str:
        """What the outlook's bands hold, in words for a title or an axis."""
        if self.costs == "none":
            return f"{self.outlook.measure}, money in only (no cost data)"
        return self.outlook.measure


def _cost_basis(dataset: Dataset) -> str:
    """Where the outflows come from (see ``CashForecast.costs``)."""
    if has_costs(dataset.tables):
        return "actual"
    return "none" if dataset.config.gross_margin is None else "estimated"


def _cash_notes(config: Config, costs: str, banked: bool = False) -> list[Note]:
    """What the cash position lacks or assumes: the opening balance, the costs, the payment timing."""
    notes = []
    if config.opening_balance is None and not banked:
        notes.append(Note("cash", "No opening balance: the chart shows the cumulative net cash flow, not a "
                                  "balance; set opening_balance in journeycast.yml to see the balance and the "
                                  "shortfall risk.", "missing"))
    if costs == "estimated":
        notes.append(Note("costs", f"No cost data: outflows are estimated as the cost of goods, (1 - gross_margin "
                                   f"{config.gross_margin:g}) x sales, from journeycast.yml; add a costs file to "
                                   "use real costs.", "assumed"))
    elif costs == "none":
        notes.append(Note("costs", "No cost data and no gross_margin: only money in is forecast; shortfall risk "
                                   "is not computed. Add a costs file, or set gross_margin in journeycast.yml to "
                                   "estimate the cost of goods.", "missing"))
    timing = config.payment_timing
    how = ("set payment_timing in journeycast.yml (e.g. sales_days: 2 for card settlement) to follow the bank's "
           "dates" if timing == type(timing)() else "from payment_timing in journeycast.yml")
    notes.append(Note("timing", f"Payment timing: {timing.sentence()[:-1]}; {how}.", "assumed"))
    return notes


def forecast_cash(dataset: Dataset, horizon: int | None = None, segment: str | None = None,
                  scenarios: Iterable[Scenario | Mapping[str, Any]] = (),
                  **forecaster_options: Any) -> CashForecast:
    """Forecast every stage series and turn the sample paths into a cash position.

    ``horizon`` and ``segment`` default to the configuration's;
    ``forecaster_options`` go to ``StageForecaster`` (e.g. ``backend``,
    ``progress``); the configuration gives the rest (``horizon``, ``seed``,
    ``uncertainty_samples``), so commands and pages forecast alike.
    Without costs the cost of goods is estimated from ``gross_margin``;
    without either, or without an opening balance, no shortfall risk is
    assessed. ``notes`` says so, after the forecast's own notes.
    """
    config = dataset.config
    costs = _cost_basis(dataset)
    if horizon is not None:
        forecaster_options["horizon"] = horizon
    holidays, holiday_notes = holiday_calendar(
        forecaster_options.pop("holiday_country", config.holiday_country), config.currency, config.timezone)
    settings = {"horizon": config.horizon, "freq": config.frequency, "holiday_country": holidays,
                "seed": config.seed, "uncertainty_samples": config.uncertainty_samples, **forecaster_options}
    segment = config.segment if segment is None else segment
    # commitments and bank balances are dated outside the period of the booked money
    first, last = (pd.Timestamp(d).normalize()
                   for d in data_period({n: t for n, t in dataset.tables.items() if n in FLOW_TABLES}))
    # generous: a daily horizon's end, or a weekly/monthly one's, plus payment terms
    horizon_end = last + pd.DateOffset(days=settings["horizon"] * {"D": 1, "W": 7, "MS": 31}[config.frequency] + 200)
    closed = holiday_dates(holidays, first, horizon_end)
    flows = cash_flows(dataset.tables, config.payment_timing, horizon_end, closed, config.frequency, segment,
                       gross_margin=config.gross_margin if costs == "estimated" else None)
    series, history = flows.series, flows.history
    execution = {k: settings.pop(k) for k in _EXECUTION_OPTIONS if k in settings}
    result = computed_once(_fit_predict, series, settings, execution, ignore=("execution",))
    paths = with_known_flows(result.paths, flows.known)
    known = flows.known[flows.known["ds"] <= paths.index.get_level_values("ds").max()].reset_index(drop=True)
    balances = dataset.tables.get("balances")
    opening = config.opening_balance
    bank_notes: list[Note] = []
    reconciliation = None
    if balances is not None and len(balances):
        # a bank statement is dated to the day: weekly or monthly totals would misplace its flows
        daily = history if config.frequency == "D" else cash_flows(
            dataset.tables, config.payment_timing, last, closed, "D", segment,
            gross_margin=config.gross_margin if costs == "estimated" else None).history
        start = bank_start(balances, daily)
        opening = start.opening_balance
        if config.opening_balance is not None:
            bank_notes.append(Note("bank", f"The balance starts from the bank's {start.balance:,.0f} {config.currency} "
                                           f"on {start.date:%d %b %Y}, not from opening_balance in journeycast.yml.",
                                   "assumed"))
        reconciliation = reconcile(balances, daily, opening)
        bank_notes += reconciliation_notes(reconciliation, config.balance_tolerance, config.currency)
    # a minimum checked against money in alone would always look safe
    minimum = None if costs == "none" else config.minimum_cash
    outlook = cash_position(history, paths, opening, minimum)
    dated = [dated_scenario(s, outlook.as_of) for s in scenarios]
    comparison, skipped = compare_scenarios_with_notes(history, paths, dated, opening, minimum)
    schedules = _schedules_to_commit(dataset.tables.get("costs"), dataset.tables.get("commitments"))
    notes = [*result.notes, *_cash_notes(config, costs, reconciliation is not None), *bank_notes,
             *_schedule_notes(schedules), *holiday_notes, *skipped]
    balance = outlook.balance_known and costs != "none"
    return CashForecast(config, series, result, outlook, comparison, notes, costs, history=history, paths=paths,
                        known=known, reconciliation=reconciliation, schedules=schedules,
                        low_point=low_point(outlook, paths) if balance else None,
                        days_of_cash=days_of_cash(outlook, history) if balance else None)


def _schedules_to_commit(costs: pd.DataFrame | None, commitments: pd.DataFrame | None) -> pd.DataFrame | None:
    """Cost categories (not yet commitments) that look like schedules; None without costs."""
    if costs is None or costs.empty:
        return None
    return detect_schedules(split_committed_costs(costs, commitments)[0])


def _schedule_notes(schedules: pd.DataFrame | None) -> list[Note]:
    if schedules is None or schedules.empty:
        return []
    names = ", ".join(f"{r.category} ({r.frequency})" for r in schedules.itertuples())
    return [Note("commitments", f"Some costs look like fixed schedules and are forecast statistically: {names}; add "
                                "them to commitments.csv to put them in every future exactly.", "assumed")]


#: Forecaster options that change how, not what, is computed: not part of a stored forecast's key.
_EXECUTION_OPTIONS = ("backend", "n_jobs", "progress", "scheduler_address")


def _fit_predict(series: pd.DataFrame, settings: dict[str, Any],
                 execution: dict[str, Any]) -> ForecastResult:
    return StageForecaster(**settings, **execution).fit(series).predict()


def result_store(root: str | Path | None = None) -> joblib.Memory | None:
    """Where finished forecasts and opportunity scores are kept, so a report's notebooks share one fit.

    A result is found again only for the same inputs and settings (joblib
    hashes them) and the same toolkit source (the folder is named after its
    hash), so a code or data change never serves an old result. The store sits
    in ``.cache/results`` under ``root`` (default: the working directory), or
    in the directory ``$JOURNEYCAST_STORE`` names; ``JOURNEYCAST_STORE=off``
    turns it off.
    """
    where = os.environ.get("JOURNEYCAST_STORE")
    if where == "off":
        return None
    source = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        source.update(path.read_bytes())
    base = Path(where) if where else Path(root or Path.cwd()) / ".cache" / "results"
    return joblib.Memory(base / source.hexdigest()[:16], verbose=0)


def computed_once(func: Callable[..., Any], *args: Any, ignore: Iterable[str] = ()) -> Any:
    """``func(*args)`` from the result store, computed there by one process at a time.

    The notebooks of a report run side by side; a file lock per function makes
    the second one that needs a forecast wait for the first one's result instead
    of fitting it again. ``ignore`` names arguments that change how, not what,
    is computed (left out of the key). Without a store, just ``func(*args)``.
    """
    store = result_store()
    if store is None:
        return func(*args)
    from filelock import FileLock

    stored = store.cache(func, ignore=list(ignore))
    Path(store.location).mkdir(parents=True, exist_ok=True)
    with FileLock(Path(store.location) / f"{func.__name__}.lock"):
        return stored(*(_as_stored(arg) for arg in args))


def _as_stored(value: Any) -> Any:
    """``value`` with its tables copied afresh, so that equal tables give equal keys.

    joblib keys a result by the pickle of its arguments, and a table's pickle
    also carries what pandas cached on it: once a table with text and date
    columns has been through ``to_numpy`` (as a forecast or a scoring does),
    the same rows hash differently, and the next page of a report computed
    its opportunities a second time instead of reading them. A fresh copy
    carries no such cache.
    """
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.copy(deep=True)
    return value


_SCENARIO_DATES = ("start", "end", "date")


def dated_scenario(scenario: Scenario | Mapping[str, Any],
                   as_of: pd.Timestamp) -> Scenario | Mapping[str, Any]:
    """A scenario mapping whose dates may be given as days after ``as_of`` (1 = the first forecast day).

    A whole number in an adjustment's ``start``, ``end`` or ``date`` becomes
    that many days after the last actual day, so a scheduled report keeps its
    what-ifs inside the horizon as the data moves on. Dates and ``Scenario``
    objects are returned unchanged.
    """
    if isinstance(scenario, Scenario) or not isinstance(scenario.get("adjustments"), list):
        return scenario
    day = pd.Timestamp(as_of).normalize()

    def resolved(value: Any) -> Any:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return f"{day + pd.Timedelta(days=int(value)):%Y-%m-%d}"
        return value

    adjustments = [
        {k: resolved(v) if k in _SCENARIO_DATES else v for k, v in item.items()}
        if isinstance(item, Mapping) else item
        for item in scenario["adjustments"]
    ]
    return {**scenario, "adjustments": adjustments}


def what_if(dataset: Dataset, cash: CashForecast) -> Callable[..., tuple[CashOutlook, pd.DataFrame]]:
    """The cash model behind ``toolkit.widgets.ScenarioExplorer``'s sliders.

    The returned function takes ``stage, outflow_change_pct, demand_shock_pct,
    receipt_delay_days`` (changes from the first forecast day on) and returns
    the what-if's ``CashOutlook`` and its comparison with the baseline, both on
    the forecast's own draws, against the same opening balance and minimum as
    ``cash.outlook``. ``stage`` may be None (a forecast without outflows has
    no stage to change); a change to money the forecast does not have is
    left out, so the demand and timing sliders work whatever the data holds.
    """
    start = cash.outlook.as_of + pd.Timedelta(days=1)
    paths, history = cash.paths, cash.history
    opening, minimum = cash.outlook.opening_balance, cash.outlook.minimum_cash

    def recompute(stage: str | None, outflow_change_pct: float, demand_shock_pct: float,
                  receipt_delay_days: int) -> tuple[CashOutlook, pd.DataFrame]:
        changes: list[Adjustment] = [DemandShock(demand_shock_pct, start), ReceiptDelay(receipt_delay_days)]
        if stage is not None:
            changes.insert(0, OutflowChange(stage, outflow_change_pct, start))
        scenario = Scenario("what-if", tuple(a for a in changes if a.missing(paths) is None))
        outlook = cash_position(history, apply_scenario(paths, scenario), opening, minimum)
        comparison = compare_scenarios(history, paths, [scenario], opening, minimum)
        return outlook, comparison

    return recompute


def forecast_tables(cash: CashForecast, view: JourneyView | None = None) -> dict[str, pd.DataFrame]:
    """The tables a forecast run publishes, by file stem."""
    net_draws = cash.outlook.balance_draws.diff()
    net_draws.iloc[0] = cash.outlook.balance_draws.iloc[0] - cash.outlook.bands.actual.dropna().iloc[-1]
    quantiles = np.quantile(net_draws.to_numpy(), [0.1, 0.5, 0.9], axis=1)
    tables = {
        "series": cash.series,
        "forecasts": cash.result.forecast,
        "net_flow_paths": pd.DataFrame({"ds": net_draws.index, "p10": quantiles[0],
                                        "p50": quantiles[1], "p90": quantiles[2],
                                        "mean": net_draws.mean(axis=1).to_numpy()}),
        "diagnostics": cash.result.diagnostics,
        "backtest": cash.result.backtest,
        "cash_position": cash.outlook.bands,
        "shortfall": cash.outlook.shortfall,
        "scenarios": cash.scenarios,
        "known_money": cash.known,
        "reconciliation": cash.reconciliation,
        "cost_schedules": cash.schedules,
    }
    tables = {name: table for name, table in tables.items() if table is not None}
    if view is not None:
        tables |= {"funnel": view.funnel, "kpis": view.kpis, "retention": view.retention}
        if view.comparison is not None:
            tables["month_comparison"] = view.comparison.figures.reset_index()
    return tables


def _working_capital(cash: CashForecast) -> dict[str, Any]:
    """The low point, days of cash and the bank's largest unexplained difference, JSON-ready (empty when unknown)."""
    out: dict[str, Any] = {}
    if cash.low_point is not None:
        low = cash.low_point
        out |= {"lowest_p10": low.p10, "lowest_p10_date": plain(low.p10_date), "days_of_cash": cash.days_of_cash,
                "low_point_commitment": {k: plain(v) for k, v in low.commitment.items()} if low.commitment else None,
                "low_point_stage": low.stage}
    if cash.reconciliation is not None and len(cash.reconciliation):
        worst = cash.reconciliation.loc[cash.reconciliation["difference"].abs().idxmax()]
        out |= {"bank_largest_difference": float(worst["difference"]),
                "bank_largest_difference_date": plain(worst["ds"])}
    return out


def forecast_summary(dataset: Dataset, cash: CashForecast) -> dict[str, Any]:
    """What a forecast run found, as plain JSON-ready values."""
    first, last = dataset.period
    diagnostics = cash.result.diagnostics
    score_columns = [c for c in diagnostics.columns if c.endswith(("_mae", "_mase", "_coverage"))]
    series = [
        {"unique_id": row.unique_id, "status": row.status, "model": row.model,
         "fallback": row.status not in ("ok", "combined"), "reason": row.reason,
         "backtest": {c: plain(getattr(row, c)) for c in score_columns}}
        for row in diagnostics.itertuples()
    ]
    return {
        "data_period": [f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"],
        "horizon": int(cash.result.forecast.ds.nunique()),
        "currency": dataset.config.currency,
        "cash": {"measure": cash.measure, "costs": cash.costs}
                | {k: plain(v) for k, v in cash.outlook.summary().items()}
                | _working_capital(cash),
        "series": series,
        "notes": notes_frame([*dataset.notes, *cash.notes]),
    }


# ---------------------------------------------------------------- opportunities


@dataclass
class Opportunities:
    """Customers scored as of the last day of data: who may buy again, who may buy more.

    Attributes
    ----------
    as_of : the last day of data.
    days : the horizon the scores look ahead (days).
    customers : one row per buyer with a customer id (guests are no one's
        customers): the RFM table with ``segment`` and ``value_tier``, and the
        repurchase model's ``probability_alive``, ``expected_purchases``,
        ``expected_spend``, ``expected_value`` and ``customer_value`` over ``days``.
    repurchase : ranked re-purchase opportunities with ``reason`` and ``segment``.
    upsell : the suggested offer per customer with ``propensity`` and ``segment``,
        highest propensity first; empty (same columns) when no offer can be made.
    upsell_check : how the upsell model ranked the latest ``days`` it could be
        checked on (``upsell_check.reason`` says why it could not).
    model : the fitted repurchase model (``model_name`` says which one is served);
        None when too few customers came back to fit one (the re-purchase
        columns of ``customers`` are then empty and ``repurchase`` has no rows).
    repeat_history : money of repeat and upsell sales in the ``days`` before
        ``as_of``: ``total``, ``new_customers`` (by customers who first bought
        within those days) and ``guests`` (lines without a customer id).
    offers : one personal offer per customer from their own history
        (``personal_offers``: the next price band, a co-purchase or a discount),
        on any shop with products, ladder or not (bounded by the expected
        margin when a re-purchase model is fitted).
    notes : what the scoring left out, assumed or doubts.
    """

    as_of: pd.Timestamp
    days: int
    customers: pd.DataFrame
    repurchase: pd.DataFrame
    upsell: pd.DataFrame
    upsell_check: UpsellEvaluation
    model: RepurchaseModel | None
    notes: list[Note] = field(default_factory=list)
    repeat_history: dict[str, float] = field(default_factory=dict)
    offers: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def model_name(self) -> str:
        """The repurchase model served, e.g. "BG/NBD" or "BG/NBD with assumed drop-out"; "none" without one."""
        return "none" if self.model is None else self.model.model_name_


def opportunities(dataset: Dataset, horizon: int | None = None, seed: int | None = None) -> Opportunities:
    """Segments, re-purchase chances and upsell offers, looking ``horizon`` days ahead.

    The upsell model is checked on a time split ending ``horizon`` days before
    the data does (the latest period with known outcomes), then refitted with
    those outcomes to score every customer as of the last day. Kept in the
    result store (``computed_once``), so a report scores its customers once.
    """
    config = dataset.config
    return computed_once(
        _score_customers, dataset.tables["orders"], dataset.tables.get("events"),
        dataset.period[1].normalize(), horizon or config.horizon,
        config.seed if seed is None else seed, config.discount_rate, config.gross_margin)


def _repeat_history(orders: pd.DataFrame, as_of: pd.Timestamp, days: int) -> dict[str, float]:
    """Repeat and upsell sales in the ``days`` up to ``as_of``, split by who made them.

    A sale is a repeat when its order_type says so (repeat, upsell), as the
    flows count post-purchase money.
    """
    sold = orders.loc[is_sale(orders) & orders["order_type"].isin(["repeat", "upsell"])]
    since = as_of + pd.Timedelta(days=1) - pd.Timedelta(days=days)
    recent = sold[(sold["ts"] >= since) & (sold["ts"] < as_of + pd.Timedelta(days=1))]
    first = orders.loc[is_sale(orders)].groupby("customer_id")["ts"].min()
    newcomer = recent["customer_id"].map(first) >= since
    return {"total": float(recent["amount"].sum()),
            "new_customers": float(recent.loc[newcomer.fillna(False).astype(bool), "amount"].sum()),
            "guests": float(recent.loc[is_guest(recent), "amount"].sum())}


def _upsell_offers(orders: pd.DataFrame, events: pd.DataFrame | None, as_of: pd.Timestamp, days: int,
                   seed: int, predictions: pd.DataFrame, margin: float
                   ) -> tuple[pd.DataFrame, UpsellEvaluation, list[Note]]:
    """The offers, the upsell model's check, and a note when no offer can be made."""
    ladder = offer_ladder_problem(orders)
    if ladder is not None:
        check = UpsellEvaluation.not_checked(f"no upsell to check: {ladder}")
        return empty_offers(), check, [Note("upsell", (
            f"No next-tier upgrades: {ladder}, so no product ladder to climb; the personal offers (each "
            "customer's next price band, what similar customers bought next, or a discount) need no ladder "
            "and are made."))]
    check = evaluate_upsell(orders, as_of - pd.Timedelta(days=days), events, horizon_days=days, seed=seed)
    if not check.checked:
        return empty_offers(), check, [Note("upsell", (
            f"No upsell offers: the upsell model cannot be trained and checked, {check.reason}; "
            "a longer history with more upsells enables it."))]
    # refitted on the checked period's features and outcomes (the check computed both)
    upsell_model = UpsellModel(seed=seed).fit(check.features, check.scores["upsell"])
    propensity = upsell_model.predict_proba(upsell_features(orders, as_of, events))
    offers = suggest_offers(orders, propensity, as_of, predictions, margin_share=margin, horizon_days=days)
    return offers, check, []


def _score_customers(orders: pd.DataFrame, events: pd.DataFrame | None, as_of: pd.Timestamp, days: int,
                     seed: int, discount_rate: float, gross_margin: float | None) -> Opportunities:
    # guests' share of sales is the data set's note (``load``): said once, not on every result
    notes = []
    margin, margin_notes = gross_margin_or_assumed(gross_margin)
    segments = customer_segments(orders, as_of)
    summary = summary_from_orders(orders, as_of)
    returning = repeat_customers(summary)
    if returning < MIN_REPEAT_CUSTOMERS:
        # one-off buyers only: no repeat buying to learn from, and no upgrade either
        model, predictions = None, no_predictions()
        notes.append(Note("repurchase", (
            f"Too few customers came back to buy again ({returning}; the re-purchase models need "
            f"{MIN_REPEAT_CUSTOMERS}): re-purchase chances, expected spend and upsell offers are left out; a "
            "longer order history adds them."), "missing"))
        offers, check, upsell_notes = empty_offers(), UpsellEvaluation.not_checked(
            "no customer bought twice, so no one traded up"), []
    else:
        model = RepurchaseModel(discount_rate=discount_rate, seed=seed).fit(summary)
        notes += model.notes_
        predictions = model.predict(days)
        offers, check, upsell_notes = _upsell_offers(orders, events, as_of, days, seed, predictions, margin)
    customers = segments.merge(predictions.drop(columns=["window_start_days", "window_end_days"]),
                               on="customer_id", how="left")
    segment_of = segments[["customer_id", "segment"]]
    repurchase = repurchase_opportunities(predictions, as_of, events, orders, horizon_days=days)
    return Opportunities(
        as_of=as_of, days=days, customers=customers,
        repurchase=repurchase.merge(segment_of, on="customer_id", how="left"),
        upsell=offers.merge(segment_of, on="customer_id", how="left"),
        upsell_check=check, model=model, notes=[*notes, *upsell_notes, *margin_notes],
        repeat_history=_repeat_history(orders, as_of, days),
        offers=personal_offers(orders, as_of, margin, predictions=predictions if model is not None else None),
    )


@dataclass
class CampaignStudy:
    """What past campaigns earned, who is persuadable, and the campaign to run next.

    Attributes
    ----------
    results : each past campaign x variant over its control group, with
        intervals and a verdict (None without a contacts table).
    uplift : how the uplift model ranked held-out contacts against random
        targeting (Qini, uplift@k with intervals); None when it could not be fitted.
    scores : the uplift model's incremental_probability per current customer_id, launch
        week and measured discount; empty unless the model beats random and orders exist.
    lift : the lift the plan assumes per customer (``planner.LIFT_COLUMNS``).
    lift_source : "model", "measured" or "assumed".
    planner : the fitted planner (re-plan with ``planner.plan(budget=..., risk_limit=...,
        discounts=...)``); None without orders, a re-purchase model or a cash forecast.
    plan : ``planner.plan()`` under the configuration's budget and risk limit; None without a planner.
    notes : what is missing, assumed or doubtful, in plain sentences.
    """

    results: CampaignResults | None
    uplift: UpliftEvaluation | None
    scores: pd.DataFrame
    lift: pd.DataFrame
    lift_source: str
    planner: CampaignPlanner | None
    plan: CampaignPlan | None
    notes: list[Note] = field(default_factory=list)


_STUDY_TOPIC = "campaigns"
#: The uplift learners tried, simplest first: per-group logistic regressions (the best on Hillstrom's e-mail test,
#: equal to causalml's and scikit-uplift's two-model learners) and gradient-boosted per-group models (they find
#: interactions such as the sample's persuadables, which the linear one cannot draw). Each data set is served the
#: one that ranks its held-out contacts best.
_UPLIFT_LEARNERS = ("t-logistic", "t-boosting")
#: Recent behaviour persuadability may show in: event type -> days looked back before a contact.
_RECENT_EVENTS = {"product_view": 30, "wishlist_add": 30, "cart_abandon": 30, "support_ticket": 60}


def _uplift_check(outcomes: pd.DataFrame, orders: pd.DataFrame | None, events: pd.DataFrame | None, seed: int,
                  export_outcomes: list[str]) -> tuple[UpliftModel | None, UpliftEvaluation | None, list[Note]]:
    """An uplift model fitted on every measurable contact, and its 5-fold check against random targeting.

    Of ``_UPLIFT_LEARNERS`` the one with the highest cross-fitted Qini is
    served (the first on a tie); picking the best of two on the same folds
    flatters its check a little. ``export_outcomes`` are result columns of the
    contacts (never features).
    """
    usable = outcomes[outcomes["outcome_source"] != "none"]
    # spend_before (for the balance check) is left out: the order history features carry it, as of any day
    usable = usable[usable["converted"].notna()].drop(columns="spend_before", errors="ignore")
    if usable.empty:
        return None, None, []
    try:
        features = customer_features(usable, orders, outcomes=export_outcomes, events=events,
                                     event_days=_RECENT_EVENTS)
        treated = (usable["group"] == "treatment").to_numpy()
        converted = usable["converted"].to_numpy()
        checks = [evaluate_uplift(UpliftModel(learner, seed=seed), features, treated, converted, seed=seed, folds=5)
                  for learner in _UPLIFT_LEARNERS]
        check = max(checks, key=lambda tried: tried.qini)
        model = UpliftModel(check.learner, seed=seed).fit(features, treated, converted)
    except OpportunityError as error:
        return None, None, [Note(_STUDY_TOPIC, f"No uplift model: {error}.", "warning")]
    return model, check, list(check.notes)


def _export_outcomes(config: Config, contacts: pd.DataFrame) -> list[str]:
    """The contacts' extra result columns (``sources.contacts.outcomes``) present in the table."""
    source = config.sources.get("contacts")
    return [column for column in (source.outcomes if source is not None else []) if column in contacts.columns]


def campaign_study(dataset: Dataset, cash: CashForecast | None = None, found: Opportunities | None = None,
                   budget: float | None = None, risk_limit: float | None = None,
                   seed: int | None = None) -> CampaignStudy:
    """Measure past campaigns, check an uplift model, and plan the next campaign within the cash risk.

    The plan's lift comes, best first, from the uplift model (when it beats
    random targeting), from the measured average effect of past campaigns, or
    from ``campaign.prior_lift`` said as assumed, not measured. A results
    export without orders (no customers to plan for, no cash) gives the
    measurement only, and the notes say so.

    Kept in the result store (``computed_once``), keyed by what the study
    reads (:func:`_study_key`): two pages of a report study the same
    campaigns, and the second reads the first one's study.
    """
    seed = dataset.config.seed if seed is None else seed
    return computed_once(_campaign_study, _study_key(dataset, cash, found), dataset, cash, found, budget,
                         risk_limit, seed, ignore=("dataset", "cash", "found"))


def study_campaigns(dataset: Dataset) -> tuple[CashForecast | None, Opportunities | None, CampaignStudy]:
    """The cash forecast, the scored customers and the campaign study of ``dataset``, as a page needs them.

    Past campaigns are measured first (:func:`campaign_evidence` needs neither
    the forecast nor the scores), so a page that then waits for the scores
    another page of the report is computing has done that part meanwhile.
    Without orders there is no forecast and no scoring: the study measures
    past campaigns only.
    """
    has_orders = len(dataset.tables.get("orders", ())) > 0
    cash = forecast_cash(dataset, progress=False) if has_orders else None
    campaign_evidence(dataset)
    found = opportunities(dataset) if has_orders else None
    return cash, found, campaign_study(dataset, cash, found)


def _study_key(dataset: Dataset, cash: CashForecast | None, found: Opportunities | None) -> str:
    """A hash of what a campaign study reads: the tables and configuration, the cash forecast (its
    balance draws and series forecasts) and the scored customers and offers.

    The objects themselves are not hashed: they carry fitted models whose
    pickles need not repeat from one page to the next. Each table is hashed
    on its own: a pickle writes a text shared by two tables once, so tables
    computed from each other (sharing their ids) and the same tables read
    back from the store (not sharing them) would hash apart together.
    """
    parts: list[Any] = [dataset.config, *(_as_stored(dataset.tables[name]) for name in sorted(dataset.tables))]
    if cash is not None:
        parts += [_as_stored(cash.outlook.balance_draws), _as_stored(cash.result.forecast)]
    if found is not None:
        parts += [(found.as_of, found.days, found.model_name), _as_stored(found.customers), _as_stored(found.offers)]
    return joblib.hash([joblib.hash(part) for part in parts])


@dataclass
class CampaignEvidence:
    """What past campaigns showed, which needs no forecast and no customer scores.

    Attributes
    ----------
    results : each campaign x variant over its control group (None without contacts).
    by_segment : the same per customer segment at send (None without orders).
    uplift_model, uplift : the uplift model fitted on every measurable contact and its check
        against random targeting (None when it could not be fitted).
    notes : what the measurement and the check say.
    """

    results: CampaignResults | None = None
    by_segment: CampaignResults | None = None
    uplift_model: UpliftModel | None = None
    uplift: UpliftEvaluation | None = None
    notes: list[Note] = field(default_factory=list)


def campaign_evidence(dataset: Dataset, seed: int | None = None) -> CampaignEvidence:
    """Measure past campaigns against their control groups and check an uplift model on them.

    Kept in the result store: :func:`campaign_study` starts from it, and a page
    can ask for it before it waits for the customer scores another page is
    computing (the uplift check is most of a study's time).
    """
    seed = dataset.config.seed if seed is None else seed
    return computed_once(_campaign_evidence, _study_key(dataset, None, None), dataset, seed, ignore=("dataset",))


def _campaign_evidence(key: str, dataset: Dataset, seed: int) -> CampaignEvidence:
    """:func:`campaign_evidence` itself; ``key`` (:func:`_study_key`) is what the result store keys it by."""
    config, tables = dataset.config, dataset.tables
    orders, contacts, campaigns = tables.get("orders"), tables.get("contacts"), tables.get("campaigns")
    orders = orders if orders is not None and len(orders) else None
    if contacts is None or contacts.empty:
        return CampaignEvidence(notes=[Note(_STUDY_TOPIC, (
            "No past campaigns: the campaign lift is assumed, not measured; add contacts.csv (who each campaign "
            "contacted and who was held out) and campaigns.csv to measure it."), "missing")])
    outcomes = contact_outcomes(contacts, campaigns, orders)
    export_outcomes = _export_outcomes(config, outcomes)
    measure = partial(measure_campaigns, campaigns=campaigns, gross_margin=config.gross_margin,
                      attributes=default_attributes(outcomes, export_outcomes), currency=config.currency,
                      seed=seed)
    results = measure(outcomes)
    # the lift each segment showed at send, so the plan gives each customer their segment's
    by_segment = (measure(outcomes.assign(segment=segments_at_send(outcomes, orders)), by="segment")
                  if orders is not None else None)
    model, check, uplift_notes = _uplift_check(outcomes, orders, tables.get("events"), seed, export_outcomes)
    return CampaignEvidence(results, by_segment, model, check, [*results.notes, *uplift_notes])


def _campaign_study(key: str, dataset: Dataset, cash: CashForecast | None, found: Opportunities | None,
                    budget: float | None, risk_limit: float | None, seed: int) -> CampaignStudy:
    """:func:`campaign_study` itself; ``key`` (:func:`_study_key`) is what the result store keys it by."""
    config, tables = dataset.config, dataset.tables
    settings = config.campaign
    orders, campaigns = tables.get("orders"), tables.get("campaigns")
    orders = orders if orders is not None and len(orders) else None
    evidence = campaign_evidence(dataset, seed)
    results, check, model, notes = evidence.results, evidence.uplift, evidence.uplift_model, list(evidence.notes)
    measured = measured_lift(evidence.by_segment if evidence.by_segment is not None else results, campaigns,
                             settings.prior_lift)
    empty_scores = pd.DataFrame({"customer_id": pd.Series(dtype=str),
                                 "incremental_probability": pd.Series(dtype=float)})
    planner, plan, lift, scores = None, None, pd.DataFrame(columns=list(LIFT_COLUMNS)), empty_scores
    missing = [what for what, absent in (("orders", orders is None), ("a cash forecast", cash is None),
                                          ("customer scores", found is None or found.model is None))
               if absent]
    if missing:
        notes.append(Note(_STUDY_TOPIC, (
            f"No campaign plan: it needs {', '.join(missing)}; add an orders table to plan whom to contact "
            "and when."), "missing"))
        return CampaignStudy(results, check, scores, lift, measured.source, None, None,
                             [*notes, *measured.notes])
    window = int(campaigns["response_window_days"].max()) if campaigns is not None and len(campaigns) else 14
    horizon_days = len(cash.outlook.balance_draws)
    weeks = max(1, horizon_days // 7) + window // 7 + 2
    events = tables.get("events")
    signals = recent_signals(events, found.as_of, orders=orders) if events is not None else None
    timing = purchase_timing(found.model, weeks, seasonality=weekly_seasonality(cash.result.forecast, weeks),
                             signals=signals)
    customers = planner_customers(found.customers, found.offers)
    days = launch_days(cash.outlook)
    source = measured.source
    if model is not None and check is not None and check.better_than_random:
        lift = _model_lift(model, customers, orders, events, days, _discount_response(results, campaigns))
        scores = lift.drop(columns=["relative_lift", "lift_source"])
        source = "model"
    elif source == "measured":
        lift = measured.by_launch_week(customers, reachable_share(found.model, len(days)))
    else:
        lift = assumed_lift(timing, settings.plan_discounts, relative_lift=settings.prior_lift)
    if source == "measured":  # an assumed lift is said by the plan's own notes
        notes += measured.notes
    planner = CampaignPlanner(discounts=settings.plan_discounts, cost_per_contact=settings.cost_per_contact,
                              fixed_cost=settings.fixed_cost, response_window_days=window,
                              risk_limit=config.risk_limit if risk_limit is None else risk_limit,
                              budget=settings.budget if budget is None else budget,
                              gross_margin=config.gross_margin, seed=seed,
                              currency=config.currency)
    planner.fit(customers, cash.outlook, timing, lift)
    plan = planner.plan()
    # without past campaigns the note above already says the lift is assumed: the plan's own note would repeat it
    repeated = [ASSUMED_LIFT_NOTE] if results is None else []
    return CampaignStudy(results, check, scores, lift, source, planner, plan,
                         [*notes, *(note for note in plan.notes if note not in repeated)])


#: How a plan's lift is said to people.
def _discount_response(results: CampaignResults | None, campaigns: pd.DataFrame | None) -> pd.DataFrame:
    """How much of the average measured lift each measured discount brings (factor 1 = the average).

    An uplift model learns who responds, pooled over every variant it saw; the
    discount a variant offered scales that response as measured. Only measured
    discounts get a row: a discount no campaign offered has no known lift.
    """
    per_discount = measured_lift(results, campaigns).table
    overall = measured_lift(results).table["incremental_probability"].iloc[0]
    if "discount" not in per_discount.columns or overall <= 0:
        return pd.DataFrame({"factor": [1.0]})
    return pd.DataFrame({"discount": per_discount["discount"].astype(float),
                         "factor": (per_discount["incremental_probability"] / overall).clip(lower=0).to_numpy()})


def _model_lift(model: UpliftModel, customers: pd.DataFrame, orders: pd.DataFrame, events: pd.DataFrame | None,
                days: pd.DatetimeIndex, response: pd.DataFrame) -> pd.DataFrame:
    """The uplift model's lift per customer, launch week and measured discount.

    Each launch week scores the customers on their features as of its first
    day, as if they stayed silent until then: recent browsing that expires and
    a growing gap since the last order move a customer's persuadability, so a
    lapsing customer's lift fades by what the model learnt, not by a rule.
    """
    now = pd.DataFrame({"customer_id": customers["customer_id"].astype(str)})
    # a launch day counts the whole day before it
    first = customer_features(now, orders, as_of=days[0], events=events, event_days=_RECENT_EVENTS)
    frames = []
    for week, day in enumerate(days, start=1):
        features = features_when_silent(first, events, days[0], day, _RECENT_EVENTS)
        frames.append(lift_table(model.predict(features).clip(-1, 1), "model").assign(week=week))
    lift = pd.concat(frames, ignore_index=True).merge(response, how="cross")
    lift["incremental_probability"] *= lift.pop("factor")
    return lift


_LIFT_WORDS = {"model": "measured by an uplift model fitted on past campaigns",
               "measured": "measured on past campaigns with control groups",
               "assumed": "assumed, not measured (campaign.prior_lift)"}


def campaign_recommendation(study: CampaignStudy, currency: str = "USD") -> str:
    """The campaign to run next in one sentence: what, when, its profit and risk, and whether its lift is measured."""
    plan, lift = study.plan, _LIFT_WORDS[study.lift_source]
    if plan is None:
        return f"No campaign is planned: planning needs orders and a cash forecast; the lift would be {lift}."
    if not plan.recommended:
        return f"Run no campaign now: {plan.verdict}; the lift is {lift}."
    risk = ("its cash risk is not judged (the balance is unknown)" if math.isnan(plan.shortfall_probability)
            else f"the chance of falling below the minimum from the launch on is "
                 f"{plan.shortfall_probability:.0%} with it and {plan.shortfall_before:.0%} without")
    return (f"Run the campaign in the week of {plan.launch_week:%d %b %Y} to {len(plan.targets):,} customers: "
            f"expected added profit {money_text(plan.expected_profit, currency)} (8 in 10 futures "
            f"{money_text(plan.profit_p10, currency)} to {money_text(plan.profit_p90, currency)}); {risk}; "
            f"the lift is {lift}.")


def campaign_tables(study: CampaignStudy) -> dict[str, pd.DataFrame]:
    """The study's tables as files take them: measurement, uplift quality and scores, and the plan's parts."""
    tables = {"uplift_scores": study.scores}
    if study.results is not None:
        tables["campaign_measurement"] = study.results.table
    if study.uplift is not None:
        tables["uplift_quality"] = study.uplift.top
    if study.plan is not None:
        tables |= {"campaign_plan": study.plan.targets, "campaign_runners_up": study.plan.runners_up,
                   "campaign_cash_bands": study.plan.balance_bands}
    return tables


def campaign_summary(study: CampaignStudy, currency: str = "USD") -> dict[str, Any]:
    """The recommendation in plain values (``plan.json``): what to run, its risk, and where its lift comes from."""
    plan, check = study.plan, study.uplift
    out: dict[str, Any] = {
        "lift_source": study.lift_source,
        "campaigns_measured": 0 if study.results is None else int(study.results.table["campaign_id"].nunique()),
        "uplift_model": None if check is None else {
            "learner": check.learner, "holdout": check.holdout, "qini": check.qini, "qini_low": check.qini_low,
            "qini_high": check.qini_high, "better_than_random": check.better_than_random},
        "plan": None,
        "recommendation": campaign_recommendation(study, currency),
        "notes": notes_frame(study.notes),
    }
    if plan is not None:
        out["plan"] = {
            "recommended": plan.recommended, "verdict": plan.verdict, "launch_week": plan.launch_week,
            "targets": len(plan.targets), "expected_profit": plan.expected_profit,
            "profit_p10": plan.profit_p10, "profit_p90": plan.profit_p90, "loss_probability": plan.loss_probability,
            "upfront_cost": plan.upfront_cost, "shortfall_probability": plan.shortfall_probability,
            "shortfall_before": plan.shortfall_before,
            "discounts": ({} if plan.targets.empty else
                          plan.targets.groupby("segment")["discount"].first().to_dict())}
    return out


def repeat_revenue_reconciliation(cash: CashForecast, found: Opportunities) -> pd.DataFrame:
    """Why the forecast's repeat money and the opportunities' expected repeat spend differ, part by part.

    The forecast's post-purchase inflow (repeat and upsell sales) over its
    horizon is walked down to the opportunities' expected repeat spend (sum of
    ``expected_value`` over today's customers): less the repeats of customers
    who first buy within the horizon (their share of the last ``found.days``
    days' repeat money), less the guests' repeats, less the days the forecast
    looks beyond the opportunities' ``days``; what is left is model against
    history. Returns ``part, amount, share_of_forecast`` (amounts that add up
    from the first row to the last); ``attrs["explanation"]`` says it in one
    Markdown sentence, amounts in the configured currency.
    """
    forecast = cash.result.forecast
    stage_direction = forecast["unique_id"].str.split("|", n=2, expand=True)
    repeats = forecast[(stage_direction[0] == "post-purchase") & (stage_direction[1] == "inflow")]
    horizon = int(forecast["ds"].nunique())
    predicted = float(repeats["yhat"].sum())
    expected = float(found.customers["expected_value"].fillna(0.0).sum())
    history = found.repeat_history
    total = history.get("total", 0.0)
    newcomers = -predicted * history.get("new_customers", 0.0) / total if total else 0.0
    guests = -predicted * history.get("guests", 0.0) / total if total else 0.0
    existing = predicted + newcomers + guests
    window = -existing * (1 - min(found.days, horizon) / horizon) if horizon else 0.0
    rest = expected - (existing + window)
    parts = [
        (f"forecast: post-purchase inflow over the next {horizon} days", predicted),
        (f"less repeats by customers who first buy within the horizon (their share of the last "
         f"{found.days} days' repeat money)", newcomers),
        ("less repeats by guests (no customer id)", guests),
        (f"less the days the forecast looks beyond the opportunities' {found.days}", window),
        ("model against history: today's customers slowing down or dropping out, as the repeat-buying "
         "model expects, against the series' own level and trend", rest),
        (f"opportunities: expected repeat spend of today's {len(found.customers):,} customers over "
         f"{found.days} days", expected),
    ]
    table = pd.DataFrame(parts, columns=["part", "amount"])
    table["share_of_forecast"] = table["amount"] / predicted if predicted else np.nan
    largest = table.iloc[1:-1].assign(size=lambda t: t["amount"].abs()).sort_values("size").iloc[-1]
    currency = cash.config.currency

    def money(amount: float) -> str:
        return money_markdown(amount, currency, compact=False)

    sign = "+" if largest["amount"] > 0 else ""
    table.attrs["explanation"] = (
        f"The forecast expects {money(predicted)} of repeat and upsell money in {horizon} days and the "
        f"opportunities {money(expected)} from today's customers in {found.days} days; the largest part of "
        f"the difference is {largest['part'].removeprefix('less ')} ({sign}{money(largest['amount'])}).")
    if not predicted and not expected:
        table.attrs["explanation"] = f"Neither the forecast nor the opportunities expect repeat money in {horizon} days."
    return table


# ---------------------------------------------------------------- the rolling forecast

_RECORDED = ("yhat", "yhat_lower", "yhat_upper")


def forecast_record(forecast: pd.DataFrame) -> dict[str, Any]:
    """A run's stage forecasts as plain JSON, for ``toolkit.notebook.record``.

    ``{unique_id: {"ds": [...], "yhat": [...], "yhat_lower": [...], "yhat_upper": [...]}}``,
    amounts rounded to cents; the next run reads it back with ``forecast_from_record``.
    """
    return {
        uid: {"ds": [f"{d:%Y-%m-%d}" for d in part["ds"]],
              **{c: [round(float(v), 2) for v in part[c]] for c in _RECORDED}}
        for uid, part in forecast.groupby("unique_id", sort=False)
    }


def forecast_from_record(record: Mapping[str, Any]) -> pd.DataFrame:
    """The long forecast frame (``unique_id, ds, yhat, yhat_lower, yhat_upper``) of a ``forecast_record``."""
    columns = ["unique_id", "ds", *_RECORDED]
    parts = [pd.DataFrame({"unique_id": uid, "ds": pd.to_datetime(values["ds"]),
                           **{c: np.asarray(values[c], dtype=float) for c in _RECORDED}})
             for uid, values in record.items()]
    if not parts:
        return pd.DataFrame({"unique_id": pd.Series(dtype="str"), "ds": pd.Series(dtype="datetime64[ns]"),
                             **{c: pd.Series(dtype="float64") for c in _RECORDED}})
    frame = pd.concat(parts, ignore_index=True)
    frame["unique_id"] = frame["unique_id"].astype("str")
    frame["ds"] = frame["ds"].astype("datetime64[ns]")
    return frame[columns]


def forecast_variance(forecast: pd.DataFrame, series: pd.DataFrame) -> pd.DataFrame:
    """What an earlier forecast said against what then happened, per series.

    Only the days both frames cover count. One row per series that has such
    days: ``unique_id, stage, direction, first_day, last_day, days,
    forecast`` (sum of ``yhat``), ``actual`` (sum of ``y``), ``variance``
    (actual - forecast), ``variance_pct`` (variance / forecast; NaN when
    nothing was forecast) and ``within_band`` (share of days whose actual
    lies within ``yhat_lower..yhat_upper``). No rows when the series hold no
    day after the earlier forecast began.
    """
    both = forecast.merge(series[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="inner")
    both["inside"] = (both["y"] >= both["yhat_lower"]) & (both["y"] <= both["yhat_upper"])
    table = both.groupby("unique_id", sort=False).agg(
        first_day=("ds", "min"), last_day=("ds", "max"), days=("ds", "size"),
        forecast=("yhat", "sum"), actual=("y", "sum"), within_band=("inside", "mean"),
    ).reset_index()
    parts = table["unique_id"].str.split("|", n=2, expand=True).reindex(columns=[0, 1])
    table.insert(1, "stage", parts[0].astype("str"))
    table.insert(2, "direction", parts[1].astype("str"))
    table["variance"] = table["actual"] - table["forecast"]
    table["variance_pct"] = table["variance"] / table["forecast"].where(table["forecast"] != 0)
    columns = ["unique_id", "stage", "direction", "first_day", "last_day", "days",
               "forecast", "actual", "variance", "variance_pct", "within_band"]
    return table[columns]


def recorded(run: Mapping[str, Any] | None, name: str) -> Any:
    """The value a notebook of ``run`` (a ``summary.json`` mapping) recorded as ``name``, or None."""
    for notebook in (run or {}).get("notebooks", []):
        if name in (notebook.get("records") or {}):
            return notebook["records"][name]
    return None


def headline(cash: CashForecast, found: Opportunities | None = None,
             study: CampaignStudy | None = None) -> dict[str, Any]:
    """The run's headline figures by their names in the report, JSON-ready (dates as ISO days).

    Cash figures always; re-purchase figures with ``found``; the planned
    campaign's with ``study`` (its plan's added profit over what customers buy
    anyway, never their natural propensity, and where its lift comes from).
    The cash figures are named after what they are (``cash_figure_names``):
    a balance only with an opening balance and known costs; the shortfall
    figures are None when the risk was not assessed.
    """
    outlook = cash.outlook
    figures = outlook.summary()
    last_day, at_horizon, lowest = cash_figure_names(cash)
    out: dict[str, Any] = {
        "data through": plain(outlook.as_of),
        last_day: float(outlook.bands["actual"].dropna().iloc[-1]),
        at_horizon: figures["ending_p50"],
        lowest: figures["lowest_p50"],
        "shortfall probability": figures["shortfall_probability"],
        "first likely breach": plain(figures["first_breach_date"]),
        "runway (days)": figures["runway_days"],
    }
    if cash.low_point is not None:
        out["lowest P10 balance"] = cash.low_point.p10
        out["low point date"] = plain(cash.low_point.p50_date)
        out["days of cash"] = cash.days_of_cash
    if found is not None:
        # without a re-purchase model (too few repeat customers) there is no such figure, not a zero
        fitted = found.model is not None
        out["customers likely active"] = (int((found.customers["probability_alive"] >= 0.5).sum())
                                          if fitted else None)
        out["expected re-purchase value"] = float(found.repurchase["expected_value"].sum()) if fitted else None
        out["re-purchase model"] = found.model_name
    if study is not None:
        plan = study.plan
        out["campaign recommended"] = plan is not None and plan.recommended
        out["campaign launch week"] = plain(plan.launch_week) if plan is not None and plan.recommended else None
        out["campaign expected profit"] = plan.expected_profit if plan is not None and plan.recommended else None
        out["campaign shortfall probability"] = plain(plan.shortfall_probability) if plan is not None else None
        out["campaign lift source"] = study.lift_source
    return out


def headline_kinds(cash: CashForecast) -> dict[str, list[str]]:
    """The headline figures by how people read them (``money``, ``percent``, ``dates``, ``integers``),
    as :func:`~toolkit.tables.key_figures` takes them; a figure of :func:`headline` that is a
    number is in one of them (tested), so no page shows it raw."""
    last_day, at_horizon, lowest = cash_figure_names(cash)
    return {"money": [last_day, at_horizon, lowest, "lowest P10 balance", "expected re-purchase value",
                      "campaign expected profit"],
            "percent": ["shortfall probability", "campaign shortfall probability"],
            "dates": ["data through", "first likely breach", "low point date", "campaign launch week"],
            "integers": ["runway (days)", "days of cash", "customers likely active"]}


def cash_figure_names(cash: CashForecast) -> tuple[str, str, str]:
    """Names of the cash figures on the last day, at the horizon (median) and at the lowest median.

    "cash ..." only when it is cash: an opening balance and known (or
    estimated) costs. Without an opening balance the figures are a cumulative
    net cash flow; without costs, money in only.
    """
    if cash.outlook.balance_known and cash.costs != "none":
        return "cash on the last day", "median balance at the horizon", "lowest median balance"
    if cash.outlook.balance_known:
        what = "balance before costs"
    else:
        what = "cumulative net cash flow" if cash.costs != "none" else "cumulative money in"
    return f"{what} on the last day", f"median {what} at the horizon", f"lowest median {what}"


def headline_changes(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> pd.DataFrame:
    """Headline figures side by side: ``measure, previous, now, change`` (numbers only for change).

    ``previous`` is None when there is no earlier run; its column is then empty.
    """
    earlier = previous or {}
    rows = []
    for measure, now in current.items():
        before = earlier.get(measure)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, now))
        rows.append({"measure": measure, "previous": before, "now": now,
                     "change": now - before if numeric else None})
    return pd.DataFrame(rows, columns=["measure", "previous", "now", "change"])


