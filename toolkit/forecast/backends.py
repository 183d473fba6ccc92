"""Where per-series tasks run: this process, a pool of worker processes, or a Dask cluster.

A task is a pure function of picklable arguments defined in this package (a
function defined in a notebook cannot be sent to a worker), so swapping the
backend never changes a number.

* ``"local"`` uses every core through a process pool whose workers silence
  cmdstanpy on start;
* ``"serial"`` runs in this process, for debugging and profiling;
* ``"dask"`` runs on a ``dask.distributed`` cluster: the scheduler at
  ``scheduler_address`` when given, else a cluster of local worker processes
  started for the run and closed after it. Each task silences cmdstanpy on
  its worker before it runs. A task that fails on the cluster (it raises,
  or its worker dies) is retried ``retries`` times; if it still fails,
  ``on_failure(task, error)`` computes its result in this process, so one
  bad series never costs the others. (Dask counts a worker's death against
  every task sent to it; the local cluster sends one task per worker at a
  time, and a remote scheduler should run with
  ``distributed.scheduler.worker-saturation: 1.0`` for the same guarantee.)
  Dask is an optional extra: ``pip install journeycast[dask]``.

On ``"local"`` and ``"serial"`` a failing task raises, so the error surfaces
where it happened.

:func:`run_tasks` returns every result, in the order of the tasks;
:func:`stream_tasks` yields each one as its task finishes and keeps none, for
callers that write results away as they come (the stored forecast).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm import tqdm

from toolkit.errors import JourneycastError
from toolkit.forecast.stan_io import quiet_logging

__all__ = ["BACKENDS", "DASK_RETRIES", "BackendError", "run_tasks", "stream_tasks"]

BACKENDS = ("local", "serial", "dask")

#: Times a failed task is retried on a Dask cluster before ``on_failure`` serves it.
DASK_RETRIES = 2

T = TypeVar("T")


class BackendError(JourneycastError):
    """The chosen backend cannot run: its library is missing or its cluster is out of reach."""


def run_tasks(func: Callable[[Any], T], tasks: Sequence[Any], backend: str = "local",
              n_jobs: int | None = None, progress: bool = True, desc: str = "forecast",
              scheduler_address: str | None = None, retries: int = DASK_RETRIES,
              on_failure: Callable[[Any, BaseException], T] | None = None) -> list[T]:
    """``[func(task) for task in tasks]`` on the chosen backend, in the order of ``tasks``.

    Parameters
    ----------
    backend : ``"local"`` (process pool), ``"serial"`` or ``"dask"``.
    n_jobs : worker processes for ``"local"``, and for the cluster ``"dask"``
        starts when no ``scheduler_address`` is given; ``None`` means one per core.
    progress : show a progress bar over the tasks.
    scheduler_address : ``"dask"`` only: the scheduler to run on, e.g.
        ``"tcp://10.0.0.5:8786"``; ``None`` starts a local cluster for the run.
    retries : ``"dask"`` only: times a failed task is tried again.
    on_failure : ``"dask"`` only: ``on_failure(task, error)`` gives the result of
        a task that still failed after its retries (run in this process); without
        it the error is raised.
    """
    results: list[Any] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc=desc, unit="series", disable=not progress) as bar:
        for position, result in stream_tasks(func, tasks, backend, n_jobs, scheduler_address,
                                             retries, on_failure):
            results[position] = result
            bar.update()
    return results


def stream_tasks(func: Callable[[Any], T], tasks: Sequence[Any], backend: str = "local",
                 n_jobs: int | None = None, scheduler_address: str | None = None,
                 retries: int = DASK_RETRIES,
                 on_failure: Callable[[Any, BaseException], T] | None = None
                 ) -> Iterator[tuple[int, T]]:
    """``(position, func(task))`` for every task, in the order the tasks finish.

    The parameters are those of :func:`run_tasks`. Nothing keeps a result once
    it is yielded, so a caller that writes each one away holds only the
    results still in flight. Closing the generator early (or an error) cancels
    the tasks not yet started.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if scheduler_address is not None and backend != "dask":
        raise ValueError(f"scheduler_address needs backend='dask', got backend={backend!r}")
    workers = min(n_jobs or os.cpu_count() or 1, len(tasks))
    if backend == "dask":
        yield from _stream_dask(func, tasks, max(workers, 1), scheduler_address, retries, on_failure)
    elif backend == "serial" or workers <= 1:
        for position, task in enumerate(tasks):
            yield position, func(task)
    else:
        yield from _stream_pool(func, tasks, workers)


def _stream_pool(func: Callable[[Any], T], tasks: Sequence[Any], workers: int
                 ) -> Iterator[tuple[int, T]]:
    """Run the tasks on a process pool; yield each result as it finishes."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=quiet_logging)
    try:
        positions = {pool.submit(func, task): k for k, task in enumerate(tasks)}
        for future in as_completed(positions):
            yield positions.pop(future), future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stream_dask(func: Callable[[Any], T], tasks: Sequence[Any], workers: int,
                 scheduler_address: str | None, retries: int,
                 on_failure: Callable[[Any, BaseException], T] | None) -> Iterator[tuple[int, T]]:
    """Submit every task to a Dask cluster; yield each result (or its fallback) as it finishes."""
    distributed = _import_distributed()
    with _dask_client(distributed, scheduler_address, workers) as client:
        positions = {client.submit(_quietly, func, task, retries=retries, pure=False): k
                     for k, task in enumerate(tasks)}
        try:
            for future in distributed.as_completed(list(positions), loop=client.loop):
                position = positions.pop(future)
                try:
                    result = future.result()
                except Exception as error:
                    if on_failure is None:
                        raise
                    result = on_failure(tasks[position], error)
                future.release()
                yield position, result
        finally:
            if positions:
                client.cancel(list(positions))


def _import_distributed() -> Any:
    """``dask.distributed``, imported on first use of the optional backend."""
    try:
        import distributed
    except ImportError:
        raise BackendError("backend='dask' needs dask.distributed, which is not installed: "
                           "pip install journeycast[dask]") from None
    return distributed


@contextmanager
def _dask_client(distributed: Any, scheduler_address: str | None, workers: int) -> Iterator[Any]:
    """A client of the given scheduler, or of a quiet local cluster closed on exit."""
    if scheduler_address is not None:
        try:
            client = distributed.Client(scheduler_address, set_as_default=False)
        except OSError as error:
            raise BackendError(f"cannot reach the Dask scheduler at {scheduler_address}: {error}") from None
        with client:
            yield client
        return
    import dask

    # One task at a time per worker (the rest wait on the scheduler): when a
    # worker dies, only the task it was running counts the death, so only a
    # task that kills its workers ends as failed.
    with warnings.catch_warnings(), dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        # With the dashboard off the scheduler still serves health checks over
        # HTTP on port 8787, or on a free port (with a warning) when it is taken.
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.CRITICAL)
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def _quietly(func: Callable[[Any], T], task: Any) -> T:
    """``func(task)`` with cmdstanpy and Prophet silenced, as the pool's initializer does.

    Runs on the Dask worker; silencing per task (three logger look-ups) also
    covers workers of a cluster this process did not start.
    """
    quiet_logging()
    return func(task)
