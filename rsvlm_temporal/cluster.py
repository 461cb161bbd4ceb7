"""dask.distributed plumbing: the same analysis on the threaded scheduler, a LocalCluster, or an
existing cluster given by address or by Client."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .errors import RsvlmError


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, client: Any = None,
                threads_per_worker: int = 1, timeout: float = 10.0) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (given, joined at ``scheduler`` "tcp://host:port", or a new
    LocalCluster of ``workers`` processes) or None for dask's threaded scheduler; closes what it
    created. Raises :class:`RsvlmError` when the scheduler cannot be reached within ``timeout`` s."""
    if client is not None:
        with client.as_current():
            yield client
        return
    if not workers and not scheduler:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            c = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise RsvlmError(
                f"could not reach the dask scheduler at {scheduler} within {timeout:g} s: {exc}; "
                "check the address and that the scheduler is running"
            ) from exc
        try:
            yield c
        finally:
            c.close()
        return
    with LocalCluster(n_workers=int(workers), threads_per_worker=threads_per_worker,
                      processes=True, dashboard_address=None) as cluster, Client(cluster) as c:
        yield c
