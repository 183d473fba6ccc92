"""Forecast speed against what a user would pick instead, side by side in one run.

The same deterministic daily series (``bench_forecast.make_series``: trend,
weekly and yearly cycles, noise) go through:

* ``stock serial``: a plain loop, ``Prophet().fit(df)`` then ``predict`` per series;
* ``stock pool``: the same per-series function over a ``ProcessPoolExecutor``
  with one process per core, the way people usually parallelise Prophet;
* ``prophet-batch``: ``prophet_batch.forecast_many`` (batched exact MAP fits,
  seeded parallel forecasts), the published open library for this job;
* ``journeycast plain``: ``StageForecaster`` with its enhancements off (the same
  model as stock Prophet), local backend;
* ``journeycast full``: ``StageForecaster`` with its defaults (holidays, backtest
  windows, calibration, baselines, sample paths), local backend.

Each variant runs ``--repeat`` times, interleaved, and its fastest run counts
(the machine may be shared). The script prints wall time, the ratio to the
stock pool, and the largest difference of each forecast's ``yhat`` from the
stock serial loop's, as a share of the series' mean.

    .venv/bin/python benchmarks/bench_peers.py [--series 40] [--days 1095] [--horizon 90] [--samples 1000]

prophet-batch is a main dependency: it is the forecaster's Prophet engine (``toolkit.forecast.engine``).
"""

from __future__ import annotations

import argparse
import os
import platform
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
import pandas as pd

from bench_forecast import PLAIN, SEED, make_series, timed
from toolkit.forecast import StageForecaster, series_seed
from toolkit.forecast.stan_io import quiet_logging

quiet_logging()
from prophet import Prophet  # noqa: E402
from prophet_batch import forecast_many  # noqa: E402

COLUMNS = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]


def stock_one(item: tuple[str, pd.DataFrame], horizon: int, samples: int, seed: int) -> pd.DataFrame:
    """One series the stock way: fit, then predict the horizon with the series' own seed."""
    quiet_logging()
    uid, frame = item
    model = Prophet(uncertainty_samples=samples).fit(frame[["ds", "y"]])
    future = model.make_future_dataframe(periods=horizon, include_history=False)
    np.random.seed(series_seed(seed, uid))
    return model.predict(future)[COLUMNS[1:]].assign(unique_id=uid)


def stock(series: pd.DataFrame, horizon: int, samples: int, seed: int, workers: int) -> pd.DataFrame:
    """Every series through ``stock_one``: in this process (``workers=1``) or in a process pool."""
    items = list(series.groupby("unique_id", sort=False))
    one = partial(stock_one, horizon=horizon, samples=samples, seed=seed)
    if workers == 1:
        parts = [one(item) for item in items]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(one, items))
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def batch(series: pd.DataFrame, horizon: int, samples: int, seed: int, workers: int) -> pd.DataFrame:
    """prophet-batch's one-call fit and forecast of every series."""
    return forecast_many(series, periods=horizon, seed=seed, n_jobs=workers, include_history=False,
                         uncertainty_samples=samples, columns=COLUMNS[1:])[COLUMNS]


def journeycast(series: pd.DataFrame, horizon: int, samples: int, seed: int, workers: int,
                plain: bool) -> pd.DataFrame:
    """The toolkit's forecaster, plain (stock Prophet's model) or with its full defaults."""
    settings = PLAIN if plain else {}
    forecaster = StageForecaster(horizon=horizon, uncertainty_samples=samples, seed=seed, progress=False,
                                 backend="local", n_jobs=workers, **settings)
    return forecaster.fit(series).predict().forecast[COLUMNS]


def largest_difference(result: pd.DataFrame, reference: pd.DataFrame, series: pd.DataFrame) -> float:
    """The largest |yhat - reference yhat| over all days, as a share of that series' mean."""
    both = result.merge(reference, on=["unique_id", "ds"], suffixes=("", "_ref"))
    level = series.groupby("unique_id")["y"].mean()
    gap = (both["yhat"] - both["yhat_ref"]).abs() / both["unique_id"].map(level)
    return float(gap.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=40)
    parser.add_argument("--days", type=int, default=3 * 365)
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-full", action="store_true", help="leave out journeycast's full defaults")
    args = parser.parse_args()
    series = make_series(args.series, days=args.days)
    common = dict(horizon=args.horizon, samples=args.samples, seed=SEED)
    runs = {
        "stock serial": partial(stock, series, workers=1, **common),
        "stock pool": partial(stock, series, workers=args.workers, **common),
        "prophet-batch": partial(batch, series, workers=args.workers, **common),
        "journeycast plain": partial(journeycast, series, workers=args.workers, plain=True, **common),
    }
    if not args.skip_full:
        runs["journeycast full"] = partial(journeycast, series, workers=args.workers, plain=False, **common)
    wall = {name: np.inf for name in runs}
    cpu = dict(wall)
    results: dict[str, pd.DataFrame] = {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            seconds, used, results[name] = timed(run)
            if seconds < wall[name]:
                wall[name], cpu[name] = seconds, used
    print(f"{args.series} series x {args.days} days, horizon {args.horizon}, {args.samples} samples, "
          f"{args.workers} workers; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; best of {args.repeat}")
    print(f"{'variant':<20} {'wall s':>8} {'CPU s':>8} {'x stock pool':>13} {'max |yhat diff| / mean':>24}")
    for name in runs:
        ratio = wall["stock pool"] / wall[name]
        gap = largest_difference(results[name], results["stock serial"], series)
        print(f"{name:<20} {wall[name]:>8.2f} {cpu[name]:>8.2f} {ratio:>12.2f}x {gap:>24.4f}")
    print(f"journeycast plain / prophet-batch wall: {wall['journeycast plain'] / wall['prophet-batch']:.2f}")
    if "journeycast full" in wall:
        print(f"journeycast full / prophet-batch wall: {wall['journeycast full'] / wall['prophet-batch']:.2f}")


if __name__ == "__main__":
    main()
