"""The whole flow for one AOI and period: items -> cube -> analysis -> result stack -> exports
and evidence. The CLI, the dashboard and the notebooks call :func:`run_analysis`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import dask
import dask.array as da
import numpy as np
import rasterio
import xarray as xr

from .analysis import ChangeResult, analyze
from .atomic import write_json_atomic
from .change.series import SeriesParams
from .classes import BURN_SEVERITY_CLASSES, CHANGE_CLASSES, CHANGE_CODES, NODATA_CLASS
from .cluster import dask_client
from .cube import DEFAULT_BANDS, load_cube
from .evidence import Evidence, build_evidence
from .export import write_cog, write_polygons, write_quicklook_png
from .grid import pixel_area_m2
from .store import open_stack, write_stack
from .timeutil import datetime_to_days

MAGNITUDE_CLASSES = {0: "no_change", 1: "change"}
#: bytes of one chunk's whole time series, which one analysis task holds (see analysis_chunksize)
ANALYSIS_CHUNK_BYTES = 48 * 2**20
#: GDAL block cache during run_analysis (bytes): every pass reads each tile about once, so a
#: larger cache (GDAL's default: 5% of the machine's memory) only keeps tiles of the whole AOI
ANALYSIS_GDAL_CACHE_BYTES = 32 * 2**20


@dataclass
class RunOutputs:
    """What :func:`run_analysis` wrote: file paths by name, and the evidence."""

    out_dir: Path
    evidence: Evidence
    files: dict[str, Path] = field(default_factory=dict)
    mode: str = "series"


def _extent_block(onset: np.ndarray, recession: np.ndarray, days: np.ndarray) -> np.ndarray:
    on = onset.ravel()[np.isfinite(onset.ravel())]
    rec = recession.ravel()[np.isfinite(onset.ravel())]
    rec = np.where(np.isfinite(rec), rec, np.inf)
    counts = ((on[None, :] <= days[:, None]) & (rec[None, :] > days[:, None])).sum(axis=1)
    return counts.astype(np.int64)[None, None, :]


def _flood_extent_blocks(layers: xr.Dataset, times: np.ndarray) -> da.Array:
    days = datetime_to_days(times).astype(np.float64)
    on = layers.flood_onset.astype("datetime64[D]").astype("int64").astype("float64")
    on = xr.where(layers.flood_onset.isnull(), np.nan, on).data
    rec = layers.flood_recession.astype("datetime64[D]").astype("int64").astype("float64")
    rec = xr.where(layers.flood_recession.isnull(), np.nan, rec).data
    blocks = da.map_blocks(_extent_block, on, rec, days, dtype=np.int64,
                           chunks=tuple((1,) * len(c) for c in on.chunks) + ((len(days),),), new_axis=2)
    return blocks.sum(axis=(0, 1))


def flood_extent_by_date(layers: xr.Dataset, times: np.ndarray) -> np.ndarray:
    """Flooded pixels per acquisition date (onset <= date < recession), block by block."""
    return _flood_extent_blocks(layers, times).compute()


def _severity_block(cls: np.ndarray, sev: np.ndarray) -> np.ndarray:
    m = cls == CHANGE_CODES["burn"]
    return np.bincount(sev[m].astype(np.int64), minlength=len(BURN_SEVERITY_CLASSES))[None, None, :]


def _class_extras(layers: xr.Dataset, times: np.ndarray, pix_ha: float) -> dict[int, dict[str, Any]]:
    extras: dict[int, dict[str, Any]] = {}
    cls = layers.change_class.data
    sev = layers.burn_severity.data
    n = len(BURN_SEVERITY_CLASSES)
    counts = da.map_blocks(_severity_block, cls, sev, dtype=np.int64, new_axis=2,
                           chunks=tuple((1,) * len(c) for c in cls.chunks) + ((n,),)).sum(axis=(0, 1))
    counts, extent = dask.compute(counts, _flood_extent_blocks(layers, times))  # one pass
    if counts[1:].sum() > 0:
        extras[CHANGE_CODES["burn"]] = {
            "severity_ha": {BURN_SEVERITY_CLASSES[k]: round(float(counts[k]) * pix_ha, 2)
                            for k in range(1, n) if counts[k] > 0},
            "severity_scheme": "dNBR, Key & Benson (2006) / USGS FIREMON",
        }
    if extent.max() > 0:
        peak = int(np.argmax(extent))
        after = np.flatnonzero((np.arange(len(extent)) > peak) & (extent <= 0.1 * extent[peak]))
        extras[CHANGE_CODES["flood"]] = {
            "peak_date": str(np.datetime64(times[peak], "D")),
            "peak_extent_ha": round(float(extent[peak]) * pix_ha, 2),
            "recession_date": str(np.datetime64(times[after[0]], "D")) if len(after) else None,
            "recession_rule": "first date the flooded extent falls to 10% of its peak or less",
        }
    return extras


def export_result(result: ChangeResult, cube: xr.DataArray, out_dir: Path,
                  stack_path: Path | None = None) -> RunOutputs:
    """Exports and evidence from a result already written as a stack (see :mod:`store`)."""
    out_dir = Path(out_dir)
    stack_path = stack_path or out_dir / "layers.tif"
    layers = open_stack(stack_path)
    files: dict[str, Path] = {"stack": stack_path}
    pix_ha = pixel_area_m2(layers.change_magnitude) / 10_000
    counts = result.clear_counts
    if result.mode == "series":
        cls = layers.change_class
        cls.attrs["class_names"] = CHANGE_CLASSES
        valid = cls != NODATA_CLASS
        files["change_class"] = write_cog(cls, out_dir / "change_class.tif", nodata=NODATA_CLASS,
                                          class_names=CHANGE_CLASSES, description="change class")
        files["burn_severity"] = write_cog(layers.burn_severity, out_dir / "burn_severity.tif",
                                           nodata=NODATA_CLASS, class_names=BURN_SEVERITY_CLASSES,
                                           description="burn severity (dNBR, Key & Benson)")
        for name in ("change_date", "flood_onset", "flood_recession"):
            files[name] = write_cog(layers[name], out_dir / f"{name}.tif", description=name.replace("_", " "))
        files["confidence"] = write_cog(layers.confidence, out_dir / "confidence.tif", nodata=np.nan)
        files["polygons"] = write_polygons(cls, out_dir / "change_polygons.geojson", CHANGE_CLASSES,
                                           date_raster=layers.change_date, valid_mask=valid,
                                           codes=[c for c in CHANGE_CLASSES if c > 0])
        files["quicklook"] = write_quicklook_png(cls, out_dir / "change_class.png", kind="class",
                                                 class_names=CHANGE_CLASSES)
        extras = _class_extras(layers, cube.time.values, pix_ha)
        evidence = build_evidence(
            cls, CHANGE_CLASSES, valid_mask=valid, date_raster=layers.change_date,
            confidence=layers.confidence, clear_counts=counts.values, clear_dates=counts.time.values,
            insufficient_data=result.notes, extra=extras, analysis="series",
            evidence_extra={"period": [str(result.start), str(result.end)],
                            "magnitude_method": result.magnitude_method},
        )
    else:
        mask = layers.change_mask.astype(np.uint8)
        mask.attrs.update(layers.change_mask.attrs)
        valid = layers.change_magnitude.notnull()
        files["change_mask"] = write_cog(mask, out_dir / "change_mask.tif", class_names=MAGNITUDE_CLASSES,
                                         description="change mask (unsupervised change magnitude)")
        files["polygons"] = write_polygons(mask, out_dir / "change_polygons.geojson", MAGNITUDE_CLASSES,
                                           valid_mask=valid, codes=[1])
        files["quicklook"] = write_quicklook_png(mask, out_dir / "change_mask.png", kind="class",
                                                 class_names=MAGNITUDE_CLASSES)
        evidence = build_evidence(
            mask, MAGNITUDE_CLASSES, valid_mask=valid, clear_counts=counts.values,
            clear_dates=counts.time.values, insufficient_data=result.notes, analysis="bitemporal",
            evidence_extra={"period": [str(result.start), str(result.end)],
                            "magnitude_method": result.magnitude_method},
        )
    files["change_magnitude"] = write_cog(layers.change_magnitude, out_dir / "change_magnitude.tif",
                                          nodata=np.nan, description="change magnitude")
    files["evidence"] = write_json_atomic(out_dir / "evidence.json", evidence.to_dict())
    return RunOutputs(out_dir, evidence, files, result.mode)


def analysis_chunksize(n_dates: int, n_bands: int, max_chunk: int = 1024,
                       budget: int | None = None, min_chunk: int = 64) -> int:
    """Chunk side (px) for an analysis of ``n_dates`` x ``n_bands``: ``max_chunk`` halved until
    one chunk's whole time series (float32 reflectance + uint8 flags) fits ``budget`` bytes
    (default :data:`ANALYSIS_CHUNK_BYTES`), at least ``min_chunk``. Halving keeps chunk edges
    on the files' tile edges (tile sizes dividing ``max_chunk``)."""
    budget = ANALYSIS_CHUNK_BYTES if budget is None else budget
    c = max_chunk
    while c // 2 >= min_chunk and n_dates * (4 * n_bands + 1) * c * c > budget:
        c //= 2
    return c


@contextlib.contextmanager
def gdal_cache(limit: int) -> Iterator[None]:
    """Cap GDAL's block cache at ``limit`` bytes (process-wide; never raised) for the block."""
    current = int(rasterio.env.get_gdal_config("GDAL_CACHEMAX") or 0)
    if current and current <= limit:
        yield
        return
    with rasterio.Env(GDAL_CACHEMAX=int(limit)):
        yield


def analysis_cube(items: Sequence[Any], chunksize: int = 1024, chunk_memory: int | None = None,
                  bands: Sequence[str] | None = None, **load: Any) -> xr.DataArray:
    """The lazy cube :func:`run_analysis` analyses: ``bands`` (default the analysis bands) in
    chunks of at most ``chunksize`` px, halved until one chunk's whole time series fits
    ``chunk_memory`` bytes (default :data:`ANALYSIS_CHUNK_BYTES`; :func:`analysis_chunksize`).
    Each thread holds about one such chunk; a larger budget reads faster where the files'
    internal tiles are larger than the chunks (a 256 px chunk decodes a 512 px tile four times).
    ``load``: the grid and AOI arguments of :func:`cube.load_cube`. Reads no pixel.
    """
    if chunk_memory is not None and chunk_memory <= 0:
        raise ValueError(f"chunk_memory must be a positive number of bytes, got {chunk_memory!r}")
    bands = bands or DEFAULT_BANDS
    cube = load_cube(items, bands=bands, chunksize=chunksize, **load)
    chunk = analysis_chunksize(cube.sizes["time"], cube.sizes["band"], chunksize, budget=chunk_memory)
    if chunk < chunksize:  # metadata only: nothing was read
        cube = load_cube(items, bands=bands, chunksize=chunk, **load)
    return cube


def run_analysis(
    items: Sequence[Any],
    out_dir: str | Path,
    start: Any = None,
    end: Any = None,
    *,
    bands: Sequence[str] | None = None,
    epsg: int | None = None,
    resolution: float | None = None,
    bounds_latlon: tuple[float, float, float, float] | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    params: SeriesParams | None = None,
    magnitude_method: str = "irmad",
    magnitude_threshold: str | float = "otsu",
    chunksize: int = 1024,
    block: int = 64,
    chunk_memory: int | None = None,
) -> RunOutputs:
    """Load, analyse and export: COGs, GeoJSON (EPSG:4326), PNG and evidence.json in ``out_dir``.

    ``workers`` starts a local dask.distributed cluster of that many processes, ``scheduler``
    ("tcp://host:port") joins an existing one, ``client`` uses a ``distributed.Client``; none
    of them: dask's threaded scheduler. Results are identical either way. The AOI is
    ``bounds_latlon`` (EPSG:4326) or ``bounds`` (minx, miny, maxx, maxy in the target CRS,
    metres), as for :func:`cube.load_cube`.

    Memory is bounded whatever the AOI: the cube is read in chunks of at most ``chunksize`` px,
    halved until a chunk's whole time series fits ``chunk_memory`` bytes (:func:`analysis_cube`);
    the series engine runs ``block`` px at a time; the result stack is computed and written chunk
    by chunk (:func:`store.write_stack`) and GDAL's block cache is capped at
    :data:`ANALYSIS_GDAL_CACHE_BYTES` in this process (``cluster.WORKER_GDAL_CACHE_MB`` in the
    worker processes of ``workers=``). Peak memory therefore does not grow with the AOI
    (``tests/test_memory.py``, ``benchmarks/distributed.py --part memory``).
    """
    cube = analysis_cube(items, chunksize, chunk_memory, bands=bands, epsg=epsg, resolution=resolution,
                         bounds_latlon=bounds_latlon, bounds=bounds)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with gdal_cache(ANALYSIS_GDAL_CACHE_BYTES):
        with dask_client(workers=workers, scheduler=scheduler, client=client):
            result = analyze(cube, start, end, params=params, magnitude_method=magnitude_method,
                             magnitude_threshold=magnitude_threshold, workdir=out / ".work", block=block)
            stack = write_stack(result.layers, out / "layers.tif")
            if isinstance(result.clear_counts.data, da.Array):
                (result.clear_counts,) = dask.compute(result.clear_counts)
        # the stack is a file of this process: the exports read it here
        return export_result(result, cube.sel(time=result.clear_counts.time), out, stack)


def summary_lines(outputs: RunOutputs) -> list[str]:
    """A short human-readable summary of a run (for the CLI)."""
    ev = outputs.evidence.to_dict()
    lines = [f"analysis: {outputs.mode}; outputs in {outputs.out_dir}"]
    for c in ev.get("classes", []):
        if c.get("area_ha", 0) <= 0 or c.get("name") == "no_change":
            continue
        lines.append(
            f"  {c['name']:<16} {c['area_ha']:>10.2f} ha ({c['percent_of_valid']:.2f}% of valid area), "
            f"{c['n_patches']} patch(es), {c.get('location', '')}, "
            f"{c.get('first_date') or ''}..{c.get('last_date') or ''}"
        )
    for reason in ev.get("quality", {}).get("insufficient_data", []) or []:
        lines.append(f"  note: {reason}")
    return lines


def today() -> dt.date:
    """Today's date (UTC), the default end of an analysis period."""
    return dt.datetime.now(dt.timezone.utc).date()
