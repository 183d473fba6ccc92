"""Throughput of the forecaster against a plain serial Prophet loop, on the same 40 series.

Both sides fit one Prophet per series (three years of daily data) and forecast
90 days with Prophet's default 1000 uncertainty samples. The toolkit runs with
its enhancements off, so both forecast with the same model; the toolkit's fits
are solved by prophet-batch's exact MAP where the loop's are Stan's L-BFGS
(``toolkit.forecast.engine``), so the forecasts differ by what separates the two
optima (about 2% of a series' mean here); the script prints the speed-up and
the largest differences. Wall time is what a user
waits; CPU time (this process and its children: workers and CmdStan) is the
work done, and moves less when other programs share the machine. Each variant
runs ``--repeat`` times, interleaved, and its fastest run counts. A last line
times the full forecaster (holidays, backtests, calibration, baselines) for scale.

    .venv/bin/python benchmarks/bench_forecast.py [--series 40] [--n-jobs N]

``--accuracy`` measures instead what the full forecaster serves, on real
series: the sample shop's stage flows and CDNOW's daily revenue (the sum of
``dollar_value`` per day of ``--cdnow``, CDNOW_master.txt). From each of the
last 28-day windows (six on the sample, eight on CDNOW; and three 90-day
windows on CDNOW) the forecaster sees only the days before the window (and
runs its own backtest there, as in production) and its served forecast is
scored on the window: MASE (scaled by the in-sample seasonal naive MAE, as in
the backtest) and the share of days inside the 80% interval. Each method
served alone on the same windows is scored for reference. Seconds per series
are the wall time of the serial forecaster over the series at one origin.

    .venv/bin/python benchmarks/bench_forecast.py --accuracy [--cdnow PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.forecast import ForecastSettings, StageForecaster, backtest, series_seed
from toolkit.forecast.backtest import seasonal_naive_scale
from toolkit.forecast.stan_io import quiet_logging

quiet_logging()
from prophet import Prophet  # noqa: E402

HORIZON, SAMPLES, SEED = 90, 1000, 42

#: The forecaster's enhancements off: each series is a plain ``Prophet()`` fit, same forecasts.
PLAIN = dict(holiday_country=None, closed_days=False, last_days=False, non_negative=False,
             calibrate=False, select_best=False, backtest_folds=0)


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


ROOT = Path(__file__).resolve().parents[1]
CDNOW = Path("/work/shared/data/cdnow/CDNOW_master.txt")


def cdnow_daily_revenue(path: Path) -> pd.DataFrame:
    """CDNOW's revenue per day (``dollar_value`` summed) as one series ``cdnow|inflow|all``."""
    orders = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    daily = orders.groupby("date")["dollar_value"].sum()
    return pd.DataFrame({"unique_id": "cdnow|inflow|all", "ds": pd.to_datetime(daily.index),
                         "y": daily.to_numpy()})


def sample_flows() -> pd.DataFrame:
    """The sample shop's daily stage flows (``data/sample``)."""
    from toolkit.config import load_config
    from toolkit.flows import stage_flows
    from toolkit.ingest import load_tables

    config = load_config(ROOT / "data" / "sample")
    return stage_flows(load_tables(ROOT / "data" / "sample", config).tables)[["unique_id", "ds", "y"]]


def served_accuracy(series: pd.DataFrame, origins: int = 3, window: int = 28,
                    **forecaster: object) -> pd.DataFrame:
    """Scores of the served forecast on each of the last ``origins`` windows, per series.

    One row per series and origin: ``model`` and ``status`` served, ``mase``,
    ``coverage`` (of the 80% interval), ``seconds`` (serial wall time per series)
    and, for reference, the MASE of each method served alone (``<method>_alone``).
    """
    last = series["ds"].max()
    rows = []
    for k in range(origins, 0, -1):
        cutoff = last - pd.Timedelta(days=k * window)
        train = series[series["ds"] <= cutoff]
        actual = series[(series["ds"] > cutoff) & (series["ds"] <= cutoff + pd.Timedelta(days=window))]
        start = time.perf_counter()
        result = StageForecaster(horizon=window, backend="serial", progress=False,
                                 **forecaster).fit(train).predict()
        seconds = (time.perf_counter() - start) / train["unique_id"].nunique()
        scored = result.forecast.merge(actual, on=["unique_id", "ds"])
        diagnostics = result.diagnostics.set_index("unique_id")
        for uid, part in scored.groupby("unique_id", sort=False):
            history = train.loc[train["unique_id"] == uid].sort_values("ds")["y"].to_numpy(dtype=float)
            scale = seasonal_naive_scale(history, 7)
            error = float(np.mean(np.abs(part["y"] - part["yhat"])))
            inside = (part["yhat_lower"] <= part["y"]) & (part["y"] <= part["yhat_upper"])
            rows.append({"unique_id": uid, "cutoff": cutoff.date(), "model": part["model"].iloc[0],
                         "status": diagnostics.loc[uid, "status"], "mase": error / scale,
                         "coverage": float(inside.mean()), "seconds": seconds})
    served = pd.DataFrame(rows)
    # Each method alone on the same windows, for reference: what serving it everywhere would score.
    alone = backtest(series, horizon=window, folds=origins, settings=ForecastSettings(
        **{k: v for k, v in forecaster.items() if k in ("holiday_country", "uncertainty_samples", "seed")}),
        backend="serial", progress=False)
    alone = alone.assign(cutoff=alone["cutoff"].dt.date).pivot_table(
        index=["unique_id", "cutoff"], columns="model", values="mase").add_suffix("_alone")
    return served.merge(alone.reset_index(), on=["unique_id", "cutoff"], how="left")


def accuracy(cdnow: Path) -> None:
    """Print the served forecasts' scores on the sample shop and on CDNOW (see the module docstring)."""
    pd.set_option("display.width", 200)
    cdnow_revenue = cdnow_daily_revenue(cdnow)
    for name, series, origins, window in (("sample shop", sample_flows(), 6, 28),
                                          ("CDNOW daily revenue", cdnow_revenue, 8, 28),
                                          ("CDNOW daily revenue", cdnow_revenue, 3, 90)):
        scores = served_accuracy(series, origins=origins, window=window, holiday_country="US",
                                 uncertainty_samples=500, seed=SEED)
        print(f"\n{name}: served forecast on the last {origins} windows of {window} days")
        print(scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"mean MASE {scores['mase'].mean():.3f}, median MASE {scores['mase'].median():.3f}, "
              f"mean 80% coverage {scores['coverage'].mean():.3f}, "
              f"seconds per series {scores['seconds'].mean():.2f}")
        alone = {c.removesuffix("_alone"): scores[c].mean() for c in scores if c.endswith("_alone")}
        print("mean MASE of each method alone: " + ", ".join(f"{m} {v:.3f}" for m, v in alone.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=40)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--accuracy", action="store_true",
                        help="score the served forecasts on the sample shop and CDNOW instead")
    parser.add_argument("--cdnow", type=Path, default=CDNOW, help="CDNOW_master.txt")
    args = parser.parse_args()
    if args.accuracy:
        accuracy(args.cdnow)
        return
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
