"""Series forecast per second on each backend: serial, local process pool, Dask.

Every backend runs the same per-series task on the same short synthetic daily
series (``bench_forecast.make_series``: trend, weekly and yearly cycles,
noise), so the forecasts must be identical; the script prints the largest
``yhat`` difference from the serial run next to the speed. Settings keep 1,000
series within minutes: half a year of history, horizon 28 days, 100 sample
paths, ``backtest_folds=0`` (one Prophet fit per series, no model selection or
calibration), holidays, closed days and clipping on as by default.

Dask is timed twice: ``dask`` starts a LocalCluster of ``--n-jobs`` worker
processes inside ``fit`` and closes it after (what a user without a cluster
pays), ``dask, running cluster`` hands ``fit`` the address of a LocalCluster of
the same size started (and warmed up by one fit) beforehand.

    .venv/bin/python benchmarks/bench_backends.py [--sizes 100 1000] [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time

import numpy as np
import pandas as pd
from bench_forecast import make_series
from distributed import Client, LocalCluster

from toolkit.forecast import StageForecaster

DAYS, SETTINGS = 182, dict(horizon=28, uncertainty_samples=100, backtest_folds=0, seed=42,
                           progress=False)


def forecast(series: pd.DataFrame, **options) -> tuple[float, pd.DataFrame]:
    """Wall seconds of one fit and predict, and its forecast."""
    start = time.perf_counter()
    result = StageForecaster(**SETTINGS, **options).fit(series).predict()
    return time.perf_counter() - start, result.forecast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()

    with LocalCluster(n_workers=args.n_jobs, threads_per_worker=1, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        address = cluster.scheduler_address
        forecast(make_series(args.n_jobs * 2, DAYS), backend="dask", scheduler_address=address)
        variants = {
            "serial": dict(backend="serial"),
            "local": dict(backend="local", n_jobs=args.n_jobs),
            "dask": dict(backend="dask", n_jobs=args.n_jobs),
            "dask, running cluster": dict(backend="dask", scheduler_address=address),
        }
        rows = []
        for size in args.sizes:
            series = make_series(size, DAYS)
            reference = None
            for name, options in variants.items():
                seconds, result = forecast(series, **options)
                if reference is None:
                    reference = result
                diff = float(np.max(np.abs(result["yhat"].to_numpy() - reference["yhat"].to_numpy())))
                rows.append(dict(series=size, backend=name, seconds=seconds, per_second=size / seconds,
                                 diff=diff))
        client.close()

    table = pd.DataFrame(rows)
    serial = table[table["backend"] == "serial"].set_index("series")["seconds"]
    table["vs_serial"] = table["series"].map(serial) / table["seconds"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{DAYS} days per series, {SETTINGS}, {args.n_jobs} workers\n")
    print("| series | backend | wall | series/s | vs serial | max |diff| yhat vs serial |")
    print("|---|---|---|---|---|---|")
    for row in table.itertuples():
        print(f"| {row.series} | {row.backend} | {row.seconds:.1f} s | {row.per_second:.1f} | "
              f"{row.vs_serial:.2f}x | {row.diff:.3g} |")


if __name__ == "__main__":
    main()
