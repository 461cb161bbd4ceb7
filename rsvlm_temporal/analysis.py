"""The change analysis of a cube: per-pixel classes, dates, burn severity, flood timing and
the generic change magnitude between the first and last periods. Lazy until computed.

``analyze(cube, start, end)`` returns a :class:`ChangeResult` whose ``layers`` are dask-backed
georeferenced (y, x) rasters on the cube's grid; nothing is read until they are computed or
exported. The per-pixel series engine needs more than one year of data (it compares like
seasons); shorter inputs get the bi-temporal change magnitude only, and the result says so.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from . import masks
from .change.magnitude import change_magnitude
from .change.series import LAYERS, SeriesParams, series_kernel
from .classes import BURN_SEVERITY_CLASSES, CHANGE_CLASSES, NODATA_CLASS
from .errors import InsufficientDataError, UnknownBandError
from .timeutil import datetime_to_days, days_to_datetime
from .cube import nanmedian_time
from .grid import georef_attrs
from .store import open_stack, write_stack

#: the series engine needs a same-season baseline from the previous year
MIN_SERIES_DAYS = 400
MIN_SERIES_OBS = 6


@dataclass
class ChangeResult:
    """Lazy result of :func:`analyze`.

    ``layers``: Dataset of (y, x) rasters: change_class (uint8, codes in classes.CHANGE_CLASSES,
    255 no data), change_date / flood_onset / flood_recession (datetime64[D], NaT none),
    confidence (0-1), burn_severity (uint8, classes.BURN_SEVERITY_CLASSES), dnbr, permanent_water,
    change_magnitude, change_mask. ``clear_counts``: clear pixels per date (time,).
    """

    layers: xr.Dataset
    clear_counts: xr.DataArray
    start: dt.date
    end: dt.date
    mode: str  # "series" or "bitemporal"
    params: SeriesParams
    magnitude_method: str
    magnitude_threshold: float | None = None
    notes: list[str] = field(default_factory=list)

    def compute(self, **kwargs: Any) -> "ChangeResult":
        """Compute every layer at once (one pass over the cube); returns a new in-memory result."""
        import dask

        names = list(self.layers.data_vars)
        # one compute over the variables (not the Dataset, which trips a dask graph-merge bug)
        *values, counts = dask.compute(*[self.layers[n] for n in names], self.clear_counts, **kwargs)
        layers = xr.Dataset(dict(zip(names, values)), attrs=self.layers.attrs)
        return ChangeResult(layers, counts, self.start, self.end, self.mode, self.params,
                            self.magnitude_method, self.magnitude_threshold, list(self.notes))


def _as_date(value: Any, default: np.datetime64) -> dt.date:
    if value is None:
        return pd.Timestamp(default).date()
    return pd.Timestamp(value).date()


_days = datetime_to_days


def _months(times: np.ndarray) -> np.ndarray:
    t = pd.DatetimeIndex(times)
    return (t.year * 12 + t.month - 1).to_numpy()


def _series_layers(cube: xr.DataArray, params: SeriesParams, block: int) -> xr.Dataset:
    data = cube.data.rechunk({0: -1, 1: -1, 2: block, 3: block})
    days, months = _days(cube.time.values), _months(cube.time.values)
    stacked = da.map_blocks(
        series_kernel, data, days, months, params, tuple(str(b) for b in cube.band.values),
        dtype=np.float32, drop_axis=[0, 1], new_axis=0,
        chunks=((len(LAYERS),), data.chunks[2], data.chunks[3]),
    )
    coords = {"y": cube.y, "x": cube.x}
    out = {name: xr.DataArray(stacked[i], dims=("y", "x"), coords=coords) for i, name in enumerate(LAYERS)}
    return xr.Dataset(out)


def _to_date(days: xr.DataArray) -> xr.DataArray:
    """Float days since 1970-01-01 (NaN none) -> datetime64[D] (NaT none)."""
    return xr.apply_ufunc(days_to_datetime, days, dask="parallelized", output_dtypes=["datetime64[ns]"])


def _period_median(cube: xr.DataArray, lo: np.datetime64, hi: np.datetime64) -> xr.DataArray:
    part = cube.sel(time=slice(lo, hi))
    if part.sizes["time"] == 0:
        raise InsufficientDataError(f"no acquisition between {lo} and {hi}; widen the period")
    data = part.data.rechunk({0: -1})
    med = da.map_blocks(nanmedian_time, data, dtype=np.float32, drop_axis=0)
    return xr.DataArray(med, dims=("band", "y", "x"),
                        coords={"band": cube.band, "y": cube.y, "x": cube.x}, attrs=cube.attrs)


def _materialise_periods(before: xr.DataArray, after: xr.DataArray,
                         workdir: str | Path | None) -> tuple[xr.DataArray, xr.DataArray]:
    """Write both composites to one disk stack (block by block) and read them back lazily."""
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="rsvlm-"))
    bands = [str(b) for b in before.band.values]
    layers = {f"{w}_{b}": v.sel(band=b, drop=True) for w, v in (("before", before), ("after", after))
              for b in bands}
    ds = xr.Dataset(layers, attrs=before.attrs)
    stack = open_stack(write_stack(ds, folder / "periods.tif"))
    out = []
    for w in ("before", "after"):
        arr = xr.concat([stack[f"{w}_{b}"] for b in bands], dim="band").assign_coords(band=bands)
        arr.attrs.update(before.attrs)
        out.append(arr)
    return out[0], out[1]


def analyze(
    cube: xr.DataArray,
    start: Any = None,
    end: Any = None,
    *,
    params: SeriesParams | None = None,
    magnitude_method: str = "irmad",
    magnitude_threshold: str | float = "otsu",
    period_days: int = 365,
    block: int = 128,
    workdir: str | Path | None = None,
) -> ChangeResult:
    """Change analysis of a reflectance cube between ``start`` and ``end`` (dates, inclusive).

    Data up to ``period_days`` before ``start`` (when the cube has it) serves as the seasonal
    baseline. Returns lazy layers on the cube's grid and CRS; ``block`` is the spatial block
    size (pixels) of the per-pixel series engine, which bounds memory per task to about
    T x bands x block^2 x 4 bytes. The two period composites of the change magnitude are
    computed once into ``workdir`` (default: a new temporary folder), because its iterative
    fit (IR-MAD) reads them many times.
    """
    params = params or SeriesParams()
    missing = [b for b in params.bands if b not in cube.band.values]
    if missing:
        raise UnknownBandError(
            f"the change analysis needs bands {list(params.bands)}; the cube lacks {missing}"
        )
    times = cube.time.values
    s = _as_date(start, times.min())
    e = _as_date(end, times.max())
    if s > e:
        raise ValueError(f"start {s} is after end {e}")
    lo = np.datetime64(s) - np.timedelta64(period_days, "D")
    hi = np.datetime64(e) + np.timedelta64(1, "D")
    cube = cube.sel(time=slice(lo, hi), band=list(params.bands))
    if cube.sizes["time"] < 2:
        raise InsufficientDataError(
            f"{cube.sizes['time']} acquisition(s) between {lo} and {e}; change needs at least two"
        )
    usable = (cube.mask & np.uint8(masks.DEFAULT_MASKED)) == 0
    clear_counts = usable.sum(("y", "x")).rename("clear_pixels")
    attrs = georef_attrs(cube)
    notes: list[str] = []

    span = (cube.time.values.max() - cube.time.values.min()).astype("timedelta64[D]").astype(int)
    # bi-temporal magnitude: the first vs the last period (one acquisition each when only two)
    t0, t1 = cube.time.values.min(), cube.time.values.max()
    window = np.timedelta64(min(period_days, max(int(span) // 3, 0)), "D")
    before, after = _materialise_periods(
        _period_median(cube, t0, t0 + window), _period_median(cube, t1 - window, t1), workdir)
    mag = change_magnitude(before, after, method=magnitude_method, threshold=magnitude_threshold)

    layers: dict[str, xr.DataArray] = {
        "change_magnitude": mag.magnitude.astype(np.float32),
        "change_mask": mag.mask,
    }
    if span >= MIN_SERIES_DAYS and cube.sizes["time"] >= MIN_SERIES_OBS:
        mode = "series"
        ser = _series_layers(cube, params, block)
        in_range = (ser.change_date >= _days(np.array([np.datetime64(s)]))[0]) & (
            ser.change_date <= _days(np.array([np.datetime64(e)]))[0])
        valid = ser.clear_count > 0
        cls = xr.where(valid, xr.where(in_range, ser.change_class, 0), NODATA_CLASS).astype(np.uint8)
        layers.update(
            change_class=cls,
            change_date=_to_date(ser.change_date.where(in_range & (cls > 0))),
            confidence=ser.confidence.where(valid),
            burn_severity=xr.where(valid, ser.burn_severity, NODATA_CLASS).astype(np.uint8),
            dnbr=ser.dnbr,
            flood_onset=_to_date(ser.flood_onset.where(in_range)),
            flood_recession=_to_date(ser.flood_recession.where(in_range)),
            permanent_water=(ser.permanent_water == 1),
            clear_count=ser.clear_count.fillna(0).astype(np.uint16),
        )
    else:
        mode = "bitemporal"
        notes.append(
            f"{cube.sizes['time']} acquisitions over {span} days (the series engine needs >= "
            f"{MIN_SERIES_OBS} over >= {MIN_SERIES_DAYS} days): no seasonal baseline, so no "
            "per-pixel classes or dates; only the change magnitude between the two periods"
        )
    ds = xr.Dataset(layers)
    for v in ds.data_vars.values():
        v.attrs.update(attrs)
    if mode == "series":
        ds["change_class"].attrs["class_names"] = CHANGE_CLASSES
        ds["burn_severity"].attrs["class_names"] = BURN_SEVERITY_CLASSES
    ds.attrs.update(attrs)
    return ChangeResult(ds, clear_counts, s, e, mode, params, mag.method,
                        getattr(mag, "threshold", None), notes)
