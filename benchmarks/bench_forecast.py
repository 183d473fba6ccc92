"""Throughput of the forecaster against a plain serial Prophet loop, on the same 40 series.

Both sides fit one Prophet per series (three years of daily data) and forecast
90 days with Prophet's default 1000 uncertainty samples. The toolkit runs with
its enhancements off, so the two must give the same forecasts; the script
prints the speed-up and the largest differences. Wall time is what a user
waits; CPU time (this process and its children: workers and CmdStan) is the
work done, and moves less when other programs share the machine. Each variant
runs ``--repeat`` times, interleaved, and its fastest run counts. A last line
times the full forecaster (holidays, backtests, calibration, baselines) for scale.

    .venv/bin/python benchmarks/bench_forecast.py [--series 40] [--n-jobs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from toolkit.forecast import StageForecaster, series_seed
from toolkit.forecast.stan_io import quiet_logging

quiet_logging()
from prophet import Prophet  # noqa: E402

HORIZON, SAMPLES, SEED = 90, 1000, 42

#: The forecaster's enhancements off: each series is a plain ``Prophet()`` fit, same forecasts.
PLAIN = dict(holiday_country=None, closed_days=False, non_negative=False, calibrate=False,
             select_best=False, backtest_folds=0)


def make_series(n: int, days: int = 3 * 365, names: list[str] | None = None) -> pd.DataFrame:
    """``n`` daily cash-flow-like series: trend, weekly and yearly cycles, noise (deterministic).

    Series ``i`` is called ``names[i]``, by default ``series-<i>``; its values depend on ``i`` only.
    """
    ds = pd.date_range("2023-01-01", periods=days, freq="D")
    t = np.arange(days)
    values = []
    for i in range(n):
        rng = np.random.default_rng(i)
        level = rng.uniform(500, 5000)
        weekly = 1 + 0.2 * np.sin(2 * np.pi * (t + rng.integers(7)) / 7)
        yearly = 1 + 0.25 * np.cos(2 * np.pi * (t - rng.integers(365)) / 365.25)
        trend = 1 + rng.uniform(-0.1, 0.3) * t / 365.25
        values.append(level * trend * weekly * yearly * rng.lognormal(0, 0.15, days))
    # Whole columns, the ids repeated inside Arrow: thousands of small frames or a
    # column of Python strings would cost many times the memory of the data.
    names = pd.array(names or [f"series-{i:02d}" for i in range(n)], dtype="str")
    return pd.DataFrame({"unique_id": names.take(np.repeat(np.arange(n), days)),
                         "ds": np.tile(ds.to_numpy(), n), "y": np.concatenate(values)})


def plain_loop(series: pd.DataFrame, horizon: int = HORIZON, samples: int = SAMPLES,
               seed: int = SEED) -> pd.DataFrame:
    """What one would write by hand: fit and predict each series in turn."""
    out = []
    for uid, frame in series.groupby("unique_id", sort=False):
        model = Prophet(uncertainty_samples=samples).fit(frame[["ds", "y"]])
        future = model.make_future_dataframe(periods=horizon, include_history=False)
        np.random.seed(series_seed(seed, uid))
        fc = model.predict(future)[["ds", "yhat", "yhat_lower", "yhat_upper"]]
        out.append(fc.assign(unique_id=uid))
    return pd.concat(out, ignore_index=True)


def timed(run: Callable[[], pd.DataFrame]) -> tuple[float, float, pd.DataFrame]:
    """Wall seconds, CPU seconds (this process and finished children) and result of ``run()``."""
    before, start = os.times(), time.perf_counter()
    result = run()
    seconds, after = time.perf_counter() - start, os.times()
    cpu = sum(after[:4]) - sum(before[:4])
    return seconds, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=40)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    series = make_series(args.series)
    plain_settings = dict(horizon=HORIZON, uncertainty_samples=SAMPLES, seed=SEED, progress=False,
                          **PLAIN)

    runs = {
        "plain": lambda: plain_loop(series),
        "serial": lambda: StageForecaster(backend="serial", **plain_settings).fit(series).predict().forecast,
        "local": lambda: StageForecaster(backend="local", n_jobs=args.n_jobs,
                                         **plain_settings).fit(series).predict().forecast,
    }
    wall = {name: np.inf for name in runs}
    cpu = dict(wall)
    results = {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            seconds, cpu_seconds, results[name] = timed(run)
            wall[name], cpu[name] = min(wall[name], seconds), min(cpu[name], cpu_seconds)
    plain = results.pop("plain")

    start = time.perf_counter()
    StageForecaster(horizon=HORIZON, uncertainty_samples=500, seed=SEED, n_jobs=args.n_jobs,
                    progress=False).fit(series).predict()
    t_full = time.perf_counter() - start

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{args.series} series x {series.groupby('unique_id').size().iloc[0]} days, "
          f"horizon {HORIZON}, {SAMPLES} samples")
    print(f"plain serial Prophet loop       : wall {wall['plain']:6.2f} s  cpu {cpu['plain']:6.2f} s")
    for backend, ours in results.items():
        diff = {c: float(np.max(np.abs(ours[c].to_numpy() - plain[c].to_numpy())))
                for c in ("yhat", "yhat_lower", "yhat_upper")}
        print(f"toolkit, plain settings, {backend:6s}: wall {wall[backend]:6.2f} s  cpu {cpu[backend]:6.2f} s  "
              f"speed-up wall {wall['plain'] / wall[backend]:4.2f}x cpu {cpu['plain'] / cpu[backend]:4.2f}x  "
              f"max |diff| yhat {diff['yhat']:.3g}, lower {diff['yhat_lower']:.3g}, "
              f"upper {diff['yhat_upper']:.3g}")
    print(f"toolkit, full (backtests etc.), local: {t_full:6.2f} s")


if __name__ == "__main__":
    main()
