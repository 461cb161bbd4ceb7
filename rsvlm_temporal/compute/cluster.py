"""Where dask runs the work: the threaded scheduler, a LocalCluster, or an existing cluster.

``with dask_client(workers=2) as client:`` starts a ``distributed.LocalCluster`` with two worker
processes; ``dask_client(scheduler="tcp://HOST:PORT")`` connects to a running scheduler (a
``dask scheduler`` process, dask-gateway, the Kubernetes dask operator, Coiled...);
``dask_client(client=c)`` uses a ``distributed.Client`` the caller made; with none of them it
yields ``None`` and dask uses its default (the threaded scheduler). Inside the block,
``.compute()`` runs on the yielded client. What the context manager created, it closes.

Workers must have the same versions of rsvlm-temporal, rasterio/GDAL, stackstac, numpy and
dask/distributed as the client, and must be able to read the asset hrefs (local paths only
work on a LocalCluster or a shared file system).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import socket
from typing import Any, Iterator
from urllib.parse import urlparse

import dask

from rsvlm_temporal.errors import ClusterError, LimitError, ParameterError

#: seconds to wait for an existing scheduler to answer
CONNECT_TIMEOUT = 10.0
#: GDAL block cache of each LocalCluster worker process (MiB), unless GDAL_CACHEMAX is set: GDAL's
#: default (5% of the machine's memory per process) would keep decoded tiles of the whole AOI
WORKER_GDAL_CACHE_MB = 64
#: glibc malloc settings each LocalCluster worker process starts with (unless the variable is set
#: in dask's ``distributed.nanny.pre-spawn-environ`` already). dask's own ``MALLOC_TRIM_THRESHOLD_``
#: there also switches off glibc's dynamic mmap threshold, so every numpy temporary over 128 KiB
#: becomes a fresh mmap, page-faulted and zeroed on first touch: the series kernel and the
#: magnitude statistics ran 2.5x slower on a worker than on a thread. A fixed threshold at glibc's
#: dynamic maximum (32 MiB on 64-bit) gives the worker the speed of the threaded scheduler; freed
#: memory still goes back to the OS (the trim threshold and :func:`release_memory`).
WORKER_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024)}


def _load_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # no C library by that name: not glibc
        return None
    return getattr(libc, "malloc_trim", None)


_MALLOC_TRIM = _load_trim()


def release_memory() -> None:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``; no-op elsewhere).

    Freed numpy and GDAL buffers otherwise stay in the process (glibc keeps them in per-thread
    arenas), so its resident memory keeps the high-water mark of every pass and grows with the
    number of blocks processed although the memory in use does not. Costs about a microsecond.
    (dask.distributed workers do the same with ``MALLOC_TRIM_THRESHOLD_``.)"""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)



#: memory one LocalCluster worker process needs at least (bytes): bounds --workers
WORKER_MIN_MEMORY = 1 * 2**30
#: worker processes per CPU core at most
WORKERS_PER_CORE = 2
#: the scheduler address schemes dask.distributed connects to
SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def available_memory() -> int:
    """Memory the OS can give this process now (bytes; Linux MemAvailable), 0 when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def max_workers() -> int:
    """The most LocalCluster worker processes this machine takes: :data:`WORKERS_PER_CORE` per
    core, and :data:`WORKER_MIN_MEMORY` of available memory each; at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    by_memory = available_memory() // WORKER_MIN_MEMORY or cores
    return max(1, min(WORKERS_PER_CORE * cores, int(by_memory)))


def check_workers(workers: Any) -> int:
    """``workers`` as an int in 1..:func:`max_workers`; ParameterError / LimitError otherwise."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be an integer >= 1 (worker processes), got {workers!r}")
    bound = max_workers()
    if workers > bound:
        raise LimitError(
            f"{workers} worker processes are more than this machine takes ({bound}: "
            f"{WORKERS_PER_CORE} per CPU core and {WORKER_MIN_MEMORY // 2**30} GiB of available memory "
            f"each); pass --workers 1..{bound}, or --scheduler for a larger cluster")
    return workers


def check_address(address: Any) -> str:
    """A dask scheduler address (tcp://HOST:PORT), checked without connecting."""
    if not isinstance(address, str) or not address.strip():
        raise ClusterError(f"scheduler address must be a non-empty string like tcp://HOST:PORT, got {address!r}")
    address = address.strip()
    scheme = address.split("://", 1)[0].lower() if "://" in address else "tcp"
    if scheme not in SCHEDULER_SCHEMES:
        hint = (" (that is a web address: the dashboard's, not the scheduler's; the scheduler "
                "listens on tcp://HOST:8786 by default)" if scheme in ("http", "https") else "")
        raise ClusterError(f"invalid scheduler address {address!r}{hint}; expected tcp://HOST:PORT, "
                           "e.g. tcp://10.0.0.5:8786")
    return address


def _probe(address: str, timeout: float) -> None:
    """Fail fast, with a clear message, where nothing listens on a tcp/tls address."""
    check_address(address)
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls"):
        return  # inproc, ws, ucx...: left to distributed
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError as exc:
        raise ClusterError(f"invalid scheduler address {address!r}: {exc}; expected tcp://HOST:PORT") from None
    if not host or not port:
        raise ClusterError(f"invalid scheduler address {address!r}; expected tcp://HOST:PORT, "
                           "e.g. tcp://10.0.0.5:8786")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the dask scheduler at {address} within {timeout:g} s ({exc}); start one "
            "(`dask scheduler`, dask-gateway, a Kubernetes DaskCluster, Coiled) or fix the address"
        ) from None


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A ``distributed.Client`` connected to the scheduler at ``address`` (tcp://HOST:PORT).

    Raises :class:`ClusterError` when nothing answers within ``timeout`` seconds or the address
    is not a dask scheduler.
    """
    from distributed import Client

    if not isinstance(address, str) or not address.strip():
        raise ClusterError(f"scheduler address must be a non-empty string like tcp://HOST:PORT, got {address!r}")
    address = address.strip()
    _probe(address, timeout)
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the dask scheduler at {address} within {timeout:g} s: {exc}") from None
    except ValueError as exc:  # unknown scheme
        raise ClusterError(f"invalid scheduler address {address!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. garbage from a service that is not dask
        raise ClusterError(
            f"connecting to {address} failed ({type(exc).__name__}: {exc}); is a dask scheduler "
            "listening there, with the same distributed version?"
        ) from None


def local_cluster(workers: int, threads_per_worker: int = 1, memory_limit: str | float | int = "auto",
                  **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes (no dashboard unless asked; GDAL
    block cache :data:`WORKER_GDAL_CACHE_MB` per worker unless ``GDAL_CACHEMAX`` is set; glibc
    malloc settings :data:`WORKER_MALLOC_ENV` unless set in the environment or dask's config)."""
    from distributed import LocalCluster

    check_workers(workers)
    if threads_per_worker < 1:
        raise ValueError(f"threads_per_worker must be >= 1, got {threads_per_worker!r}")
    kwargs.setdefault("dashboard_address", None)
    kwargs.setdefault("silence_logs", logging.WARNING)
    env = dict(kwargs.pop("env", None) or {})
    if "GDAL_CACHEMAX" not in os.environ:
        env.setdefault("GDAL_CACHEMAX", str(WORKER_GDAL_CACHE_MB))
    kwargs["env"] = env
    # malloc reads its settings when the process starts: they must be in the pre-spawn environment
    pre_spawn = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    for key, value in WORKER_MALLOC_ENV.items():
        if key not in os.environ:
            pre_spawn.setdefault(key, value)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
            return LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                                memory_limit=memory_limit, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise ClusterError(f"could not start a LocalCluster with {workers} worker processes: {exc}") from exc


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, client: Any = None,
                threads_per_worker: int = 1, memory_limit: str | float | int = "auto",
                timeout: float = CONNECT_TIMEOUT) -> Iterator[Any]:
    """Context manager yielding a ``distributed.Client`` (or ``None``: dask's default scheduler).

    - ``workers=N``: a LocalCluster with N worker processes, ``threads_per_worker`` threads each
      and ``memory_limit`` per worker ("auto": total memory / N); closed on exit.
    - ``scheduler="tcp://HOST:PORT"``: connect to a running scheduler (:class:`ClusterError`
      if it does not answer within ``timeout`` s); the connection is closed on exit, the
      cluster is left running.
    - ``client=``: use this ``distributed.Client``; left open on exit.
    - none of them: yields ``None``; computations use dask's default (threaded) scheduler.

    Inside the block, ``dask.compute`` / ``.compute()`` run on the yielded client.
    """
    given = [name for name, v in (("workers", workers), ("scheduler", scheduler), ("client", client))
             if v is not None]
    if len(given) > 1:
        raise ParameterError(f"give at most one of workers, scheduler, client; got {given}")
    if client is not None:
        with client.as_current(), dask.config.set(scheduler=client):
            yield client
        return
    if scheduler is not None:
        created = connect(scheduler, timeout)
        try:
            with created.as_current(), dask.config.set(scheduler=created):
                yield created
        finally:
            created.close()
        return
    if workers is not None:
        from distributed import Client

        cluster = local_cluster(workers, threads_per_worker, memory_limit)
        try:
            created = Client(cluster, set_as_default=False)
            try:
                with created.as_current(), dask.config.set(scheduler=created):
                    yield created
            finally:
                created.close()
        finally:
            cluster.close()
        return
    yield None
