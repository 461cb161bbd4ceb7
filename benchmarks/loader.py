"""Loader throughput: our ``load_cube`` against bare rasterio (the limit), stackstac and odc-stac.

``python benchmarks/loader.py`` (defaults: 24 dates x 6 bands x 1024 x 1024 px) reads the same
local COGs (``make_inputs.py``; generated on first use) to float32 and reduces them with a sum
(``skipna=False``: the same reduction everywhere, nothing kept in memory):

- (a) rasterio: windowed reads of each file's 512 x 512 tiles on a thread pool with as many
  threads as cores (one dataset handle per thread and file), ``out_dtype=float32``, summed.
  The I/O + decode limit.
- (b) stackstac: ``stackstac.stack(items, assets=bands, epsg, resolution, bounds,
  dtype="float32", fill_value=np.float32(nan), rescale=False)``, otherwise its defaults
  (chunksize 1024, masked-array reader).
- (c) odc-stac: ``odc.stac.load(items, bands, geobox, chunks={x, y: --peer-chunk},
  dtype="float32")``.
- (d) ``load_cube(items, bands)``: reflectance with the SCL quality band read, decoded into the
  ``mask`` coordinate and applied (what users get; reads one more, uint8, file per date);
  (d') the same items without the SCL asset (no quality band; band reads only, like (a)-(c)).

``--offset N`` reads an AOI without the files' first N rows and columns instead of the whole
files, as real AOIs (crops of a tile, not aligned to its 512 px tiles) are read; every reader
then reads that AOI ((a): the tile windows clipped to it).

(b)-(d) run on dask's threaded scheduler with ``num_workers = cores``. The OS page cache is
warmed first; each reader runs ``--repeat`` times and the best wall time counts. Mpx/s =
megapixels of band data (dates x bands x height x width; the SCL band not counted) per second.
CPU s = process CPU time (all threads) per run: less sensitive than wall time to other load.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

# run as a script, benchmarks/ would come first on sys.path and this file would shadow the
# library of the same name (benchmarks/distributed.py vs dask.distributed): use the repo root
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import (  # noqa: E402
    DATA_DIR,
    best_of,
    cores,
    report,
    threaded_dask,
    warm_page_cache,
)
from benchmarks.make_inputs import Inputs, generate  # noqa: E402

BLOCK = 512


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- (a) bare rasterio ------------------------------------------------------------------------

def rasterio_sum(files: list[Path], size: int, threads: int, block: int = BLOCK, offset: int = 0) -> float:
    """Sum of the pixels (float32) of ``files`` from row/column ``offset`` on, read tile by tile
    (each tile window clipped to that AOI) on a ``threads`` pool."""
    import rasterio
    from rasterio.windows import Window

    local = threading.local()
    opened: list[Any] = []
    lock = threading.Lock()

    def read(task: tuple[str, int, int]) -> float:
        path, row, col = task
        handles = getattr(local, "handles", None)
        if handles is None:
            handles = local.handles = {}
        ds = handles.get(path)
        if ds is None:
            ds = handles[path] = rasterio.open(path, sharing=False)
            with lock:
                opened.append(ds)
        r0, c0 = max(row, offset), max(col, offset)
        win = Window(c0, r0, min(col + block, size) - c0, min(row + block, size) - r0)
        return float(ds.read(1, window=win, out_dtype="float32").sum(dtype=np.float32))

    first = (offset // block) * block
    tasks = [(str(f), r, c) for f in files for r in range(first, size, block)
             for c in range(first, size, block)]
    try:
        with ThreadPoolExecutor(threads) as pool:
            return float(np.sum(list(pool.map(read, tasks)), dtype=np.float64))
    finally:
        for ds in opened:
            ds.close()


# --- (b) stackstac, (c) odc-stac, (d) load_cube -----------------------------------------------

def aoi_bounds(inp: Inputs, offset: int) -> tuple[float, float, float, float]:
    """The files' grid without its first ``offset`` rows and columns (EPSG:32633 metres)."""
    b, d = inp.bounds, offset * inp.resolution
    return (b[0] + d, b[1], b[2], b[3] - d)


def stackstac_cube(inp: Inputs, offset: int = 0) -> Any:
    import stackstac

    return stackstac.stack(inp.items, assets=list(inp.bands), epsg=inp.epsg,
                           resolution=inp.resolution, bounds=aoi_bounds(inp, offset), dtype="float32",
                           fill_value=np.float32(np.nan), rescale=False)


def odc_cube(inp: Inputs, chunk: int, offset: int = 0) -> Any:
    import odc.stac
    import pystac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    items = [pystac.Item.from_dict(d) for d in inp.items]
    b = aoi_bounds(inp, offset)
    n = inp.size - offset
    gbox = GeoBox((n, n), Affine(inp.resolution, 0, b[0], 0, -inp.resolution, b[3]),
                  f"EPSG:{inp.epsg}")
    ds = odc.stac.load(items, bands=list(inp.bands), geobox=gbox,
                       chunks={"x": chunk, "y": chunk}, dtype="float32")
    return ds.to_array("band")


def our_cube(inp: Inputs, quality: bool, chunk: int, offset: int = 0) -> Any:
    from rsvlm_temporal.io.cube import load_cube

    items = inp.items if quality else inp.items_without_quality()
    return load_cube(items, bands=list(inp.bands), chunksize=chunk, bounds=aoi_bounds(inp, offset))


def dask_sum(build: Callable[[], Any]) -> float:
    return float(build().sum(skipna=False).compute())


# --- profile ----------------------------------------------------------------------------------

def profile_ours(inp: Inputs, quality: bool, chunk: int, out: Path) -> None:
    """pyinstrument profile of (d) on the synchronous scheduler (one thread: where CPU goes)."""
    import dask
    from pyinstrument import Profiler

    with dask.config.set(scheduler="sync"):
        dask_sum(lambda: our_cube(inp, quality, chunk))  # warm: imports, LUTs
        prof = Profiler(interval=0.0005)
        prof.start()
        dask_sum(lambda: our_cube(inp, quality, chunk))
        prof.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(prof.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    out.with_suffix(".html").write_text(prof.output_html(), encoding="utf-8")
    print(prof.output_text(unicode=False, color=False, show_all=False)[:6000])
    print(f"(profile written to {out} and {out.with_suffix('.html')})")


# --- main -------------------------------------------------------------------------------------

def run(dates: int = 24, nbands: int = 6, size: int = 1024, repeat: int = 3,
        threads: int | None = None, chunk: int = 1024, peer_chunk: int = 1024,
        only: str = "a,b,c,d,d0", append: bool = True, offset: int = 0) -> list[list[Any]]:
    threads = threads or cores()
    inp = generate(dates, nbands, size, quiet=True)
    files = inp.band_files()
    warm_page_cache(files + inp.quality_files())
    if not 0 <= offset < size:
        raise ValueError(f"offset must be 0 <= offset < size ({size}), got {offset}")
    mpx = len(files) * (size - offset) ** 2 / 1e6
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    readers: dict[str, tuple[str, Callable[[], float]]] = {
        "a": (f"(a) rasterio, {threads} threads, {BLOCK} px windows",
              lambda: rasterio_sum(files, size, threads, offset=offset)),
        "b": ("(b) stackstac.stack (defaults, chunks 1024)",
              lambda: dask_sum(lambda: stackstac_cube(inp, offset))),
        "c": (f"(c) odc.stac.load (chunks {peer_chunk})",
              lambda: dask_sum(lambda: odc_cube(inp, peer_chunk, offset))),
        "d": (f"(d) load_cube, SCL decoded + masked (chunks {chunk})",
              lambda: dask_sum(lambda: our_cube(inp, True, chunk, offset))),
        "d0": (f"(d') load_cube, no quality band (chunks {chunk})",
               lambda: dask_sum(lambda: our_cube(inp, False, chunk, offset))),
    }
    results: dict[str, tuple[float, float, float, list[float]]] = {}
    with threaded_dask(threads):
        for key in wanted:
            label, fn = readers[key]
            fn()  # warm-up: imports, first opens
            c0 = _cpu()
            best, total, times = best_of(fn, repeat)
            results[key] = (best, (_cpu() - c0) / repeat, total, times)
            print(f"{label}: best {best:.3f} s of {[round(t, 3) for t in times]}, "
                  f"{mpx / best:.0f} Mpx/s, sum {total:.6g}", flush=True)
    base = results.get("a")
    rows = []
    for key in wanted:
        best, cpu_s, total, _ = results[key]
        rows.append([readers[key][0], mpx / best, (base[0] / best) if base else float("nan"),
                     best, cpu_s, mpx / cpu_s])
    notes = _checks(results, dates, nbands, size - offset)
    report("loader", ["reader", "Mpx/s", "ratio to (a)", "best s", "CPU s/run", "Mpx per CPU s"],
           rows, params={"dates": dates, "bands": nbands, "size": f"{size}x{size}",
                         "AOI": f"{size - offset}x{size - offset} from pixel ({offset}, {offset})",
                         "band Mpx": round(mpx, 1), "threads": threads, "repeat": repeat},
           notes=notes, append=append)
    return rows


def _checks(results: dict[str, Any], dates: int, nbands: int, size: int) -> list[str]:
    """Every reader read the same pixels: sums agree (DN sums; (d') as reflectance)."""
    notes = []
    dn = [results[k][2] for k in ("a", "b", "c") if k in results]
    if len(dn) > 1 and not np.allclose(dn, dn[0], rtol=1e-5):
        raise AssertionError(f"readers disagree on the DN sum: {dn}")
    if "a" in results and "d0" in results:
        n = dates * nbands * size * size
        expect = results["a"][2] * 1e-4 - 0.1 * n
        if not np.isclose(results["d0"][2], expect, rtol=1e-3):
            raise AssertionError(f"(d') reflectance sum {results['d0'][2]} != DN sum * 1e-4 - 0.1 "
                                 f"* pixels = {expect}")
        notes.append("check: (a)-(c) DN sums agree; (d') sum = DN sum x 1e-4 - 0.1 x pixels")
    notes.append("(d) also reads the uint8 SCL file of each date (+1/%d of the files) and "
                 "decodes/applies the mask; its Mpx/s counts band pixels only" % nbands)
    return notes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dates", type=int, default=24)
    ap.add_argument("--bands", type=int, default=6)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="default: cores")
    ap.add_argument("--chunk", type=int, default=1024, help="load_cube chunksize (px)")
    ap.add_argument("--offset", type=int, default=0,
                    help="read the AOI without the first N rows/columns (a crop, as real AOIs are)")
    ap.add_argument("--peer-chunk", type=int, default=1024, help="odc-stac chunk (px)")
    ap.add_argument("--only", default="a,b,c,d,d0", help="subset of a,b,c,d,d0")
    ap.add_argument("--profile", action="store_true",
                    help="profile (d) with pyinstrument (sync scheduler) instead of timing")
    ap.add_argument("--no-quality", action="store_true", help="with --profile: profile (d')")
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")
    a = ap.parse_args(argv)
    if a.profile:
        inp = generate(a.dates, a.bands, a.size, quiet=True)
        warm_page_cache(inp.band_files() + inp.quality_files())
        name = "profile-loader-noqa.txt" if a.no_quality else "profile-loader.txt"
        profile_ours(inp, not a.no_quality, a.chunk, DATA_DIR / name)
        return
    run(a.dates, a.bands, a.size, a.repeat, a.threads, a.chunk, a.peer_chunk, a.only,
        not a.no_append, a.offset)


if __name__ == "__main__":
    main()
