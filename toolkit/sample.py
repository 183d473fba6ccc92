"""The deterministic generator behind ``data/sample/``.

A fictional online outdoor-gear shop, *Trailhead Supply*, over three years:
prospects arrive through marketing channels, move through the journey stages,
buy, come back, trade up, and cost money at every stage. The behaviour is
planted on purpose so that the rest of the toolkit can be tested against a
known truth (``data/sample/README.md`` lists what is planted and how strongly):

* weekly and yearly seasonality, holiday peaks (Black Friday, Cyber Monday,
  the weeks before Christmas) and growth of about 20% a year;
* re-purchase: each buyer has a purchase rate (gamma distributed) and may drop
  out after each purchase (beta distributed), the BG/NBD story; repeat purchases
  are often preceded by a wishlist add or an abandoned cart;
* upsell: the chance that a repeat purchase moves up a tier (or adds an add-on)
  rises with a hidden engagement trait, which shows in the events as review
  reads, wishlist adds and product views, and in higher review ratings;
* past campaigns: three e-mail campaigns with random control groups whose
  effect differs by segment (persuadables gain a lot, sure things nothing,
  a do-not-disturb group loses purchases): ``PLANTED_CAMPAIGN_EFFECTS``.

The same ``customers`` and ``seed`` always give byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.export import atomic_path

START = pd.Timestamp("2023-11-01")
END = pd.Timestamp("2026-10-31")

#: Product tiers with list prices; add-ons are sold on top of any tier.
TIERS = ("essentials", "pro", "elite")
TIER_PRICE = {"essentials": 45.0, "pro": 95.0, "elite": 190.0}
SKUS_PER_TIER = 4
ADDON_PRICE = 25.0

#: Acquisition channels: share of prospects, cost per prospect, conversion lift.
CHANNELS = {
    "search": (0.32, 9.0, 1.15),
    "social": (0.28, 6.0, 0.85),
    "display": (0.15, 5.0, 0.70),
    "email": (0.10, 1.5, 1.30),
    "referral": (0.15, 0.0, 1.40),
}

#: Orders by weekday, Monday first: Mondays and Sundays are busy, Saturdays quiet.
WEEKLY = np.array([1.25, 1.05, 1.00, 0.95, 1.00, 0.78, 0.97])
YEARLY_AMPLITUDE = 0.25  # peak in mid-December, trough in mid-June
GROWTH_PER_YEAR = 0.20

#: Repeat-purchase truth (days as the unit): rate ~ Gamma(r, 1/alpha), dropout ~ Beta(a, b).
REPEAT_R, REPEAT_ALPHA = 1.6, 80.0  # mean 0.02 purchases a day, about 7 a year
DROPOUT_A, DROPOUT_B = 1.0, 6.0  # mean dropout 0.14 after each purchase

#: Upsell truth: P(upsell | repeat purchase) = sigmoid(b0 + b_engagement * z + b_orders * log1p(n)).
UPSELL_B0, UPSELL_B_ENGAGEMENT, UPSELL_B_ORDERS = -2.0, 1.3, 0.35

FULFILMENT_SHARE = 0.42  # cost of goods and shipping, as a share of the order amount
REFUND_RATE, CANCEL_RATE = 0.03, 0.01


def _day_weights(days: pd.DatetimeIndex) -> np.ndarray:
    """Relative activity per day: growth x weekly x yearly x holiday peaks."""
    years = (days - START).days.to_numpy() / 365.25
    growth = (1 + GROWTH_PER_YEAR) ** years
    weekly = WEEKLY[days.day_of_week]
    doy = days.day_of_year.to_numpy()
    yearly = 1 + YEARLY_AMPLITUDE * np.cos(2 * np.pi * (doy - 350) / 365.25)
    return growth * weekly * yearly * _holiday_factor(days)


def _holiday_factor(days: pd.DatetimeIndex) -> np.ndarray:
    """Black Friday, Cyber Monday and the run-up to Christmas (US retail calendar)."""
    factor = np.ones(len(days))
    for year in sorted(set(days.year)):
        nov1 = pd.Timestamp(year=year, month=11, day=1)
        thanksgiving = nov1 + pd.Timedelta(days=(3 - nov1.day_of_week) % 7 + 21)
        peaks = {
            thanksgiving + pd.Timedelta(days=1): 2.4,  # Black Friday
            thanksgiving + pd.Timedelta(days=4): 2.0,  # Cyber Monday
            pd.Timestamp(year=year, month=12, day=25): 0.35,
            pd.Timestamp(year=year, month=1, day=1): 0.6,
        }
        for day, mult in peaks.items():
            factor[days == day] *= mult
        run_up = (days >= pd.Timestamp(year=year, month=12, day=8)) & (
            days <= pd.Timestamp(year=year, month=12, day=21)
        )
        factor[run_up] *= 1.3
    return factor


@dataclass
class _Shop:
    """Accumulates rows while customers walk through the journey."""

    rng: np.random.Generator
    days: pd.DatetimeIndex
    weights: np.ndarray

    def __post_init__(self) -> None:
        self.events: list[tuple] = []
        self.orders: list[tuple] = []
        self.max_weight = float(self.weights.max())

    def ts(self, day: pd.Timestamp) -> pd.Timestamp:
        """A time of day during waking hours."""
        return day + pd.Timedelta(seconds=int(self.rng.integers(7 * 3600, 23 * 3600)))

    def event(self, cid: str, day: pd.Timestamp, kind: str, channel: str, value: float = math.nan):
        if day <= END:
            self.events.append((cid, self.ts(day), kind, channel, value))

    def seasonal_accept(self, day: pd.Timestamp) -> bool:
        """Thin a candidate purchase day by the shop's seasonality."""
        w = self.weights[(day - START).days]
        return self.rng.random() < w / self.max_weight

    def order(self, cid: str, day: pd.Timestamp, order_type: str, tier: str, channel: str,
              addon: bool = False) -> None:
        rng = self.rng
        n = len(self.orders) + 1
        sku = f"ADD-{rng.integers(1, 4):02d}" if addon else (
            f"{tier[:3].upper()}-{rng.integers(1, SKUS_PER_TIER + 1):02d}")
        price = ADDON_PRICE if addon else TIER_PRICE[tier]
        quantity = 1 + int(rng.random() < 0.18) + int(rng.random() < 0.04)
        amount = round(price * quantity * rng.uniform(0.9, 1.1), 2)
        when = self.ts(day)
        status = "cancelled" if rng.random() < CANCEL_RATE else "completed"
        self.orders.append((f"O{n:06d}", cid, when, amount, order_type, sku, quantity, status))
        self.events.append((cid, when, "purchase", channel, amount))
        if status == "completed" and rng.random() < REFUND_RATE:
            back = day + pd.Timedelta(days=int(rng.integers(3, 30)))
            if back <= END:
                self.orders.append((f"R{n:06d}", cid, self.ts(back), -amount, order_type, sku,
                                    quantity, "refunded"))


def _walk(shop: _Shop, cid: str, first_day: pd.Timestamp) -> None:
    """One prospect's journey from first touch to their last purchase."""
    rng = shop.rng
    names = list(CHANNELS)
    channel = names[rng.choice(len(names), p=[c[0] for c in CHANNELS.values()])]
    lift = CHANNELS[channel][2]
    engagement = rng.normal()  # hidden trait behind reviews, wishlists and upsell
    day = first_day

    # awareness
    if CHANNELS[channel][1] > 0:
        shop.event(cid, day, "ad_click", channel)
    for _ in range(1 + rng.poisson(0.6)):
        shop.event(cid, day, "site_visit", channel)
    # consideration
    if rng.random() > 0.78:
        return
    day += pd.Timedelta(days=int(rng.poisson(1.5)))
    for _ in range(1 + rng.poisson(1.5 + 0.5 * max(engagement, 0))):
        shop.event(cid, day, "product_view", channel)
    if rng.random() < 0.25 + 0.1 * engagement:
        shop.event(cid, day, "wishlist_add", channel)
    carted = rng.random() < 0.6
    if carted:
        shop.event(cid, day, "cart_add", channel)
    # evaluation
    evaluated = rng.random() < 0.55
    if evaluated:
        day += pd.Timedelta(days=int(rng.poisson(2)))
        for _ in range(rng.poisson(1 + 0.7 * max(engagement, 0))):
            shop.event(cid, day, "review_read", channel)
        if rng.random() < 0.25:
            shop.event(cid, day, "trial_start", channel)
        if rng.random() < 0.06:
            shop.event(cid, day, "demo_request", channel)
    # purchase
    p_buy = min(0.95, (0.45 + 0.25 * evaluated + 0.1 * carted) * lift)
    if rng.random() > p_buy:
        if carted:
            shop.event(cid, day, "cart_abandon", channel)
        return
    if carted and rng.random() < 0.3:
        shop.event(cid, day, "cart_abandon", channel)
    day += pd.Timedelta(days=int(rng.lognormal(math.log(4), 0.9)))
    if day > END:
        return
    tier = TIERS[rng.choice(3, p=[0.55, 0.33, 0.12])]
    shop.order(cid, day, "new", tier, channel)
    _after_purchase(shop, cid, day, channel, engagement, tier)


def _after_purchase(shop: _Shop, cid: str, day: pd.Timestamp, channel: str,
                    engagement: float, tier: str) -> None:
    """Repeat purchases (BG/NBD), upsells, and post-purchase touchpoints."""
    rng = shop.rng
    rate = rng.gamma(REPEAT_R, 1 / REPEAT_ALPHA)
    dropout = rng.beta(DROPOUT_A, DROPOUT_B)
    n_orders, loyal = 1, False
    while True:
        _post_purchase_events(shop, cid, day, channel, engagement, n_orders, loyal)
        loyal = loyal or (n_orders >= 2 and rng.random() < 0.35)
        if rng.random() < dropout:
            return
        # next purchase: exponential waiting, thinned by the shop's seasonality
        while True:
            day += pd.Timedelta(days=max(1, int(rng.exponential(1 / rate))))
            if day > END:
                return
            if shop.seasonal_accept(day):
                break
        # re-purchase signals in the days before the purchase
        lead = pd.Timedelta(days=int(rng.integers(1, 14)))
        if rng.random() < 0.45:
            shop.event(cid, day - lead, "wishlist_add", "site")
        if rng.random() < 0.30:
            shop.event(cid, day - lead, "cart_add", "site")
            shop.event(cid, day - lead, "cart_abandon", "site")
        logit = UPSELL_B0 + UPSELL_B_ENGAGEMENT * engagement + UPSELL_B_ORDERS * math.log1p(n_orders)
        if rng.random() < 1 / (1 + math.exp(-logit)):
            if tier == TIERS[-1]:
                shop.order(cid, day, "upsell", tier, "site", addon=True)
            else:
                tier = TIERS[TIERS.index(tier) + 1]
                shop.order(cid, day, "upsell", tier, "site")
        else:
            shop.order(cid, day, "repeat", tier, "email" if rng.random() < 0.4 else "site")
        n_orders += 1


def _post_purchase_events(shop: _Shop, cid: str, day: pd.Timestamp, channel: str,
                          engagement: float, n_orders: int, loyal: bool) -> None:
    rng = shop.rng
    if rng.random() < 0.12:
        opened = day + pd.Timedelta(days=int(rng.integers(1, 10)))
        shop.event(cid, opened, "support_ticket", "support")
        if rng.random() < 0.85:
            shop.event(cid, opened + pd.Timedelta(days=int(rng.integers(0, 4))),
                       "support_resolved", "support")
    if rng.random() < 0.3 + 0.1 * engagement:
        rating = float(np.clip(round(3.9 + 0.6 * engagement + rng.normal(0, 0.8)), 1, 5))
        shop.event(cid, day + pd.Timedelta(days=int(rng.integers(3, 20))), "review", "site", rating)
    if n_orders >= 2 and not loyal and rng.random() < 0.35:
        shop.event(cid, day + pd.Timedelta(days=1), "loyalty_signup", "site")
    for _ in range(rng.poisson(0.8 * math.exp(0.6 * engagement))):
        shop.event(cid, day + pd.Timedelta(days=int(rng.integers(5, 60))), "product_view", "site")


def _costs(days: pd.DatetimeIndex, events: pd.DataFrame, orders: pd.DataFrame,
           rng: np.random.Generator, scale: float) -> pd.DataFrame:
    """Daily spend per stage, category and channel, following the journey's activity.

    Fixed budgets (brand, promotions, programme fees) grow with ``scale``, the
    shop's size relative to the default sample.
    """
    rows = []
    day_index = pd.Index(days)

    def per_day(mask: pd.Series, frame: pd.DataFrame, value: pd.Series | float) -> np.ndarray:
        series = (value if isinstance(value, pd.Series) else pd.Series(value, index=frame.index))
        return series[mask].groupby(frame.loc[mask, "ts"].dt.normalize()).sum().reindex(
            day_index, fill_value=0.0).to_numpy()

    def add(stage: str, category: str, channel: str, amounts: np.ndarray) -> None:
        for day, amount in zip(days, amounts):
            if amount > 0:
                rows.append((day, stage, category, channel, round(float(amount), 2)))

    # awareness: marketing budget paced on the shop's seasonality, plus per-click costs
    clicks = events[events.event_type == "ad_click"]
    for channel, (_, cpc, _) in CHANNELS.items():
        if cpc == 0:
            continue
        mine = clicks.channel == channel
        spend = per_day(mine, clicks, cpc) * rng.uniform(0.85, 1.15, len(days))
        add("awareness", "acquisition marketing", channel, spend)
    add("awareness", "brand marketing", "display", np.full(len(days), 70.0 * scale))
    # consideration: promotions on the big shopping days and a steady coupon cost
    holiday = _holiday_factor(days)
    add("consideration", "promotions", "site",
        scale * (25.0 + 500.0 * (holiday > 1.5) + 90.0 * (holiday > 1.2)))
    # evaluation: trial kits and demos
    add("evaluation", "trials and demos", "site",
        per_day(events.event_type == "trial_start", events, 18.0)
        + per_day(events.event_type == "demo_request", events, 75.0))
    # purchase: cost of goods and shipping follow completed sales
    completed = orders[orders.status == "completed"]
    add("purchase", "fulfilment", "warehouse",
        per_day(completed.amount > 0, completed, completed.amount * FULFILMENT_SHARE))
    # post-purchase: support per ticket, loyalty programme per sign-up plus a monthly fee,
    # retention e-mail every Monday
    add("post-purchase", "support", "support", per_day(events.event_type == "support_ticket", events, 14.0))
    add("post-purchase", "loyalty program", "site",
        per_day(events.event_type == "loyalty_signup", events, 10.0) + 900.0 * scale * (days.day == 1))
    add("post-purchase", "retention marketing", "email", 200.0 * scale * (days.day_of_week == 0))
    # operations: weekly payroll every Friday, stepping up with each year of trading
    years_trading = ((days - START).days // 365).to_numpy()
    add("operations", "payroll", "bank", scale * (3000.0 + 1000.0 * years_trading) * (days.day_of_week == 4))
    return pd.DataFrame(rows, columns=["ts", "stage", "category", "channel", "amount"])


# --------------------------------------------------------------------------- past campaigns

#: The shop's past e-mail campaigns: id -> (name, send day, {variant: (offer, discount)}).
#: Every campaign held out a random ``CAMPAIGN_CONTROL_SHARE`` of its list as a control group.
PAST_CAMPAIGNS = {
    "spring-2025": ("Spring comeback 2025", "2025-04-07", {"10% off": ("10% off the next order", 0.10)}),
    "autumn-2025": ("Autumn restock 2025", "2025-09-15", {"10% off": ("10% off the next order", 0.10)}),
    "spring-2026": ("Spring comeback 2026", "2026-04-13", {"10% off": ("10% off the next order", 0.10),
                                                          "20% off": ("20% off the next order", 0.20)}),
}
CAMPAIGN_CHANNEL = "email"
CAMPAIGN_CONTROL_SHARE = 0.15
CAMPAIGN_RESPONSE_DAYS = 14
CAMPAIGN_COST_PER_CONTACT = 0.50  # sending and creative, per treated contact
CAMPAIGN_FIXED_COST = 600.0  # set-up of each campaign
#: Who is on a campaign's list: buyers whose last completed purchase is at most this old.
CAMPAIGN_LIST_DAYS = 365

#: Planted uplift per segment at 10% off: the added chance of an extra order in the response
#: window (absolute), except "do not disturb", where it is the share of the customer's own
#: purchases in the window that the contact loses (a negative effect).
PLANTED_CAMPAIGN_EFFECTS = {"persuadable": 0.25, "sure thing": 0.0, "do not disturb": 0.6, "other": 0.02}
#: How much more a 20% discount moves persuadables and others than 10% (sure things stay at zero).
PLANTED_DISCOUNT_RESPONSE = {0.10: 1.0, 0.20: 1.5}
#: Share of the lapsing one-time buyers who browse again in the month before a campaign:
#: the visible sign (product views) of a persuadable customer.
PERSUADABLE_BROWSING_SHARE = 0.4


_EVENT_COLUMNS = ["customer_id", "ts", "event_type", "channel", "value"]


def campaign_segments(orders: pd.DataFrame, events: pd.DataFrame, send: pd.Timestamp) -> pd.DataFrame:
    """Each buyer's planted segment as of ``send``, from what the shop could see that day.

    do not disturb: a support ticket in the last 60 days or a last review rated 1-2;
    sure thing: a champion (4+ purchases, the last within 90 days);
    persuadable: one purchase 60-240 days ago and product views in the last 30 days;
    other: everyone else on the list (a last purchase within ``CAMPAIGN_LIST_DAYS``).
    """
    bought = orders[(orders.status == "completed") & (orders.amount > 0) & (orders.ts < send)]
    buyers = bought.groupby("customer_id").agg(n=("ts", "size"), last=("ts", "max"), sku=("sku", "last"))
    buyers["days"] = (send - buyers["last"]).dt.days
    buyers = buyers[buyers["days"] <= CAMPAIGN_LIST_DAYS]
    before = events[events.ts < send]
    recent = before[before.ts >= send - pd.Timedelta(days=60)]
    ticket = buyers.index.isin(recent.loc[recent.event_type == "support_ticket", "customer_id"])
    last_rating = before[before.event_type == "review"].groupby("customer_id")["value"].last()
    unhappy = buyers.index.isin(last_rating.index[last_rating <= 2])
    viewed = before[(before.event_type == "product_view") & (before.ts >= send - pd.Timedelta(days=30))]
    browsing = buyers.index.isin(viewed["customer_id"])
    segment = np.select(
        [ticket | unhappy, (buyers["n"] >= 4) & (buyers["days"] <= 90),
         (buyers["n"] == 1) & buyers["days"].between(60, 240) & browsing],
        ["do not disturb", "sure thing", "persuadable"], "other")
    return buyers.assign(segment=segment)


def _browsing_before(orders: pd.DataFrame, send: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Product views of the lapsing one-time buyers who come back to look in the month before ``send``."""
    bought = orders[(orders.status == "completed") & (orders.amount > 0) & (orders.ts < send)]
    buyers = bought.groupby("customer_id")["ts"].agg(["size", "max"])
    days = (send - buyers["max"]).dt.days
    lapsing = buyers.index[(buyers["size"] == 1) & days.between(60, 240)]
    browsers = lapsing[rng.random(len(lapsing)) < PERSUADABLE_BROWSING_SHARE]
    rows = [(cid, send - pd.Timedelta(seconds=int(rng.integers(3600, 30 * 86400))), "product_view", "site", math.nan)
            for cid in browsers for _ in range(1 + rng.poisson(1.0))]
    return pd.DataFrame(rows, columns=_EVENT_COLUMNS)


_TIER_OF_SKU = {tier[:3].upper(): tier for tier in TIERS}


def _campaign_effect(segment: str, discount: float) -> float:
    """The planted effect of one contact, scaled by the discount for those whom a discount moves."""
    base = PLANTED_CAMPAIGN_EFFECTS[segment]
    return base if segment in ("sure thing", "do not disturb") else base * PLANTED_DISCOUNT_RESPONSE[discount]


def _run_campaign(orders: pd.DataFrame, events: pd.DataFrame, campaign_id: str,
                  rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Send one past campaign: pick its list, hold out a control group and plant the effects.

    Treated customers pay the discounted price for what they buy in the response
    window (what they would have bought anyway too: the discount a sure thing is
    given is money lost), persuadables and others buy extra orders, and the
    do-not-disturb group loses part of its own purchases. Control customers are
    left as they were. Returns the changed orders and events, the contacts and
    the campaign's cost row.
    """
    name, day, variants = PAST_CAMPAIGNS[campaign_id]
    send = pd.Timestamp(day) + pd.Timedelta(hours=9)
    events = pd.concat([events, _browsing_before(orders, send, rng)], ignore_index=True)
    listed = campaign_segments(orders, events, send)
    control = rng.random(len(listed)) < CAMPAIGN_CONTROL_SHARE
    names = list(variants)
    variant = np.array(names)[rng.integers(0, len(names), len(listed))]
    contacts = pd.DataFrame({"campaign_id": campaign_id, "customer_id": listed.index, "ts": send,
                             "group": np.where(control, "control", "treatment"), "variant": variant})

    end = send.normalize() + pd.Timedelta(days=CAMPAIGN_RESPONSE_DAYS)
    in_window = orders.ts.between(send, end, inclusive="left")
    number = orders.order_id.str.slice(1)
    treated = listed[~control].assign(variant=variant[~control])
    discount = treated["variant"].map(lambda v: variants[v][1])
    # the do-not-disturb group loses part of its own purchases (with their refunds)
    dnd = treated.index[treated.segment == "do not disturb"]
    lose = rng.random(len(orders)) < PLANTED_CAMPAIGN_EFFECTS["do not disturb"]
    lost = in_window & orders.customer_id.isin(dnd) & (orders.amount > 0) & lose
    keep = ~number.isin(set(number[lost]))
    orders, number = orders[keep].copy(), number[keep]
    # treated buyers pay the discounted price for what they buy in the window, refunds follow
    sales = orders[orders.ts.between(send, end, inclusive="left") & (orders.amount > 0)
                   & orders.customer_id.isin(treated.index)]
    factor = pd.Series(1 - sales.customer_id.map(discount).to_numpy(), index=number[sales.index])
    orders["amount"] = (orders["amount"] * number.map(factor).fillna(1.0)).round(2)

    next_order = int(orders.order_id.str.slice(1).astype(int).max()) + 1
    extra = []
    for cid, row in treated.iterrows():
        d = variants[row.variant][1]
        if row.segment == "do not disturb" or rng.random() >= _campaign_effect(row.segment, d):
            continue
        day_ = send.normalize() + pd.Timedelta(days=int(rng.integers(0, CAMPAIGN_RESPONSE_DAYS)))
        when = max(send, day_ + pd.Timedelta(seconds=int(rng.integers(7 * 3600, 23 * 3600))))
        quantity = 1 + int(rng.random() < 0.18)
        price = ADDON_PRICE if row.sku.startswith("ADD") else TIER_PRICE[_TIER_OF_SKU[row.sku[:3]]]
        amount = round(price * quantity * rng.uniform(0.9, 1.1) * (1 - d), 2)
        extra.append((f"O{next_order + len(extra):06d}", cid, when, amount, "repeat", row.sku, quantity,
                      "completed"))
    extra = pd.DataFrame(extra, columns=orders.columns)
    orders = pd.concat([orders, extra], ignore_index=True)
    cost = {"ts": send.normalize(), "stage": "post-purchase", "category": "campaigns", "channel": CAMPAIGN_CHANNEL,
            "amount": round(CAMPAIGN_FIXED_COST + CAMPAIGN_COST_PER_CONTACT * int((~control).sum()), 2)}
    return orders, events, contacts, cost


def _purchase_events_follow(orders: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Purchase events that match the orders again after the campaigns changed them.

    A lost order loses its purchase event, a discounted one shows the price paid,
    and a campaign's extra order is a purchase from the e-mail channel.
    """
    sales = orders.loc[orders.amount > 0, ["customer_id", "ts", "amount"]]
    purchase = events.event_type == "purchase"
    matched = events[purchase].merge(sales, on=["customer_id", "ts"], how="inner")
    matched["value"] = matched.pop("amount")
    new = sales.merge(events.loc[purchase, ["customer_id", "ts"]], on=["customer_id", "ts"], how="left",
                      indicator=True)
    new = new[new.pop("_merge") == "left_only"]
    new = pd.DataFrame({"customer_id": new.customer_id, "ts": new.ts, "event_type": "purchase",
                        "channel": CAMPAIGN_CHANNEL, "value": new.amount})
    return pd.concat([events[~purchase], matched, new], ignore_index=True)


def past_campaigns(orders: pd.DataFrame, events: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """Run ``PAST_CAMPAIGNS`` over the generated shop; return its changed tables and the campaign tables.

    The campaigns draw from their own random stream (``seed`` + 2), so the shop's
    customers and their own purchases are the same with or without them.
    """
    rng = np.random.default_rng(seed + 2)
    contacts, costs, rows = [], [], []
    for campaign_id, (name, day, variants) in PAST_CAMPAIGNS.items():
        orders, events, sent, cost = _run_campaign(orders, events, campaign_id, rng)
        contacts.append(sent)
        costs.append(cost)
        for variant, (offer, discount) in variants.items():
            # the set-up cost is shared by the variants, so the rows add up to what was spent
            rows.append((campaign_id, name, CAMPAIGN_CHANNEL, pd.Timestamp(day), variant, offer, discount,
                         CAMPAIGN_COST_PER_CONTACT, CAMPAIGN_FIXED_COST / len(variants), CAMPAIGN_RESPONSE_DAYS,
                         CAMPAIGN_CONTROL_SHARE))
    # lapsing one-time buyers browse before the data ends too: today's persuadables, whose views expire
    events = pd.concat([events, _browsing_before(orders, END + pd.Timedelta(days=1), rng)], ignore_index=True)
    campaigns = pd.DataFrame(rows, columns=["campaign_id", "name", "channel", "ts", "variant", "offer", "discount",
                                            "cost_per_contact", "fixed_cost", "response_window_days",
                                            "control_share"])
    return {"orders": orders, "events": _purchase_events_follow(orders, events),
            "contacts": pd.concat(contacts, ignore_index=True), "campaigns": campaigns,
            "campaign_costs": pd.DataFrame(costs)}


def generate(customers: int = 9000, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Generate the sample shop's ``orders``, ``events`` and ``costs`` tables.

    ``customers`` is the number of people who enter the journey over the three
    years, each with a customer id; a little over half of them buy. Rows are sorted by time, then id.
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range(START, END, freq="D")
    weights = _day_weights(days)
    shop = _Shop(rng, days, weights)
    first_days = days[np.sort(rng.choice(len(days), size=customers, p=weights / weights.sum()))]
    for i, first_day in enumerate(first_days, start=1):
        _walk(shop, f"C{i:05d}", first_day)

    events = pd.DataFrame(shop.events, columns=["customer_id", "ts", "event_type", "channel", "value"])
    events = events.sort_values(["ts", "customer_id", "event_type"], kind="stable", ignore_index=True)
    orders = pd.DataFrame(shop.orders, columns=["order_id", "customer_id", "ts", "amount",
                                                "order_type", "sku", "quantity", "status"])
    orders = orders.sort_values(["ts", "order_id"], kind="stable", ignore_index=True)
    campaigns = past_campaigns(orders, events, seed)
    events = campaigns["events"].sort_values(["ts", "customer_id", "event_type"], kind="stable", ignore_index=True)
    orders = campaigns["orders"].sort_values(["ts", "order_id"], kind="stable", ignore_index=True)
    costs = pd.concat([_costs(days, events, orders, rng, scale=customers / 9000), campaigns["campaign_costs"]],
                      ignore_index=True)
    costs = costs.sort_values(["ts", "stage", "category", "channel"], kind="stable", ignore_index=True)
    contacts = campaigns["contacts"].sort_values(["ts", "customer_id"], kind="stable", ignore_index=True)
    return {"orders": orders, "events": events, "costs": costs, "contacts": contacts,
            "campaigns": campaigns["campaigns"]}


# --------------------------------------------------------------------------- the cash side

#: Cash in the bank on the first day of the sample, before any money moved.
OPENING_BALANCE = 300_000.0
#: Card sales reach the bank this many business days after the sale (US public holidays skipped).
SETTLEMENT_BUSINESS_DAYS = 2
#: The bank's monthly account fee, taken on each month's last day: in no data file, so the
#: reconciliation finds it as the only unexplained difference (36 x 35 = 1,260 over three years).
BANK_FEE = 35.0

#: What Trailhead Supply has committed to pay (and one loan it received). Payroll's history is in
#: costs.csv (it rose with each year of trading); the commitment carries today's 5,000 forward.
#: The holiday stock and supplies (paid on 9 November) squeeze the balance below the minimum in most futures until
#: the seasonal credit line arrives on Friday 13 November: the planted reason a campaign cannot launch before then.
COMMITMENTS = pd.DataFrame([
    # ts, amount, direction, category, stage, description, frequency, until, business_day
    ("2023-11-03", 5000.0, "out", "payroll", "operations", "weekly payroll", "weekly", "", "none"),
    ("2023-11-01", 2500.0, "out", "rent", "operations", "warehouse rent", "monthly", "", "following"),
    ("2025-03-03", 80000.0, "in", "loan", "operations", "bank loan paid out", "once", "", "none"),
    ("2025-06-30", 7500.0, "out", "loan", "operations", "loan repayment", "quarterly", "2028-03-31", "preceding"),
    ("2026-11-09", 60000.0, "out", "stock", "purchase", "holiday-season stock purchase", "once", "", "following"),
    ("2026-11-09", 25000.0, "out", "supplies", "purchase", "holiday packaging and shipping supplies", "once", "",
     "following"),
    ("2026-11-13", 175000.0, "in", "loan", "operations", "seasonal credit line drawn", "once", "", "following"),
    ("2027-03-01", 175000.0, "out", "loan", "operations", "seasonal credit line repaid", "once", "", "preceding"),
], columns=["ts", "amount", "direction", "category", "stage", "description", "frequency", "until", "business_day"])


def cash_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The shop's ``commitments`` and a weekly bank statement (``balances``) that follows its cash flows.

    The balance on each Friday (and the last day) is the opening balance plus
    every net cash flow as the bank sees it -- card sales two business days
    late, committed payments on their dates -- less the bank fees no file holds.
    """
    from toolkit.commitments import cash_flows, holiday_dates
    from toolkit.config import PaymentTiming
    from toolkit.flows import net_flow

    commitments = COMMITMENTS.assign(ts=pd.to_datetime(COMMITMENTS["ts"]),
                                     until=pd.to_datetime(COMMITMENTS["until"].replace("", None)))
    timing = PaymentTiming(sales_days=SETTLEMENT_BUSINESS_DAYS, sales_business_days=True)
    flows = cash_flows({**tables, "commitments": commitments}, timing, END,
                       holiday_dates("US", START, END + pd.Timedelta(days=30)))
    daily = net_flow(flows.history).set_index("ds")["net"]
    fees = pd.Series(BANK_FEE, index=daily.index).where(daily.index.is_month_end, 0.0)
    balance = OPENING_BALANCE + (daily - fees).cumsum()
    statement_days = balance.index[(balance.index.day_of_week == 4) | (balance.index == balance.index[-1])]
    balances = pd.DataFrame({"ts": statement_days, "account": "main",
                             "balance": balance[statement_days].round(2).to_numpy()})
    return {"commitments": COMMITMENTS, "balances": balances}


#: Order lines such as real exports carry now and then, each rejected when read, so the data-quality
#: page has rejects to show: where the line goes in ``orders.csv`` (before the first line at or after
#: that moment) and the line as the shop's system wrote it.
BAD_ORDER_LINES = (
    ("2024-03-01 09:00:00", "O900001,C00120,2024-02-30 14:05:11,95.00,repeat,PRO-02,1,completed"),  # no 30 February
    ("2025-03-25 19:00:00", "O900002,C00311,2025-03-25 18:59:40,67.50,repeat,ESS-04,1.5,completed"),  # half an item
    ("2025-12-22 15:30:00", "O900003,C00518,2025-12-22 15:29:30,380.00,wholesale,ELI-01,2,completed"),  # unknown type
    ("2026-05-13 18:00:00", 'O900004,C00733,2026-05-13 17:59:10,"44,90",repeat,ESS-01,1,completed'),  # decimal comma
)
#: The export wrote the first order line of this day (or the next with orders) twice, the copy after it.
DUPLICATED_ORDER_DAY = "2025-06-16"


def with_bad_order_lines(orders_csv: str, stamps: pd.Series) -> str:
    """``orders.csv`` text with ``BAD_ORDER_LINES`` put in and one line written twice.

    ``stamps`` are the times of the text's lines, in order. The good lines stay
    as they are, so every figure of the shop is unchanged: the bad lines only
    add rejects (rows in = accepted + rejected).
    """
    header, *lines = orders_csv.rstrip("\n").split("\n")
    inserts = [(int(stamps.searchsorted(pd.Timestamp(at))), text) for at, text in BAD_ORDER_LINES]
    twice = int(stamps.searchsorted(pd.Timestamp(DUPLICATED_ORDER_DAY)))
    inserts.append((twice + 1, lines[twice]))
    for position, text in sorted(inserts, reverse=True):
        lines.insert(position, text)
    return "\n".join([header, *lines]) + "\n"


def write_sample(out_dir: str | Path, customers: int = 9000, seed: int = 7) -> dict[str, Path]:
    """Generate the sample and write it as CSV files in ``out_dir``; return their paths.

    ``orders.csv`` also holds the few bad lines of ``BAD_ORDER_LINES`` and a
    duplicate, as an export would.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    tables = generate(customers, seed)
    for name, frame in {**tables, **cash_tables(tables)}.items():
        if name == "commitments":  # written as the shop keeps them: dates as text
            frame = frame.assign(ts=pd.to_datetime(frame["ts"]))
        daily = name in ("costs", "commitments", "balances", "campaigns")
        frame = frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M:%S"))
        paths[name] = out / f"{name}.csv"
        text = frame.to_csv(index=False, float_format="%.2f", lineterminator="\n")
        if name == "orders":
            text = with_bad_order_lines(text, tables["orders"]["ts"])
        with atomic_path(paths[name]) as partial:
            partial.write_text(text, encoding="utf-8")
    return paths


# --------------------------------------------------------------------------- the messy export

#: The messy export's last year: what a shop that only keeps one year of order lines hands over.
MESSY_START = END - pd.Timedelta(days=364)
#: Days the messy shop was closed (no orders at all): its Christmas break.
MESSY_CLOSURE = (pd.Timestamp("2025-12-24"), pd.Timestamp("2026-01-01"))
#: The export was taken at this time on its last day, so that day holds only its morning.
MESSY_CUTOFF_HOUR = 11
MESSY_GUEST_SHARE = 0.4  # of one-off buyers' orders, placed as guests (no customer id)
MESSY_EXTRA_LINE_SHARE = 0.35  # of orders that carry add-on lines beside their main product


def messy_export(customers: int = 9000, seed: int = 7) -> tuple[pd.DataFrame, dict]:
    """The sample shop's last year as a raw order-line export, with its ``journeycast.yml`` settings.

    What real exports look like and the sample does not: one row per order line
    (add-ons on lines of their own), quantity and unit price but no line amount,
    guests without a customer id, refunds and cancellations as ``C``-prefixed
    invoices with negative quantities, a closed week at Christmas, a last day cut
    off mid-morning, European day-first dates, the shop's own column names, and
    no events or costs. Returns the export (columns as the shop names them) and
    the configuration that maps it.
    """
    orders = generate(customers, seed)["orders"]
    rng = np.random.default_rng(seed + 1)
    orders = orders[orders["ts"] >= MESSY_START]
    closed = orders["ts"].between(MESSY_CLOSURE[0], MESSY_CLOSURE[1] + pd.Timedelta(days=1), inclusive="left")
    cut = orders["ts"] >= END + pd.Timedelta(hours=MESSY_CUTOFF_HOUR)
    orders = orders[~closed & ~cut].reset_index(drop=True)

    sales = orders[orders["status"] != "refunded"].copy()
    sales["invoice"] = sales["order_id"].str.slice(1).astype(int)
    sales["unit_price"] = (sales["amount"] / sales["quantity"]).round(2)
    one_off = sales["customer_id"].map(sales["customer_id"].value_counts()) == 1
    guest = one_off & (rng.random(len(sales)) < MESSY_GUEST_SHARE)
    sales["customer"] = sales["customer_id"].str.slice(1).astype(int).astype("str").where(~guest, "")

    extra = sales[rng.random(len(sales)) < MESSY_EXTRA_LINE_SHARE]
    addons = extra.assign(sku=[f"ADD-{k:02d}" for k in rng.integers(1, 4, len(extra))],
                          quantity=1, unit_price=ADDON_PRICE)
    # a refund or cancellation comes back as an invoice of its own: 'C' + the order, negative quantities
    refunds = orders[orders["status"] == "refunded"].assign(
        invoice=lambda f: f["order_id"].str.slice(1).astype(int))
    refunds = refunds.merge(sales[["invoice", "unit_price", "customer"]], on="invoice", how="inner")
    cancelled = sales[sales["status"] == "cancelled"]
    returns = pd.concat([refunds, cancelled], ignore_index=True).assign(quantity=lambda f: -f["quantity"].abs())

    lines = pd.concat([sales.assign(prefix=""), addons.assign(prefix=""), returns.assign(prefix="C")],
                      ignore_index=True)
    lines = lines.sort_values(["ts", "invoice", "prefix", "sku"], kind="stable", ignore_index=True)
    export = pd.DataFrame({
        "InvoiceNo": lines["prefix"] + lines["invoice"].astype("str"),
        "StockCode": lines["sku"],
        "Quantity": lines["quantity"].astype(int),
        "InvoiceDate": lines["ts"].dt.strftime("%d/%m/%Y %H:%M"),
        "UnitPrice": lines["unit_price"].map("{:.2f}".format),
        "CustomerID": lines["customer"],
        "Country": "Germany",
    })
    settings = {
        "sources": {"orders": {"path": "orders.csv", "cancellation_prefix": "C", "columns": {
            "InvoiceNo": "order_id", "StockCode": "sku", "Quantity": "quantity", "InvoiceDate": "ts",
            "UnitPrice": "unit_price", "CustomerID": "customer_id"}}},
        "date_format": "%d/%m/%Y %H:%M",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "gross_margin": 0.55,
    }
    return export, settings


def write_messy_shop(out_dir: str | Path, customers: int = 9000, seed: int = 7) -> dict[str, Path]:
    """Write ``messy_export`` as ``orders.csv`` and its ``journeycast.yml`` in ``out_dir``."""
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export, settings = messy_export(customers, seed)
    paths = {"orders": out / "orders.csv", "config": out / "journeycast.yml"}
    with atomic_path(paths["orders"]) as partial:
        export.to_csv(partial, index=False, lineterminator="\n")
    with atomic_path(paths["config"]) as partial:
        partial.write_text(
            "# A one-year order-line export with guests, cancellations and European dates\n"
            "# (journeycast sample --messy). No events, no costs, no opening balance.\n"
            + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return paths
