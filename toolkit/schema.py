"""The canonical tables every other module works on, and their validation.

Three tables describe a customer journey:

``orders`` (required): one row per order line; the lines sharing an order_id are one order
    order_id, customer_id, ts, amount, order_type, sku, quantity, unit_price, status, refund_of
``events`` (optional): one row per touchpoint
    customer_id, ts, event_type, stage, channel, value
``costs`` (optional): one row per spend booking
    ts, stage, category, channel, amount

Identifiers (``ID_COLUMNS``: order_id, customer_id, campaign_id, sku) are
compared as text after one rule: Unicode NFC normalisation, and blanks around
them stripped, non-breaking and other Unicode spaces included. So "C1", "C1"
followed by a no-break space and an id typed with a decomposed accent are the
same customer, whichever system exported them.

Timestamps are timezone-naive in the business's local time (see
``Config.timezone``). Amounts are in the configured currency: order amounts are
money in (negative for refund and cancellation lines, whose quantity is
negative too), cost amounts money out. Many businesses only have a
transactions table, so everything downstream works with orders alone.

An order line without a customer id is a guest checkout: ``customer_id`` is
missing (pandas NA) and ``order_type`` is ``guest``; per-customer models leave
such lines out. ``refund_of`` names the order a cancellation or return line
gives money back for, when that order is in the data.

Four more optional tables describe campaigns and cash:

``contacts``: one row per contacted (or held-out) customer per campaign
    campaign_id, customer_id, ts, group, variant, converted, revenue, then every
    further source column unchanged (numbers as float, the rest as text)
``campaigns``: one row per campaign (and variant when variants differ in offer)
    campaign_id, name, channel, ts, variant, offer, discount, cost_per_contact,
    fixed_cost, response_window_days, control_share
``balances``: a bank statement export
    ts, account, balance
``commitments``: known future (and past) cash items, one-off or recurring
    ts, amount, direction, category, stage, description, frequency, until, business_day

A contact without a customer id gets ``row <n>`` (its source line): such
results cannot be linked to orders. Commitments and campaigns may lie in the
future (a planned payment, a planned campaign); the other tables may not.
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

#: Tables of plans, whose dates may lie ahead (a scheduled payment, a planned campaign); the
#: others record what happened, and a date after now in them is an entry error.
PLANNED_TABLES: tuple[str, ...] = ("campaigns", "commitments")

#: Columns holding identifiers, normalised by the rule above.
ID_COLUMNS: tuple[str, ...] = ("order_id", "customer_id", "campaign_id", "sku")

#: Contact groups: those a campaign reached and those held out to measure it against.
CONTACT_GROUPS: tuple[str, ...] = ("treatment", "control")

#: How often a commitment recurs (``once``: a one-off on its date).
FREQUENCIES: tuple[str, ...] = ("once", "weekly", "monthly", "month-end", "quarterly", "yearly")

#: How a commitment date on a weekend moves: not at all, to the next or to the previous business day.
BUSINESS_DAY_RULES: tuple[str, ...] = ("none", "following", "preceding")

#: Which way a commitment moves money.
DIRECTIONS: tuple[str, ...] = ("out", "in")

#: Days after sending in which a campaign's responses are counted, when the campaign does not say.
DEFAULT_RESPONSE_WINDOW_DAYS = 14

ORDER_COLUMNS = ("order_id", "customer_id", "ts", "amount", "order_type", "sku", "quantity", "unit_price",
                 "status", "refund_of")
EVENT_COLUMNS = ("customer_id", "ts", "event_type", "stage", "channel", "value")
COST_COLUMNS = ("ts", "stage", "category", "channel", "amount")
CONTACT_COLUMNS = ("campaign_id", "customer_id", "ts", "group", "variant", "converted", "revenue")
CAMPAIGN_COLUMNS = ("campaign_id", "name", "channel", "ts", "variant", "offer", "discount", "cost_per_contact",
                    "fixed_cost", "response_window_days", "control_share")
BALANCE_COLUMNS = ("ts", "account", "balance")
COMMITMENT_COLUMNS = ("ts", "amount", "direction", "category", "stage", "description", "frequency", "until",
                      "business_day")

#: Columns a source must provide (after column mapping); the rest are derived
#: or defaulted when absent. Orders may give ``quantity`` and ``unit_price``
#: instead of ``amount``; without ``order_id``, a customer's lines at one
#: timestamp are one order.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("customer_id", "ts", "amount"),
    "events": ("customer_id", "ts", "event_type"),
    "costs": ("ts", "amount"),
    "contacts": ("campaign_id", "ts"),
    "campaigns": ("campaign_id", "ts"),
    "balances": ("ts", "balance"),
    "commitments": ("ts", "amount"),
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

_text = pa.Column(str, nullable=False)
_share = pa.Column(float, nullable=True, checks=pa.Check.in_range(0, 1))
_money = pa.Column(float, nullable=True, checks=pa.Check.in_range(0, MAX_ABS_AMOUNT))

CONTACTS = pa.DataFrameSchema(
    {
        "campaign_id": _id,
        "customer_id": _id,
        "ts": _ts,
        "group": pa.Column(str, checks=pa.Check.isin(CONTACT_GROUPS)),
        "variant": _id,
        "converted": pa.Column(float, nullable=True, checks=pa.Check.isin([0.0, 1.0])),
        "revenue": pa.Column(float, nullable=True, checks=pa.Check.in_range(-MAX_ABS_AMOUNT, MAX_ABS_AMOUNT)),
    },
    strict=False,  # the export's further columns (customer attributes, other outcomes) follow unchanged
    ordered=True,
    name="contacts",
)

CAMPAIGNS = pa.DataFrameSchema(
    {
        "campaign_id": _id,
        "name": _text,
        "channel": _text,
        "ts": _ts,
        "variant": pa.Column(str, nullable=True),
        "offer": pa.Column(str, nullable=True),
        "discount": pa.Column(float, nullable=True, checks=[pa.Check.ge(0), pa.Check.lt(1)]),
        "cost_per_contact": _money,
        "fixed_cost": _money,
        "response_window_days": pa.Column("int64", checks=pa.Check.ge(1)),
        "control_share": _share,
    },
    strict=True,
    ordered=True,
    name="campaigns",
)

BALANCES = pa.DataFrameSchema(
    {"ts": _ts, "account": _id, "balance": _amount},
    strict=True,
    ordered=True,
    name="balances",
)

COMMITMENTS = pa.DataFrameSchema(
    {
        "ts": _ts,
        "amount": pa.Column(float, nullable=False, checks=[pa.Check.gt(0), pa.Check.le(MAX_ABS_AMOUNT)]),
        "direction": pa.Column(str, checks=pa.Check.isin(DIRECTIONS)),
        "category": _text,
        "stage": pa.Column(str, checks=pa.Check.isin(COST_STAGES)),
        "description": _text,
        "frequency": pa.Column(str, checks=pa.Check.isin(FREQUENCIES)),
        "until": pa.Column("datetime64[ns]", nullable=True),
        "business_day": pa.Column(str, checks=pa.Check.isin(BUSINESS_DAY_RULES)),
    },
    strict=True,
    ordered=True,
    name="commitments",
)

SCHEMAS: dict[str, pa.DataFrameSchema] = {"orders": ORDERS, "events": EVENTS, "costs": COSTS, "contacts": CONTACTS,
                                          "campaigns": CAMPAIGNS, "balances": BALANCES, "commitments": COMMITMENTS}
