"""Loader matrix: ``load_cube`` against bare rasterio, stackstac and odc-stac on every item shape.

``python benchmarks/loader_matrix.py`` (defaults: 12 dates x 6 bands x 1024 x 1024 px uint16
deflate COGs from ``make_inputs.py``, generated under ``benchmarks/_data/`` on first use) reads
the same files with four readers, side by side in one run, for each item shape x chunk size:

- item shapes (one catalog each, the same band files):
  ``rb+q``: ``raster:bands`` (scale/offset/nodata) and the SCL quality band (Earth Search v1);
  ``rb``: ``raster:bands``, no quality band;
  ``q``: no ``raster:bands`` (scale/offset from the product convention), the SCL band;
  ``bare``: no ``raster:bands``, no quality band, every item ``platform: sentinel-2a``
  (the shape of issue 20);
  ``bare/t256``: ``bare`` on COGs with 256 px internal tiles (the others have 512 px);
- chunk sizes (``--chunks``, default 1024, 512, 256): 256 on 512 px tiles is the
  tiles-larger-than-chunks case, 1024 the many-tiles-per-chunk one.

Readers (each reduces the data to one float32 sum, nothing kept):

- rasterio: the files' own tiles read as windows on a thread pool (one handle per thread and
  file), ``out_dtype=float32``: the I/O + decode limit, the same for every chunk size;
- stackstac: ``stackstac.stack(..., dtype=float32, rescale=False, chunksize=chunk)``;
- odc-stac (when importable): ``odc.stac.load(..., chunks={x, y: chunk}, dtype=float32)``;
- load_cube: ``load_cube(items, chunksize=chunk)``: reflectance, masked with the quality band
  where the items carry one (it then also reads the uint8 SCL file of each date; Mpx/s counts
  band pixels only).

Dask readers run on the threaded scheduler with ``--threads`` (default: cores) threads. The OS
page cache is warmed first; within a row the readers run in turn, ``--repeat`` rounds, and the
best wall time of each counts (on a shared machine the rounds interleave the load evenly).
``--quick`` runs 4 dates, chunks 1024 and 256, shapes ``rb+q`` and ``bare``, 2 rounds.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import cores, report, threaded_dask, warm_page_cache  # noqa: E402
from benchmarks.loader import rasterio_sum  # noqa: E402
from benchmarks.make_inputs import Inputs, generate  # noqa: E402

SHAPES = ("rb+q", "rb", "q", "bare", "bare/t256")


def shape_items(inp: Inputs, shape: str) -> list[dict[str, Any]]:
    """The items of ``inp`` in one item shape (see the module docstring)."""
    base = shape.split("/")[0]
    out = []
    for it in inp.items:
        d = copy.deepcopy(it)
        if base in ("rb", "bare"):
            d["assets"].pop("scl", None)
        if base in ("q", "bare"):
            for a in d["assets"].values():
                a.pop("raster:bands", None)
        if base == "bare":
            d["properties"]["platform"] = "sentinel-2a"
        out.append(d)
    return out


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _has_odc() -> bool:
    try:
        import odc.stac  # noqa: F401
    except ImportError:
        return False
    return True


def readers(inp: Inputs, items: list[dict[str, Any]], chunk: int, threads: int,
            block: int) -> dict[str, Callable[[], float]]:
    """name -> a function reading the whole grid once and returning its float32 sum."""
    import stackstac

    from rsvlm_temporal.io.cube import load_cube

    files = inp.band_files()
    bands = list(inp.bands)

    def st() -> float:
        cube = stackstac.stack(items, assets=bands, epsg=inp.epsg, resolution=inp.resolution,
                               bounds=inp.bounds, dtype="float32", fill_value=np.float32(np.nan),
                               rescale=False, chunksize=chunk)
        return float(cube.sum(skipna=False).compute())

    def ours() -> float:
        return float(load_cube(items, bands=bands, chunksize=chunk).sum(skipna=False).compute())

    out: dict[str, Callable[[], float]] = {
        "rasterio": lambda: rasterio_sum(files, inp.size, threads, block=block),
        "stackstac": st,
    }
    if _has_odc():
        import odc.stac
        import pystac
        from affine import Affine
        from odc.geo.geobox import GeoBox

        pitems = [pystac.Item.from_dict(copy.deepcopy(d)) for d in items]
        b = inp.bounds
        gbox = GeoBox((inp.size, inp.size), Affine(inp.resolution, 0, b[0], 0, -inp.resolution, b[3]),
                      f"EPSG:{inp.epsg}")

        def odc_sum() -> float:
            ds = odc.stac.load(pitems, bands=bands, geobox=gbox, chunks={"x": chunk, "y": chunk},
                               dtype="float32")
            return float(ds.to_array("band").sum(skipna=False).compute())

        out["odc-stac"] = odc_sum
    out["load_cube"] = ours
    return out


def measure(fns: dict[str, Callable[[], float]], repeat: int) -> dict[str, tuple[float, float, float]]:
    """name -> (best wall s, CPU s per run, sum): the readers in turn, ``repeat`` rounds."""
    import gc

    for fn in fns.values():
        fn()  # warm-up: imports, first opens
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    sums: dict[str, float] = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            gc.collect()
            c0, t0 = _cpu(), time.perf_counter()
            sums[k] = fn()
            walls[k].append(time.perf_counter() - t0)
            cpus[k].append(_cpu() - c0)
    return {k: (min(walls[k]), min(cpus[k]), sums[k]) for k in fns}


def _check(shape: str, res: dict[str, tuple[float, float, float]], npx: int) -> None:
    """The peers read the same DNs (sums agree); load_cube without a quality band gives
    reflectance DN x 1e-4 - 0.1 (no pixel of these files is nodata)."""
    dn = [res[k][2] for k in ("rasterio", "stackstac", "odc-stac") if k in res]
    if not np.allclose(dn, dn[0], rtol=1e-5):
        raise AssertionError(f"{shape}: readers disagree on the DN sum: {dn}")
    if shape.split("/")[0] not in ("rb+q", "q"):
        expect = dn[0] * 1e-4 - 0.1 * npx
        if not np.isclose(res["load_cube"][2], expect, rtol=1e-3):
            raise AssertionError(f"{shape}: load_cube sum {res['load_cube'][2]} != DN sum x 1e-4 - "
                                 f"0.1 x pixels = {expect}")


def run(dates: int = 12, size: int = 1024, chunks: tuple[int, ...] = (1024, 512, 256),
        shapes: tuple[str, ...] = SHAPES, repeat: int = 3, threads: int | None = None,
        append: bool = True, label: str = "") -> list[list[Any]]:
    threads = threads or cores()
    inputs: dict[int, Inputs] = {}
    rows: list[list[Any]] = []
    names = ["rasterio", "stackstac"] + (["odc-stac"] if _has_odc() else []) + ["load_cube"]
    with threaded_dask(threads):
        for shape in shapes:
            block = 256 if shape.endswith("/t256") else 512
            if block not in inputs:
                inputs[block] = generate(dates, 6, size, quiet=True, block=block)
                inp = inputs[block]
                warm_page_cache(inp.band_files() + inp.quality_files())
            inp = inputs[block]
            items = shape_items(inp, shape)
            npx = len(inp.band_files()) * size * size
            for chunk in chunks:
                res = measure(readers(inp, items, chunk, threads, block), repeat)
                _check(shape, res, npx)
                base = res["rasterio"][0]
                row: list[Any] = [shape, block, chunk]
                for k in names:
                    row.append(npx / 1e6 / res[k][0])
                for k in names[1:]:
                    row.append(base / res[k][0])
                row.append(npx / 1e6 / res["load_cube"][1])
                rows.append(row)
                print(" | ".join(str(round(v, 3)) if isinstance(v, float) else str(v) for v in row),
                      flush=True)
    headers = (["item shape", "tile px", "chunk px"] + [f"{k} Mpx/s" for k in names]
               + [f"{k} / rasterio" for k in names[1:]] + ["load_cube Mpx per CPU s"])
    notes = [
        "item shapes: rb = raster:bands (scale/offset/nodata), q = SCL quality band read, decoded "
        "and applied by load_cube (+1/6 files; Mpx/s counts band pixels only), bare = neither, "
        "platform sentinel-2a; /t256 = COGs with 256 px tiles (else 512)",
        "rasterio reads each file's tiles as windows (out_dtype float32), the same for every chunk "
        "size; stackstac/odc-stac read DNs to float32; load_cube gives masked reflectance",
        "readers interleaved within a row, best of the rounds; checks: DN sums agree, load_cube "
        "without SCL = DN x 1e-4 - 0.1",
    ]
    if label:
        notes.insert(0, label)
    report("loader matrix", headers, rows,
           params={"dates": dates, "bands": 6, "size": f"{size}x{size}", "threads": threads,
                   "repeat": repeat}, notes=notes, append=append)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dates", type=int, default=12)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--chunks", default="1024,512,256", help="comma-separated chunk sizes (px)")
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"subset of {','.join(SHAPES)}")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="default: cores")
    ap.add_argument("--quick", action="store_true",
                    help="4 dates, chunks 1024 and 256, shapes rb+q and bare, 2 rounds")
    ap.add_argument("--label", default="", help="a note for RESULTS.md (e.g. the machine's load)")
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")
    a = ap.parse_args(argv)
    shapes = tuple(s.strip() for s in a.shapes.split(",") if s.strip())
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        ap.error(f"unknown shapes {unknown}; expected a subset of {list(SHAPES)}")
    chunks = tuple(int(c) for c in a.chunks.split(",") if c.strip())
    dates, repeat = a.dates, a.repeat
    if a.quick:
        dates, repeat, chunks, shapes = 4, 2, (1024, 256), ("rb+q", "bare")
    run(dates, a.size, chunks, shapes, repeat, a.threads, not a.no_append, a.label)


if __name__ == "__main__":
    main()
