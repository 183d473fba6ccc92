"""Where per-series tasks run: this process, or a pool of worker processes.

A task is a pure function of picklable arguments defined in this package (a
function defined in a notebook cannot be sent to a worker), so swapping the
backend never changes a number. ``"local"`` uses every core through a process
pool whose workers silence cmdstanpy on start; ``"serial"`` runs in this
process, for debugging and profiling.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from tqdm import tqdm

from toolkit.forecast.stan_io import quiet_logging

__all__ = ["BACKENDS", "run_tasks"]

BACKENDS = ("local", "serial")

T = TypeVar("T")


def run_tasks(func: Callable[[Any], T], tasks: Sequence[Any], backend: str = "local",
              n_jobs: int | None = None, progress: bool = True, desc: str = "forecast") -> list[T]:
    """``[func(task) for task in tasks]`` on the chosen backend, in the order of ``tasks``.

    Parameters
    ----------
    backend : ``"local"`` (process pool) or ``"serial"``.
    n_jobs : worker processes for ``"local"``; ``None`` means one per core.
    progress : show a progress bar over the tasks.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    workers = min(n_jobs or os.cpu_count() or 1, len(tasks))
    bar = tqdm(total=len(tasks), desc=desc, unit="series", disable=not progress)
    try:
        if backend == "serial" or workers <= 1:
            results = []
            for task in tasks:
                results.append(func(task))
                bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers, initializer=quiet_logging) as pool:
            futures = [pool.submit(func, task) for task in tasks]
            for _ in as_completed(futures):
                bar.update()
            return [future.result() for future in futures]
    finally:
        bar.close()
