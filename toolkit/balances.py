"""The bank's balance: where the forecast starts, and how well the cash flows explain it.

A bank statement export (the canonical ``balances`` table: ``ts, account,
balance``) says what cash the business really had. Its last balance is where
the forecast starts: the opening balance before the first day of the data is
taken as that balance minus every net cash flow up to its date, so the
balance line passes exactly through the bank's last figure. This takes
precedence over ``opening_balance`` in the configuration (a note says so).

Then the history is reconciled: on every statement day the balance the cash
flows imply (opening balance plus cumulative net flow, with payment timing
and past commitments) is set against the bank's. The difference is what the
data does not explain -- fees, taxes, owner drawings, a missing costs file --
and a note says when it exceeds ``balance_tolerance`` of the typical balance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.errors import JourneycastError, require_columns
from toolkit.flows import net_flow
from toolkit.notes import Note

__all__ = ["BalanceError", "BankStart", "bank_balance", "bank_start", "reconcile", "reconciliation_notes"]


class BalanceError(JourneycastError, ValueError):
    """The bank balances cannot be used as given."""


def bank_balance(balances: pd.DataFrame) -> pd.Series:
    """The business's balance at the end of each statement day, summed over its accounts.

    The last figure of a day counts for each account; an account without a
    figure on a day keeps its previous one (and counts as zero before its first).
    """
    require_columns(balances, ("ts", "balance"), "balances", BalanceError)
    if balances.empty:
        raise BalanceError("balances has no rows: there is no bank balance to start from")
    account = balances["account"] if "account" in balances else pd.Series("main", index=balances.index)
    frame = pd.DataFrame({"ds": pd.to_datetime(balances["ts"]), "account": account.fillna("main").astype("str"),
                          "balance": pd.to_numeric(balances["balance"]).astype("float64")})
    if frame["balance"].isna().any():
        row = int(np.flatnonzero(frame["balance"].isna().to_numpy())[0])
        raise BalanceError(f"balances row {row + 1}, column 'balance': not an amount")
    frame = frame.sort_values("ds", kind="stable")
    frame["day"] = frame["ds"].dt.normalize()
    wide = frame.groupby(["day", "account"])["balance"].last().unstack("account").ffill().fillna(0.0)
    out = wide.sum(axis=1)
    out.index = pd.DatetimeIndex(out.index).astype("datetime64[ns]").rename("ds")
    return out.rename("bank")


@dataclass(frozen=True)
class BankStart:
    """The opening balance the bank's last figure implies: ``opening_balance`` before the first day of the data."""

    opening_balance: float
    date: pd.Timestamp
    balance: float


def _cumulative(history: pd.DataFrame) -> pd.Series:
    daily = net_flow(history)
    return pd.Series(daily["net"].cumsum().to_numpy(), index=pd.DatetimeIndex(daily["ds"]).astype("datetime64[ns]"))


def bank_start(balances: pd.DataFrame, history: pd.DataFrame) -> BankStart:
    """Where the balance starts so that it meets the bank's last figure within the data's period.

    ``history`` holds the actual flows (``ds, y, direction``). A statement
    later than the last day of the data is not used: the flows cannot reach it.
    """
    bank = bank_balance(balances)
    cumulative = _cumulative(history)
    bank = bank[bank.index <= cumulative.index[-1]]
    if bank.empty:
        raise BalanceError(f"every bank balance is dated after the last day of the data "
                           f"({cumulative.index[-1]:%Y-%m-%d}): none can be reconciled with the flows")
    date, balance = bank.index[-1], float(bank.iloc[-1])
    flowed = float(cumulative[cumulative.index <= date].iloc[-1]) if (cumulative.index <= date).any() else 0.0
    return BankStart(balance - flowed, date, balance)


def reconcile(balances: pd.DataFrame, history: pd.DataFrame, opening_balance: float) -> pd.DataFrame:
    """The bank's balance against the one the cash flows imply, on each statement day in the data's period.

    Columns ``ds, bank, flows`` (opening balance plus cumulative net flow),
    ``difference`` (bank - flows: what the data does not explain),
    ``bank_change`` and ``flows_change`` (movement since the previous statement day).
    """
    bank = bank_balance(balances)
    cumulative = _cumulative(history)
    bank = bank[(bank.index >= cumulative.index[0]) & (bank.index <= cumulative.index[-1])]
    flows = opening_balance + cumulative.reindex(bank.index)
    table = pd.DataFrame({"ds": bank.index, "bank": bank.to_numpy(), "flows": flows.to_numpy()})
    table["difference"] = table["bank"] - table["flows"]
    table["bank_change"] = table["bank"].diff()
    table["flows_change"] = table["flows"].diff()
    return table


def reconciliation_notes(table: pd.DataFrame, tolerance: float, currency: str) -> list[Note]:
    """A warning when the largest unexplained difference exceeds ``tolerance`` of the median bank balance."""
    if table.empty:
        return [Note("bank", "No bank balance falls within the data's period: the cash flows are not "
                             "reconciled with the bank.", "missing")]
    typical = float(table["bank"].abs().median())
    worst = table.loc[table["difference"].abs().idxmax()]
    if typical > 0 and abs(worst["difference"]) <= tolerance * typical:
        return []
    return [Note("bank", f"The cash flows do not explain the bank's balance: on {worst['ds']:%d %b %Y} the bank "
                         f"shows {worst['difference']:+,.0f} {currency} against the flows, more than "
                         f"{tolerance:.0%} of the typical balance ({typical:,.0f} {currency}); look for costs, "
                         "fees or transfers missing from the data.", "warning")]
