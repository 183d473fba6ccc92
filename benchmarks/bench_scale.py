"""Forecasting at scale: series per second and the driver's peak memory, 100 to 10,000 series.

Every variant forecasts the same short synthetic daily series
(``bench_forecast.make_series`` with ``bench_backends.DAYS`` of history, ids
``stage|direction|segment``, inflows and outflows alternating) over
``bench_backends.SETTINGS`` (horizon 28 days, 100 sample paths, one Prophet fit
per series) with the forecaster's enhancements off (``bench_forecast.PLAIN``),
so all of them give the plain loop's model, its fits solved by prophet-batch
instead of Stan (the script prints the largest ``yhat`` difference). Variants:

* ``plain``: a plain serial ``Prophet().fit(); predict()`` loop;
* ``local``: ``StageForecaster(backend="local")`` in memory, ``fit().predict()``
  and the net cash flow summed from all paths (``result.net_flow``);
* ``local, stored``: the same with ``store=`` a directory: tables written to
  Parquet as chunks finish, only the net cash flow kept;
* ``dask, stored``: ``backend="dask"`` on a LocalCluster of ``--n-jobs`` workers
  started inside ``fit`` (start-up included), stored;
* ``full, stored``: the forecaster's full defaults (holidays, closed days, five
  backtest windows of Prophet, ETS, Theta and both baselines, calibration)
  on the local pool, stored: what a run over thousands of real series costs.

Each variant runs in its own Python process, so the peak resident memory
(``ru_maxrss``) it reports is that of one driver; pool and cluster workers are
other processes and not counted. "before fit" is the driver after building
its input (10,000 series of half a year are about 1.8 million rows); the
paths the in-memory variant holds grow with series x horizon x draws.

How long it takes: about 0.5 s per series for the four variants together on
the 2-core reference machine (load average 3 from other work; 100 series took
50 s, with 3-5 s of process and cluster start-up per variant): 1,000 series
about 9 min, 10,000 series about 1 h 25 min, the default sizes about 1 h 35 min.
Under heavier load expect up to twice that.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 100 1000 10000] [--n-jobs 2] [--variants ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_backends import DAYS, SETTINGS
from bench_forecast import PLAIN, make_series, plain_loop

from toolkit.forecast import StageForecaster

VARIANTS = ("plain", "local", "local, stored", "dask, stored", "full, stored")
OPTIONS = {**SETTINGS, **PLAIN}
#: The full defaults at the same horizon, paths and seed.
FULL = {name: SETTINGS[name] for name in ("horizon", "uncertainty_samples", "seed", "progress")}


def cash_flow_series(n: int) -> pd.DataFrame:
    """``make_series`` with ids ``purchase|inflow|series-k`` and ``operations|outflow|series-k``."""
    return make_series(n, DAYS, [f"purchase|inflow|series-{i}" if i % 2 == 0 else
                                 f"operations|outflow|series-{i}" for i in range(n)])


def measure(variant: str, size: int, out: Path, n_jobs: int) -> dict:
    """Run one variant in this process: wall seconds, peak memory, forecast written to ``out``."""
    series = cash_flow_series(size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    forecast = net_flow = None
    if variant == "plain":
        forecast = plain_loop(series, horizon=OPTIONS["horizon"], samples=OPTIONS["uncertainty_samples"],
                              seed=OPTIONS["seed"])
    elif variant == "local":
        result = StageForecaster(backend="local", n_jobs=n_jobs, **OPTIONS).fit(series).predict()
        forecast, net_flow = result.forecast, result.net_flow
    else:
        backend = "local" if variant.startswith("full") else variant.split(",")[0]
        options = FULL if variant.startswith("full") else OPTIONS
        StageForecaster(backend=backend, n_jobs=n_jobs, store=out / "store", **options).fit(series)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if forecast is not None:
        forecast[["unique_id", "ds", "yhat"]].to_parquet(out / "forecast.parquet")
    if net_flow is not None:
        net_flow.to_parquet(out / "net_flow.parquet")
    return dict(seconds=seconds, peak_mb=peak, start_mb=before)


def run_variant(variant: str, size: int, n_jobs: int) -> dict:
    """``measure`` in a fresh Python process, with the largest ``yhat`` difference from ``plain``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        done = subprocess.run([sys.executable, __file__, "--measure", variant, "--size", str(size),
                               "--out", str(out), "--n-jobs", str(n_jobs)],
                              capture_output=True, text=True, check=True)
        row = dict(series=size, variant=variant, **json.loads(done.stdout.strip().splitlines()[-1]))
        results = out / ("store" if "stored" in variant else "")
        row["forecast"] = pd.read_parquet(results / "forecast.parquet", columns=["unique_id", "ds", "yhat"]
                                          ).sort_values(["unique_id", "ds"], ignore_index=True)
        if variant != "plain":
            row["net_flow"] = pd.read_parquet(results / "net_flow.parquet").to_numpy()
    return row


def ratio_table(table: pd.DataFrame) -> list[str]:
    """Markdown lines: the speed ratios per size and the growth from the smallest to the largest size."""
    wall = table.pivot(index="series", columns="variant", values="seconds")
    peak = table.pivot(index="series", columns="variant", values="peak_mb")
    lines = ["| ratio | " + " | ".join(f"{n} series" for n in wall.index) + " |",
             "|---|" + "---|" * len(wall.index)]
    for name, (first, second, table_of) in {
        "toolkit local vs plain loop (speed)": ("plain", "local", wall),
        "dask vs local, both stored (speed)": ("local, stored", "dask, stored", wall),
        "local stored vs local in memory (speed)": ("local", "local, stored", wall),
        "driver peak memory, in memory / stored": ("local", "local, stored", peak),
    }.items():
        if first in table_of and second in table_of:
            values = table_of[first] / table_of[second]
            lines.append(f"| {name} | " + " | ".join(f"{v:.2f}x" for v in values) + " |")
    small, large = wall.index.min(), wall.index.max()
    if small != large:
        lines += ["", f"| growth from {small} to {large} series | wall time | driver peak memory |",
                  "|---|---|---|"]
        for variant in wall.columns:
            lines.append(f"| {variant} | {wall.loc[large, variant] / wall.loc[small, variant]:.1f}x | "
                         f"{peak.loc[small, variant]:.0f} -> {peak.loc[large, variant]:.0f} MB "
                         f"(+{peak.loc[large, variant] - peak.loc[small, variant]:.0f} MB) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000],
                        help="numbers of series to measure (see below for how long each takes)")
    parser.add_argument("--n-jobs", type=int, default=2, help="workers of the pool and of the Dask cluster")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="which variants to run (default all)")
    parser.add_argument("--measure", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.size, args.out, args.n_jobs)))
        return

    rows = []
    for size in args.sizes:
        for variant in args.variants:
            rows.append(run_variant(variant, size, args.n_jobs))
            print(f"{size} series, {variant}: {rows[-1]['seconds']:.1f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    plain = table[table["variant"] == "plain"].set_index("series")["forecast"]
    in_memory = table[table["variant"] == "local"].set_index("series")["net_flow"]
    table["diff"] = [float(np.max(np.abs(row.forecast["yhat"].to_numpy()
                                         - plain[row.series]["yhat"].to_numpy())))
                     if row.series in plain.index else np.nan for row in table.itertuples()]
    table["net_diff"] = [float(np.max(np.abs(row.net_flow - in_memory[row.series])))
                         if row.variant != "plain" and row.series in in_memory.index else np.nan
                         for row in table.itertuples()]

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{DAYS} days per series, {args.n_jobs} workers; settings: {OPTIONS}; "
          f"'full' variants: {FULL}, every other setting at its default\n")
    print("| series | variant | wall | series/s | driver memory before fit | driver peak "
          "| max |diff| yhat vs plain | max |diff| net flow vs local |")
    print("|---|---|---|---|---|---|---|---|")
    for row in table.itertuples():
        net = "" if np.isnan(row.net_diff) else f"{row.net_diff:.3g}"
        diff = "" if np.isnan(row.diff) else f"{row.diff:.3g}"
        print(f"| {row.series} | {row.variant} | {row.seconds:.1f} s | {row.series / row.seconds:.1f} | "
              f"{row.start_mb:.0f} MB | {row.peak_mb:.0f} MB | {diff} | {net} |")
    print()
    print("\n".join(ratio_table(table)))


if __name__ == "__main__":
    main()
