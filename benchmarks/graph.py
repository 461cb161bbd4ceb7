"""Graph construction: time to build the lazy cube (no pixel read) for 100, 1,000, 5,000 items.

``python benchmarks/graph.py`` clones one generated Sentinel-2 L2A item (6 bands + SCL; all
hrefs point at the same small local COGs, so they exist) into N items with distinct dates
(one every 2 days; ``--same-day`` adds a second acquisition on each day, which exercises the
same-day mosaic) and times ``load_cube(items)`` and, separately, the dask graph it holds
(tasks, layers, and the time to materialise them). Reading a pixel while building would be a bug: ``rasterio.open`` and the
reader are patched to fail during the build. Linearity: per-item time at the largest N over
per-item time at 1,000 items (<= 1.5 passes; a quadratic step would give ~5x).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

# run as a script, benchmarks/ would come first on sys.path and this file would shadow the
# library of the same name (benchmarks/distributed.py vs dask.distributed): use the repo root
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA_DIR, report  # noqa: E402
from benchmarks.make_inputs import generate  # noqa: E402


def clone_items(n: int, same_day: bool = False) -> list[dict[str, Any]]:
    """N S2 L2A item dicts: one generated item with new ids and datetimes."""
    base = generate(1, 6, 256, quiet=True).items[0]
    start = dt.datetime(2017, 1, 1, 10, 0, tzinfo=dt.timezone.utc)
    out = []
    for i in range(n):
        it = copy.deepcopy(base)
        day, k = (i // 2, i % 2) if same_day else (2 * i, 0)
        when = start + dt.timedelta(days=day, minutes=3 * k)
        it["id"] = f"S2A_33TVN_{when:%Y%m%dT%H%M}_{i}_L2A"
        it["properties"]["datetime"] = when.isoformat().replace("+00:00", "Z")
        out.append(it)
    return out


class PixelReadError(AssertionError):
    pass


@contextmanager
def no_pixel_reads() -> Iterator[None]:
    """Fail loudly if anything opens a raster or reads a window while the graph is built."""
    import rasterio

    import rsvlm_temporal.io.reader as reader

    def boom(*a: Any, **k: Any) -> Any:
        raise PixelReadError("a raster was opened/read while building the lazy cube")

    saved = (rasterio.open, reader.DNReader.read, reader.DNReader._open)
    rasterio.open = boom  # type: ignore[assignment]
    reader.DNReader.read = boom  # type: ignore[method-assign]
    reader.DNReader._open = boom  # type: ignore[method-assign]
    try:
        yield
    finally:
        rasterio.open, reader.DNReader.read, reader.DNReader._open = saved  # type: ignore[method-assign]


def build(items: list[dict[str, Any]]) -> tuple[float, float, Any]:
    """(wall s, CPU s, cube) of one ``load_cube(items)`` with pixel reads forbidden."""
    from rsvlm_temporal.io.cube import load_cube

    with no_pixel_reads():
        t0, c0 = time.perf_counter(), time.process_time()
        cube = load_cube(items)
        return time.perf_counter() - t0, time.process_time() - c0, cube


def graph_stats(cube: Any) -> tuple[int, int, float]:
    """(tasks, layers, seconds to materialise every task) of the cube's dask graph: the work
    a ``.compute()`` does before the first read."""
    graph = cube.data.__dask_graph__()
    t0 = time.perf_counter()
    n = len(dict(graph))
    return n, len(getattr(graph, "layers", {})), time.perf_counter() - t0


def profile(n: int, same_day: bool) -> None:
    from pyinstrument import Profiler

    items = clone_items(n, same_day)
    build(clone_items(10, same_day))  # imports
    prof = Profiler(interval=0.001)
    prof.start()
    build(items)
    prof.stop()
    text = prof.output_text(unicode=False, color=False)
    out = DATA_DIR / f"profile-graph-{n}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text[:8000])
    print(f"(profile written to {out})")


def run(sizes: list[int], same_day: bool = False, repeat: int = 3, append: bool = True) -> list[list[Any]]:
    build(clone_items(10, same_day))  # warm: imports, sensor tables
    rows = []
    per_item: dict[int, float] = {}
    for n in sizes:
        items = clone_items(n, same_day)
        runs = [build(items) for _ in range(repeat)]
        best, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        cube = runs[-1][2]
        tasks, layers, tgraph = graph_stats(cube)
        per_item[n] = cpu / n
        rows.append([n, cube.sizes["time"], best, cpu, 1e3 * cpu / n, tasks, layers, tgraph])
        print(f"{n} items: {best:.3f} s wall, {cpu:.3f} s CPU ({1e3 * cpu / n:.2f} ms/item), "
              f"{tasks} tasks", flush=True)
    ref = 1000 if 1000 in per_item else sizes[0]  # per-item CPU time: steadier than wall
    for row in rows:
        row.append(per_item[row[0]] / per_item[ref])
    worst = max(per_item[n] / per_item[ref] for n in sizes if n >= ref)
    verdict = "linear (per-item time does not grow)" if worst <= 1.5 else \
        f"SUPERLINEAR: per-item time grows {worst:.1f}x from {ref} items; profile with --profile"
    notes = [f"no raster was opened during any build; {verdict}",
             "materialise s: turning the cube's graph into its tasks, which .compute() does "
             "before the first read (not part of the build)"]
    report("graph construction" + (" (same-day pairs, mosaicked)" if same_day else ""),
           ["items", "dates", "build s (wall)", "build CPU s", "CPU ms per item", "tasks",
            "layers", "materialise s", f"per-item vs {ref}"], rows,
           params={"repeat": repeat, "bands": "6 + SCL", "same_day": same_day},
           notes=notes, append=append)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,5000", help="comma-separated item counts")
    ap.add_argument("--same-day", action="store_true", help="two acquisitions per day (mosaic path)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", type=int, default=None, metavar="N",
                    help="profile building N items with pyinstrument instead of timing")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args(argv)
    if a.profile:
        profile(a.profile, a.same_day)
        return
    run([int(s) for s in a.sizes.split(",")], a.same_day, a.repeat, not a.no_append)


if __name__ == "__main__":
    main()
