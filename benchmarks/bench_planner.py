"""How long the campaign study takes on the sample shop, and a re-plan after a slider move.

The inputs are built first and not timed: the sample's cash forecast (the
configuration's horizon and draws) and its customer scores (the re-purchase
model). Then, timed: the whole campaign study (``pipeline.campaign_study``:
measuring the past campaigns, the uplift model and its 5-fold check, every
customer's natural purchase chance and lift per launch week, and the planner's
``fit`` and first ``plan``), once; and ``plan`` after each kind of slider move
(budget, risk limit, discount menu, cost per contact): the median and the slowest
of ``--repeat`` runs. A page re-plans on every move, so the slowest re-plan is
what must stay under a second; the study should stay under ten.

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
    (cash, found), inputs = timed(lambda: (pipeline.forecast_cash(dataset, progress=False),
                                           pipeline.opportunities(dataset)))
    study, study_s = timed(lambda: pipeline.campaign_study(dataset, cash, found))
    planner = study.planner
    draws = cash.outlook.balance_draws.shape[1]
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{args.data}: {len(planner.customers_):,} customers x {len(planner.launch_days_)} launch weeks x "
          f"{len(planner.discounts_)} discounts, {draws} cash draws, lift {study.lift_source} "
          f"(inputs built in {inputs:.1f} s, not timed)")
    print(f"{'step':<34} {'median':>8} {'slowest':>8}")
    print(f"{'campaign_study (measure+uplift+plan)':<34} {study_s:>7.3f}s {study_s:>7.3f}s")
    moves = {"plan() (configuration)": {}, "budget 500": {"budget": 500.0}, "risk limit 1%": {"risk_limit": 0.01},
             "discounts 0% and 10% only": {"discounts": [0.0, 0.1]}, "cost per contact 0.5": {"cost_per_contact": 0.5}}
    for name, values in moves.items():
        runs = [timed(lambda: planner.plan(**values))[1] for _ in range(args.repeat)]
        print(f"re-plan: {name:<25} {statistics.median(runs):>7.3f}s {max(runs):>7.3f}s")
    print(f"verdict: {planner.plan().verdict}")


if __name__ == "__main__":
    main()
