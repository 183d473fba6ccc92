"""RFM scores, named customer segments and value tiers from canonical orders.

Recency, frequency and monetary value (RFM) are the oldest and still the most
readable way to sort customers: how long since they last bought, how often they
buy, how much they spend. Everything here is a pure function of the orders
table; only completed orders count as purchases, and refunds net out of the
money a customer brought in. Orders are order lines (several rows may share an
order_id) and guests' lines have no customer_id: everything here is about
customers, so guest lines are left out (``toolkit.journey.guest_sales`` says how
much money that leaves out) and a customer's purchases are counted as purchase days.

This module is also the base of the ``opportunities`` package: it defines the
package's error and the purchase filter every other module uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit import errors
from toolkit.errors import JourneycastError

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "OpportunityError",
    "SegmentRule",
    "assign_segments",
    "customer_segments",
    "net_spend",
    "purchases",
    "rfm_table",
    "value_tiers",
]


class OpportunityError(JourneycastError):
    """Input the opportunity models cannot work with (missing columns, too little history)."""


def require_columns(frame: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    """Raise an :class:`OpportunityError` naming the first required column that is missing."""
    errors.require_columns(frame, columns, table, OpportunityError)


def _up_to(orders: pd.DataFrame, until: pd.Timestamp | None) -> pd.Series:
    """Mask of the rows with a customer id, up to and including the day ``until`` when given."""
    keep = orders["customer_id"].notna()
    if until is not None:
        keep &= orders["ts"] < pd.Timestamp(until).normalize() + pd.Timedelta(days=1)
    return keep


def purchases(orders: pd.DataFrame, until: pd.Timestamp | None = None) -> pd.DataFrame:
    """Customers' completed order lines (optionally up to and including the day ``until``).

    Guest lines (no customer_id) belong to no customer and are left out.
    Refunds (negative amounts) and cancelled orders are not purchases: a
    cancelled order moved no money and a refund is accounted for in
    :func:`net_spend`. A completed order of zero (a free item, a voucher that
    covered it all) is still a purchase occasion, as the repeat-buying
    literature counts it (CDNOW has such purchases).
    """
    require_columns(orders, ("customer_id", "ts", "amount"), "orders")
    keep = _up_to(orders, until) & (orders["amount"] >= 0)
    if "status" in orders.columns:
        keep &= orders["status"] == "completed"
    return orders.loc[keep]


def net_spend(orders: pd.DataFrame, until: pd.Timestamp | None = None) -> pd.Series:
    """Money each customer brought in: purchases minus refunds, indexed by customer_id."""
    bought = purchases(orders, until)
    refunds = orders.loc[_up_to(orders, until) & (orders["amount"] < 0)]
    money = pd.concat([bought, refunds])
    return money.groupby("customer_id")["amount"].sum().rename("monetary")


def _score(values: pd.Series, higher_is_better: bool, bins: int = 5) -> pd.Series:
    """Quantile score 1..bins: the share of customers strictly worse, cut into ``bins`` equal parts.

    Ties share a score, so when many customers tie (one-time buyers) the scores
    are uneven rather than splitting equal customers into different groups.
    """
    ranked = values if higher_is_better else -values
    worse = ranked.rank(method="min") - 1
    return (1 + np.floor(bins * worse / len(values))).clip(1, bins).astype("int64")


def rfm_table(orders: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer, with 1-5 quintile scores.

    Parameters
    ----------
    orders : canonical orders.
    as_of : the day the table describes (purchases after it are ignored);
        defaults to the last order day.

    Returns
    -------
    DataFrame with customer_id, first_purchase, last_purchase, recency_days
    (days since the last purchase), frequency (distinct purchase days),
    monetary (net spend), tenure_days (days since the first purchase) and the
    scores r_score, f_score, m_score (5 = most recent / most frequent / highest spend).
    """
    as_of = pd.Timestamp(as_of if as_of is not None else orders["ts"].max()).normalize()
    bought = purchases(orders, as_of)
    if bought.empty:
        raise OpportunityError(f"no completed purchases up to {as_of.date()}")
    days = bought.assign(day=bought["ts"].dt.normalize())
    per_customer = days.groupby("customer_id").agg(
        first_purchase=("day", "min"), last_purchase=("day", "max"), frequency=("day", "nunique"))
    per_customer["monetary"] = net_spend(orders, as_of).reindex(per_customer.index).fillna(0.0)
    per_customer["recency_days"] = (as_of - per_customer["last_purchase"]).dt.days
    per_customer["tenure_days"] = (as_of - per_customer["first_purchase"]).dt.days
    per_customer["r_score"] = _score(per_customer["recency_days"], higher_is_better=False)
    per_customer["f_score"] = _score(per_customer["frequency"], higher_is_better=True)
    per_customer["m_score"] = _score(per_customer["monetary"], higher_is_better=True)
    columns = ["first_purchase", "last_purchase", "recency_days", "frequency", "monetary",
               "tenure_days", "r_score", "f_score", "m_score"]
    return per_customer[columns].reset_index()


@dataclass(frozen=True)
class SegmentRule:
    """A named segment: customers whose recency and frequency scores fall in the given ranges."""

    name: str
    r_scores: tuple[int, int] = (1, 5)
    f_scores: tuple[int, int] = (1, 5)
    m_scores: tuple[int, int] = (1, 5)

    def matches(self, rfm: pd.DataFrame) -> pd.Series:
        """Boolean mask of the rows of ``rfm`` (from :func:`rfm_table`) this rule covers."""
        mask = pd.Series(True, index=rfm.index)
        for column, (low, high) in (("r_score", self.r_scores), ("f_score", self.f_scores),
                                    ("m_score", self.m_scores)):
            mask &= rfm[column].between(low, high)
        return mask


#: The classic RFM map on recency and frequency scores; the first rule that matches wins.
DEFAULT_SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("champions", r_scores=(4, 5), f_scores=(4, 5)),
    SegmentRule("loyal", r_scores=(3, 5), f_scores=(3, 5)),
    SegmentRule("new", r_scores=(4, 5), f_scores=(1, 1)),
    SegmentRule("promising", r_scores=(4, 5), f_scores=(2, 2)),
    SegmentRule("needs attention", r_scores=(3, 3), f_scores=(1, 2)),
    SegmentRule("at risk", r_scores=(1, 2), f_scores=(3, 5)),
    SegmentRule("hibernating", r_scores=(1, 2), f_scores=(1, 2)),
)


def assign_segments(rfm: pd.DataFrame, rules: Sequence[SegmentRule] = DEFAULT_SEGMENT_RULES,
                    default: str = "others") -> pd.Series:
    """Segment name per row of ``rfm``: the first matching rule, else ``default``."""
    segment = pd.Series(default, index=rfm.index, dtype="str", name="segment")
    unassigned = pd.Series(True, index=rfm.index)
    for rule in rules:
        hit = unassigned & rule.matches(rfm)
        segment[hit] = rule.name
        unassigned &= ~hit
    return segment


def value_tiers(monetary: pd.Series, shares: Sequence[float] = (0.2, 0.3, 0.5),
                labels: Sequence[str] = ("high", "medium", "low")) -> pd.Series:
    """Value tier per customer: the top ``shares[0]`` of net spend is ``labels[0]``, and so on down.

    Ties in spend share a tier (the one of their best-ranked member).
    """
    if len(shares) != len(labels) or not np.isclose(sum(shares), 1.0):
        raise OpportunityError("value tier shares must sum to 1, one per label")
    top_share = (monetary.rank(method="min", ascending=False) - 1) / len(monetary)
    edges = np.cumsum(shares)
    index = np.searchsorted(edges, top_share.to_numpy(), side="right").clip(0, len(labels) - 1)
    return pd.Series(np.asarray(labels, dtype=object)[index], index=monetary.index,
                     name="value_tier").astype("str")


def customer_segments(orders: pd.DataFrame, as_of: pd.Timestamp | None = None,
                      rules: Sequence[SegmentRule] = DEFAULT_SEGMENT_RULES,
                      tier_shares: Sequence[float] = (0.2, 0.3, 0.5),
                      tier_labels: Sequence[str] = ("high", "medium", "low")) -> pd.DataFrame:
    """The RFM table with each customer's segment and value tier."""
    rfm = rfm_table(orders, as_of)
    return rfm.assign(segment=assign_segments(rfm, rules),
                      value_tier=value_tiers(rfm["monetary"], tier_shares, tier_labels))
