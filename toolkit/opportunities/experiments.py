"""What past campaigns really earned: treatment against control, with intervals.

A campaign's effect is what its contacted customers did beyond what the held-out
(control) customers of the same campaign did in the same response window. Only
that difference is a campaign's doing: a contacted customer who buys may have
bought anyway. So every effect here is a difference between the treated and
the control group of one campaign (per variant, and per segment when asked),
with an interval; a campaign without a control group has no measurable effect
and is said to have none rather than compared with nothing.

``contact_outcomes``   one row per contact with converted and revenue (from the
                       export's outcome columns, else from the contact's orders
                       within the response window, net of refunds)
``measure_campaigns``  incremental response, revenue, profit and ROI per
                       campaign x variant (x segment), each with an interval,
                       and a verdict a page can print as it is
``sample_ratio_check`` is the control share what was planned; are the groups
                       alike before the campaign (standardised mean differences)
``measured_lift``      what the campaign planner should assume: the measured
                       incremental response, or a configured prior lift said
                       as "assumed, not measured"

Intervals are Welch's normal approximation for a difference of two means where
each group has at least ``MIN_EVENTS`` responders and non-responders; where it
has fewer (rare conversions, a few big spenders), the normal approximation is
poor and a seeded bootstrap is used instead. The table says which per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler
from scipy import stats

from toolkit.charts import money_text
from toolkit.notes import Note
from toolkit.opportunities.planner import gross_margin_or_assumed
from toolkit.opportunities.segments import OpportunityError, require_columns

__all__ = ["BOOTSTRAP_DRAWS", "CONTACT_COLUMNS", "DEFAULT_RESPONSE_WINDOW_DAYS", "MIN_EVENTS", "SMD_LIMIT",
           "SRM_P_VALUE", "CampaignResults", "MeasuredLift", "SampleRatioCheck", "campaign_result_verdict",
           "contact_history", "contact_outcomes", "default_attributes", "interval_points", "linear_effect",
           "measure_campaigns", "measured_lift", "sample_ratio_check", "segments_at_send"]

_TOPIC = "campaign measurement"
#: The columns every contacts frame has (the canonical ``contacts`` table).
CONTACT_COLUMNS: tuple[str, ...] = ("campaign_id", "customer_id", "ts", "group")
#: Canonical columns that are not customer attributes (never balance-checked or used as features).
_NOT_ATTRIBUTES = frozenset(CONTACT_COLUMNS + ("variant", "converted", "revenue", "outcome_source"))
#: How a response column reads in a heading.
_RESPONSE_WORDS = {"converted": "conversion rate", "visit": "visit rate"}
#: The response window when the campaigns table does not give one.
DEFAULT_RESPONSE_WINDOW_DAYS = 14
#: Responders and non-responders each group needs for the normal approximation (the usual np >= 10 rule).
MIN_EVENTS = 10
#: Bootstrap resamples where the normal approximation is poor.
BOOTSTRAP_DRAWS = 2000
#: The usual sample-ratio-mismatch threshold: a control share this unlikely under the plan is a broken split.
SRM_P_VALUE = 0.001
#: |standardised mean difference| above which treated and control differ before the campaign.
SMD_LIMIT = 0.1
#: Pre-campaign spend looks back this far for the balance check.
_SPEND_LOOKBACK_DAYS = 365


def _with_variant(contacts: pd.DataFrame) -> pd.DataFrame:
    """Contacts with a variant everywhere (the group where the export has none)."""
    variant = contacts["variant"] if "variant" in contacts.columns else pd.Series(pd.NA, index=contacts.index)
    return contacts.assign(variant=variant.astype("string").fillna(contacts["group"].astype("string")).astype(str))


def _campaign_setting(campaigns: pd.DataFrame | None, column: str, default: float) -> pd.Series:
    """One value of a campaigns column per campaign_id (the first given), ``default`` where none is."""
    if campaigns is None or column not in campaigns.columns:
        return pd.Series(dtype=float)
    values = campaigns.dropna(subset=[column]).groupby("campaign_id", sort=False)[column].first()
    return values.astype(float).fillna(default)


def _orders_outcomes(contacts: pd.DataFrame, orders: pd.DataFrame, window_days: pd.Series) -> pd.DataFrame:
    """converted and revenue per contact (index of ``contacts``) from its orders in the response window.

    An order counts when its first line falls in [send time, send time + window);
    its revenue is net of every line of the order and of refund lines naming it
    (a refund after the window still undoes a sale made in it); converted means
    at least one such order with a positive net amount.
    """
    require_columns(orders, ("order_id", "customer_id", "ts", "amount"), "orders")
    lines = orders.dropna(subset=["customer_id"])
    refund_of = lines["refund_of"] if "refund_of" in lines.columns else pd.Series(pd.NA, index=lines.index)
    lines = lines.assign(sale=refund_of.fillna(lines["order_id"]).astype(str))
    first = lines[lines["amount"] > 0].groupby("sale")["ts"].min().rename("order_ts")
    net = lines.groupby("sale").agg(customer_id=("customer_id", "first"), amount=("amount", "sum"))
    sales = net.join(first, how="inner").reset_index()
    sales["customer_id"] = sales["customer_id"].astype(str)
    sent = pd.DataFrame({"contact": contacts.index, "customer_id": contacts["customer_id"].astype(str).to_numpy(),
                         "ts": contacts["ts"].to_numpy(),
                         "window": contacts["campaign_id"].map(window_days)
                         .fillna(DEFAULT_RESPONSE_WINDOW_DAYS).to_numpy(dtype=float)})
    pairs = sent.merge(sales, on="customer_id")
    within = (pairs["order_ts"] >= pairs["ts"]) & (
        pairs["order_ts"] < pairs["ts"] + pd.to_timedelta(pairs["window"], unit="D"))
    pairs = pairs[within]
    revenue = pairs.groupby("contact")["amount"].sum()
    converted = (pairs["amount"] > 0).groupby(pairs["contact"]).any()
    return pd.DataFrame({
        "converted": converted.reindex(contacts.index, fill_value=False).astype(float),
        "revenue": revenue.reindex(contacts.index, fill_value=0.0).astype(float)})


def contact_history(contacts: pd.DataFrame, table: pd.DataFrame,
                    as_of: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """Each contact's lines of ``table`` (orders or events) strictly before its send time.

    One row per contact x line, with ``contact`` (the contact's position in
    ``contacts``) and ``cutoff`` (its send time, or ``as_of`` for every contact
    when given): what the shop knew when it sent, so nothing a campaign caused
    leaks into what describes its contacts. Guest lines (no customer id) are left out.
    """
    if as_of is None:
        require_columns(contacts, ("ts",), "contacts")
    cutoff = contacts["ts"] if as_of is None else pd.Series(pd.Timestamp(as_of), index=contacts.index)
    sent = pd.DataFrame({"contact": np.arange(len(contacts)),
                         "customer_id": contacts["customer_id"].astype(str).to_numpy(), "cutoff": cutoff.to_numpy()})
    lines = table.dropna(subset=["customer_id"])
    pairs = sent.merge(lines.assign(customer_id=lines["customer_id"].astype(str)), on="customer_id")
    return pairs[pairs["ts"] < pairs["cutoff"]]


def _spend_before(contacts: pd.DataFrame, orders: pd.DataFrame) -> pd.Series:
    """Each contact's net spend in the year before it was sent (for the balance check)."""
    pairs = contact_history(contacts, orders[["customer_id", "ts", "amount"]])
    pairs = pairs[pairs["ts"] >= pairs["cutoff"] - pd.Timedelta(days=_SPEND_LOOKBACK_DAYS)]
    spend = pairs.groupby("contact")["amount"].sum().reindex(np.arange(len(contacts)), fill_value=0.0)
    return pd.Series(spend.to_numpy(dtype=float), index=contacts.index)


def contact_outcomes(contacts: pd.DataFrame, campaigns: pd.DataFrame | None = None,
                     orders: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per contact with ``converted`` (0/1) and ``revenue``, and where they come from.

    A campaign whose contacts carry outcome columns (a results export) keeps
    them; otherwise they are read from the contact's orders within the
    campaign's ``response_window_days`` (default 14) after it was sent, net of
    refunds. ``outcome_source`` says "export", "orders" or "none" (no outcome
    columns, and no orders or none of the campaign's contacts in them: nothing
    can be measured). With orders, ``spend_before``
    (net spend in the year before the send) is added for the balance check.
    Every other column of ``contacts`` is kept.
    """
    require_columns(contacts, CONTACT_COLUMNS, "contacts")
    out = _with_variant(contacts)
    for column in ("converted", "revenue"):
        if column not in out.columns:
            out[column] = np.nan
        out[column] = pd.to_numeric(out[column]).astype(float)
    exported = out[["converted", "revenue"]].notna().any(axis=1).groupby(out["campaign_id"]).transform("any")
    out["outcome_source"] = np.where(exported, "export", "none")
    if orders is not None:
        from_orders = ~exported
        if from_orders.any():
            window = _campaign_setting(campaigns, "response_window_days", DEFAULT_RESPONSE_WINDOW_DAYS)
            found = _orders_outcomes(out[from_orders], orders, window)
            out.loc[from_orders, ["converted", "revenue"]] = found.to_numpy()
            # A campaign none of whose contacts is a customer in the orders (e.g. an export's generated
            # "row <n>" ids) has no link to them: its zeros would read as "nobody bought".
            linked = out["customer_id"].astype(str).isin(set(orders["customer_id"].dropna().astype(str)))
            linked = linked.groupby(out["campaign_id"]).transform("any")
            out.loc[from_orders & linked, "outcome_source"] = "orders"
            out.loc[from_orders & ~linked, ["converted", "revenue"]] = np.nan
        out["spend_before"] = _spend_before(out, orders)
    return out


@dataclass(frozen=True)
class SampleRatioCheck:
    """Was each campaign split as planned, and were its groups alike before it?

    ``split``: one row per campaign with contacts, control, observed_control_share,
    planned_control_share (NaN: the plan is unknown), p_value (chi-square test of
    the observed split against the plan) and split_as_planned (False below
    ``SRM_P_VALUE``; NA when the plan is unknown). ``balance``: one row per
    campaign x pre-campaign attribute (categorical ones per level, "channel=Web")
    with mean_treated, mean_control, smd and imbalanced (|smd| > ``SMD_LIMIT``).
    """

    split: pd.DataFrame
    balance: pd.DataFrame
    notes: list[Note] = field(default_factory=list)


def _attribute_matrix(frame: pd.DataFrame, attributes: Sequence[str]) -> pd.DataFrame:
    """Numeric attributes as they are; text ones as one 0/1 column per level (at most 20 levels)."""
    parts = []
    for column in attributes:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parts.append(values.astype(float).rename(column))
        elif values.nunique() <= 20:
            parts.append(pd.get_dummies(values.astype(str), prefix=column, prefix_sep="=", dtype=float))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def segments_at_send(contacts: pd.DataFrame, orders: pd.DataFrame) -> pd.Series:
    """Each contact's RFM segment on the day before its campaign was sent (index of ``contacts``).

    Measuring a campaign per segment needs the segment a customer was in when
    contacted, not today's (the campaign itself may have moved them); the same
    rules then map today's customers to the effect measured for their segment
    (:meth:`MeasuredLift.for_customers`). Contacts who had not bought yet read
    "no purchase yet".
    """
    from toolkit.opportunities.segments import customer_segments

    require_columns(contacts, ("customer_id", "ts"), "contacts")
    segment = pd.Series("no purchase yet", index=contacts.index, dtype=object)
    for sent, part in contacts.groupby(contacts["ts"].dt.normalize()):
        found = customer_segments(orders, as_of=sent - pd.Timedelta(days=1))
        found = found.set_axis(found["customer_id"].astype(str))["segment"]
        segment[part.index] = found.reindex(part["customer_id"].astype(str)).fillna("no purchase yet").to_numpy()
    return segment.rename("segment")


def default_attributes(contacts: pd.DataFrame, outcomes: Sequence[str] = ()) -> list[str]:
    """The pre-campaign attribute columns of a contacts frame: every column but the canonical and ``outcomes``."""
    return [c for c in contacts.columns if c not in _NOT_ATTRIBUTES and c not in set(outcomes)]


def sample_ratio_check(contacts: pd.DataFrame, campaigns: pd.DataFrame | None = None,
                       attributes: Sequence[str] | None = None) -> SampleRatioCheck:
    """The split and the pre-campaign balance of every campaign in ``contacts``.

    ``attributes`` are the columns known before the send (customer attributes,
    ``spend_before``); by default every non-canonical column, which is wrong for
    extra outcome columns such as Hillstrom's ``visit``: name the attributes then.
    """
    require_columns(contacts, CONTACT_COLUMNS, "contacts")
    planned = _campaign_setting(campaigns, "control_share", np.nan)
    attributes = default_attributes(contacts) if attributes is None else list(attributes)
    matrix = _attribute_matrix(contacts, attributes)
    rows, balance, notes = [], [], []
    for campaign_id, part in contacts.groupby("campaign_id", sort=True):
        control = part["group"].eq("control")
        n, k = len(part), int(control.sum())
        share = float(planned.get(campaign_id, np.nan))
        p_value = np.nan
        if np.isfinite(share) and 0 < share < 1:
            p_value = float(stats.chisquare([k, n - k], [n * share, n * (1 - share)]).pvalue)
        rows.append({"campaign_id": campaign_id, "contacts": n, "control": k, "observed_control_share": k / n,
                     "planned_control_share": share, "p_value": p_value,
                     "split_as_planned": pd.NA if np.isnan(p_value) else bool(p_value >= SRM_P_VALUE)})
        if np.isnan(share):
            notes.append(Note(_TOPIC, (
                f"Campaign {campaign_id}: the planned control share is unknown, so the observed {k / n:.1%} cannot "
                "be checked against it; add control_share to the campaigns table."), "missing"))
        elif p_value < SRM_P_VALUE:
            notes.append(Note(_TOPIC, (
                f"Campaign {campaign_id}: {k / n:.1%} of contacts were held out against {share:.1%} planned "
                f"(p = {p_value:.2g}): the split went wrong, so its measured effects may be biased."), "warning"))
        if k and k < n and matrix.shape[1]:
            m = matrix.loc[part.index]
            treated, held = m[~control], m[control]
            spread = np.sqrt((treated.var() + held.var()) / 2).replace(0, np.nan)
            smd = (treated.mean() - held.mean()) / spread
            balance.append(pd.DataFrame({"campaign_id": campaign_id, "attribute": m.columns,
                                         "mean_treated": treated.mean().to_numpy(),
                                         "mean_control": held.mean().to_numpy(),
                                         "smd": smd.fillna(0.0).to_numpy()}))
    balance_table = (pd.concat(balance, ignore_index=True) if balance else
                     pd.DataFrame(columns=["campaign_id", "attribute", "mean_treated", "mean_control", "smd"]))
    balance_table["imbalanced"] = balance_table["smd"].abs() > SMD_LIMIT
    for campaign_id, part in balance_table[balance_table["imbalanced"]].groupby("campaign_id"):
        notes.append(Note(_TOPIC, (
            f"Campaign {campaign_id}: treated and control customers differed before the send in "
            f"{', '.join(part['attribute'])} (|standardised difference| > {SMD_LIMIT}); its effects may be biased."),
            "warning"))
    return SampleRatioCheck(pd.DataFrame(rows), balance_table, notes)


# --- effects with intervals -------------------------------------------------------------------------------

def _poor_normal(values: np.ndarray) -> bool:
    """Too few responders (non-zero values) or non-responders for the normal approximation."""
    events = int(np.count_nonzero(values))
    return min(events, len(values) - events) < MIN_EVENTS


def _bootstrap_means(values: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``draws`` bootstrap resamples of ``values``, exact and cheap when few values are non-zero.

    A resample of n values picks Binomial(n, nonzero share) of the non-zero
    ones, each uniformly; the zeros add nothing to the sum.
    """
    n = len(values)
    nonzero = values[values != 0]
    if n == 0:
        return np.full(draws, np.nan)
    if len(nonzero) == 0:
        return np.zeros(draws)
    picks = rng.binomial(n, len(nonzero) / n, draws)
    width = int(picks.max())
    index = rng.integers(0, len(nonzero), (draws, max(width, 1)))
    used = np.arange(max(width, 1))[None, :] < picks[:, None]
    return (nonzero[index] * used).sum(axis=1) / n


def linear_effect(treated: np.ndarray, control: np.ndarray, weight_treated: float = 1.0,
                  weight_control: float = 1.0, confidence: float = 0.95,
                  rng: np.random.Generator | None = None) -> tuple[float, float, float, str]:
    """``weight_treated x mean(treated) - weight_control x mean(control)`` with its interval and method.

    Welch's normal approximation (independent groups, unequal variances), or a
    percentile bootstrap of both means where either group has fewer than
    ``MIN_EVENTS`` responders or non-responders. Returns (estimate, low, high, method).
    """
    estimate = weight_treated * treated.mean() - weight_control * control.mean()
    if _poor_normal(treated) or _poor_normal(control):
        rng = rng if rng is not None else np.random.default_rng(0)
        draws = (weight_treated * _bootstrap_means(treated, BOOTSTRAP_DRAWS, rng)
                 - weight_control * _bootstrap_means(control, BOOTSTRAP_DRAWS, rng))
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(draws, [tail, 100 - tail])
        return float(estimate), float(low), float(high), "bootstrap"
    se = np.sqrt(weight_treated ** 2 * treated.var(ddof=1) / len(treated)
                 + weight_control ** 2 * control.var(ddof=1) / len(control))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return float(estimate), float(estimate - z * se), float(estimate + z * se), "normal (Welch)"


@dataclass(frozen=True)
class CampaignResults:
    """What each campaign (x variant, x segment) earned over its control group.

    ``table`` has one row per campaign_id x variant (x ``by`` columns) of the
    treated variants: contacts_treated, contacts_control, response_rate_treated,
    response_rate_control, incremental_response (+ _low/_high),
    revenue_per_contact_treated, revenue_per_contact_control,
    incremental_revenue (+ _low/_high), incremental_profit (per contact, +
    _low/_high), total_incremental_profit (+ _low/_high), roi (+ _low/_high; NaN
    without a cost), interval_method ("normal (Welch)" or "bootstrap" for the
    response and revenue intervals), outcome_source, measurable (False: no
    control group or no outcomes) and verdict. Amounts are in the orders'
    currency; rates and ROI are shares. ``checks`` is the split and balance check.
    """

    table: pd.DataFrame
    notes: list[Note] = field(default_factory=list)
    checks: SampleRatioCheck | None = None
    by: tuple[str, ...] = ()
    response: str = "converted"
    confidence: float = 0.95

    def for_people(self, currency: str = "USD") -> Styler:
        """The table as people read it (``toolkit.tables.people_table``): rates, effects with intervals, verdicts."""
        from toolkit.tables import people_table

        table = self.table
        shown = table[["campaign_id", "variant", *self.by, "contacts_treated", "contacts_control",
                       "response_rate_treated", "response_rate_control"]].assign(
            incremental_response=interval_points(table, "incremental_response"),
            total_incremental_profit=table["total_incremental_profit"], roi=table["roi"],
            verdict=table["verdict"])
        return people_table(shown, money=["total_incremental_profit"], percent=[
            "response_rate_treated", "response_rate_control", "roi"],
            integers=["contacts_treated", "contacts_control"], text=["campaign_id", "variant", *self.by],
            currency=currency, money_decimals=0, missing={"roi": "no cost recorded"},
            labels={"incremental_response": (f"incremental {_RESPONSE_WORDS.get(self.response, self.response)} "
                                             f"({self.confidence:.0%} interval)"),
                    "roi": "ROI"})


def interval_points(table: pd.DataFrame, column: str) -> pd.Series:
    """A share and its interval (``column``, ``column_low``, ``column_high``) in percentage points, as text.

    "+6.7 points (+4.2 to +9.2)"; None where the share is missing (a table for people shows its own word).
    """
    return pd.Series([
        None if pd.isna(value) else f"{value * 100:+.1f} points ({low * 100:+.1f} to {high * 100:+.1f})"
        for value, low, high in zip(table[column], table[f"{column}_low"], table[f"{column}_high"])],
        index=table.index, dtype=object)


def _amount(value: float, currency: str) -> str:
    """Money as the tables beside the verdict show it ("-$3,049"); a bare number without a currency."""
    return money_text(value, currency, compact=False) if currency else f"{value:,.0f}"


def campaign_result_verdict(total: float, low: float, high: float, measurable: bool, confidence: float,
                            currency: str = "", reason: str = "no control group") -> str:
    """One plain sentence: what a campaign earned, or that it cannot be told from zero or measured."""
    if not measurable:
        return f"cannot be measured: {reason}"
    interval = f"{confidence:.0%} interval {_amount(low, currency)} to {_amount(high, currency)}"
    if low > 0:
        return f"earned {_amount(total, currency)} ({interval})"
    if high < 0:
        return f"lost {_amount(-total, currency)} ({interval})"
    return f"not distinguishable from zero ({interval})"


def _costs(campaigns: pd.DataFrame | None, campaign_id: str, variant: str) -> dict[str, float]:
    """discount, cost_per_contact and fixed_cost of a campaign variant (the variant's row, else the campaign's)."""
    found = {"discount": 0.0, "cost_per_contact": 0.0, "fixed_cost": 0.0}
    if campaigns is None:
        return found
    rows = campaigns[campaigns["campaign_id"] == campaign_id]
    if "variant" in rows.columns:
        same = rows["variant"].astype("string").eq(variant).fillna(False).astype(bool)
        rows = pd.concat([rows[same], rows[rows["variant"].isna()]])
    for column in found:
        if column in rows.columns and rows[column].notna().any():
            found[column] = float(rows[column].dropna().iloc[0])
    return found


def measure_campaigns(outcomes: pd.DataFrame, campaigns: pd.DataFrame | None = None,
                      gross_margin: float | None = None, by: str | Sequence[str] | None = None,
                      confidence: float = 0.95, response: str = "converted",
                      attributes: Sequence[str] | None = None, currency: str = "",
                      seed: int = 0) -> CampaignResults:
    """Incremental response, revenue, profit and ROI of each campaign's treated variants over its control.

    Parameters
    ----------
    outcomes : :func:`contact_outcomes` output (one row per contact).
    campaigns : the campaigns table (discount, cost_per_contact, fixed_cost,
        control_share); without it costs and discounts count as zero, said in a note.
    gross_margin : the share of a full-price sale that stays as cash; None
        assumes ``ASSUMED_GROSS_MARGIN`` with a note.
    by : segment column(s) of ``outcomes`` to measure within (e.g. "segment").
    response : the 0/1 column whose rate is the response (e.g. "visit").
    attributes : pre-campaign columns for the balance check (see :func:`sample_ratio_check`).
    seed : the bootstrap's, where one is used.

    Revenue is what customers paid (after any discount). A treated buyer's
    order at discount d gave away revenue x d / (1 - d), natural buyers'
    included; the goods cost (1 - margin) of the full price. So the
    incremental profit per contact is ``(margin - d) / (1 - d) x revenue_treated
    - margin x revenue_control - cost_per_contact``; the total adds the
    variant's share of the fixed cost; ROI is the total over the money spent.
    """
    require_columns(outcomes, CONTACT_COLUMNS + ("variant", "converted", "revenue"), "contact outcomes")
    by = (by,) if isinstance(by, str) else tuple(by or ())
    require_columns(outcomes, (response,) + by, "contact outcomes")
    if not 0 < confidence < 1:
        raise OpportunityError(f"confidence must lie between 0 and 1, got {confidence}")
    margin, notes = gross_margin_or_assumed(gross_margin)
    if campaigns is None:
        notes.append(Note(_TOPIC, (
            "No campaigns table: discounts and contact costs of past campaigns are taken as zero, so their profit is "
            "overstated; add campaigns.csv with discount, cost_per_contact and fixed_cost."), "missing"))
    rng = np.random.default_rng(seed)
    outcomes_source = "outcome_source" in outcomes.columns
    treated_all = outcomes[outcomes["group"] == "treatment"]
    treated_per_campaign = treated_all.groupby("campaign_id").size()
    rows = []
    for keys, treated in treated_all.groupby(["campaign_id", "variant", *by], sort=True, dropna=False):
        campaign_id, variant, segment = keys[0], keys[1], dict(zip(by, keys[2:]))
        control = outcomes[(outcomes["campaign_id"] == campaign_id) & (outcomes["group"] == "control")]
        for column, value in segment.items():
            control = control[control[column] == value]
        cost = _costs(campaigns, campaign_id, variant)
        fixed = cost["fixed_cost"] * len(treated) / treated_per_campaign[campaign_id]
        source = str(treated["outcome_source"].iloc[0]) if outcomes_source else "export"
        row = {"campaign_id": campaign_id, "variant": variant, **segment, "contacts_treated": len(treated),
               "contacts_control": len(control), "outcome_source": source}
        known = treated[response].notna().all() and control[response].notna().all()
        measurable = len(control) > 1 and len(treated) > 1 and source != "none" and known
        reason = "no control group" if len(control) <= 1 else "no outcomes recorded"
        row |= _effects(treated, control, response, margin, cost, fixed, confidence, rng) if measurable else {}
        row["measurable"] = measurable
        row["verdict"] = campaign_result_verdict(row.get("total_incremental_profit", np.nan),
                                                 row.get("total_incremental_profit_low", np.nan),
                                                 row.get("total_incremental_profit_high", np.nan),
                                                 measurable, confidence, currency, reason)
        rows.append(row)
    table = pd.DataFrame(rows, columns=_TABLE_COLUMNS[:2] + list(by) + _TABLE_COLUMNS[2:])
    for campaign_id in table.loc[~table["measurable"].astype(bool), "campaign_id"].unique():
        notes.append(Note(_TOPIC, (
            f"Campaign {campaign_id} cannot be measured: it had no control group (or no recorded outcomes), so what "
            "its contacts bought cannot be told apart from what they would have bought anyway; hold out a random "
            "share of customers next time."), "missing"))
    if campaigns is not None and (table["measurable"].astype(bool) & table["roi"].isna()).any():
        notes.append(Note(_TOPIC, "Some campaigns have no recorded cost, so their ROI is not given.", "missing"))
    checks = sample_ratio_check(outcomes, campaigns, attributes)
    return CampaignResults(table, notes + checks.notes, checks, by, response, confidence)


_TABLE_COLUMNS = ["campaign_id", "variant", "contacts_treated", "contacts_control", "response_rate_treated",
                  "response_rate_control", "incremental_response", "incremental_response_low",
                  "incremental_response_high", "revenue_per_contact_treated", "revenue_per_contact_control",
                  "incremental_revenue", "incremental_revenue_low", "incremental_revenue_high",
                  "incremental_profit", "incremental_profit_low", "incremental_profit_high",
                  "total_incremental_profit", "total_incremental_profit_low", "total_incremental_profit_high",
                  "roi", "roi_low", "roi_high", "interval_method", "outcome_source", "measurable", "verdict"]


def _effects(treated: pd.DataFrame, control: pd.DataFrame, response: str, margin: float, cost: dict[str, float],
             fixed: float, confidence: float, rng: np.random.Generator) -> dict[str, float | str]:
    """The effect columns of one treated group against its control."""
    t_response, c_response = treated[response].to_numpy(float), control[response].to_numpy(float)
    t_revenue = treated["revenue"].fillna(0.0).to_numpy(float)
    c_revenue = control["revenue"].fillna(0.0).to_numpy(float)
    response_effect = linear_effect(t_response, c_response, confidence=confidence, rng=rng)
    revenue_effect = linear_effect(t_revenue, c_revenue, confidence=confidence, rng=rng)
    discount = cost["discount"]
    profit = linear_effect(t_revenue, c_revenue, (margin - discount) / (1 - discount), margin, confidence, rng)
    per_contact = np.array(profit[:3]) - cost["cost_per_contact"]
    total = per_contact * len(treated) - fixed
    spent = cost["cost_per_contact"] * len(treated) + fixed
    roi = total / spent if spent > 0 else np.full(3, np.nan)
    methods = {response_effect[3], revenue_effect[3]}
    return {
        "response_rate_treated": t_response.mean(), "response_rate_control": c_response.mean(),
        **dict(zip(("incremental_response", "incremental_response_low", "incremental_response_high"),
                   response_effect[:3])),
        "revenue_per_contact_treated": t_revenue.mean(), "revenue_per_contact_control": c_revenue.mean(),
        **dict(zip(("incremental_revenue", "incremental_revenue_low", "incremental_revenue_high"),
                   revenue_effect[:3])),
        **dict(zip(("incremental_profit", "incremental_profit_low", "incremental_profit_high"), per_contact)),
        **dict(zip(("total_incremental_profit", "total_incremental_profit_low", "total_incremental_profit_high"),
                   total)),
        **dict(zip(("roi", "roi_low", "roi_high"), roi)),
        "interval_method": "bootstrap" if "bootstrap" in methods else "normal (Welch)",
    }


# --- what the planner should assume ---------------------------------------------------------------------

@dataclass(frozen=True)
class MeasuredLift:
    """The incremental response the planner should assume, and where it comes from.

    ``table``: one row per ``by`` segment (one row overall without segments)
    and discount: incremental_probability (absolute, added to the chance of
    buying in the window), its _low/_high interval, relative_lift (a share of
    the natural chance; the prior when nothing is measured, else 0),
    lift_source ("measured" or "assumed") and campaigns (how many measured
    rows it pools). Natural propensity is never in it.
    """

    table: pd.DataFrame
    by: tuple[str, ...] = ()
    notes: list[Note] = field(default_factory=list)

    @property
    def source(self) -> str:
        """"measured" when a past campaign was measured, else "assumed"."""
        return str(self.table["lift_source"].iloc[0]) if len(self.table) else "assumed"

    def for_customers(self, customers: pd.DataFrame) -> pd.DataFrame:
        """A planner lift frame (``planner.LIFT_COLUMNS``): each customer gets their segment's lift.

        ``customers`` has customer_id and the ``by`` columns; customers of a
        segment no campaign reached get no row (no lift is known for them).
        """
        require_columns(customers, ("customer_id",) + self.by, "customers")
        table = self.table.drop(columns=["incremental_probability_low", "incremental_probability_high",
                                         "campaigns"])
        if self.by:
            lift = customers[["customer_id", *self.by]].merge(table, on=list(self.by)).drop(columns=list(self.by))
        else:
            lift = customers[["customer_id"]].merge(table, how="cross")
        return lift.assign(customer_id=lift["customer_id"].astype(str)).reset_index(drop=True)

    def by_launch_week(self, customers: pd.DataFrame, reach: pd.DataFrame) -> pd.DataFrame:
        """A planner lift frame per launch week: each customer's lift scaled by the share that still reaches them.

        A lift is measured on the customers a campaign met; a customer silent
        until a later launch is less likely to be still active then. ``reach``
        (customer_id x launch week 1..n, :func:`toolkit.opportunities.reachable_share`)
        scales the lift; a customer it does not cover keeps all of it. The
        segments stay as today: RFM scores rank customers against each other,
        and everyone staying silent keeps the ranks. Column ``week`` is the
        launch week (1 = the first).
        """
        lift = self.for_customers(customers)
        frames = []
        for week in reach.columns:
            share = reach[week].reindex(lift["customer_id"]).fillna(1.0).to_numpy()
            frames.append(lift.assign(week=int(week), incremental_probability=lift["incremental_probability"] * share))
        return pd.concat(frames, ignore_index=True)


def _pooled(rows: pd.DataFrame, z: float) -> pd.Series:
    """Inverse-variance weighted mean of measured incremental responses and its interval."""
    se = (rows["incremental_response_high"] - rows["incremental_response_low"]) / (2 * z)
    weight = 1 / np.clip(se.to_numpy(float), 1e-9, None) ** 2
    mean = float(np.sum(weight * rows["incremental_response"]) / weight.sum())
    half = z / np.sqrt(weight.sum())
    return pd.Series({"incremental_probability": mean, "incremental_probability_low": mean - half,
                      "incremental_probability_high": mean + half, "campaigns": len(rows)})


def measured_lift(results: CampaignResults | None, campaigns: pd.DataFrame | None = None,
                  prior_lift: float | None = None) -> MeasuredLift:
    """What a new campaign should be assumed to add: measured where possible, else the configured prior.

    With measured campaigns, the incremental response of every measured
    variant (per ``results.by`` segment and per discount of ``campaigns``) is
    pooled by inverse-variance weighting -- the average measured effect, not
    the best variant, which would overstate it. (Each row's standard error is
    read from its interval's width; variants sharing one control group are
    pooled as if independent, which narrows the pooled interval a little.)
    Without any, ``prior_lift``
    (``campaign.prior_lift`` of the configuration: a relative lift over each
    customer's natural purchase chance) is returned with lift_source "assumed"
    and a note saying it is assumed, not measured; without a prior either, the
    lift is zero and the note says so.
    """
    by = results.by if results is not None else ()
    columns = [*by, "discount", "incremental_probability", "incremental_probability_low",
               "incremental_probability_high", "relative_lift", "lift_source", "campaigns"]
    measured = pd.DataFrame() if results is None else results.table[results.table["measurable"].astype(bool)]
    if len(measured):
        z = stats.norm.ppf(0.5 + results.confidence / 2)
        discount = [_costs(campaigns, c, v)["discount"] for c, v in zip(measured["campaign_id"], measured["variant"])]
        measured = measured.assign(discount=discount)
        keys = [*by, "discount"] if campaigns is not None and "discount" in campaigns.columns else list(by)
        pooled = (measured.groupby(keys, sort=True, dropna=False)[list(measured.columns)].apply(_pooled, z=z)
                  if keys else _pooled(measured, z).to_frame().T)
        table = pooled.reset_index(drop=not keys).assign(relative_lift=0.0, lift_source="measured")
        table["campaigns"] = table["campaigns"].astype(int)
        notes = []
        unclear = table[table["incremental_probability_low"] <= 0]
        if len(unclear):
            notes.append(Note(_TOPIC, (
                f"The measured lift is not distinguishable from zero in {len(unclear)} of {len(table)} "
                "segments; the planner uses the measured value, which may be no lift at all."), "warning"))
        return MeasuredLift(table[[c for c in columns if c in table.columns]], by, notes)
    if prior_lift is None:
        text = ("No past campaign with a control group was measured and no prior lift is configured: the campaign "
                "lift is taken as zero; set campaign.prior_lift in journeycast.yml or hold out a control group.")
        prior_lift = 0.0
    else:
        text = (f"The campaign lift is assumed, not measured: +{prior_lift:.0%} over each customer's natural purchase "
                "chance (campaign.prior_lift); measure a campaign with a control group to replace it.")
    table = pd.DataFrame({"incremental_probability": [0.0], "incremental_probability_low": [np.nan],
                          "incremental_probability_high": [np.nan], "relative_lift": [float(prior_lift)],
                          "lift_source": ["assumed"], "campaigns": [0]})
    return MeasuredLift(table, (), [Note(_TOPIC, text, "assumed")])
