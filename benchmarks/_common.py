"""Shared benchmark plumbing: machine info, git commit, result tables, timing and peak RSS.

Every benchmark prints one markdown table and appends it (with the machine, the date, the git
commit and the parameters) to ``benchmarks/RESULTS.md`` through :func:`report`.
:func:`peak_rss` runs a function in a fresh process (multiprocessing ``spawn``) and reports the
peak resident memory of that process (all its threads) and, polled, of its child processes
(dask worker processes of a LocalCluster).
"""

from __future__ import annotations

import datetime as dt
import gc
import importlib.metadata
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:  # `python benchmarks/NAME.py` puts only benchmarks/ on the path
    sys.path.insert(0, str(REPO))

DATA_DIR = BENCH_DIR / "_data"
RESULTS = BENCH_DIR / "RESULTS.md"

_VERSIONED = ("rsvlm-temporal", "numpy", "dask", "distributed", "xarray", "rasterio",
              "stackstac", "odc-stac", "pyproj")


# --- machine, commit --------------------------------------------------------------------------

def cores() -> int:
    """CPU cores this process may use (affinity), which is what thread pools should use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Installed versions of the libraries the benchmarks exercise (GDAL included)."""
    out: dict[str, str] = {}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import rasterio

        out["GDAL"] = rasterio.__gdal_version__
    except ImportError:
        pass
    return out


def machine() -> dict[str, Any]:
    """Cores, total memory (GiB), CPU model, OS, Python and library versions."""
    return {
        "cores": cores(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "versions": versions(),
    }


def git_commit() -> str:
    """``git rev-parse --short HEAD``, plus ``+dirty`` when tracked files differ from HEAD."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


# --- tables and RESULTS.md ------------------------------------------------------------------

def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats with ``digits`` significant figures, the rest as str."""
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda vals: "| " + " | ".join(str(v).ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def report(name: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
           params: dict[str, Any] | None = None, notes: Sequence[str] = (),
           results: Path | None = None, append: bool = True) -> str:
    """Print a markdown table and append it, with machine/date/commit/params, to RESULTS.md.

    The file is rewritten atomically (old text + new section), so an interrupted run never
    leaves it half-written. Returns the section text.
    """
    from rsvlm_temporal.atomic import write_text_atomic

    m = machine()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    vers = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    head = [
        f"## {name} ({when}, commit {git_commit()})",
        "",
        f"- machine: {m['cores']} cores ({m['logical_cpus']} logical), {m['memory_gib']} GiB, "
        f"{m['cpu']}; {m['os']}; Python {m['python']}; load average at start {m['load_avg_1m']}",
        f"- versions: {vers}",
    ]
    if params:
        head.append("- parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    table = markdown_table(headers, rows)
    section = "\n".join(head + ["", table, ""] + [f"- {n}" for n in notes] + ([""] if notes else []))
    print()
    print(section)
    if append:
        path = results or RESULTS
        old = path.read_text(encoding="utf-8") if path.exists() else (
            "# Benchmark results\n\nAppended by `python benchmarks/NAME.py` (see README.md). "
            "Compare numbers only between runs on the same machine.\n")
        write_text_atomic(path, old.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")
        print(f"(appended to {path})")
    return section


# --- timing -----------------------------------------------------------------------------------

def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any, list[float]]:
    """Run ``fn`` ``repeat`` times; (best seconds, last result, all seconds)."""
    times: list[float] = []
    result = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result, times


def warm_page_cache(paths: Sequence[Path | str], chunk: int = 1 << 22) -> int:
    """Read every file once so all readers start from the OS page cache; returns bytes read."""
    total = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while True:
                b = f.read(chunk)
                if not b:
                    break
                total += len(b)
    return total


def threaded_dask(workers: int | None = None):
    """``dask.config.set`` for the threaded scheduler with ``workers`` threads (default: cores)."""
    import dask

    return dask.config.set(scheduler="threads", num_workers=workers or cores())


# --- peak RSS in a fresh process --------------------------------------------------------------

@dataclass
class PeakRSS:
    """What :func:`peak_rss` measured, in bytes."""

    result: Any
    #: ru_maxrss of the child process (every thread; not its own child processes)
    maxrss: int
    #: RSS of the child just before ``fn`` ran (interpreter + ``preload`` imports): the baseline
    baseline: int
    #: highest polled sum of RSS over the child and all its descendants (worker processes)
    polled_tree_peak: int
    seconds: float

    @property
    def increase(self) -> int:
        """Peak minus baseline: the memory ``fn`` itself needed (bytes)."""
        return self.maxrss - self.baseline


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict,
           preload: Sequence[str] = ()) -> None:
    try:
        import importlib

        for name in preload:
            importlib.import_module(name)
        gc.collect()
        baseline = psutil.Process().memory_info().rss
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - t0
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        maxrss *= 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
        conn.send(("ok", result, maxrss, baseline, seconds))
    except BaseException:  # noqa: BLE001 - reported to the parent
        conn.send(("error", traceback.format_exc(), 0, 0, 0.0))
    finally:
        conn.close()


def peak_rss(fn: Callable[..., Any], *args: Any, poll_interval: float = 0.05,
             timeout: float | None = None, preload: Sequence[str] = (), **kwargs: Any) -> PeakRSS:
    """Run ``fn(*args, **kwargs)`` in a fresh ``spawn`` process and measure its peak memory.

    ``fn`` must be importable (defined at module level) and its result picklable. The child's
    ``ru_maxrss`` covers all its threads (dask's threaded scheduler); ``polled_tree_peak`` adds
    its descendant processes (LocalCluster workers), polled every ``poll_interval`` seconds.
    ``preload``: modules the child imports before its baseline RSS is taken, so that
    ``increase`` counts what ``fn`` allocates rather than imports. An exception in the child is
    raised here as ``RuntimeError`` with its traceback.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs, tuple(preload)), daemon=False)
    proc.start()
    child.close()
    peak = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, total)
            stop.wait(poll_interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} did not finish within {timeout} s")
        status, result, maxrss, baseline, seconds = parent.recv()
    except EOFError:
        proc.join()
        code = proc.exitcode
        why = "killed by a signal, e.g. for memory" if code is not None and code < 0 else \
            "its start-up failed (see above: spawn re-imports the main script, which must be a file)"
        raise RuntimeError(f"the measured process ended (exit code {code}) without a result: {why}") from None
    finally:
        stop.set()
        poller.join()
        if proc.is_alive():
            proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
            proc.join()
    if status != "ok":
        raise RuntimeError(f"the measured function failed in its subprocess:\n{result}")
    return PeakRSS(result=result, maxrss=maxrss, baseline=baseline,
                   polled_tree_peak=max(peak, maxrss), seconds=seconds)


def mib(nbytes: float) -> float:
    return nbytes / 2**20
