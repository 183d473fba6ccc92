"""The canonical tables every other module works on, and their validation.

Three tables describe a customer journey:

``orders`` (required): one row per order line; the lines sharing an order_id are one order
    order_id, customer_id, ts, amount, order_type, sku, quantity, unit_price, status, refund_of
``events`` (optional): one row per touchpoint
    customer_id, ts, event_type, stage, channel, value
``costs`` (optional): one row per spend booking
    ts, stage, category, channel, amount

Timestamps are timezone-naive in the business's local time (see
``Config.timezone``). Amounts are in the configured currency: order amounts are
money in (negative for refund and cancellation lines, whose quantity is
negative too), cost amounts money out. Many businesses only have a
transactions table, so everything downstream works with orders alone.

An order line without a customer id is a guest checkout: ``customer_id`` is
missing (pandas NA) and ``order_type`` is ``guest``; per-customer models leave
such lines out. ``refund_of`` names the order a cancellation or return line
gives money back for, when that order is in the data.
"""

from __future__ import annotations

import pandera.pandas as pa

#: The journey stages, in order.
STAGES: tuple[str, ...] = ("awareness", "consideration", "evaluation", "purchase", "post-purchase")

#: Costs may also belong to operations: spend no journey stage causes (payroll,
#: rent) that the cash position must still carry.
COST_STAGES: tuple[str, ...] = (*STAGES, "operations")

#: Order types: a customer's first purchase, a later one at the same or a lower
#: tier, one that moves them to a higher tier or adds an add-on, or a purchase
#: by a guest (no customer id, so no history to place it in).
ORDER_TYPES: tuple[str, ...] = ("new", "repeat", "upsell", "guest")

#: Order status: refunds (negative amounts) and cancellations are kept and marked.
ORDER_STATUSES: tuple[str, ...] = ("completed", "refunded", "cancelled")

ORDER_COLUMNS = ("order_id", "customer_id", "ts", "amount", "order_type", "sku", "quantity", "unit_price",
                 "status", "refund_of")
EVENT_COLUMNS = ("customer_id", "ts", "event_type", "stage", "channel", "value")
COST_COLUMNS = ("ts", "stage", "category", "channel", "amount")

#: Columns a source must provide (after column mapping); the rest are derived
#: or defaulted when absent. Orders may give ``quantity`` and ``unit_price``
#: instead of ``amount``; without ``order_id``, a customer's lines at one
#: timestamp are one order.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("customer_id", "ts", "amount"),
    "events": ("customer_id", "ts", "event_type"),
    "costs": ("ts", "amount"),
}

#: Largest plausible absolute amount for one row; bigger values are rejected as
#: data-entry or unit errors rather than allowed to swamp every forecast.
MAX_ABS_AMOUNT = 1e9

#: Timestamps before this are entry errors (a 0001-01-01 placeholder, a lost century).
EARLIEST_TS = "1970-01-01"

_id = pa.Column(str, nullable=False, checks=pa.Check.str_length(min_value=1))
_ts = pa.Column("datetime64[ns]", nullable=False)
_amount = pa.Column(
    float,
    nullable=False,
    checks=pa.Check.in_range(-MAX_ABS_AMOUNT, MAX_ABS_AMOUNT),
)

ORDERS = pa.DataFrameSchema(
    {
        "order_id": _id,
        "customer_id": pa.Column(str, nullable=True, checks=pa.Check.str_length(min_value=1)),
        "ts": _ts,
        "amount": _amount,
        "order_type": pa.Column(str, checks=pa.Check.isin(ORDER_TYPES)),
        "sku": pa.Column(str, nullable=False),
        "quantity": pa.Column("int64"),
        "unit_price": pa.Column(float, nullable=False, checks=pa.Check.in_range(0, MAX_ABS_AMOUNT)),
        "status": pa.Column(str, checks=pa.Check.isin(ORDER_STATUSES)),
        "refund_of": pa.Column(str, nullable=True),
    },
    strict=True,
    ordered=True,
    name="orders",
)

EVENTS = pa.DataFrameSchema(
    {
        "customer_id": _id,
        "ts": _ts,
        "event_type": pa.Column(str, nullable=False, checks=pa.Check.str_length(min_value=1)),
        "stage": pa.Column(str, checks=pa.Check.isin(STAGES)),
        "channel": pa.Column(str, nullable=False),
        "value": pa.Column(float, nullable=True),
    },
    strict=True,
    ordered=True,
    name="events",
)

COSTS = pa.DataFrameSchema(
    {
        "ts": _ts,
        "stage": pa.Column(str, checks=pa.Check.isin(COST_STAGES)),
        "category": pa.Column(str, nullable=False),
        "channel": pa.Column(str, nullable=False),
        "amount": _amount,
    },
    strict=True,
    ordered=True,
    name="costs",
)

SCHEMAS: dict[str, pa.DataFrameSchema] = {"orders": ORDERS, "events": EVENTS, "costs": COSTS}
