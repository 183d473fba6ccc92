"""Sources to stage series at 1M and 10M event rows: DuckDB (``flows_in_duckdb``) against pandas.

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
``flows_in_duckdb(..., "D", "channel")`` and ``stage_flows(load_tables(...).tables,
"D", "channel")``. The pandas path runs for the sizes in ``--pandas-sizes`` only
(default: up to 1M event rows).

    .venv/bin/python benchmarks/bench_ingest.py [--sizes 1000000 10000000] [--memory-limit 1GB]

``--order-lines N`` instead times ``journeycast validate`` (both engines) on an
order-line export of N lines as wholesale shops write it: three lines an
order, day-first dates, quantity and unit price but no amount, one order in
seven a guest's, one line in fifty a 'C' cancellation with a negative quantity.
Each run is a fresh process that has imported ``toolkit.cli`` only, so the
imports validate itself makes count; the engines take turns, ``--repeat``
times each, and the table gives the median and the fastest wall time and the
median CPU time (user + system, every thread), which other work on a shared
machine disturbs less than the wall time.

    .venv/bin/python benchmarks/bench_ingest.py --order-lines 1000000 [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
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


ORDER_LINES_CONFIG = """date_format: "%d/%m/%Y %H:%M"
sources:
  orders:
    path: orders.csv
    cancellation_prefix: C
    columns: {InvoiceNo: order_id, StockCode: sku, Quantity: quantity, InvoiceDate: ts, UnitPrice: unit_price,
              CustomerID: customer_id}
"""


def order_lines_shop(lines: int) -> Path:
    """A wholesale order-line export of ``lines`` lines and its journeycast.yml (written once)."""
    folder = BENCH / f"lines-{lines}"
    if (folder / "journeycast.yml").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    order = "(i // 3)"
    duckdb.sql(f"""
        COPY (SELECT CASE WHEN i % 50 = 0 THEN 'C' ELSE '' END || CAST(500000 + {order} AS VARCHAR) AS InvoiceNo,
                     'SKU' || (i % 500) AS StockCode,
                     CASE WHEN i % 50 = 0 THEN -1 ELSE 1 + i % 5 END AS Quantity,
                     strftime(TIMESTAMP '2025-01-01' + to_seconds({order} * 30), '%d/%m/%Y %H:%M') AS InvoiceDate,
                     printf('%.2f', 1 + (i % 97) / 4) AS UnitPrice,
                     CASE WHEN {order} % 7 = 0 THEN '' ELSE CAST(10000 + {order} % 20000 AS VARCHAR) END AS CustomerID
              FROM range({lines}) t(i))
        TO '{folder / "orders.csv"}' (FORMAT csv, HEADER true)""")
    (folder / "journeycast.yml").write_text(ORDER_LINES_CONFIG)
    return folder


def validate_child(folder: Path, engine: str) -> None:
    """Time ``journeycast validate`` on one folder in this process (imports excluded); print JSON."""
    import contextlib
    import io

    from toolkit.cli import main as journeycast

    baseline = peak_memory_mb()
    out = io.StringIO()
    start, cpu = time.perf_counter(), cpu_seconds()
    with contextlib.redirect_stdout(out):
        code = journeycast(["validate", str(folder), "--engine", engine,
                            "--rejects", str(BENCH / f"rejects-{engine}.csv")])
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "code": code, "peak_mb": peak_memory_mb(),
                      "baseline_mb": baseline, "summary": out.getvalue().splitlines()[0]}))


def order_lines_benchmark(lines: int, repeat: int) -> None:
    folder = order_lines_shop(lines)
    print(f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, duckdb {duckdb.__version__}; "
          f"load average {os.getloadavg()[0]:.2f} at the start\n")
    runs = {"pandas": [], "duckdb": []}
    for _ in range(repeat):
        for engine, found in runs.items():
            done = subprocess.run([sys.executable, __file__, "--validate-child", str(folder), engine],
                                  check=True, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            found.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"| order lines | engine | wall, median of {repeat} | fastest | CPU (user+sys), median | peak RSS | exit |")
    print("|---|---|---|---|---|---|---|")
    for engine, found in runs.items():
        walls = [f["seconds"] for f in found]
        print(f"| {lines:,} | {engine} | {statistics.median(walls):.1f} s | {min(walls):.1f} s | "
              f"{statistics.median(f['cpu_seconds'] for f in found):.1f} s | "
              f"{max(f['peak_mb'] for f in found):,.0f} MB | {', '.join(sorted({str(f['code']) for f in found}))} |")
        print(f"  {found[-1]['summary']}", file=sys.stderr)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, every thread (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    from toolkit.flows import flows_in_duckdb, stage_flows
    from toolkit.ingest import load_tables
    from toolkit.warehouse import WarehouseLimits

    config = config_from_dict({"sources": {name: {"path": f"{name}.{fmt}"} for name in ("orders", "events", "costs")}})
    data = folder / fmt
    baseline = peak_memory_mb()
    now = pd.Timestamp(NOW)
    start = time.perf_counter()
    if path == "duckdb":
        limits = WarehouseLimits(memory_limit=memory_limit, spill_dir=ROOT / ".cache" / "warehouse")
        result = flows_in_duckdb(data, config, "D", "channel", now=now, limits=limits,
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
    parser.add_argument("--order-lines", type=int, default=None, metavar="N",
                        help="time journeycast validate on an order-line export of N lines instead")
    parser.add_argument("--repeat", type=int, default=3, help="with --order-lines: runs of each engine")
    parser.add_argument("--child", nargs=3, metavar=("PATH", "FOLDER", "FORMAT"), help=argparse.SUPPRESS)
    parser.add_argument("--validate-child", nargs=2, metavar=("FOLDER", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.validate_child:
        validate_child(Path(args.validate_child[0]), args.validate_child[1])
        return
    if args.order_lines:
        order_lines_benchmark(args.order_lines, args.repeat)
        return
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
