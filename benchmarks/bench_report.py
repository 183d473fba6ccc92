"""Wall time of the README's main job: the full report on data/sample, as `make report` runs it.

Each variant runs ``journeycast report data/sample`` in a fresh process, into a
temporary reports folder, with its own result store (``JOURNEYCAST_STORE``):

* ``new data``: an empty store, so the forecast and the opportunity scores are
  computed (what a scheduled run on fresh data does);
* ``same data again``: the store the previous run filled (a re-run of the same
  data, e.g. after a failed notebook).

It prints the wall time, the CPU time of the run and everything it started
(kernels, pool workers, CmdStan), and each notebook's duration, for one
notebook at a time (``--jobs 1``) and two side by side (the default on two
cores). PyTensor's compile cache is assumed warm (``make install`` fills it).

Where the time goes, summed over the pages (from papermill's timings in the
executed notebooks): ``kernel`` is a page's time outside its cells (kernel
start, papermill), ``setup`` its first code cell (imports of the notebook
helpers), ``data`` its first cell after the parameters (imports of the
pipeline, loading the data, the forecast and scores from the store or fitted),
``rest`` its other cells (tables, charts, explorers); ``render`` is the time
from the last page's end to the run's end (HTML pages, index, publishing),
``start`` the command's own time before the first page (imports, checks).

    .venv/bin/python benchmarks/bench_report.py [--jobs 1 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seconds(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def breakdown(run_dir: Path, summary: dict, started: float, wall: float) -> dict[str, float]:
    """Seconds summed over the pages: kernel, setup, data and rest; render and start of the run."""
    parts = dict.fromkeys(("kernel", "setup", "data", "rest"), 0.0)
    ends, starts = [], []
    for page in summary["notebooks"]:
        nb = json.loads((run_dir / page["notebook"]).read_text(encoding="utf-8"))
        run = nb["metadata"]["papermill"]
        starts.append(_seconds(run["start_time"]))
        ends.append(_seconds(run["end_time"]))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        timed = [c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in code]
        tags = [c["metadata"].get("tags", []) for c in code]
        after = max((k for k, t in enumerate(tags) if {"parameters", "injected-parameters"} & set(t)), default=0) + 1
        parts["setup"] += timed[0] if code else 0.0
        parts["data"] += timed[after] if after < len(code) else 0.0
        parts["rest"] += sum(timed) - (timed[0] if code else 0.0) - (timed[after] if after < len(code) else 0.0)
        parts["kernel"] += page["duration_s"] - sum(timed)
    parts["render"] = max(0.0, started + wall - max(ends)) if ends else 0.0
    parts["start"] = max(0.0, min(starts) - started) if starts else 0.0
    return parts


def run_once(jobs: int, store: Path, out: Path) -> dict:
    """One report run in a fresh process; wall and CPU seconds and the run's summary."""
    env = {**os.environ, "JOURNEYCAST_STORE": str(store)}
    command = [str(Path(sys.executable).with_name("journeycast")), "report", "data/sample",
               "--out", str(out), "--jobs", str(jobs)]
    cpu, started, epoch = _children_cpu(), time.perf_counter(), time.time()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"report failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    run_dir = Path(done.stdout.strip().splitlines()[-1]).parent
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return {"wall": wall, "cpu": cpu, "notebooks": {nb["name"]: nb["duration_s"] for nb in summary["notebooks"]},
            "parts": breakdown(run_dir, summary, epoch, wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="notebooks at once, per variant")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant; the fastest counts")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start")
    rows = []
    for jobs in args.jobs:
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
                for data in ("new data", "same data again"):  # the second run finds the first one's store
                    result = run_once(jobs, Path(tmp) / "store", Path(tmp) / "reports")
                    if data not in best or result["wall"] < best[data]["wall"]:
                        best[data] = result
        rows += [(jobs, data, result) for data, result in best.items()]

    names = list(rows[0][2]["notebooks"])
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end\n")
    print("| jobs | store | wall | CPU | " + " | ".join(names) + " |")
    print("|---" * (4 + len(names)) + "|")
    for jobs, data, result in rows:
        per_notebook = " | ".join(f"{result['notebooks'][n]:.1f} s" for n in names)
        print(f"| {jobs} | {data} | {result['wall']:.1f} s | {result['cpu']:.1f} s | {per_notebook} |")
    parts = list(rows[0][2]["parts"])
    print("\n| jobs | store | " + " | ".join(parts) + " |")
    print("|---" * (2 + len(parts)) + "|")
    for jobs, data, result in rows:
        print(f"| {jobs} | {data} | " + " | ".join(f"{result['parts'][p]:.1f} s" for p in parts) + " |")
    serial = {data: r["wall"] for jobs, data, r in rows if jobs == 1}
    for jobs, data, result in rows:
        if jobs != 1 and data in serial:
            print(f"\n{jobs} at once vs one at a time ({data}): {serial[data] / result['wall']:.2f}x")


if __name__ == "__main__":
    main()
