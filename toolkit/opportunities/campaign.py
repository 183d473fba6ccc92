"""Can we afford a campaign, and when should it start?

A campaign costs money up front -- a cost per contacted customer plus any fixed
cost -- and brings extra sales over its response window. Its cash flows are
simulated as sample paths, like the cash forecast's: in every draw each
targeted customer converts or not (a Bernoulli trial at their expected
conversion probability), a converted customer spends an amount around their
expected value (Gamma distributed with the spend model's shape, if given), less
the campaign's discount, on a day of the window. Added to the forecast's own
paths draw by draw (``toolkit.cash.ExtraFlows``), they show the expected gain,
the payback date, the shortfall risk with and without the campaign, and the
earliest start that keeps that risk under the limit.

The evaluation ends in a verdict a page can print as it is: a campaign with no
one to contact, or one expected to lose money, is never recommended, whatever
its risk; nor is one whose cash position is unknown (no opening balance), as
its risk cannot be judged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.cash import BASELINE, ExtraFlows, Scenario, compare_scenarios
from toolkit.notes import Note
from toolkit.opportunities.segments import OpportunityError, require_columns

__all__ = ["ASSUMED_GROSS_MARGIN", "Campaign", "CampaignEvaluation", "campaign_verdict", "evaluate_campaign",
           "gross_margin_or_assumed"]

_LABEL = "campaign"
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


@dataclass(frozen=True)
class Campaign:
    """A campaign to the customers in ``target``.

    Parameters
    ----------
    target : one row per contacted customer with conversion_probability (the
        chance the campaign wins a sale) and value (expected order value
        before discount), e.g. upsell propensity and offer price.
    cost_per_contact : money out per targeted customer, paid at the start.
    discount : share of the order value given up, 0 to 1.
    start : the launch day.
    duration_days : the response window; sales land uniformly within it.
    fixed_cost : money out at the start regardless of the target's size.
    spend_shape : Gamma shape of one order's amount around its value (the
        Gamma-Gamma model's ``p``); None takes every order at its value.
    margin_share : share of each sale that stays as cash after the goods and
        shipping are paid; 1 counts the whole order as extra cash.
    """

    target: pd.DataFrame
    cost_per_contact: float
    discount: float
    start: pd.Timestamp
    duration_days: int
    fixed_cost: float = 0.0
    spend_shape: float | None = None
    margin_share: float = 1.0

    def __post_init__(self) -> None:
        require_columns(self.target, ("conversion_probability", "value"), "the campaign target")
        probability = self.target["conversion_probability"].to_numpy(dtype=float)
        if not ((probability >= 0) & (probability <= 1)).all():
            raise OpportunityError("conversion_probability must lie between 0 and 1")
        if not 0 <= self.discount < 1:
            raise OpportunityError(f"discount must be a share in [0, 1), got {self.discount}")
        if self.duration_days < 1:
            raise OpportunityError("duration_days must be at least 1")
        if self.spend_shape is not None and self.spend_shape <= 0:
            raise OpportunityError("spend_shape must be positive")
        object.__setattr__(self, "start", pd.Timestamp(self.start).normalize())

    @property
    def upfront_cost(self) -> float:
        """Money out on the launch day."""
        return float(self.fixed_cost + self.cost_per_contact * len(self.target))

    @property
    def expected_inflow(self) -> float:
        """Expected extra cash from the campaign's sales."""
        value = self.target["value"].to_numpy(dtype=float)
        probability = self.target["conversion_probability"].to_numpy(dtype=float)
        return float((probability * value).sum() * (1 - self.discount) * self.margin_share)

    @property
    def expected_net_gain(self) -> float:
        """Expected extra cash in minus the upfront cost."""
        return self.expected_inflow - self.upfront_cost

    def cash_flows(self, draws: int = 1000, seed: int = 42) -> pd.DataFrame:
        """Net cash per day and draw: indexed by ds over the window, columns draw_0..draw_{n-1}."""
        rng = np.random.default_rng(seed)
        probability = self.target["conversion_probability"].to_numpy(dtype=float)
        value = self.target["value"].to_numpy(dtype=float) * (1 - self.discount) * self.margin_share
        converted = rng.random((len(value), draws)) < probability[:, None]
        amount = np.broadcast_to(value[:, None], converted.shape)
        if self.spend_shape is not None:
            amount = amount * rng.gamma(self.spend_shape, 1 / self.spend_shape, converted.shape)
        day = rng.integers(0, self.duration_days, converted.shape)
        draw = np.broadcast_to(np.arange(draws), converted.shape)
        cells = (day * draws + draw)[converted]
        net = np.bincount(cells, weights=amount[converted], minlength=self.duration_days * draws)
        net = net.astype(float).reshape(self.duration_days, draws)
        net[0] -= self.upfront_cost
        dates = pd.date_range(self.start, periods=self.duration_days, freq="D", name="ds")
        return pd.DataFrame(net, index=dates.astype("datetime64[ns]"),
                            columns=[f"draw_{i}" for i in range(draws)])


@dataclass(frozen=True)
class CampaignEvaluation:
    """What a campaign does to the cash position.

    ``launches`` has one row per start tried: start, shortfall_probability,
    first_breach_date and within_risk_limit. ``earliest_safe_start`` is about
    the risk only; ``recommended`` and ``verdict`` (one plain sentence, see
    :func:`campaign_verdict`) weigh the targets and the gain too. The
    shortfall figures are NaN when the cash position is unknown.
    """

    expected_net_gain: float
    upfront_cost: float
    payback_date: pd.Timestamp | None
    shortfall_before: float
    shortfall_after: float
    earliest_safe_start: pd.Timestamp | None
    launches: pd.DataFrame
    flows: pd.DataFrame
    targets: int = 0
    recommended: bool = False
    verdict: str = ""

    def launch_weeks(self) -> pd.DataFrame:
        """Risk before and after per launch week, as ``toolkit.charts.campaign_timing`` draws it.

        Columns: launch_week, shortfall_probability_before (the same for every
        week: no campaign), shortfall_probability_after, expected_net_gain and
        feasible (within the risk limit, with someone to contact and a positive
        expected gain).
        """
        worth_it = self.targets > 0 and self.expected_net_gain > 0
        return pd.DataFrame({
            "launch_week": pd.to_datetime(self.launches["start"]),
            "shortfall_probability_before": self.shortfall_before,
            "shortfall_probability_after": self.launches["shortfall_probability"].astype(float),
            "expected_net_gain": self.expected_net_gain,
            "feasible": self.launches["within_risk_limit"].astype(bool) & worth_it,
        })


def _money(amount: float, currency: str) -> str:
    return f"{amount:+,.0f} {currency}".strip()


def campaign_verdict(targets: int, expected_net_gain: float, launches: pd.DataFrame,
                     planned_start: pd.Timestamp, risk_limit: float, cash_known: bool = True,
                     currency: str = "") -> tuple[bool, str]:
    """Whether to run the campaign, and why, in one sentence.

    Checked in turn: someone to contact, a positive expected gain, a known cash
    position, a launch week within the risk limit (the planned one if it is,
    else the earliest that is).
    """
    if targets == 0:
        return False, "not recommended: no customer meets the target threshold"
    if expected_net_gain <= 0:
        return False, f"not recommended: the expected net gain is not positive ({_money(expected_net_gain, currency)})"
    if not cash_known:
        return False, ("cannot be judged: the cash position is unknown, so its shortfall risk is not assessed; "
                       "set opening_balance (and minimum_cash) in journeycast.yml to weigh it")
    safe = launches[launches["within_risk_limit"]]
    if safe.empty:
        lowest = float(launches["shortfall_probability"].min())
        return False, (f"not recommended: the shortfall risk is at least {lowest:.0%}, above the "
                       f"{risk_limit:.0%} limit, in every launch week")
    planned = safe[safe["start"] == planned_start]
    start = planned_start if len(planned) else pd.Timestamp(safe["start"].iloc[0])
    return True, (f"recommended: launch in the week of {start:%d %b %Y} "
                  f"(expected net gain {_money(expected_net_gain, currency)})")


def evaluate_campaign(campaign: Campaign, history: pd.DataFrame, paths: pd.DataFrame,
                      opening_balance: float | None, minimum_cash: float | None, risk_limit: float,
                      launch_weeks: int | None = None, seed: int = 42,
                      currency: str = "") -> CampaignEvaluation:
    """Expected gain, payback, shortfall risk before/after, and the earliest safe launch week.

    Parameters
    ----------
    campaign : the campaign, starting on its own ``start`` for the before/after figures.
    history, paths, opening_balance, minimum_cash : the cash forecast, as for
        ``toolkit.cash.cash_position``; None for either (unknown) leaves the
        shortfall risk unassessed (NaN) and the campaign unrecommended.
    risk_limit : the largest acceptable probability of falling below ``minimum_cash``.
    launch_weeks : how many weekly starts to try from the first forecast day
        (all that fit in the horizon when None).
    seed : the campaign's draws; every start uses the same draws, so starts
        differ only by their timing.
    currency : for the amounts in the verdict.

    The payback date is the first day on which the expected cumulative net
    cash of the campaign is back at zero or above (None if not within its window).
    """
    draw_columns = list(paths.columns)
    ds = paths.index.get_level_values("ds")
    first_day, last_day = ds.min(), ds.max()

    def flows_from(start: pd.Timestamp) -> pd.DataFrame:
        shifted = dataclasses.replace(campaign, start=start)
        flows = shifted.cash_flows(draws=len(draw_columns), seed=seed)
        return flows.set_axis(draw_columns, axis=1)

    if not first_day <= campaign.start <= last_day:
        raise OpportunityError(
            f"the campaign starts on {campaign.start:%Y-%m-%d}, outside the forecast horizon "
            f"{first_day:%Y-%m-%d}..{last_day:%Y-%m-%d}")
    flows = flows_from(campaign.start)
    weeks = int((last_day - first_day).days // 7) + 1
    weeks = weeks if launch_weeks is None else min(weeks, launch_weeks)
    starts = [first_day + pd.Timedelta(weeks=w) for w in range(weeks)]
    scenarios = [Scenario("as planned", (ExtraFlows(flows, _LABEL),))] + [
        Scenario(f"start {start:%Y-%m-%d}", (ExtraFlows(flows_from(start), _LABEL),))
        for start in starts]
    table = compare_scenarios(history, paths, scenarios, opening_balance, minimum_cash)
    risk = table.set_index("scenario")["shortfall_probability"]
    cash_known = bool(pd.notna(risk[BASELINE]))
    launches = pd.DataFrame({
        "start": starts,
        "shortfall_probability": risk.iloc[2:].to_numpy(),
        "first_breach_date": table["first_breach_date"].iloc[2:].to_numpy(),
    })
    launches["within_risk_limit"] = launches["shortfall_probability"] <= risk_limit
    safe = launches.loc[launches["within_risk_limit"], "start"]
    cumulative = flows.mean(axis=1).cumsum()
    paid_back = cumulative.index[cumulative.to_numpy() >= 0]
    gain = float(flows.sum().mean())
    recommended, verdict = campaign_verdict(len(campaign.target), gain, launches, campaign.start, risk_limit,
                                            cash_known, currency)
    return CampaignEvaluation(
        expected_net_gain=gain,
        upfront_cost=campaign.upfront_cost,
        payback_date=paid_back[0] if len(paid_back) else None,
        shortfall_before=float(risk[BASELINE]),
        shortfall_after=float(risk["as planned"]),
        earliest_safe_start=safe.iloc[0] if len(safe) else None,
        launches=launches,
        flows=flows,
        targets=len(campaign.target),
        recommended=recommended,
        verdict=verdict,
    )
