"""Sources to stage series at 1M and 10M event rows: DuckDB (``warehouse_flows``) against pandas.

The inputs are the sample shop (``toolkit.sample.generate``, 9,000 customers,
about 100k events) scaled out inside DuckDB: copy ``k`` of the shop has its
customer and order ids prefixed with ``k``, dates unchanged, and the events of
the copies are cut at the requested number of event rows; orders and costs
come with every copy used. The same inputs are written as CSV and as Parquet
under ``.cache/bench/<events>/`` once, and reused while they exist.

Each measurement runs in a fresh Python process, which reports the wall time
of the call alone (imports excluded) and its own peak resident memory
(``VmHWM``, DuckDB's memory included; the process after imports is listed
as the baseline). Both paths build daily series by first-touch channel:
``warehouse_flows(..., "D", "channel")`` and ``stage_flows(load_tables(...).tables,
"D", "channel")``. The pandas path runs for the sizes in ``--pandas-sizes`` only
(default: up to 1M event rows).

    .venv/bin/python benchmarks/bench_ingest.py [--sizes 1000000 10000000] [--memory-limit 1GB]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".cache" / "bench"
NOW = "2026-11-01"
FORMATS = ("csv", "parquet")
CSV_TIMES = {"orders": "%Y-%m-%d %H:%M:%S", "events": "%Y-%m-%d %H:%M:%S", "costs": "%Y-%m-%d"}


def base_shop() -> Path:
    """The sample shop as one Parquet file per table (generated once)."""
    folder = BENCH / "base"
    if not (folder / "costs.parquet").exists():
        from toolkit.sample import generate

        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in generate().items():
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def scaled_shop(events: int) -> Path:
    """CSV and Parquet inputs with ``events`` event rows (written once, deterministic)."""
    folder = BENCH / str(events)
    if (folder / "done").exists():
        return folder
    base = base_shop()
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB",
                                 "temp_directory": str(BENCH / "spill")})
    base_events = con.sql(f"SELECT count(*) FROM '{base / 'events.parquet'}'").fetchall()[0][0]
    copies = math.ceil(events / base_events)
    copy = "lpad(CAST(k AS VARCHAR), 3, '0') || '-' || "
    columns = {
        "events": f"{copy}customer_id AS customer_id, ts, event_type, channel, value",
        "orders": f"{copy}order_id AS order_id, {copy}customer_id AS customer_id, ts, amount, order_type, "
                  "sku, quantity, status",
        "costs": "ts, stage, category, channel, amount",
    }
    queries = {
        name: f"SELECT {select} FROM range({copies}) r(k), "
              f"read_parquet('{base / f'{name}.parquet'}', file_row_number=true) "
              f"ORDER BY k, file_row_number" + (f" LIMIT {events}" if name == "events" else "")
        for name, select in columns.items()
    }
    for fmt in FORMATS:
        (folder / fmt).mkdir(parents=True, exist_ok=True)
    for name, query in queries.items():
        con.sql(f"COPY ({query}) TO '{folder / 'parquet' / f'{name}.parquet'}' (FORMAT parquet)")
        text = (f"SELECT * REPLACE (strftime(ts, '{CSV_TIMES[name]}') AS ts"
                + (", printf('%.2f', amount) AS amount" if name != "events" else "")
                + f") FROM '{folder / 'parquet' / f'{name}.parquet'}'")
        con.sql(f"COPY ({text}) TO '{folder / 'csv' / f'{name}.csv'}' (FORMAT csv, HEADER true)")
    con.close()
    (folder / "done").write_text("")
    return folder


def peak_memory_mb() -> float:
    """This process's peak resident memory (Linux ``VmHWM``).

    Not ``ru_maxrss``: that one carries the parent's peak over fork and exec.
    """
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def child(path: str, folder: Path, fmt: str, memory_limit: str) -> None:
    """Run one measurement in this process and print it as JSON."""
    import pandas as pd

    from toolkit.config import config_from_dict
    from toolkit.flows import stage_flows
    from toolkit.ingest import load_tables
    from toolkit.warehouse import WarehouseLimits, warehouse_flows

    config = config_from_dict({"sources": {name: {"path": f"{name}.{fmt}"} for name in ("orders", "events", "costs")}})
    data = folder / fmt
    baseline = peak_memory_mb()
    now = pd.Timestamp(NOW)
    start = time.perf_counter()
    if path == "duckdb":
        limits = WarehouseLimits(memory_limit=memory_limit, spill_dir=ROOT / ".cache" / "warehouse")
        result = warehouse_flows(data, config, "D", "channel", now=now, limits=limits,
                                 rejects_file=BENCH / "rejects.parquet")
        series, rows = result.series, sum(c["rows_in"] for c in result.counts.values())
    else:
        ingested = load_tables(data, config, now=now)
        series = stage_flows(ingested.tables, "D", "channel")
        rows = sum(c["rows_in"] for c in ingested.counts.values())
    seconds = time.perf_counter() - start
    peak = peak_memory_mb()
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": peak, "baseline_mb": baseline,
                      "series": int(series["unique_id"].nunique()), "total": float(series["y"].sum())}))


def measure(path: str, folder: Path, fmt: str, memory_limit: str) -> dict:
    command = [sys.executable, __file__, "--child", path, str(folder), fmt, "--memory-limit", memory_limit]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                        help="event rows of each input")
    parser.add_argument("--pandas-sizes", type=int, nargs="*", default=None,
                        help="sizes to run the pandas path on (default: sizes up to 1M)")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit")
    parser.add_argument("--child", nargs=3, metavar=("PATH", "FOLDER", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, folder, fmt = args.child
        child(path, Path(folder), fmt, args.memory_limit)
        return
    pandas_sizes = args.pandas_sizes if args.pandas_sizes is not None else [s for s in args.sizes if s <= 1_000_000]

    results = {}
    for size in args.sizes:
        folder = scaled_shop(size)
        for fmt in FORMATS:
            for path in ("duckdb", "pandas"):
                if path == "pandas" and size not in pandas_sizes:
                    continue
                results[size, fmt, path] = found = measure(path, folder, fmt, args.memory_limit)
                print(f"  {size:>11,} events {fmt:<8} {path:<7} {found['seconds']:8.1f} s "
                      f"{found['peak_mb']:8.0f} MB", file=sys.stderr)

    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, duckdb {duckdb.__version__}; "
          f"DuckDB memory_limit {args.memory_limit}; load average {os.getloadavg()[0]:.2f} at the end\n")
    print("| event rows | format | path | input rows | wall | rows/s | peak RSS | baseline RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for (size, fmt, path), r in results.items():
        print(f"| {size:,} | {fmt} | {path} | {r['rows']:,} | {r['seconds']:.1f} s | "
              f"{r['rows'] / r['seconds']:,.0f} | {r['peak_mb']:,.0f} MB | {r['baseline_mb']:,.0f} MB |")
    checks = [(s, f) for s in args.sizes for f in FORMATS if (s, f, "pandas") in results]
    for size, fmt in checks:
        a, b = results[size, fmt, "duckdb"], results[size, fmt, "pandas"]
        if abs(a["total"] - b["total"]) > 1e-6 * abs(b["total"]) or a["series"] != b["series"]:
            print(f"\nWARNING: {size:,} {fmt}: the two paths disagree ({a['total']} vs {b['total']})")
    print("\n| comparison | time | peak RSS |")
    print("|---|---|---|")
    small, large = min(args.sizes), max(args.sizes)
    if small != large:
        for fmt in FORMATS:
            for path in ("duckdb", "pandas"):
                if (small, fmt, path) in results and (large, fmt, path) in results:
                    a, b = results[large, fmt, path], results[small, fmt, path]
                    print(f"| {path} {fmt}: {large:,} vs {small:,} events | {_ratio(a['seconds'], b['seconds'])} | "
                          f"{_ratio(a['peak_mb'], b['peak_mb'])} |")
    for size, fmt in checks:
        a, b = results[size, fmt, "duckdb"], results[size, fmt, "pandas"]
        print(f"| {fmt} {size:,} events: duckdb vs pandas | {_ratio(a['seconds'], b['seconds'])} | "
              f"{_ratio(a['peak_mb'], b['peak_mb'])} |")
    skipped = [s for s in args.sizes if s not in pandas_sizes]
    if skipped:
        print(f"\npandas path not run at {', '.join(f'{s:,}' for s in skipped)} event rows "
              "(--pandas-sizes to include).")


if __name__ == "__main__":
    main()
