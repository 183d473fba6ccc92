"""Re-purchase opportunities: the model's view of each customer plus what they did lately.

A customer who abandoned a cart three days ago or put something on their
wishlist is telling the shop they are about to buy; a good review or a support
ticket solved to their satisfaction makes a purchase likelier too. These
signals are read from the events table within a recent window and combined
with the repurchase model's probability that the customer is still active and
their expected purchases into one ranked list with a plain-words reason for
each customer. Without events the list rests on the model alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.opportunities.segments import purchases, require_columns

__all__ = [
    "DEFAULT_SIGNALS",
    "Signal",
    "recent_signals",
    "repurchase_opportunities",
]


@dataclass(frozen=True)
class Signal:
    """An event type that hints at a coming purchase.

    ``odds_ratio`` multiplies the odds of a purchase within the horizon (2 =
    twice the odds; a customer's signals multiply together);
    ``lead_days`` is how soon after the signal a purchase usually follows;
    ``min_value`` keeps only events whose value reaches it (review ratings).
    """

    label: str
    odds_ratio: float
    lead_days: int = 14
    min_value: float | None = None


#: The signals read by default, by event type.
DEFAULT_SIGNALS: Mapping[str, Signal] = {
    "cart_abandon": Signal("abandoned cart", odds_ratio=10.0, lead_days=14),
    "wishlist_add": Signal("wishlist add", odds_ratio=6.0, lead_days=14),
    "review": Signal("positive review", odds_ratio=1.5, lead_days=30, min_value=4.0),
    "support_resolved": Signal("resolved support ticket", odds_ratio=1.3, lead_days=30),
}


def recent_signals(events: pd.DataFrame, as_of: str | pd.Timestamp, window_days: int = 14,
                   signals: Mapping[str, Signal] = DEFAULT_SIGNALS,
                   orders: pd.DataFrame | None = None) -> pd.DataFrame:
    """Signal events in the ``window_days`` days up to and including ``as_of``.

    With ``orders``, a signal the customer already acted on -- one before their
    latest purchase up to ``as_of`` -- is spent and left out.

    Returns customer_id, event_type, signal (label), ts, days_ago, odds_ratio
    and lead_days, most recent first.
    """
    require_columns(events, ("customer_id", "ts", "event_type"), "events")
    day = pd.Timestamp(as_of).normalize()
    end = day + pd.Timedelta(days=1)
    recent = events[(events["ts"] < end) & (events["ts"] >= end - pd.Timedelta(days=window_days))
                    & events["event_type"].isin(list(signals))]
    minimum = recent["event_type"].map({k: s.min_value for k, s in signals.items()}).astype(float)
    if "value" in recent.columns:
        recent = recent[minimum.isna() | (recent["value"] >= minimum)]
    else:
        recent = recent[minimum.isna()]
    if orders is not None:
        last_purchase = purchases(orders, day).groupby("customer_id")["ts"].max()
        acted_on = recent["ts"] <= recent["customer_id"].map(last_purchase)
        recent = recent[~acted_on.fillna(False).astype(bool)]
    out = recent[["customer_id", "event_type", "ts"]].assign(
        signal=recent["event_type"].map({k: s.label for k, s in signals.items()}).astype("str"),
        days_ago=(day - recent["ts"].dt.normalize()).dt.days,
        odds_ratio=recent["event_type"].map({k: s.odds_ratio for k, s in signals.items()}).astype(
            float),
        lead_days=recent["event_type"].map({k: s.lead_days for k, s in signals.items()}).astype(
            "int64"))
    return out.sort_values(["ts", "customer_id"], ascending=[False, True], ignore_index=True)


def _with_odds_ratio(probability: pd.Series, odds_ratio: pd.Series) -> pd.Series:
    """The probability whose odds are ``odds_ratio`` times those of ``probability``."""
    odds = probability / (1 - probability).clip(lower=1e-12) * odds_ratio
    return odds / (1 + odds)


def _days_ago_text(days: int) -> str:
    return "today" if days == 0 else ("yesterday" if days == 1 else f"{days} days ago")


def repurchase_opportunities(predictions: pd.DataFrame, as_of: str | pd.Timestamp,
                             events: pd.DataFrame | None = None, orders: pd.DataFrame | None = None,
                             window_days: int = 14,
                             horizon_days: int = 90,
                             signals: Mapping[str, Signal] = DEFAULT_SIGNALS,
                             top: int | None = None) -> pd.DataFrame:
    """Rank customers by how likely a re-purchase is soon, with its expected value and why.

    Parameters
    ----------
    predictions : :meth:`RepurchaseModel.predict` output for the period ending
        ``as_of`` (customer_id, probability_alive, expected_purchases, optional
        expected_value, window_start_days, window_end_days).
    as_of : the day the predictions describe.
    events : canonical events, or None to rank on the model alone.
    orders : canonical orders; when given, signals followed by a purchase are
        left out (the customer already acted on them).
    window_days : how far back a signal still counts.
    horizon_days : the horizon ``predictions`` were made for; windows are
        clipped to it.
    signals : the event types read as signals.
    top : keep only the best ``top`` customers.

    Returns
    -------
    DataFrame with customer_id, score, expected_value, window_start,
    window_end and reason, best first. The score is the chance of at least one
    purchase within the horizon: the model's 1 - exp(-expected purchases),
    with its odds multiplied by the odds ratio of each recent signal (each
    kind of signal counted once).
    """
    require_columns(predictions, ("customer_id", "probability_alive", "expected_purchases",
                                  "window_start_days", "window_end_days"), "predictions")
    day = pd.Timestamp(as_of).normalize()
    table = predictions.set_index("customer_id")
    chance = 1 - np.exp(-table["expected_purchases"])
    start_days = table["window_start_days"].clip(lower=1, upper=horizon_days).round()
    end_days = table["window_end_days"].clip(lower=1, upper=horizon_days).round()
    odds_ratio = pd.Series(1.0, index=table.index)
    signal_text = pd.Series("", index=table.index, dtype="str")
    if events is not None:
        found = recent_signals(events, day, window_days, signals, orders)
        found = found[found["customer_id"].isin(table.index)]
        if not found.empty:
            latest = found.drop_duplicates(["customer_id", "event_type"])  # most recent of each kind
            ratio = latest.groupby("customer_id")["odds_ratio"].prod()
            odds_ratio = odds_ratio.mul(ratio.reindex(table.index).fillna(1.0))
            text = (latest["signal"] + " " + latest["days_ago"].map(_days_ago_text)).groupby(
                latest["customer_id"]).agg("; ".join)
            signal_text = signal_text.add(text.reindex(table.index).fillna(""), fill_value="")
            # a signal says the purchase is near: open the window now, close it when its lead runs out
            due = (latest["lead_days"] - latest["days_ago"]).clip(lower=1).groupby(
                latest["customer_id"]).max()
            signalled = due.index
            start_days[signalled] = 1
            end_days[signalled] = due.clip(upper=horizon_days).astype(float)
    alive_text = (100 * table["probability_alive"]).round().astype("int64").astype("str") + "% likely active"
    purchases_text = ("; " + table["expected_purchases"].round(1).astype("str")
                      + f" purchases expected in {horizon_days} days")
    reason = np.where(signal_text != "", signal_text + "; " + alive_text, alive_text) + purchases_text
    value = table["expected_value"] if "expected_value" in table.columns else pd.Series(
        np.nan, index=table.index)
    out = pd.DataFrame({
        "customer_id": table.index,
        "score": _with_odds_ratio(chance, odds_ratio).to_numpy(),
        "expected_value": value.to_numpy(),
        "window_start": day + pd.to_timedelta(start_days.to_numpy(), unit="D"),
        "window_end": day + pd.to_timedelta(end_days.to_numpy(), unit="D"),
        "reason": pd.array(reason, dtype="str"),
    })
    out = out.sort_values(["score", "customer_id"], ascending=[False, True], ignore_index=True)
    return out if top is None else out.head(top)
