"""The whole flow for one AOI and period: items -> cube -> analysis -> result stack -> exports
and evidence. The CLI, the dashboard and the notebooks call :func:`run_analysis`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Iterator, Sequence

import dask
import dask.array as da
import rasterio
import xarray as xr

from rsvlm_temporal.atomic import ResultFolder, result_folder
from rsvlm_temporal.change.analysis import analyze
from rsvlm_temporal.change.magnitude import check_method
from rsvlm_temporal.change.series import SeriesParams
from rsvlm_temporal.compute.cluster import dask_client
from rsvlm_temporal.compute.store import write_stack
from rsvlm_temporal.errors import InsufficientDataError, ParameterError
from rsvlm_temporal.io.cube import DEFAULT_BANDS, load_cube
from rsvlm_temporal.model.factory import DEFAULT_MODEL
from rsvlm_temporal.outputs.report import summary_lines
from rsvlm_temporal.outputs.results import ModelRun, RunOutputs, export_result

__all__ = ["ANALYSIS_CHUNK_BYTES", "ANALYSIS_GDAL_CACHE_BYTES", "AUTO_MODEL_PX_DATES", "RunOutputs", "analysis_chunksize",
           "analysis_cube", "export_result", "gdal_cache", "run_analysis", "summary_lines", "today"]

#: bytes of one chunk's whole time series, which one analysis task holds (see analysis_chunksize)
ANALYSIS_CHUNK_BYTES = 48 * 2**20
#: ``run_analysis(model="auto")`` runs the model up to this many pixel-dates (time x y x x) of the
#: analysed cube: at :data:`MODEL_PX_DATES_PER_CPU_S` about 15 CPU-minutes (50 M before the fast
#: inference path, raised by its worst measured per-chunk speed-up, 3.4x on a cloud-free year;
#: 4.4x with the generator's clouds: benchmarks/model_speedup.py, RESULTS.md)
AUTO_MODEL_PX_DATES = 170_000_000
#: the default model's speed on CPU (pixel-dates per CPU-second; 57 k x 3.4, benchmarks/model.py
#: and model_speedup.py, RESULTS.md)
MODEL_PX_DATES_PER_CPU_S = 194_000
#: GDAL block cache during run_analysis (bytes): every pass reads each tile about once, so a
#: larger cache (GDAL's default: 5% of the machine's memory) only keeps tiles of the whole AOI
ANALYSIS_GDAL_CACHE_BYTES = 32 * 2**20










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
        raise ParameterError(f"chunk_memory must be a positive number of bytes, got {chunk_memory!r}")
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
    model: str | None = "auto",
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

    ``model``: the temporal CLIP config run beside the spectral engine (its shipped weights; see
    :func:`run_model_stack`); ``"auto"`` (default): the default model when the cube holds at most
    :data:`AUTO_MODEL_PX_DATES` pixel-dates (the model reads some 7x slower than the spectral
    engine on CPU), else skipped with the reason in the evidence; None: skipped
    (``rsvlm analyze --no-model``).
    """
    check_method(magnitude_method, magnitude_threshold)  # names first: before any read or write
    cube = analysis_cube(items, chunksize, chunk_memory, bands=bands, epsg=epsg, resolution=resolution,
                         bounds_latlon=bounds_latlon, bounds=bounds)
    # a fresh sibling folder (its .work inside), swapped into place once complete; locked
    with result_folder(out_dir) as txn, gdal_cache(ANALYSIS_GDAL_CACHE_BYTES):
        out = txn.path
        with dask_client(workers=workers, scheduler=scheduler, client=client):
            result = analyze(cube, start, end, params=params, magnitude_method=magnitude_method,
                             magnitude_threshold=magnitude_threshold, workdir=out / ".work", block=block)
            stack = write_stack(result.layers, out / "layers.tif")
            if isinstance(result.clear_counts.data, da.Array):
                (result.clear_counts,) = dask.compute(result.clear_counts)
            analysed = cube.sel(time=result.clear_counts.time)
            model_run = _model_run(analysed, out, model)
        # the stack is a file of this process: the exports read it here
        return _in_final(export_result(result, analysed, out, stack, model=model_run), txn)


def _in_final(outputs: RunOutputs, txn: ResultFolder) -> RunOutputs:
    """``outputs`` with its paths in the final result folder (where they are after the swap)."""
    return dataclasses.replace(outputs, out_dir=txn.final,
                               files={k: txn.moved(p) for k, p in outputs.files.items()})


def _model_run(cube: xr.DataArray, out: Path, model: str | None) -> ModelRun | None:
    if not model:
        return None
    if model == "auto":
        px_dates = cube.sizes["time"] * cube.sizes["y"] * cube.sizes["x"]
        if px_dates > AUTO_MODEL_PX_DATES:
            return ModelRun(DEFAULT_MODEL, reason=(
                f"not run by default: the cube holds {px_dates / 1e6:.0f} M pixel-dates, over the automatic "
                f"limit of {AUTO_MODEL_PX_DATES / 1e6:.0f} M (about {px_dates / MODEL_PX_DATES_PER_CPU_S / 3600:.1f} "
                f"CPU-hours at {MODEL_PX_DATES_PER_CPU_S / 1e3:.0f} k pixel-dates per CPU-second); pass "
                f"--model {DEFAULT_MODEL} to run it anyway"))
        model = DEFAULT_MODEL
    return run_model_stack(cube, out, model)


def run_model_stack(cube: xr.DataArray, out: Path, name: str = DEFAULT_MODEL,
                    pretrained: str | None = "default") -> ModelRun:
    """The temporal CLIP ``name`` on the analysed cube, chunk by chunk (on the dask workers where
    a client is active, loaded once per worker) into ``out/model_layers.tif``; a :class:`ModelRun`
    with the reason instead when it cannot run (torch missing, too few dates a year)."""
    try:
        from rsvlm_temporal.model.inference import run_model
        from rsvlm_temporal.outputs.model_layers import write_model_stack

        mo = run_model(cube, name=name, pretrained=pretrained, scene=False)
    except ImportError as exc:
        return ModelRun(name, reason=f"the model needs torch ({exc.name} is not installed): pip install '.[model]'")
    except InsufficientDataError as exc:
        return ModelRun(name, reason=str(exc))
    mo, stack = write_model_stack(mo, out)
    return ModelRun(name, mo, stack)


def today() -> dt.date:
    """Today's date (UTC), the default end of an analysis period."""
    return dt.datetime.now(dt.timezone.utc).date()
