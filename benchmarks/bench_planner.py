"""How long the campaign planner takes to fit, and to re-plan after a slider move, on the sample shop.

The inputs are built first and not timed: the sample's cash forecast (13 weeks,
the configuration's draws) and its customer scores (the re-purchase model).
Then, each timed: the weekly natural purchase chances (``purchase_timing``,
one ``expected_purchases`` call per week), the personal offers, the planner's
``fit`` (every customer x launch week x discount precomputed), and ``plan``
after each kind of slider move (budget, risk limit, discount menu, cost per
contact): the median and the slowest of ``--repeat`` runs. A page re-plans on
every move, so the slowest re-plan is what must stay under a second.

    .venv/bin/python benchmarks/bench_planner.py [--data data/sample] [--repeat 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from toolkit import pipeline
from toolkit.opportunities import (CampaignPlanner, assumed_lift, gross_margin_or_assumed, personal_offers,
                                   planner_customers, purchase_timing, weekly_seasonality)

WEEKS, WINDOW_DAYS = 13, 14


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    """``func()`` and its wall time in seconds."""
    started = time.perf_counter()
    result = func()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/sample", help="data directory (default: data/sample)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each re-plan (default: 5)")
    args = parser.parse_args()

    dataset = pipeline.load(args.data)
    config = dataset.config
    (cash, found), inputs = timed(lambda: (pipeline.forecast_cash(dataset, horizon=7 * WEEKS, progress=False),
                                           pipeline.opportunities(dataset, horizon=7 * WEEKS)))
    margin = gross_margin_or_assumed(config.gross_margin)[0]
    weeks = WEEKS + WINDOW_DAYS // 7 + 1
    timing, timing_s = timed(lambda: purchase_timing(found.model, weeks,
                                                     seasonality=weekly_seasonality(cash.result.forecast, weeks)))
    offers, offers_s = timed(lambda: personal_offers(dataset.tables["orders"], found.as_of, margin, found.customers))
    customers = planner_customers(found.customers, offers)
    planner = CampaignPlanner(discounts=(0.0, 0.1, 0.2), cost_per_contact=config.campaign.cost_per_contact,
                              fixed_cost=config.campaign.fixed_cost, response_window_days=WINDOW_DAYS,
                              risk_limit=config.risk_limit, gross_margin=margin, seed=config.seed,
                              currency=config.currency)
    lift = assumed_lift(timing, planner.discounts)
    _, fit_s = timed(lambda: planner.fit(customers, cash.outlook, timing, lift))
    draws = cash.outlook.balance_draws.shape[1]
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{args.data}: {len(customers):,} customers x {len(planner.launch_days_)} launch weeks x "
          f"{len(planner.discounts_)} discounts, {draws} cash draws (inputs built in {inputs:.1f} s, not timed)")
    print(f"{'step':<34} {'median':>8} {'slowest':>8}")
    for name, seconds in (("purchase_timing", timing_s), ("personal_offers", offers_s), ("planner.fit", fit_s)):
        print(f"{name:<34} {seconds:>7.3f}s {seconds:>7.3f}s")
    moves = {"plan() (configuration)": {}, "budget 500": {"budget": 500.0}, "risk limit 1%": {"risk_limit": 0.01},
             "discounts 0% and 10% only": {"discounts": [0.0, 0.1]}, "cost per contact 0.5": {"cost_per_contact": 0.5}}
    for name, values in moves.items():
        runs = [timed(lambda: planner.plan(**values))[1] for _ in range(args.repeat)]
        print(f"re-plan: {name:<25} {statistics.median(runs):>7.3f}s {max(runs):>7.3f}s")
    print(f"verdict: {planner.plan().verdict}")


if __name__ == "__main__":
    main()
