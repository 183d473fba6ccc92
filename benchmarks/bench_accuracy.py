"""Accuracy of the default forecaster against open peers, on the same real series and windows.

Series: CDNOW's total and repeat-purchase daily revenue (``--shared``/cdnow, read
through the project's ingest and flows with tests/data/real/cdnow.yml),
Superstore's daily sales (superstore, tests/data/real/superstore.yml), the
sample shop's stage flows (data/sample) and Prophet's two example series
(tests/data/prophet_examples: daily log page views, monthly retail sales).
``--data FOLDER`` (repeatable) adds a shop's own export: the folder's files
and its journeycast.yml, read as ``journeycast report`` reads them, give the
total of its inflows per day ("<folder> total"), scored on the same windows.

Rolling origin: from each of the last ``--windows`` windows of ``--window``
days (12 months for the monthly series) every forecaster sees only the days
before the window and forecasts it. Scores per series and window:

* MASE: mean absolute error over the window divided by the in-sample mean
  absolute error of the seasonal naive rule (one week back; a year of months)
  on the training part;
* open-day coverage: the share of open days whose actual lies inside the 80%
  interval. A day is closed when the business (all inflow series of the data
  set together) took nothing on it; closed days are counted apart, since any
  forecast of zero "covers" them.

Forecasters: the toolkit's default (``StageForecaster`` with the data set's
configured holidays and everything else at its defaults, serial, so seconds
are per series and window), the 4-week weekday mean (the toolkit's baseline),
and statsforecast's AutoETS, AutoARIMA, MSTL and SeasonalNaive. statsforecast
needs pandas < 3, so it runs in its own virtualenv (``benchmarks/.venv-peers``,
created on first use with ``pip install statsforecast "pandas<3"``) as a
subprocess of this script on the same training frames (gaps interpolated,
as statsforecast takes no missing values).

    .venv/bin/python benchmarks/bench_accuracy.py [--label after] [--peers peers.csv] [--data FOLDER]

``--peers FILE`` reuses the peers' scores stored in FILE (data sets it has no
scores for are run and added to it): they do not change with the toolkit. To measure an older
version of the toolkit, put its ``toolkit`` folder first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PEERS_VENV = ROOT / "benchmarks" / ".venv-peers"
PEERS = ("AutoETS", "AutoARIMA", "MSTL", "SeasonalNaive")
WIDTH = 0.8


def _mase_scale(y: np.ndarray, season: int) -> float:
    diffs = np.abs(y[season:] - y[:-season])
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.mean()) if diffs.size else np.nan


# --------------------------------------------------------------------------- peers (own venv)

def run_peers(request: Path, out: Path) -> None:
    """Forecast every training frame of ``request`` with the statsforecast models (peers venv)."""
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, SeasonalNaive

    frames = pd.read_parquet(request)
    rows = []
    for key, part in frames.groupby("key", sort=False):
        season, horizon, freq = int(part["season"].iloc[0]), int(part["horizon"].iloc[0]), part["freq"].iloc[0]
        train = part[["ds", "y"]].assign(unique_id=key)
        for name, model in (("AutoETS", AutoETS(season_length=season)),
                            ("AutoARIMA", AutoARIMA(season_length=season)),
                            ("MSTL", MSTL(season_length=season)),
                            ("SeasonalNaive", SeasonalNaive(season_length=season))):
            start = time.perf_counter()
            forecast = StatsForecast(models=[model], freq=freq, n_jobs=1).forecast(
                df=train, h=horizon, level=[int(100 * WIDTH)])
            seconds = time.perf_counter() - start
            column = [c for c in forecast.columns if c not in ("unique_id", "ds")][0]
            rows.append(pd.DataFrame({"key": key, "method": name, "ds": forecast["ds"].to_numpy(),
                                      "yhat": forecast[column].to_numpy(),
                                      "yhat_lower": forecast[f"{column}-lo-80"].to_numpy(),
                                      "yhat_upper": forecast[f"{column}-hi-80"].to_numpy(),
                                      "seconds": seconds}))
    pd.concat(rows, ignore_index=True).to_parquet(out)


def _peers_python() -> Path:
    """The peers venv's interpreter, the venv created first when missing."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "statsforecast", "pandas<3",
                        "pyarrow"], check=True)
    return python


# --------------------------------------------------------------------------- series

def _flows(data_dir: Path, config_file: Path | None) -> tuple[pd.DataFrame, str | None]:
    """Stage flows of a data set through the project's ingest, and its holiday country."""
    from toolkit.config import load_config
    from toolkit.flows import stage_flows
    from toolkit.forecast.calendar import holiday_calendar
    from toolkit.ingest import load_tables

    config = load_config(data_dir, config_file)
    flows = stage_flows(load_tables(data_dir, config).tables)
    country, _ = holiday_calendar(config.holiday_country, config.currency, config.timezone)
    return flows[["unique_id", "ds", "y"]], country


def _total(flows: pd.DataFrame, name: str) -> pd.DataFrame:
    inflows = flows[flows["unique_id"].str.contains("|inflow|", regex=False)]
    daily = inflows.groupby("ds", as_index=False)["y"].sum()
    return daily.assign(unique_id=name)[["unique_id", "ds", "y"]]


def own_data_set(folder: Path) -> dict:
    """A shop's export (a folder with its journeycast.yml) as a data set: its inflows' daily total."""
    flows, country = _flows(folder, None)
    name = f"{folder.resolve().name} total"
    return dict(name=name, series=_total(flows, name), country=country, freq="D", season=7, window=28)


def data_sets(shared: Path) -> list[dict]:
    """The benchmark's data sets: series, frequency, season, window and holiday country."""
    cdnow, us = _flows(shared / "cdnow", ROOT / "tests" / "data" / "real" / "cdnow.yml")
    superstore, store_country = _flows(shared / "superstore", ROOT / "tests" / "data" / "real" / "superstore.yml")
    sample, sample_country = _flows(ROOT / "data" / "sample", None)
    examples = ROOT / "tests" / "data" / "prophet_examples"
    peyton = pd.read_csv(examples / "example_wp_log_peyton_manning.csv", parse_dates=["ds"])
    retail = pd.read_csv(examples / "example_retail_sales.csv", parse_dates=["ds"])
    repeat = cdnow[cdnow["unique_id"] == "post-purchase|inflow|all"].assign(unique_id="cdnow|repeat")
    daily = dict(freq="D", season=7, window=28)
    return [
        dict(name="CDNOW total", series=_total(cdnow, "cdnow|total"), country=us, **daily),
        dict(name="CDNOW repeat", series=repeat, country=us, **daily),
        dict(name="Superstore sales", series=_total(superstore, "superstore|total"), country=store_country,
             **daily),
        dict(name="sample shop", series=sample, country=sample_country, **daily),
        dict(name="Peyton Manning views", series=peyton.assign(unique_id="peyton"), country="US", **daily),
        dict(name="retail sales (monthly)", series=retail.assign(unique_id="retail"), country=None,
             freq="MS", season=12, window=12),
    ]


def windows(data: dict, count: int) -> list[tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]]:
    """``(cutoff, train, actual)`` of the last ``count`` windows of a data set."""
    series = data["series"].assign(ds=pd.to_datetime(data["series"]["ds"]))
    step = pd.DateOffset(months=data["window"]) if data["freq"] == "MS" else pd.Timedelta(days=data["window"])
    last = series["ds"].max()
    out = []
    for k in range(count, 0, -1):
        cutoff = last - step * k
        train = series[series["ds"] <= cutoff]
        actual = series[(series["ds"] > cutoff) & (series["ds"] <= cutoff + step)]
        out.append((cutoff, train, actual))
    return out


# --------------------------------------------------------------------------- scoring

def open_days(actual: pd.DataFrame) -> set[pd.Timestamp]:
    """Days the business took something: any inflow series (every series when none is named so) non-zero."""
    inflow = actual["unique_id"].str.contains("|inflow|", regex=False)
    takings = actual[inflow] if inflow.any() else actual
    return set(takings.loc[takings["y"].abs() > 0, "ds"])


def score(forecast: pd.DataFrame, train: pd.DataFrame, actual: pd.DataFrame, season: int) -> pd.DataFrame:
    """MASE and open/closed-day coverage per series of one window (``forecast``: unique_id, ds, yhat...)."""
    opened = open_days(actual)
    joined = forecast.merge(actual, on=["unique_id", "ds"])
    rows = []
    for uid, part in joined.groupby("unique_id", sort=False):
        history = train.loc[train["unique_id"] == uid].sort_values("ds")["y"].to_numpy(dtype=float)
        inside = ((part["yhat_lower"] <= part["y"]) & (part["y"] <= part["yhat_upper"])).to_numpy()
        is_open = part["ds"].isin(opened).to_numpy()
        rows.append({"unique_id": uid, "mase": float(np.mean(np.abs(part["y"] - part["yhat"])))
                     / _mase_scale(history, season),
                     "covered_open": int(inside[is_open].sum()), "open": int(is_open.sum()),
                     "covered_closed": int(inside[~is_open].sum()), "closed": int((~is_open).sum())})
    return pd.DataFrame(rows)


def default_scores(data: dict, count: int, seed: int, **forecaster: object) -> pd.DataFrame:
    """The toolkit's default forecaster (``forecaster`` overrides its parameters) and the 4-week
    weekday mean on every window of a data set."""
    from toolkit.forecast import StageForecaster, baseline_forecast

    rows = []
    for cutoff, train, actual in windows(data, count):
        start = time.perf_counter()
        result = StageForecaster(horizon=len(actual["ds"].unique()), freq=data["freq"],
                                 holiday_country=data["country"], seed=seed, backend="serial",
                                 progress=False, **forecaster).fit(train).predict()
        seconds = (time.perf_counter() - start) / train["unique_id"].nunique()
        scored = score(result.forecast, train, actual, data["season"])
        status = result.diagnostics.set_index("unique_id")[["status", "model"]]
        rows.append(scored.join(status, on="unique_id").assign(method="default", seconds=seconds,
                                                                 cutoff=cutoff))
        means = []
        for uid, part in train.groupby("unique_id", sort=False):
            dates = pd.DatetimeIndex(sorted(actual.loc[actual["unique_id"] == uid, "ds"]))
            tic = time.perf_counter()
            history = part.set_index("ds")["y"].asfreq(data["freq"]).rename_axis("ds").reset_index()
            point, paths = baseline_forecast(history, dates, "weekday_mean", data["season"], 500,
                                             np.random.default_rng(seed))
            lower, upper = np.percentile(paths, [10, 90], axis=1)
            means.append(pd.DataFrame({"unique_id": uid, "ds": dates, "yhat": point, "yhat_lower": lower,
                                       "yhat_upper": upper}).assign(seconds=time.perf_counter() - tic))
        mean = pd.concat(means, ignore_index=True)
        seconds = mean.groupby("unique_id")["seconds"].first()
        scored = score(mean, train, actual, data["season"])
        rows.append(scored.assign(method="WeekdayMean4", cutoff=cutoff,
                                  seconds=scored["unique_id"].map(seconds)))
    return pd.concat(rows, ignore_index=True).assign(data_set=data["name"])


def peer_scores(sets: list[dict], count: int) -> pd.DataFrame:
    """statsforecast's models on every window of every data set, run in the peers venv."""
    frames = []
    for data in sets:
        for cutoff, train, actual in windows(data, count):
            for uid, part in train.groupby("unique_id", sort=False):
                grid = part.set_index("ds")["y"].asfreq(data["freq"]).interpolate().rename_axis("ds")
                frames.append(grid.reset_index().assign(
                    key=f"{data['name']}~{uid}~{cutoff.date()}", season=data["season"],
                    horizon=int((actual["unique_id"] == uid).sum()), freq=data["freq"]))
    with tempfile.TemporaryDirectory() as folder:
        request, out = Path(folder) / "request.parquet", Path(folder) / "out.parquet"
        pd.concat(frames, ignore_index=True).to_parquet(request)
        # One thread each: the machine's cores are shared, and oversubscribed threads only wait.
        single = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                          "NUMBA_NUM_THREADS")}
        subprocess.run([str(_peers_python()), __file__, "--run-peers", str(request), str(out)], check=True,
                       env={**os.environ, **single})
        forecasts = pd.read_parquet(out)
    parts = forecasts["key"].str.split("~", expand=True)
    forecasts = forecasts.assign(data_set=parts[0], unique_id=parts[1], cutoff=pd.to_datetime(parts[2]))
    rows = []
    for data in sets:
        for cutoff, train, actual in windows(data, count):
            mine = forecasts[(forecasts["data_set"] == data["name"]) & (forecasts["cutoff"] == cutoff)]
            for method, part in mine.groupby("method", sort=False):
                seconds = part.groupby("unique_id")["seconds"].first()
                scored = score(part[["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]], train, actual,
                               data["season"])
                rows.append(scored.assign(method=method, cutoff=cutoff, data_set=data["name"],
                                          seconds=scored["unique_id"].map(seconds)))
    return pd.concat(rows, ignore_index=True)


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean MASE, pooled open-day coverage and seconds per series and window, by data set and method."""
    grouped = scores.groupby(["data_set", "method"], sort=False)
    table = grouped.agg(mase=("mase", "mean"), covered=("covered_open", "sum"), open=("open", "sum"),
                        covered_closed=("covered_closed", "sum"), closed=("closed", "sum"),
                        seconds=("seconds", "mean"))
    table["open_coverage"] = table["covered"] / table["open"]
    table["closed_coverage"] = table["covered_closed"] / table["closed"].replace(0, np.nan)
    return table[["mase", "open_coverage", "closed_coverage", "seconds"]].reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--label", default="default")
    parser.add_argument("--peers", type=Path, default=None, help="CSV to reuse (or store) the peers' scores")
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="a folder with an export and its journeycast.yml to add (repeatable)")
    parser.add_argument("--only", default=None, help="comma-separated data set names to run")
    parser.add_argument("--out", type=Path, default=None, help="CSV for the per-window scores")
    parser.add_argument("--folds", type=int, default=None, help="the forecaster's backtest windows, if not its default")
    parser.add_argument("--run-peers", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_peers:
        run_peers(*args.run_peers)
        return
    from toolkit.forecast.stan_io import quiet_logging

    quiet_logging()
    sets = data_sets(args.shared) + [own_data_set(folder) for folder in args.data]
    if args.only:
        sets = [s for s in sets if s["name"] in args.only.split(",")]
    stored = (pd.read_csv(args.peers, parse_dates=["cutoff"]) if args.peers is not None and args.peers.exists()
              else pd.DataFrame(columns=["data_set"]))
    missing = [s for s in sets if s["name"] not in set(stored["data_set"])]
    if missing:  # data sets the stored file has no scores for are run now, and added to it
        stored = pd.concat([stored, peer_scores(missing, args.windows)], ignore_index=True)
        if args.peers is not None:
            stored.to_csv(args.peers, index=False)
    peers = stored[stored["data_set"].isin([s["name"] for s in sets])]
    overrides = {} if args.folds is None else {"backtest_folds": args.folds}
    ours = pd.concat([default_scores(s, args.windows, args.seed, **overrides) for s in sets], ignore_index=True)
    ours["method"] = ours["method"].replace({"default": args.label})
    scores = pd.concat([ours, peers], ignore_index=True)
    if args.out is not None:
        scores.to_csv(args.out, index=False)
    pd.set_option("display.width", 200)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.windows} windows per series")
    print(summary(scores).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    served = ours[ours["method"] == args.label]
    print("\nserved per window:")
    print(served[["data_set", "unique_id", "cutoff", "status", "model", "mase"]].to_string(
        index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
