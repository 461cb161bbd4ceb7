"""The change analysis at scale: throughput and peak memory as the AOI grows, and scaling on a
dask.distributed LocalCluster.

``python benchmarks/distributed.py`` runs both parts and prints (and appends) two tables:

- ``--part memory``: the full change analysis (``rsvlm_temporal.pipeline.run_analysis``:
  cube, indices, masks, per-pixel dates and classes, result stack, COG/GeoJSON/PNG exports and
  evidence) on centred AOIs of 1x, 4x and 16x the area of ``--base`` x ``--base`` px, each in a
  fresh process on the threaded scheduler (threads = cores). Reports megapixel-dates per
  second (AOI pixels x dates / wall seconds) and the peak RSS of that process (``ru_maxrss``,
  every thread) and its increase over the process's RSS before the run (imports).
  Goal: peak memory within 1.5x from 1x to 16x, throughput flat or rising.
- ``--part scaling``: the same analysis of one AOI (``--scaling-factor``, default 4x) on the
  threaded scheduler and on a LocalCluster of 1 and of 2 worker processes (1 thread each).
  Wall time excludes starting the cluster (reported apart). Efficiency = T(1 worker) /
  (N x T(N workers)). Every result layer, every COG and evidence.json are compared with the
  threaded scheduler's, exactly.

Inputs: ``make_inputs.generate(dates, 6, size, every=30)`` (24 dates over two years, so the
per-pixel series engine runs), a grid of 4 x base px plus a margin, centred on the UTM zone's
central meridian. The workload itself is one function, :func:`analysis_workload`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# run as a script, benchmarks/ would come first on sys.path and this file would shadow the
# library of the same name (benchmarks/distributed.py vs dask.distributed): use the repo root
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA_DIR, best_of, cores, mib, peak_rss, report, threaded_dask, warm_page_cache  # noqa: E402
from benchmarks.make_inputs import Inputs, generate  # noqa: E402

MARGIN = 32  # px around the largest AOI, so its lat/lon round trip stays inside the files
#: imported before the baseline RSS of each measured process (so "increase" is the analysis)
PRELOAD = ("numpy", "dask.array", "xarray", "rasterio", "stackstac", "rsvlm_temporal.pipeline")


# --- the workload: THE one place that calls the analysis ------------------------------------

def analysis_workload(items: list[dict[str, Any]], bounds_latlon: tuple[float, float, float, float],
                      out_dir: Path, client: Any = None, read_outputs: bool = True,
                      chunk_memory: int | None = None) -> dict[str, Any]:
    """The full change analysis of one AOI, as users run it; returns what the tables need.

    ``client``: a ``distributed.Client`` (None: dask's threaded scheduler). ``read_outputs``:
    also return every layer of the result stack and every COG (whole, to compare them), which
    the memory part must not do (it would measure that array). Change this function (only) if
    the pipeline's entry point changes. The temporal model is off (``model=None``): this measures
    the spectral analysis (``benchmarks/model.py`` times the model).
    """
    from rsvlm_temporal.pipeline import run_analysis

    outputs = run_analysis(items, out_dir, bounds_latlon=bounds_latlon, client=client,
                           chunk_memory=chunk_memory, model=None)
    import rasterio

    with rasterio.open(outputs.files["stack"]) as src:
        height, width, names = src.height, src.width, list(src.descriptions)
    rasters: dict[str, np.ndarray] = {}
    if read_outputs:
        for key, path in sorted(outputs.files.items()):
            if str(path).endswith(".tif"):
                with rasterio.open(path) as src:
                    rasters[key] = src.read()
    ev = outputs.evidence.to_dict()
    return {
        "mode": outputs.mode, "height": height, "width": width,
        "dates": len(ev.get("quality", {}).get("clear_observations", []) or []) or None,
        "rasters": rasters, "names": names, "evidence": ev,
    }


def compare_layers(ref: dict[str, Any], got: dict[str, Any]) -> str:
    """'identical', or which result layers / COGs / evidence differ from the reference and how."""
    diffs = []
    for key, a in ref["rasters"].items():
        b = got["rasters"].get(key)
        names = ref["names"] if key == "stack" else [key] * len(a)
        if b is None or a.shape != b.shape or a.dtype != b.dtype:
            diffs.append(f"{key}: missing or of another shape/dtype")
            continue
        for name, x, y in zip(names, a, b):
            same = (x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x == y
            if not same.all():
                delta = np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64)))
                diffs.append(f"{name}: {int((~same).sum())} px, max abs diff {delta:.2g}")
    if ref["evidence"] != got["evidence"]:
        diffs.append("evidence.json differs")
    return "identical" if not diffs else "DIFFERS: " + "; ".join(diffs)


# --- AOIs -------------------------------------------------------------------------------------

def inputs_for(base: int, dates: int, every: int) -> Inputs:
    return generate(dates, 6, 4 * base + 2 * MARGIN, quiet=True, every=every)


def aoi(inp: Inputs, side_px: int) -> tuple[float, float, float, float]:
    """Lat/lon bounds of a centred square AOI of ``side_px`` pixels (10 m)."""
    from rsvlm_temporal.io.cube import transform_bounds

    b = inp.bounds
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    half = side_px * inp.resolution / 2
    return transform_bounds((cx - half, cy - half, cx + half, cy + half), inp.epsg, 4326)


def _dates_of(items: list[dict[str, Any]]) -> int:
    return len({it["properties"]["datetime"][:10] for it in items})


def memory_job(base: int, dates: int, every: int, factor: int, threads: int,
               chunk_memory: int | None = None) -> dict[str, Any]:
    """Run in a fresh process by :func:`peak_rss`: one AOI on the threaded scheduler."""
    inp = inputs_for(base, dates, every)
    side = int(round(base * factor ** 0.5))
    out = Path(tempfile.mkdtemp(prefix=f"analysis-{factor}x-", dir=DATA_DIR))
    try:
        with threaded_dask(threads):
            t0 = time.perf_counter()
            res = analysis_workload(inp.items, aoi(inp, side), out, read_outputs=False,
                                    chunk_memory=chunk_memory)
            seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "height": res["height"], "width": res["width"], "mode": res["mode"]}


# --- the limits the analysis is measured against ----------------------------------------------

def limits(inp: Inputs, side: int, threads: int, chunk_memory: int | None = None) -> dict[str, float]:
    """Mpx-dates/s of (a) reading the AOI's cube once (``load_cube``, SCL decoded and masked,
    summed; ``threads`` threads) and (b) the series kernel alone on one core: the analysis's
    chunk function on one in-memory chunk: the I/O and the compute limit. The cube and chunks
    are the analysis's (``pipeline.analysis_cube``; ``chunk_memory``: its budget, bytes)."""
    import dask

    from rsvlm_temporal.change.analysis import _fine_bands, _series_chunk
    from rsvlm_temporal.change.series import SeriesParams
    from rsvlm_temporal.pipeline import analysis_cube
    from rsvlm_temporal.timeutil import datetime_to_days

    cube = analysis_cube(inp.items, chunk_memory=chunk_memory, bounds_latlon=aoi(inp, side))
    mpx_dates = cube.sizes["y"] * cube.sizes["x"] * cube.sizes["time"] / 1e6
    with threaded_dask(threads):
        read_s, _, _ = best_of(lambda: float(cube.sum().compute()), repeat=2)
    with dask.config.set(scheduler="sync"):
        block = cube.data.blocks[:, :, 0, 0].compute()  # one whole chunk, as an analysis task gets it
    days = datetime_to_days(cube.time.values)
    bands = tuple(str(b) for b in cube.band.values)

    def kernel() -> None:  # the analysis's own chunk function, in run_analysis's 64 px sub-tiles
        _series_chunk([[block]], days, SeriesParams(), bands, _fine_bands(cube), 64)

    kernel_s, _, _ = best_of(kernel, repeat=2)
    return {"read": mpx_dates / read_s,
            "kernel_per_core": block.shape[2] * block.shape[3] * block.shape[0] / 1e6 / kernel_s}


# --- parts ------------------------------------------------------------------------------------

def run_memory(base: int, factors: list[int], dates: int, every: int, threads: int,
               append: bool, chunk_memory: int | None = None) -> list[list[Any]]:
    inp = inputs_for(base, dates, every)
    warm_page_cache(inp.band_files() + inp.quality_files())
    ndates = _dates_of(inp.items)
    rows, peaks, rates = [], [], []
    # by module name, so the spawned process finds it however this file was started (script,
    # runpy from a CLI): a function of "__main__" would be looked up in the child's own main
    from benchmarks.distributed import memory_job as job
    for f in factors:
        m = peak_rss(job, base, dates, every, f, threads, chunk_memory, preload=PRELOAD)
        r = m.result
        mpx_dates = r["height"] * r["width"] * ndates / 1e6
        rate = mpx_dates / r["seconds"]
        rows.append([f"{f}x", f"{r['height']}x{r['width']}", ndates, r["mode"], r["seconds"], rate,
                     mib(m.maxrss), mib(m.increase)])
        peaks.append(m.maxrss)
        rates.append(rate)
        print(f"{f}x: {r['height']}x{r['width']} px, {r['seconds']:.1f} s, {rate:.2f} Mpx-dates/s, "
              f"peak {mib(m.maxrss):.0f} MiB (+{mib(m.increase):.0f})", flush=True)
    growth = peaks[-1] / peaks[0]
    lim = limits(inp, base, threads, chunk_memory)
    kernel_limit = lim["kernel_per_core"] * threads
    notes = [
        f"peak RSS {factors[-1]}x / {factors[0]}x = {growth:.2f} (goal <= 1.5): "
        + ("met" if growth <= 1.5 else "NOT met"),
        f"throughput {factors[-1]}x / {factors[0]}x = {rates[-1] / rates[0]:.2f} (goal >= 1, flat or rising)",
        f"limits on the {factors[0]}x cube: reading it once (load_cube, SCL masked, {threads} threads) "
        f"{lim['read']:.3g} Mpx-dates/s; the series kernel alone {lim['kernel_per_core']:.3g} Mpx-dates/s "
        f"per core ({kernel_limit:.3g} on {threads}). The analysis at {factors[-1]}x runs at "
        f"{rates[-1] / kernel_limit:.0%} of the kernel limit and {rates[-1] / lim['read']:.1%} of the "
        "read limit: compute-bound (the rest: the IR-MAD magnitude, two more passes over the cube "
        "for the clear-pixel counts and the period composites, the exports)",
        "each AOI in a fresh process (multiprocessing spawn); peak = ru_maxrss of that process, "
        "increase = peak - RSS before the run (libraries already imported); wall time includes "
        "building the cube and writing the outputs",
    ]
    report("analysis throughput and memory",
           ["AOI", "pixels", "dates", "mode", "seconds", "Mpx-dates/s", "peak RSS MiB",
            "increase MiB"], rows,
           params={"base": f"{base}x{base} px", "threads": threads, "dates": dates,
                   "chunk_memory": f"{chunk_memory / 2**20:g} MiB" if chunk_memory else "default",
                   "every": f"{every} d"}, notes=notes, append=append)
    return rows


def run_scaling(base: int, factor: int, dates: int, every: int, workers: list[int],
                append: bool) -> list[list[Any]]:
    from rsvlm_temporal.compute.cluster import dask_client

    inp = inputs_for(base, dates, every)
    warm_page_cache(inp.band_files() + inp.quality_files())
    side = int(round(base * factor ** 0.5))
    bounds = aoi(inp, side)
    ndates = _dates_of(inp.items)
    tmp = Path(tempfile.mkdtemp(prefix="scaling-", dir=DATA_DIR))
    rows: list[list[Any]] = []
    try:
        with threaded_dask(cores()):
            t0 = time.perf_counter()
            ref = analysis_workload(inp.items, bounds, tmp / "threads")
            t_threads = time.perf_counter() - t0
        mpx_dates = ref["height"] * ref["width"] * ndates / 1e6
        rows.append([f"threaded scheduler, {cores()} threads", "-", t_threads, mpx_dates / t_threads,
                     "-", "reference"])
        times: dict[int, float] = {}
        for n in workers:
            t0 = time.perf_counter()
            with dask_client(workers=n, threads_per_worker=1) as client:
                startup = time.perf_counter() - t0
                client.run(lambda: None)  # workers up and answering
                t0 = time.perf_counter()
                got = analysis_workload(inp.items, bounds, tmp / f"workers{n}", client=client)
                times[n] = time.perf_counter() - t0
            eff = times[workers[0]] * workers[0] / (n * times[n]) if workers[0] in times else float("nan")
            rows.append([f"LocalCluster, {n} worker process(es) x 1 thread", startup, times[n],
                         mpx_dates / times[n], eff, compare_layers(ref, got)])
            print(f"{n} workers: {times[n]:.1f} s (+{startup:.1f} s start-up)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    notes = [f"efficiency = T({workers[0]} worker) x {workers[0]} / (N x T(N workers)); "
             "cluster start-up is not in the wall time",
             "vs threaded: every result layer, COG and evidence.json compared with the threaded scheduler's, exactly"]
    report("distributed scaling",
           ["scheduler", "start-up s", "seconds", "Mpx-dates/s", "efficiency", "vs threaded"], rows,
           params={"AOI": f"{factor}x ({ref['height']}x{ref['width']} px)", "dates": ndates,
                   "mode": ref["mode"], "cores": cores()}, notes=notes, append=append)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["memory", "scaling", "all"], default="all")
    ap.add_argument("--base", type=int, default=512, help="side of the 1x AOI in px (10 m)")
    ap.add_argument("--factors", default="1,4,16", help="AOI area factors")
    ap.add_argument("--dates", type=int, default=24)
    ap.add_argument("--every", type=int, default=30, help="days between dates")
    ap.add_argument("--threads", type=int, default=None, help="threaded scheduler threads (default: cores)")
    ap.add_argument("--workers", default="1,2", help="LocalCluster sizes (worker processes)")
    ap.add_argument("--scaling-factor", type=int, default=4, help="AOI factor of the scaling part")
    ap.add_argument("--chunk-memory", type=float, default=None, metavar="MIB",
                    help="memory part: run_analysis(chunk_memory=) in MiB (default: the library's)")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args(argv)
    factors = [int(f) for f in a.factors.split(",")]
    if max(factors) > 16:
        raise SystemExit("factors above 16 need a bigger grid: raise --base instead")
    if a.part in ("memory", "all"):
        run_memory(a.base, factors, a.dates, a.every, a.threads or cores(), not a.no_append,
                   int(a.chunk_memory * 2**20) if a.chunk_memory else None)
    if a.part in ("scaling", "all"):
        run_scaling(a.base, a.scaling_factor, a.dates, a.every,
                    [int(w) for w in a.workers.split(",")], not a.no_append)


if __name__ == "__main__":
    main()
