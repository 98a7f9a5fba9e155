"""The Dask client of a sweep: a LocalCluster on this machine, or an existing scheduler.

LocalCluster (default): one worker *process* per usable core (``os.sched_getaffinity``), one
thread each, with numba, OpenMP and BLAS limited to one thread (environment of the worker
processes), so that N workers use N cores. ``--workers`` picks another count.

``--scheduler ADDRESS`` (e.g. ``tcp://10.0.0.5:8786``): connect to a running cluster. Its
workers need spykehw installed and the sweep folder at the same path (a shared file system),
since stages exchange their arrays through the folder. Numba there uses as many threads as the
worker has task slots (:func:`spykehw.quant.stages.limit_threads`): start workers with
``--nthreads 1`` for one point per core.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

from ..golden.errors import SpykehwError

__all__ = ["ClusterError", "usable_cpus", "worker_env", "dask_client"]


class ClusterError(SpykehwError, RuntimeError):
    """The scheduler cannot be reached, or the cluster cannot be started."""


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_env(threads: int = 1) -> dict[str, str]:
    """Environment of LocalCluster worker processes: every thread pool at ``threads``."""
    t = str(threads)
    return {"NUMBA_NUM_THREADS": t, "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t,
            "OPENBLAS_NUM_THREADS": t}


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, *,
                host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator:
    """A ``distributed.Client``; the LocalCluster (if one was started) is closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"--scheduler {scheduler}: cannot connect ({e})") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or usable_cpus()
    if n < 1:
        raise ClusterError(f"--workers: expected an integer >= 1, found {n}")
    # Saturation 1.0: a worker is handed the next Conv1 stage only when it is idle, so a ready
    # classifier or point (higher priority) is not stuck behind prefetched Conv1 stages.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host=host,
                               dashboard_address=":0", silence_logs=logging.ERROR, env=worker_env(1))
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
