"""The campaign planner: whom to contact, with which discount, in which week, within the cash risk.

A campaign pays only for the sales it *adds*. Each customer would buy anyway
with some chance in the weeks ahead (the re-purchase model's expected
purchases, week by week: :func:`purchase_timing`); a campaign launched in week
``w`` with a response window of ``d`` days meets that natural chance in its
window: those purchases get the discount (a cost) and gain nothing. Only the
incremental conversions are gain, so the expected profit of a campaign depends
on when it is launched. Every natural purchase in the window is taken to use
the discount, at the customer's usual spend (``natural_value``): the cautious
reading, as a customer who hears of a discount rarely pays full price.

The incremental conversion probability never comes from natural propensity.
It comes, per customer, from one of (best first):

* ``"model"``: an uplift model's scores that beat random targeting,
* ``"measured"``: the measured effect of a past campaign per segment or variant,
* ``"assumed"``: a relative lift over the natural purchase chance in the window
  (:func:`assumed_lift`: +15% for a personal offer plus one point per point
  of discount), said as "assumed, not measured" in the plan's notes and verdict.

All three are one frame (:data:`LIFT_COLUMNS`): customer_id, an optional
discount (a row per discount of the menu when the lift depends on it; without
one the lift is the same at every discount), incremental_probability (added to
the chance of buying in the window), relative_lift (a share of the natural
chance in the window added on top) and lift_source. :func:`lift_table` makes
one from an uplift model's or a measurement's per-customer scores.

The planner is an estimator: :class:`CampaignPlanner` is configured in its
constructor, ``fit`` precomputes every customer x launch week x discount once,
and ``plan`` re-optimises in a fraction of a second with vectorised numpy, so a
budget, risk-limit or discount slider can call it on every move. ``plan``
picks per segment the discount of the menu, the customers worth contacting
(ranked by expected incremental profit, as many as the budget and the cash
risk allow) and the launch week, maximising the expected incremental profit
subject to P(balance < minimum_cash) <= risk_limit. The risk is measured on
the cash forecast's own sample paths (``CashOutlook.balance_draws``), from the
launch day on, so a dip before a launch does not condemn that launch. Without
an opening balance there is no balance to check: the plan weighs profit only
and says the risk is not judged. A plan that is empty, expected to lose money,
or losing money in one draw in ten or more is never recommended: the verdict
then says that no campaign pays.

Example (``dataset``, ``cash``, ``found`` from ``toolkit.pipeline``)::

    from toolkit.opportunities import (CampaignPlanner, assumed_lift, personal_offers, planner_customers,
                                       purchase_timing, recent_signals, weekly_seasonality)

    weeks = 13 + 2 + 1                               # launch weeks + the response window + a spare
    timing = purchase_timing(found.model, weeks,     # P(natural purchase) per customer x week
                             seasonality=weekly_seasonality(cash.result.forecast, weeks),
                             signals=recent_signals(events, found.as_of, orders=orders))
    offers = personal_offers(orders, found.as_of, gross_margin=0.58, predictions=found.customers)
    customers = planner_customers(found.customers, offers)
    planner = CampaignPlanner(discounts=(0, 0.1, 0.2), cost_per_contact=2.0, gross_margin=0.58)
    planner.fit(customers, cash.outlook, timing, assumed_lift(timing, planner.discounts))
    plan = planner.plan()                            # again with budget=..., risk_limit=... on a slider move
    plan.verdict, plan.targets, plan.runners_up, plan.balance_bands, plan.launch_weeks()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from toolkit.cash import CashOutlook
from toolkit.charts import money_text
from toolkit.notes import Note
from toolkit.opportunities.repurchase import TIME_UNITS, RepurchaseModel
from toolkit.opportunities.segments import OpportunityError, require_columns
from toolkit.opportunities.signals import _with_odds_ratio

__all__ = [
    "ASSUMED_GROSS_MARGIN",
    "ASSUMED_LIFT_NOTE",
    "LIFT_COLUMNS",
    "LIFT_SOURCES",
    "CampaignPlan",
    "CampaignPlanner",
    "assumed_lift",
    "gross_margin_or_assumed",
    "lift_table",
    "launch_days",
    "planner_customers",
    "purchase_timing",
    "reachable_share",
    "weekly_seasonality",
    "window_chance",
]

#: The share of a sale assumed to stay as cash when the configuration does not say: 0.4, about
#: online retail's typical gross margin and below the 0.55-0.58 of the shops this toolkit was
#: checked on, so that an unknown margin understates a campaign's gain rather than overstating it.
ASSUMED_GROSS_MARGIN = 0.4


def gross_margin_or_assumed(gross_margin: float | None) -> tuple[float, list[Note]]:
    """The configured gross margin, or ``ASSUMED_GROSS_MARGIN`` with a note saying it is assumed."""
    if gross_margin is not None:
        return gross_margin, []
    return ASSUMED_GROSS_MARGIN, [Note("campaign", (
        f"No gross margin configured: campaign gains and offer discounts assume {ASSUMED_GROSS_MARGIN:.0%} "
        "of a sale stays as cash; set gross_margin (e.g. 0.55) in journeycast.yml to use yours."),
        "assumed")]


#: Where an incremental conversion probability comes from, best first.
LIFT_SOURCES: tuple[str, ...] = ("model", "measured", "assumed")
#: The columns of a lift frame (``discount`` may be left out: the same lift at every discount).
LIFT_COLUMNS: tuple[str, ...] = ("customer_id", "discount", "incremental_probability", "relative_lift",
                                 "lift_source")
#: What a plan on an assumed lift says about it.
ASSUMED_LIFT_NOTE = Note("campaign", (
    "The campaign's lift is assumed, not measured: a relative lift over each customer's natural chance of buying in "
    "the window; measure a past campaign with a control group (a contacts file) to plan on a measured lift."),
    "assumed")
#: The relative lift of a personal offer without a discount when nothing is measured, and how much each
#: point of discount adds (+25% at 10% off). Cautious on purpose: in the Hillstrom e-mail test the
#: e-mails roughly doubled the two-week conversion of a 0.6% base, and an unmeasured lift should
#: understate a campaign's gain rather than overstate it.
ASSUMED_RELATIVE_LIFT = 0.15
ASSUMED_LIFT_PER_DISCOUNT = 1.0
_DAYS = 7
#: A plan is recommended only when it loses money in fewer draws than this: its P10 profit is above zero.
RELIABLE_LOSS_SHARE = 0.1
#: Target list sizes tried per launch week when the risk limit binds (geometric, plus every positive one).
_SIZES = 24


def purchase_timing(model: RepurchaseModel, weeks: int, summary: pd.DataFrame | None = None,
                    seasonality: Sequence[float] | pd.Series | None = None,
                    signals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each customer's natural chance of buying in each of the coming ``weeks`` weeks.

    The expected purchases in week ``w`` are ``expected_purchases(7w) -
    expected_purchases(7(w-1))`` of the re-purchase model (they fall as a
    silent customer's P(alive) fades); ``seasonality`` (one factor per week,
    e.g. :func:`weekly_seasonality` of the inflow forecast) scales them to the
    shop's weekly shape; ``signals`` (:func:`toolkit.opportunities.recent_signals`
    output: customer_id, event_type, odds_ratio, lead_days, days_ago, most
    recent first) multiply the odds of a purchase in the weeks before the
    signal's lead runs out, each kind of signal once per customer. The chance of at
    least one purchase is ``1 - exp(-expected)`` (purchases as a Poisson count).

    Returns a frame indexed by customer_id with columns 1..weeks.
    """
    if weeks < 1:
        raise OpportunityError("purchase_timing needs at least one week")
    by_week = model.expected_purchases_by_period([_DAYS * w for w in range(1, weeks + 1)], summary)
    customers = by_week.index.astype(str)
    expected = np.clip(by_week.to_numpy(), 0, None)
    if seasonality is not None:
        factor = np.asarray(seasonality, dtype=float)[:weeks]
        if len(factor) < weeks or not np.isfinite(factor).all() or (factor < 0).any():
            raise OpportunityError(f"seasonality needs {weeks} finite, non-negative weekly factors")
        expected = expected * factor[None, :]
    chance = pd.DataFrame(1 - np.exp(-expected), columns=range(1, weeks + 1),
                          index=pd.Index(customers, name="customer_id"))
    if signals is not None and len(signals):
        require_columns(signals, ("customer_id", "event_type", "odds_ratio", "lead_days", "days_ago"), "signals")
        latest = signals.drop_duplicates(["customer_id", "event_type"])  # each kind of signal counts once
        row = chance.index.get_indexer(latest["customer_id"].astype(str))
        latest, row = latest[row >= 0], row[row >= 0]
        due = (latest["lead_days"] - latest["days_ago"]).clip(lower=1).to_numpy()
        raised = _DAYS * np.arange(weeks)[None, :] < due[:, None]       # the weeks before the lead runs out
        ratio = np.ones(chance.shape)
        np.multiply.at(ratio, row, np.where(raised, latest["odds_ratio"].to_numpy(dtype=float)[:, None], 1.0))
        chance = _with_odds_ratio(chance, pd.DataFrame(ratio, index=chance.index, columns=chance.columns))
    return chance


def weekly_seasonality(forecast: pd.DataFrame, weeks: int,
                       stages: Sequence[str] = ("purchase", "post-purchase")) -> pd.Series:
    """The weekly shape of the purchase inflow forecast: one factor per coming week, mean 1.

    ``forecast`` is ``ForecastResult.forecast`` (unique_id ``stage|direction|segment``,
    ds, yhat); the inflow series of ``stages`` are summed per 7-day block from
    the first forecast day. Weeks beyond the forecast repeat its mean (factor 1).
    """
    require_columns(forecast, ("unique_id", "ds", "yhat"), "the forecast")
    parts = forecast["unique_id"].str.split("|", n=2, expand=True)
    inflow = forecast[parts[0].isin(list(stages)) & (parts[1] == "inflow")]
    factor = np.ones(weeks)
    if len(inflow):
        days = (inflow["ds"] - inflow["ds"].min()).dt.days.to_numpy()
        daily = np.bincount(days, weights=inflow["yhat"].clip(lower=0).to_numpy())
        full = len(daily) // _DAYS
        weekly = daily[:full * _DAYS].reshape(full, _DAYS).sum(axis=1)[:weeks]
        if len(weekly) and weekly.mean() > 0:
            factor[:len(weekly)] = weekly / weekly.mean()
    return pd.Series(factor, index=range(1, weeks + 1), name="seasonality")


def launch_days(cash: CashOutlook | None, as_of: str | pd.Timestamp | None = None,
                launch_weeks: int | None = None) -> pd.DatetimeIndex:
    """The first day of every launch week the planner tries, from the day after the data.

    ``launch_weeks`` weeks (None: all that start within the cash forecast's
    horizon, else 13); without a cash forecast ``as_of`` is the last day of data.
    """
    if cash is None and as_of is None:
        raise OpportunityError("without a cash forecast the planner needs as_of, the last day of data")
    first = (cash.as_of if cash is not None else pd.Timestamp(as_of).normalize()) + pd.Timedelta(days=1)
    # in days, whatever the forecast's frequency (a weekly forecast has a row a week)
    horizon_days = (pd.Timestamp(cash.balance_draws.index.max()) - cash.as_of).days if cash is not None else None
    weeks = launch_weeks or (max(1, horizon_days // _DAYS) if horizon_days else 13)
    if horizon_days is not None:
        weeks = min(weeks, max(1, (horizon_days - 1) // _DAYS + 1))
    return pd.DatetimeIndex([first + pd.Timedelta(days=_DAYS * w) for w in range(weeks)])


def reachable_share(model: RepurchaseModel, weeks: int, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """How much of a lift measured today still reaches each customer at each launch week (1 = all of it).

    A campaign wins back only customers who are still active. A customer who
    stays silent until a later launch is less likely to be: the share is
    P(alive at the start of week ``w`` | no purchase until then) over
    P(alive today), from the re-purchase model's own summary (frequency and
    recency kept, the customer's age grown by the weeks that pass). Week 1 is 1.

    Returns a frame indexed by customer_id with columns 1..weeks.
    """
    data = (model.summary_ if summary is None else summary).reset_index(drop=True)
    unit = TIME_UNITS[model.time_unit]
    now = model.probability_alive(data).to_numpy()
    shares = [model.probability_alive(data.assign(T=data["T"] + _DAYS * w / unit)).to_numpy()
              / np.clip(now, 1e-12, None) for w in range(weeks)]
    return pd.DataFrame(np.clip(np.column_stack(shares), 0, 1), columns=range(1, weeks + 1),
                        index=pd.Index(data["customer_id"].astype(str), name="customer_id"))


def window_chance(timing: pd.DataFrame, launch_weeks: int, window_days: int) -> np.ndarray:
    """P(natural purchase within the response window) per customer (rows) and launch week (columns).

    A window of ``window_days`` days from the start of week ``w`` covers whole
    weeks and a fraction of the last one, whose chance counts pro rata (a
    constant rate within the week).
    """
    full, rest = divmod(window_days, _DAYS)
    needed = launch_weeks + full + (rest > 0) - 1
    if timing.shape[1] < needed:
        raise OpportunityError(f"the timing covers {timing.shape[1]} weeks; {launch_weeks} launch weeks with a "
                               f"{window_days}-day window need {needed}")
    log_none = np.log(np.clip(1 - timing.to_numpy(dtype=float), 1e-12, 1))
    cover = np.zeros((timing.shape[1], launch_weeks))
    for w in range(launch_weeks):
        cover[w:w + full, w] = 1.0
        if rest:
            cover[w + full, w] = rest / _DAYS
    return 1 - np.exp(log_none @ cover)


def lift_table(incremental_probability: pd.Series, source: str) -> pd.DataFrame:
    """A lift frame from per-customer incremental probabilities (an uplift model's or a measurement's).

    ``incremental_probability`` is indexed by customer_id (e.g.
    ``UpliftModel.predict(features)``); negative scores (customers a campaign
    would put off) are kept: the planner leaves such customers out.
    """
    if source not in LIFT_SOURCES:
        raise OpportunityError(f"lift_source must be one of {LIFT_SOURCES}, got {source!r}")
    values = incremental_probability.astype(float)
    if not np.isfinite(values.to_numpy()).all() or (values.abs() > 1).any():
        raise OpportunityError("incremental probabilities must be finite numbers between -1 and 1")
    return pd.DataFrame({"customer_id": values.index.astype(str), "incremental_probability": values.to_numpy(),
                         "relative_lift": 0.0, "lift_source": source})


def assumed_lift(timing: pd.DataFrame, discounts: Sequence[float] = (0.0, 0.1, 0.2),
                 relative_lift: float = ASSUMED_RELATIVE_LIFT,
                 lift_per_discount: float = ASSUMED_LIFT_PER_DISCOUNT) -> pd.DataFrame:
    """The lift frame when nothing is measured: a relative lift over each customer's natural chance.

    A campaign offering discount ``d`` raises a customer's chance of buying in
    its window by ``relative_lift + lift_per_discount x d`` of their natural
    chance (defaults: +15% without a discount, +25% with 10% off): customers who
    would not buy anyway are not won by a message either. One row per customer
    of ``timing`` and discount, lift_source "assumed".
    """
    if relative_lift < 0 or lift_per_discount < 0:
        raise OpportunityError("an assumed lift cannot be negative")
    customers = timing.index.astype(str)
    return pd.DataFrame({
        "customer_id": np.repeat(customers, len(discounts)),
        "discount": np.tile(np.asarray(discounts, dtype=float), len(customers)),
        "incremental_probability": 0.0,
        "relative_lift": np.tile(relative_lift + lift_per_discount * np.asarray(discounts, dtype=float),
                                 len(customers)),
        "lift_source": "assumed"})


def planner_customers(customers: pd.DataFrame, offers: pd.DataFrame | None = None) -> pd.DataFrame:
    """The planner's customer frame from ``Opportunities.customers`` and :func:`personal_offers`.

    Columns: customer_id, segment, offer, value (the offer's value, else the
    customer's expected spend per purchase), natural_value (the expected spend
    per purchase: what a purchase that happens anyway is worth, else the value)
    and max_discount (the offer's bound, else none: 1). Customers without a
    value are left out: nothing to sell them.
    """
    require_columns(customers, ("customer_id", "segment"), "the customers")
    out = customers[["customer_id", "segment"]].copy()
    spend = customers["expected_spend"] if "expected_spend" in customers.columns else np.nan
    out["value"] = pd.Series(spend, index=customers.index, dtype=float)
    out["natural_value"] = out["value"]
    out["offer"] = "the usual range"
    out["max_discount"] = 1.0
    if offers is not None and len(offers):
        chosen = offers.set_index("customer_id").reindex(out["customer_id"])
        has = chosen["offer_value"].notna().to_numpy()
        out.loc[has, "value"] = chosen["offer_value"].to_numpy()[has]
        out.loc[has, "offer"] = chosen["offer"].to_numpy()[has]
        out.loc[has, "max_discount"] = chosen["max_discount"].to_numpy()[has]
    out["natural_value"] = out["natural_value"].fillna(out["value"])
    out = out[out["value"].notna() & (out["value"] > 0)]
    return out.astype({"customer_id": "str", "segment": "str", "offer": "str"}).reset_index(drop=True)


@dataclass(frozen=True)
class CampaignPlan:
    """The recommended campaign, how sure it is, and what it was chosen over.

    Attributes
    ----------
    targets : one row per customer to contact: customer_id, segment, offer,
        discount (share), natural_probability (of buying in the window anyway),
        incremental_probability (the purchases the campaign adds),
        expected_profit (incremental margin less the discount given on natural
        purchases and the contact), expected_value (the sales the campaign adds)
        and window_start (the launch week in which the customer is likeliest to
        buy anyway), best first; empty when no plan is expected to pay.
    launch_week : the first day of the launch week (None when nothing is recommended).
    week_number : 1 = the week after the data.
    expected_profit, profit_p10, profit_p50, profit_p90 : incremental profit
        after every cost, its mean and quantiles over the draws (the sum over
        many customers' independent purchases, drawn as a normal variable).
    loss_probability : share of the draws in which the plan loses money.
    upfront_cost : contacts and fixed cost, paid on the launch day.
    shortfall_probability, shortfall_before : P(balance < minimum) from the
        launch day to the end of the horizon with and without the plan (NaN
        when the risk is not judged). A later launch leaves fewer days to fall
        short in, so compare weeks by the difference the plan makes too.
    weeks : one row per launch week: launch_week, week_number, expected_profit
        (the best plan within the risk limit), best_profit (the best plan
        ignoring the risk), shortfall_probability (of the best plan ignoring the
        risk), targets, feasible.
    runners_up : other weeks and discounts: option, launch_week, expected_profit,
        shortfall_probability, reason (e.g. "week of 01 Dec 2026: +$1.2k more,
        shortfall risk 9% > 5%").
    balance_bands : ds, scenario ("without the campaign" / "with the campaign"),
        p10, p50, p90 over the forecast days; empty when the cash is unknown.
    recommended, verdict : whether to run it, and one plain sentence why. A plan that
        loses money in one draw in ten or more (its P10 profit not above zero) is not
        recommended ("no campaign pays reliably"); its targets and figures are kept to
        show what was weighed.
    lift_source : "model", "measured", "assumed" or "mixed".
    notes : what the plan assumes or lacks (an assumed lift, margin, an unknown cash position).
    """

    targets: pd.DataFrame
    launch_week: pd.Timestamp | None
    week_number: int | None
    expected_profit: float
    profit_p10: float
    profit_p50: float
    profit_p90: float
    loss_probability: float
    upfront_cost: float
    shortfall_probability: float
    shortfall_before: float
    weeks: pd.DataFrame
    runners_up: pd.DataFrame
    balance_bands: pd.DataFrame
    recommended: bool
    verdict: str
    lift_source: str
    notes: list[Note] = field(default_factory=list)

    def by_segment(self) -> pd.DataFrame:
        """The targets per segment and discount: customers, the mean chance to buy anyway
        (``natural``) and added by the campaign (``added``), and the expected added profit."""
        return self.targets.groupby(["segment", "discount"], observed=True).agg(
            customers=("customer_id", "size"), natural=("natural_probability", "mean"),
            added=("incremental_probability", "mean"), profit=("expected_profit", "sum")).reset_index()

    def launch_weeks(self) -> pd.DataFrame:
        """Risk before and after per launch week, as ``toolkit.charts.campaign_timing`` draws it.

        The gain is each week's best paying plan whatever its risk (``best_profit``), the plan
        the risk columns belong to: a week too risky to run still shows what it would add.
        """
        return pd.DataFrame({
            "launch_week": self.weeks["launch_week"],
            "shortfall_probability_before": self.weeks["shortfall_before"].astype(float),
            "shortfall_probability_after": self.weeks["shortfall_probability"].astype(float),
            "expected_net_gain": self.weeks["best_profit"].astype(float),
            "feasible": self.weeks["feasible"].astype(bool),
        })


@dataclass(frozen=True)
class _Option:
    """The best plan of one launch week under one choice of discounts (positions into the fitted arrays)."""

    week: int
    members: np.ndarray      # customer positions, best first
    choice: np.ndarray       # discount position per member
    size: int                # how many of the members are contacted
    profit: float
    risk: float
    mean: float              # expected cash in over the window (before upfront costs)
    sd: float


class CampaignPlanner:
    """Chooses the targets, discount per segment and launch week of a campaign under cash risk.

    Parameters
    ----------
    discounts : the menu of discounts (shares of the offer value) a segment may get.
    cost_per_contact : money per contacted customer, paid on the launch day.
    fixed_cost : money on the launch day whatever the size (creative, agency, platform).
    response_window_days : how long the offer stays open; its sales land evenly within it.
    risk_limit : the largest acceptable P(balance < minimum_cash) from the launch on.
    budget : the most that may be spent up front (contacts and fixed cost); None: no cap.
    gross_margin : share of a sale left after goods and shipping; a discount must stay below it.
        None: unknown, ``ASSUMED_GROSS_MARGIN`` is used and the plan's notes say so.
    launch_weeks : weekly launch days tried from the day after the data (None: all that fit
        in the cash forecast's horizon, else 13).
    draws : profit draws when there is no cash forecast (with one, its draws are used).
    seed : the draws' random state: same inputs and seed, same plan.
    currency : for the amounts in the verdict and the reasons.

    Attributes (after ``fit``)
    --------------------------
    customers_ : the fitted customers (customer_id, segment, offer, value, natural_value, max_discount).
    margin_ : the gross margin used (the configured one, or the assumed one).
    discounts_ : the menu plus every discount the lift was measured at.
    natural_ : P(natural purchase in the window), customers x launch weeks.
    incremental_ : the purchases the campaign adds, customers x launch weeks x discounts.
    cash_mean_, cash_var_ : expected incremental cash (margin on the purchases added less the
        discount on natural ones) and its variance, before contact costs, same shape.
    allowed_ : where a discount may be given (below the margin and within the offer's bound).
    launch_days_ : the first day of every launch week.
    """

    def __init__(self, discounts: Sequence[float] = (0.0, 0.1, 0.2), cost_per_contact: float = 2.0,
                 fixed_cost: float = 0.0, response_window_days: int = 14, risk_limit: float = 0.05,
                 budget: float | None = None, gross_margin: float | None = None, launch_weeks: int | None = None,
                 draws: int = 1000, seed: int = 42, currency: str = "USD") -> None:
        menu = tuple(sorted({float(d) for d in discounts}))
        if not menu or not all(0 <= d < 1 for d in menu):
            raise OpportunityError(f"discounts must be shares in [0, 1), got {discounts!r}")
        if gross_margin is not None and not 0 < gross_margin <= 1:
            raise OpportunityError(f"gross_margin must be a share in (0, 1], got {gross_margin}")
        if response_window_days < 1 or cost_per_contact < 0 or fixed_cost < 0 or draws < 10:
            raise OpportunityError("the response window must be a day or more, costs not negative, draws >= 10")
        self.discounts = menu
        self.cost_per_contact = float(cost_per_contact)
        self.fixed_cost = float(fixed_cost)
        self.response_window_days = int(response_window_days)
        self.risk_limit = float(risk_limit)
        self.budget = budget
        self.gross_margin = gross_margin
        self.launch_weeks = launch_weeks
        self.draws = int(draws)
        self.seed = int(seed)
        self.currency = currency

    # ------------------------------------------------------------------ fit

    def fit(self, customers: pd.DataFrame, cash: CashOutlook | None, timing: pd.DataFrame,
            lift: pd.DataFrame, as_of: str | pd.Timestamp | None = None) -> CampaignPlanner:
        """Precompute every customer x launch week x discount: natural chance, lift, profit and its spread.

        Parameters
        ----------
        customers : :func:`planner_customers` (customer_id, segment, value; offer,
            natural_value and max_discount optional).
        cash : the cash forecast's outlook (``CashForecast.outlook``) or None when unknown.
        timing : :func:`purchase_timing` for at least the launch weeks plus the window.
        lift : a lift frame (:data:`LIFT_COLUMNS`; :func:`assumed_lift`, :func:`lift_table`).
        as_of : the last day of data, when there is no cash forecast to take it from
            (launch weeks start the day after).
        """
        if cash is None and as_of is None:
            raise OpportunityError("without a cash forecast the planner needs as_of, the last day of data")
        require_columns(customers, ("customer_id", "segment", "value"), "the planner's customers")
        require_columns(lift, ("customer_id", "incremental_probability", "relative_lift", "lift_source"),
                        "the lift")
        unknown = set(lift["lift_source"]) - set(LIFT_SOURCES)
        if unknown:
            raise OpportunityError(f"lift_source must be one of {LIFT_SOURCES}, got {sorted(unknown)}")
        table = customers.assign(customer_id=customers["customer_id"].astype(str))
        table = table[table["customer_id"].isin(timing.index.astype(str))].reset_index(drop=True)
        if "offer" not in table.columns:
            table["offer"] = "the usual range"
        if "max_discount" not in table.columns:
            table["max_discount"] = 1.0
        if "natural_value" not in table.columns:
            table["natural_value"] = table["value"]
        self.customers_ = table[["customer_id", "segment", "offer", "value", "natural_value", "max_discount"]]
        self.margin_, self.margin_notes_ = gross_margin_or_assumed(self.gross_margin)
        self.cash_ = cash
        self.risk_judged_ = cash is not None and cash.minimum_cash is not None
        self.launch_days_ = launch_days(cash, as_of, self.launch_weeks)
        weeks = len(self.launch_days_)
        ordered = timing.set_axis(timing.index.astype(str)).reindex(self.customers_["customer_id"])
        self.natural_ = window_chance(ordered, weeks, self.response_window_days)
        self._fit_lift(lift)
        self._fit_profit()
        self._fit_cash()
        return self

    def _fit_lift(self, lift: pd.DataFrame) -> None:
        """incremental_probability and relative_lift per customer x launch week x discount (0 where none is known)."""
        ids = self.customers_["customer_id"].to_numpy()
        frame = lift.assign(customer_id=lift["customer_id"].astype(str))
        if "discount" not in frame.columns or frame["discount"].isna().all():
            frame = frame.drop(columns="discount", errors="ignore").merge(
                pd.DataFrame({"discount": self.discounts}), how="cross")
        # a discount a past campaign was measured at is an option too, whatever the menu says
        frame = frame[frame["discount"].notna()]
        self.discounts_ = tuple(sorted({*self.discounts, *frame["discount"].astype(float)}))
        n, w, k = len(ids), len(self.launch_days_), len(self.discounts_)
        absolute, relative = np.zeros((n, w, k)), np.zeros((n, w, k))
        row = pd.Index(ids).get_indexer(frame["customer_id"])
        column = pd.Index(self.discounts_).get_indexer(frame["discount"].astype(float))
        by_week = "week" in frame.columns  # a lift per launch week (1 = the first), else the same in every week
        week = frame["week"].to_numpy(dtype=int) - 1 if by_week else np.zeros(len(frame), dtype=int)
        keep = (row >= 0) & (week >= 0) & (week < w)
        where = (row[keep], week[keep] if by_week else slice(None), column[keep])
        for values, target in ((frame["incremental_probability"], absolute), (frame["relative_lift"], relative)):
            kept = values.to_numpy(dtype=float)[keep]
            target[where] = kept if by_week else kept[:, None]
        self.absolute_lift_, self.relative_lift_ = absolute, relative
        sources = frame.loc[keep, "lift_source"].unique()
        self.lift_source_ = str(sources[0]) if len(sources) == 1 else ("mixed" if len(sources) else "none")

    def _fit_profit(self) -> None:
        """Expected incremental cash and its variance per customer x week x discount, before contact costs."""
        value = self.customers_["value"].to_numpy(dtype=float)[:, None, None]
        usual = self.customers_["natural_value"].to_numpy(dtype=float)[:, None, None]
        discount = np.asarray(self.discounts_)[None, None, :]
        natural = self.natural_[:, :, None]
        incremental = self.absolute_lift_ + self.relative_lift_ * natural
        incremental = np.clip(incremental, -natural, 1 - natural)
        won = value * (self.margin_ - discount)     # cash of a sale won by the campaign
        given = usual * discount                     # discount on a purchase that would have happened anyway
        self.incremental_ = incremental
        self.cash_mean_ = incremental * won - natural * given
        self.cash_var_ = (np.abs(incremental) * (1 - np.abs(incremental)) * won ** 2
                          + natural * (1 - natural) * given ** 2)
        allowed = (discount < self.margin_) & (
            discount <= self.customers_["max_discount"].to_numpy(dtype=float)[:, None, None] + 1e-12)
        self.allowed_ = np.broadcast_to(allowed, self.cash_mean_.shape)

    def _fit_cash(self) -> None:
        """The baseline balance per forecast day and draw, and the draws' standard normal quantiles."""
        rng = np.random.default_rng(self.seed)
        if self.cash_ is None:
            self.base_ = None
            self.z_ = rng.standard_normal(self.draws)
            self.before_risk_ = np.full(len(self.launch_days_), np.nan)
            return
        balance = self.cash_.balance_draws.to_numpy(dtype=float)
        self.base_ = balance
        self.z_ = rng.standard_normal(balance.shape[1])
        dates = pd.DatetimeIndex(self.cash_.balance_draws.index)
        self.launch_rows_ = np.searchsorted(dates, self.launch_days_)
        days = np.arange(len(dates))
        # share of the window's sales in by each forecast day, per launch week (0 before the launch)
        elapsed = (dates.to_numpy()[None, :] - self.launch_days_.to_numpy()[:, None]) / np.timedelta64(1, "D") + 1
        self.ramp_ = np.clip(elapsed / self.response_window_days, 0, 1)
        if self.risk_judged_:
            below = balance < self.cash_.minimum_cash
            after = days[None, :, None] >= self.launch_rows_[:, None, None]
            self.before_risk_ = (below[None, :, :] & after).any(axis=1).mean(axis=1)
        else:
            self.before_risk_ = np.full(len(self.launch_days_), np.nan)

    # ------------------------------------------------------------------ plan

    def _check_fitted(self) -> None:
        if not hasattr(self, "cash_mean_"):
            raise OpportunityError("fit the campaign planner before planning")

    def _best_choice(self, week: int, profit: np.ndarray, allowed_discounts: np.ndarray) -> np.ndarray:
        """Per customer, the discount position their segment gets in ``week`` (the segment's best)."""
        table = np.where(self.allowed_[:, week, :] & allowed_discounts[None, :], profit[:, week, :], -np.inf)
        segment_codes, _ = pd.factorize(self.customers_["segment"])
        totals = np.zeros((segment_codes.max() + 1 if len(segment_codes) else 0, table.shape[1]))
        np.add.at(totals, segment_codes, np.where(np.isfinite(table), np.clip(table, 0, None), 0.0))
        totals[:, ~allowed_discounts] = -1.0
        return totals.argmax(axis=1)[segment_codes] if len(segment_codes) else np.zeros(0, dtype=int)

    def _options(self, week: int, choice: np.ndarray, profit: np.ndarray, cost: float,
                 budget: float | None, risk_limit: float) -> tuple[_Option, _Option]:
        """The best plan of a week within the risk limit, and the best ignoring it."""
        n = len(choice)
        rows = np.arange(n)
        per_customer = profit[rows, week, choice]
        ok = self.allowed_[rows, week, choice] & (per_customer > 0)
        members = rows[ok][np.argsort(-per_customer[ok], kind="stable")]
        choice_m = choice[members]
        mean = np.cumsum(self.cash_mean_[members, week, choice_m])
        var = np.cumsum(self.cash_var_[members, week, choice_m])
        gain = np.cumsum(per_customer[members]) - self.fixed_cost
        most = len(members)
        if budget is not None:
            most = min(most, int(max(0.0, budget - self.fixed_cost) // cost) if cost > 0 else most)
            if budget < self.fixed_cost:
                most = 0
        if most == 0:
            empty = _Option(week, members, choice_m, 0, -self.fixed_cost if n else 0.0, np.nan, 0.0, 0.0)
            return empty, empty
        sizes = np.unique(np.concatenate([np.round(np.geomspace(1, most, _SIZES)).astype(int), [most]]))
        risks = self._risk(week, sizes, mean[sizes - 1], np.sqrt(var[sizes - 1]), cost)
        profits = gain[sizes - 1]
        best = int(np.argmax(profits))
        safe = np.flatnonzero(~(risks > risk_limit)) if self.risk_judged_ else np.arange(len(sizes))
        within = int(safe[np.argmax(profits[safe])]) if len(safe) else None

        def option(i: int | None) -> _Option:
            if i is None:
                return _Option(week, members, choice_m, 0, 0.0, np.nan, 0.0, 0.0)
            s = int(sizes[i])
            return _Option(week, members, choice_m, s, float(profits[i]), float(risks[i]),
                           float(mean[s - 1]), float(np.sqrt(var[s - 1])))

        return option(within), option(best)

    def _risk(self, week: int, sizes: np.ndarray, mean: np.ndarray, sd: np.ndarray, cost: float) -> np.ndarray:
        """P(balance < minimum on a day from the launch on) per target list size; NaN when not judged."""
        if not self.risk_judged_:
            return np.full(len(sizes), np.nan)
        start = self.launch_rows_[week]
        base = self.base_[start:]                                    # days x draws
        ramp = self.ramp_[week, start:]                              # days
        upfront = self.fixed_cost + cost * sizes                     # sizes
        inflow = mean[:, None] + sd[:, None] * self.z_[None, :]      # sizes x draws
        balance = base[None, :, :] - upfront[:, None, None] + ramp[None, :, None] * inflow[:, None, :]
        return (balance < self.cash_.minimum_cash).any(axis=1).mean(axis=1)

    def plan(self, budget: float | None = None, risk_limit: float | None = None,
             discounts: Sequence[float] | None = None, cost_per_contact: float | None = None) -> CampaignPlan:
        """The most profitable campaign within the risk limit, with its runners-up and verdict.

        Every argument left out is the constructor's (``budget=math.inf`` lifts
        the constructor's cap); ``discounts`` restricts the menu to some of its discounts.
        """
        self._check_fitted()
        budget = self.budget if budget is None else budget
        budget = None if budget is None or not math.isfinite(budget) else float(budget)
        risk_limit = self.risk_limit if risk_limit is None else float(risk_limit)
        cost = self.cost_per_contact if cost_per_contact is None else float(cost_per_contact)
        menu = np.asarray(self.discounts_)
        allowed = np.ones(len(menu), bool) if discounts is None else np.isin(menu, np.asarray(discounts, float))
        if not allowed.any():
            raise OpportunityError(f"none of the discounts {list(discounts)} is on the menu {list(self.discounts_)}")
        profit = np.where(self.allowed_, self.cash_mean_ - cost, -np.inf)
        weeks = len(self.launch_days_)
        chosen, ignoring = [], []
        for week in range(weeks):
            choice = self._best_choice(week, profit, allowed)
            within, best = self._options(week, choice, profit, cost, budget, risk_limit)
            chosen.append(within)
            ignoring.append(best)
        pays = [o for o in chosen if o.size > 0 and o.profit > 0]
        winner = max(pays, key=lambda o: (o.profit, -o.week)) if pays else None
        return self._result(winner, chosen, ignoring, profit, cost, budget, risk_limit, allowed)

    # ------------------------------------------------------------------ the result

    def _money(self, amount: float, sign: bool = False) -> str:
        text = money_text(amount, self.currency)
        return f"+{text}" if sign and amount > 0 else text

    def _week_text(self, week: int) -> str:
        return f"week of {self.launch_days_[week]:%d %b %Y}"

    def _result(self, winner: _Option | None, chosen: list[_Option], ignoring: list[_Option],
                profit: np.ndarray, cost: float, budget: float | None, risk_limit: float,
                allowed: np.ndarray) -> CampaignPlan:
        weeks = pd.DataFrame({
            "launch_week": self.launch_days_, "week_number": np.arange(1, len(self.launch_days_) + 1),
            "expected_profit": [o.profit if o.size else 0.0 for o in chosen],
            "best_profit": [o.profit if o.size else 0.0 for o in ignoring],
            "shortfall_probability": [o.risk for o in ignoring],
            "shortfall_before": self.before_risk_,
            "targets": [o.size for o in chosen],
            "feasible": [o.size > 0 and o.profit > 0 for o in chosen]})
        notes = self._notes()
        if winner is None:
            return self._nothing(weeks, ignoring, cost, budget, risk_limit, notes)
        targets = self._targets(winner, profit)
        draws = winner.mean + winner.sd * self.z_ - self.fixed_cost - cost * winner.size
        p10, p50, p90 = np.quantile(draws, (0.1, 0.5, 0.9), method="inverted_cdf")
        upfront = self.fixed_cost + cost * winner.size
        plan_risk = winner.risk if self.risk_judged_ else np.nan
        loss = float((draws < 0).mean())
        verdict = self._verdict(winner, targets, p10, p90, plan_risk, risk_limit)
        # a plan that loses money in more than the one future in ten its P10 allows is a bet, not a plan that pays
        pays = loss < RELIABLE_LOSS_SHARE
        return CampaignPlan(
            targets=targets, launch_week=self.launch_days_[winner.week], week_number=winner.week + 1,
            expected_profit=winner.profit, profit_p10=float(p10), profit_p50=float(p50), profit_p90=float(p90),
            loss_probability=loss, upfront_cost=upfront, shortfall_probability=plan_risk,
            shortfall_before=float(self.before_risk_[winner.week]), weeks=weeks,
            runners_up=self._runners_up(winner, chosen, ignoring, profit, cost, budget, risk_limit, allowed),
            balance_bands=self._bands(winner, upfront), recommended=pays,
            verdict=verdict if pays else self._coin_toss(winner, len(targets), loss),
            lift_source=self.lift_source_, notes=notes)

    def _targets(self, option: _Option, profit: np.ndarray) -> pd.DataFrame:
        members, choice = option.members[:option.size], option.choice[:option.size]
        table = self.customers_.iloc[members]
        incremental = self.incremental_[members, option.week, choice]
        return pd.DataFrame({
            "customer_id": table["customer_id"].to_numpy(), "segment": table["segment"].to_numpy(),
            "offer": table["offer"].to_numpy(), "discount": np.asarray(self.discounts_)[choice],
            "natural_probability": self.natural_[members, option.week],
            "incremental_probability": incremental,
            "expected_profit": profit[members, option.week, choice],
            "expected_value": incremental * table["value"].to_numpy(dtype=float),
            "window_start": self.launch_days_[self.natural_[members].argmax(axis=1)]})

    def _bands(self, option: _Option, upfront: float) -> pd.DataFrame:
        if self.cash_ is None:
            return pd.DataFrame(columns=["ds", "scenario", "p10", "p50", "p90"])
        dates = pd.DatetimeIndex(self.cash_.balance_draws.index)
        inflow = option.mean + option.sd * self.z_
        after = self.base_ + np.where(self.ramp_[option.week] > 0, 1.0, 0.0)[:, None] * (-upfront) \
            + self.ramp_[option.week][:, None] * inflow[None, :]
        frames = []
        for name, balance in (("without the campaign", self.base_), ("with the campaign", after)):
            p10, p50, p90 = np.quantile(balance, (0.1, 0.5, 0.9), axis=1, method="inverted_cdf")
            frames.append(pd.DataFrame({"ds": dates, "scenario": name, "p10": p10, "p50": p50, "p90": p90}))
        return pd.concat(frames, ignore_index=True)

    def _risk_text(self, risk: float, risk_limit: float) -> str:
        return f"shortfall risk {risk:.0%} > {risk_limit:.0%}"

    def _runners_up(self, winner: _Option, chosen: list[_Option], ignoring: list[_Option], profit: np.ndarray,
                    cost: float, budget: float | None, risk_limit: float, allowed: np.ndarray) -> pd.DataFrame:
        rows = []
        for week, (within, best) in enumerate(zip(chosen, ignoring)):
            if week == winner.week:
                continue
            if best.size and best.profit > winner.profit and self.risk_judged_ and best.risk > risk_limit:
                reason = f"{self._money(best.profit - winner.profit, sign=True)} more, " \
                         f"{self._risk_text(best.risk, risk_limit)}"
                option = best
            elif within.size and within.profit > 0:
                reason = f"{self._money(winner.profit - within.profit)} less expected profit"
                option = within
            else:
                reason = "no plan pays in this week" if not (best.size and best.profit > 0) else \
                    f"every plan that pays is too risky ({self._risk_text(best.risk, risk_limit)})"
                option = best
            rows.append((self._week_text(week), self.launch_days_[week], option.profit, option.risk,
                         f"{self._week_text(week)}: {reason}"))
        for k in np.flatnonzero(allowed):
            choice = np.full(len(self.customers_), k)
            within, _ = self._options(winner.week, choice, profit, cost, budget, risk_limit)
            label = f"{self.discounts_[k]:.0%} discount for everyone"
            if within.size == 0 or within.profit <= 0:
                reason = "does not pay"
            elif within.profit >= winner.profit - 1e-9:
                continue  # the plan already gives every segment this discount
            else:
                reason = f"{self._money(winner.profit - within.profit)} less expected profit"
            rows.append((label, self.launch_days_[winner.week], within.profit, within.risk, f"{label}: {reason}"))
        return pd.DataFrame(rows, columns=["option", "launch_week", "expected_profit", "shortfall_probability",
                                           "reason"])

    def _verdict(self, winner: _Option, targets: pd.DataFrame, p10: float, p90: float, risk: float,
                 risk_limit: float) -> str:
        discounts = sorted(set(targets["discount"]))
        if discounts == [0.0]:
            offer = "no discount"
        elif len(discounts) == 1:
            offer = f"a {discounts[0]:.0%} discount"
        else:
            offer = "a discount of " + " or ".join(f"{d:.0%}" for d in discounts) + " by segment"
        sentence = (f"recommended: launch in the {self._week_text(winner.week)} to {len(targets):,} customers "
                    f"with {offer}: expected incremental profit {self._money(winner.profit, sign=True)} "
                    f"(P10 {self._money(p10)} to P90 {self._money(p90)})")
        if self.risk_judged_:
            sentence += f", shortfall risk {risk:.0%} (limit {risk_limit:.0%})"
        else:
            sentence += "; its shortfall risk is not judged, the cash position being unknown"
        if self.lift_source_ == "assumed":
            sentence += "; the lift is assumed, not measured"
        return sentence

    def _coin_toss(self, winner: _Option, targets: int, loss: float) -> str:
        return (f"no campaign pays reliably: the best plan, launched in the {self._week_text(winner.week)} to "
                f"{targets:,} customers, expects {self._money(winner.profit, sign=True)} but loses money in "
                f"{loss:.0%} of the draws")

    def _nothing(self, weeks: pd.DataFrame, ignoring: list[_Option], cost: float, budget: float | None,
                 risk_limit: float, notes: list[Note]) -> CampaignPlan:
        paying = [o for o in ignoring if o.size and o.profit > 0]
        if self.customers_.empty:
            verdict = "no campaign pays: there is no customer to plan for (none has a purchase value and a timing)"
        elif self.lift_source_ == "none":
            verdict = "no campaign pays: no lift is known for any customer, measured or assumed"
        elif budget is not None and budget < self.fixed_cost + cost:
            verdict = (f"no campaign pays within the budget: {self._money(budget)} does not cover the fixed cost "
                       f"and one contact ({self._money(self.fixed_cost + cost)})")
        elif paying:
            safest = min(paying, key=lambda o: o.risk)
            verdict = (f"no campaign pays within the risk limit: every plan that pays has a shortfall risk of at "
                       f"least {safest.risk:.0%} (limit {risk_limit:.0%})")
            already = float(np.min(self.before_risk_[[o.week for o in paying]]))
            if already > risk_limit:
                verdict += f", and without any campaign the risk from those weeks on is already {already:.0%} or more"
        else:
            verdict = ("no campaign pays: in every launch week and at every discount the discount given on "
                       "purchases that would happen anyway and the contact costs outweigh the sales it adds")
        runners = pd.DataFrame({
            "option": [self._week_text(o.week) for o in paying],
            "launch_week": [self.launch_days_[o.week] for o in paying],
            "expected_profit": [o.profit for o in paying], "shortfall_probability": [o.risk for o in paying],
            "reason": [f"{self._week_text(o.week)}: {self._money(o.profit, sign=True)}, "
                       f"{self._risk_text(o.risk, risk_limit)}" for o in paying]})
        empty = pd.DataFrame({"customer_id": pd.Series(dtype="str"), "segment": pd.Series(dtype="str"),
                              "offer": pd.Series(dtype="str"), "discount": pd.Series(dtype=float),
                              "natural_probability": pd.Series(dtype=float),
                              "incremental_probability": pd.Series(dtype=float),
                              "expected_profit": pd.Series(dtype=float), "expected_value": pd.Series(dtype=float),
                              "window_start": pd.Series(dtype="datetime64[ns]")})
        return CampaignPlan(
            targets=empty, launch_week=None, week_number=None, expected_profit=0.0, profit_p10=0.0,
            profit_p50=0.0, profit_p90=0.0, loss_probability=0.0, upfront_cost=0.0, shortfall_probability=np.nan,
            shortfall_before=float(np.nanmin(self.before_risk_)) if self.risk_judged_ else np.nan, weeks=weeks,
            runners_up=runners, balance_bands=pd.DataFrame(columns=["ds", "scenario", "p10", "p50", "p90"]),
            recommended=False, verdict=verdict, lift_source=self.lift_source_, notes=notes)

    def _notes(self) -> list[Note]:
        notes = list(self.margin_notes_)
        if self.lift_source_ == "assumed":
            notes.append(ASSUMED_LIFT_NOTE)
        elif self.lift_source_ == "none":
            notes.append(Note("campaign", "No lift is known for any customer: no campaign can be planned; "
                                          "measure a past campaign or state an assumed lift.", "missing"))
        if self.cash_ is None or not self.risk_judged_:
            notes.append(Note("campaign", (
                "The cash position is unknown, so the plan weighs profit only and its shortfall risk is not "
                "judged; set opening_balance (and minimum_cash) in journeycast.yml to weigh it."), "missing"))
        return notes
