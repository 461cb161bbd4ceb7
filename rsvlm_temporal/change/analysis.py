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

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from rsvlm_temporal.change.bitemporal import BITEMPORAL_BANDS, bitemporal_classes, is_reflectance
from rsvlm_temporal.change.magnitude import change_magnitude, check_method
from rsvlm_temporal.change.series import LAYERS, SeriesParams, series_kernel
from rsvlm_temporal.change.thresholds import DEFAULT_THRESHOLD
from rsvlm_temporal.classes import BURN_SEVERITY_CLASSES, CHANGE_CLASSES, NODATA_CLASS
from rsvlm_temporal.compute.store import open_stack_array, write_stack
from rsvlm_temporal.errors import InsufficientDataError, PeriodError, UnknownBandError
from rsvlm_temporal.grid import extent_of, extent_of_pixels, format_bounds, georef_attrs
from rsvlm_temporal.io import masks
from rsvlm_temporal.io.cube import nanmedian_time
from rsvlm_temporal.io.sensors import sensor_table
from rsvlm_temporal.quality import QualityNote
from rsvlm_temporal.timeutil import datetime_to_days, days_to_datetime

#: the series engine needs a same-season baseline from the previous year
MIN_SERIES_DAYS = 400
MIN_SERIES_OBS = 6


@dataclass
class ChangeResult:
    """Lazy result of :func:`analyze`.

    ``layers``: Dataset of (y, x) rasters: change_class (uint8, codes in classes.CHANGE_CLASSES,
    255 no data), change_date / flood_onset / flood_recession (datetime64[D], NaT none),
    confidence (0-1), burn_severity (uint8, classes.BURN_SEVERITY_CLASSES), dnbr, permanent_water,
    change_magnitude (NaN no data), change_mask (uint8: 0 no change, 1 change, 255 no data).
    Bitemporal: change_magnitude, change_mask (real change: the seasonal difference is not
    change) and, for a reflectance pair, change_class (incl. water_gain, water_loss, seasonal,
    other_change), burn_severity and dnbr from :mod:`rsvlm_temporal.change.bitemporal`.
    ``clear_counts``: clear pixels per date (time,), already computed. ``notes``: why the
    result may rest on insufficient data (typed :class:`QualityNote`, for the evidence).
    """

    layers: xr.Dataset
    clear_counts: xr.DataArray
    start: dt.date
    end: dt.date
    mode: str  # "series" or "bitemporal"
    params: SeriesParams
    magnitude_method: str
    magnitude_threshold: float | None = None
    notes: list[QualityNote] = field(default_factory=list)

    def compute(self, **kwargs: Any) -> "ChangeResult":
        """Compute every layer at once (one pass over the cube); returns a new in-memory result."""
        import dask

        names = list(self.layers.data_vars)
        # one compute over the variables (not the Dataset, which trips a dask graph-merge bug)
        *values, counts = dask.compute(*[self.layers[n] for n in names], self.clear_counts, **kwargs)
        layers = xr.Dataset(dict(zip(names, values)), attrs=self.layers.attrs)
        return ChangeResult(layers, counts, self.start, self.end, self.mode, self.params,
                            self.magnitude_method, self.magnitude_threshold, list(self.notes))


def _as_date(value: Any, default: np.datetime64, what: str = "date") -> dt.date:
    if value is None:
        return pd.Timestamp(default).date()
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError) as exc:
        raise PeriodError(f"{what} {value!r} is not a date; expected e.g. '2021-06-01'") from exc


def _day(t: Any) -> str:
    return str(np.datetime64(t, "D"))


def _dates(times: np.ndarray, counts: np.ndarray | None = None, limit: int = 6) -> str:
    """'2021-01-01 (0 clear px), 2021-01-11 (0 clear px), ...' (the first and last few)."""
    items = [_day(t) + (f" ({int(c)} clear px)" if counts is not None else "")
             for t, c in zip(times, counts if counts is not None else [None] * len(times))]
    if len(items) > limit:
        items = items[: limit // 2] + [f"... {len(items) - limit} more ..."] + items[-(limit // 2):]
    return ", ".join(items)


def _baseline_notes(times: np.ndarray, counts: np.ndarray, in_period: np.ndarray, window: int,
                    s: dt.date, e: dt.date) -> list[QualityNote]:
    """Dates in [s, e] whose same-season baseline (the series engine's: clear observations
    365 +- ``window`` days earlier) lies within the data but holds no clear pixel: a note
    naming them; :class:`InsufficientDataError` when no clear date in [s, e] has a baseline."""
    days = _days(times).astype(np.float64)
    lo_b, hi_b = days - 365 - window, days - 365 + window
    cum = np.concatenate([[0], np.cumsum(counts)])
    base = cum[np.searchsorted(days, hi_b, "right")] - cum[np.searchsorted(days, lo_b, "left")]
    clear = counts > 0
    if not (in_period & clear & (base > 0)).any():
        raise InsufficientDataError(
            f"no acquisition between {s} and {e} has a clear same-season observation a year earlier "
            f"(365 +- {window} days) to compare with; the clear acquisitions are "
            f"{_dates(times[clear])}: load a year of clear data before {s}, or move the period later"
        )
    blind = in_period & clear & (lo_b >= days[0]) & (base == 0)
    if not blind.any():
        return []
    bt = times[blind]
    return [QualityNote(
        "no_seasonal_baseline",
        f"insufficient data: the {blind.sum()} clear acquisition(s) from {_day(bt.min())} to "
        f"{_day(bt.max())} have no clear observation within {window} days of the same date a year "
        "earlier (every pixel cloud, shadow or nodata then), so there is no seasonal baseline: "
        "changes in that time are missed or dated late",
        dates=(_day(bt.min()), _day(bt.max())))]


def _period_coverage(before: xr.DataArray, after: xr.DataArray, periods: tuple[str, str]) -> tuple[int, str]:
    """Pixels valid (all bands finite) in both period composites, and a sentence naming where
    each period has valid pixels (CRS bounds); one pass over the two composites."""
    b_ok, a_ok = before.notnull().all("band"), after.notnull().all("band")
    rb, cb, ra, ca, n_both = dask.compute(b_ok.any("x"), b_ok.any("y"), a_ok.any("x"), a_ok.any("y"),
                                          (b_ok & a_ok).sum())
    crs = str(before.attrs.get("crs", ""))
    eb = format_bounds(extent_of_pixels(before, rb.values, cb.values), crs)
    ea = format_bounds(extent_of_pixels(after, ra.values, ca.values), crs)
    where = (f"the before period ({periods[0]}) has clear pixels within {eb} and the after period "
             f"({periods[1]}) within {ea} (AOI {format_bounds(extent_of(before), crs)})")
    return int(n_both), where


_days = datetime_to_days


def _fine_bands(cube: xr.DataArray) -> tuple[str, ...]:
    """Bands whose native pixel is no coarser than the cube's (e.g. the 10 m bands of a 10 m
    Sentinel-2 cube; every band of a 30 m cube), from the sensor tables; all bands when a sensor
    is unknown or fewer than three bands qualify."""
    bands = [str(b) for b in cube.band.values]
    res = float(np.atleast_1d(cube.attrs.get("resolution", [0.0]))[0])
    table = sensor_table()
    fine = set(bands)
    for sid in {p for s in np.unique(cube.sensor.values) for p in str(s).split("+")}:
        if sid not in table:
            return tuple(bands)
        fine &= {b for b in bands if table[sid].band(b).resolution <= res + 1e-6}
    return tuple(b for b in bands if b in fine) if len(fine) >= 3 else tuple(bands)


def _tiles(blocks: list[Any], shape: tuple[int, int], sub: int) -> Any:
    """(y slice, x slice, the (T, B, sub, sub) pixels) of one dask chunk given as its time
    pieces ``blocks`` (a list over time chunks of lists over band chunks), ``sub`` x ``sub`` px
    at a time: only one sub-tile of the whole time series is ever copied."""
    rows = [b[0] if len(b) == 1 else np.concatenate(b, axis=1) for b in blocks]
    for y0 in range(0, shape[0], sub):
        for x0 in range(0, shape[1], sub):
            ys, xs = slice(y0, y0 + sub), slice(x0, x0 + sub)
            yield ys, xs, np.concatenate([r[:, :, ys, xs] for r in rows], axis=0)


def _series_chunk(blocks: list[Any], days: np.ndarray, params: SeriesParams, bands: tuple[str, ...],
                  fine: tuple[str, ...], sub: int) -> np.ndarray:
    """The series kernel over one dask chunk (its time pieces), ``sub`` x ``sub`` px at a time."""
    shape = blocks[0][0].shape[2:]
    out = np.empty((len(LAYERS),) + shape, np.float32)
    for ys, xs, tile in _tiles(blocks, shape, sub):
        out[:, ys, xs] = series_kernel(tile, days, params, bands, fine)
    return out


def _median_chunk(blocks: list[Any], sub: int) -> np.ndarray:
    """Per-band median over time (NaN ignored) of one dask chunk, ``sub`` x ``sub`` px at a time."""
    blocks = [[b] for b in blocks]
    shape = blocks[0][0].shape[2:]
    out = np.empty(blocks[0][0].shape[1:], np.float32)
    for ys, xs, tile in _tiles(blocks, shape, sub):
        out[:, ys, xs] = nanmedian_time(tile)
    return out


def _period_tiles(rows: list[np.ndarray], times: np.ndarray, shape: tuple[int, int], sub: int) -> Any:
    """Like :func:`_tiles` over the time pieces ``rows`` (each (t, B, Y, X)), keeping only the
    times ``times`` (sorted indices into their concatenation): (y slice, x slice, pixels)."""
    starts = np.cumsum([0] + [r.shape[0] for r in rows])
    local = [times[(times >= a) & (times < b)] - a for a, b in zip(starts[:-1], starts[1:])]
    for y0 in range(0, shape[0], sub):
        for x0 in range(0, shape[1], sub):
            ys, xs = slice(y0, y0 + sub), slice(x0, x0 + sub)
            yield ys, xs, np.concatenate([r[i, :, ys, xs] for r, i in zip(rows, local) if i.size], axis=0)


def _fused_chunk(blocks: list[Any], flags: list[Any], days: np.ndarray, params: SeriesParams,
                 bands: tuple[str, ...], fine: tuple[str, ...], sub: int,
                 periods: tuple[np.ndarray, np.ndarray], in_period: np.ndarray) -> np.ndarray:
    """One read of a dask chunk (its reflectance ``blocks`` and quality ``flags``, the cube's
    ``mask``, time pieces) for what took three: the before and after period composites
    (per-band medians over the dates ``periods``, indices into the chunk's time axis; as
    :func:`_median_chunk`), the series layers (:func:`_series_chunk`) and whether each pixel is
    clear on some date ``in_period`` (indices; as :func:`clear_pass`'s ``period_clear``).
    Returns (2 x bands + len(LAYERS) + 1, y, x) float32: before bands, after bands, series
    layers, period_clear (1 or 0)."""
    shape = blocks[0][0].shape[2:]
    nb = len(bands)
    out = np.empty((2 * nb + len(LAYERS) + 1,) + shape, np.float32)
    usable = (np.concatenate(flags, axis=0)[in_period] & np.uint8(masks.DEFAULT_MASKED)) == 0
    out[-1] = usable.any(axis=0)
    rows = [b[0] if len(b) == 1 else np.concatenate(b, axis=1) for b in blocks]
    for k, times in enumerate(periods):
        for ys, xs, tile in _period_tiles(rows, times, shape, max(sub, 128)):
            out[k * nb:(k + 1) * nb, ys, xs] = nanmedian_time(tile)
    out[2 * nb:-1] = _series_chunk(blocks, days, params, bands, fine, sub)
    return out


def _fused_periods_series(cube: xr.DataArray, windows: tuple[tuple[np.datetime64, np.datetime64], ...],
                          in_period: np.ndarray, params: SeriesParams, block: int,
                          workdir: str | Path | None
                          ) -> tuple[xr.DataArray, xr.DataArray, xr.Dataset, xr.DataArray]:
    """The two period composites (``windows``: (lo, hi) inclusive, as :func:`_period_median`),
    the series layers (as :func:`_series_layers`) and the pixels clear on some date of the
    period (``in_period``: (time,) bool; as :func:`clear_pass`) from one pass over the cube,
    written to one scratch stack (as :func:`_materialise_periods`) and read back lazily: the
    same values as the three passes they replace, each chunk of the cube read once, not thrice
    (the quality flags come from the same read as the reflectance)."""
    times = cube.time.values
    periods = []
    for lo, hi in windows:
        sel = np.flatnonzero((times >= lo) & (times <= hi))
        if sel.size == 0:
            raise InsufficientDataError(f"no acquisition between {lo} and {hi}; widen the period")
        periods.append(sel)
    bands = tuple(str(b) for b in cube.band.values)
    nb = len(bands)
    fused = da.blockwise(
        _fused_chunk, "lyx", cube.data, "tbyx", cube.mask.data, "tyx",
        new_axes={"l": 2 * nb + len(LAYERS) + 1}, concatenate=False, dtype=np.float32,
        days=_days(times), params=params, bands=bands, fine=_fine_bands(cube), sub=block,
        periods=tuple(periods), in_period=np.flatnonzero(in_period),
    )
    coords = {"y": cube.y, "x": cube.x}
    names = ([f"{w}_{b}" for w in ("before", "after") for b in bands] + [f"series_{n}" for n in LAYERS]
             + ["period_clear"])
    ds = xr.Dataset({n: xr.DataArray(fused[i], dims=("y", "x"), coords=coords) for i, n in enumerate(names)},
                    attrs=cube.attrs)
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="rsvlm-"))
    path = write_stack(ds, folder / "periods.tif", compress=None)
    # the composites as one read per chunk of their 2 x bands layers (the magnitude fit reads
    # them many times: never the series layers with them), the series layers as another
    composites = open_stack_array(path, cube.data.chunks[2:], layers=slice(0, 2 * nb))
    out = []
    for k in (0, 1):
        arr = composites.isel(layer=slice(k * nb, (k + 1) * nb)).rename(layer="band")
        arr = arr.assign_coords(band=list(bands))
        arr.attrs = dict(cube.attrs)
        out.append(arr)
    layers = open_stack_array(path, cube.data.chunks[2:], layers=slice(2 * nb, None)).data
    ser = xr.Dataset({n: xr.DataArray(layers[i], dims=("y", "x"), coords=coords)  # as _series_layers
                      for i, n in enumerate(LAYERS)})
    period_clear = xr.DataArray(layers[-1] == 1, dims=("y", "x"), coords=coords)
    return out[0], out[1], ser, period_clear


def _series_layers(cube: xr.DataArray, params: SeriesParams, block: int) -> xr.Dataset:
    # one task per spatial chunk of the cube, fed its time pieces as they are (no rechunk: a
    # time-merged copy of the chunk is never made); the kernel runs block x block px at a time
    days = _days(cube.time.values)
    stacked = da.blockwise(
        _series_chunk, "lyx", cube.data, "tbyx", new_axes={"l": len(LAYERS)}, concatenate=False,
        dtype=np.float32, days=days, params=params, bands=tuple(str(b) for b in cube.band.values),
        fine=_fine_bands(cube), sub=block,
    )
    coords = {"y": cube.y, "x": cube.x}
    out = {name: xr.DataArray(stacked[i], dims=("y", "x"), coords=coords) for i, name in enumerate(LAYERS)}
    return xr.Dataset(out)


def _to_date(days: xr.DataArray) -> xr.DataArray:
    """Float days since 1970-01-01 (NaN none) -> datetime64[D] (NaT none)."""
    return xr.apply_ufunc(days_to_datetime, days, dask="parallelized", output_dtypes=["datetime64[ns]"])


def _period_median(cube: xr.DataArray, lo: np.datetime64, hi: np.datetime64,
                   block: int = 64) -> xr.DataArray:
    part = cube.sel(time=slice(lo, hi))
    if part.sizes["time"] == 0:
        raise InsufficientDataError(f"no acquisition between {lo} and {hi}; widen the period")
    med = da.blockwise(_median_chunk, "byx", part.data, "tbyx", concatenate=False, dtype=np.float32,
                       sub=max(block, 128))  # a median needs ~5 x its input: 128 px is a few MB
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
    chunks = before.data.chunks[1:] if isinstance(before.data, da.Array) else 512
    # uncompressed (a scratch file the magnitude fit reads many times: one read per chunk for
    # all its layers), in the cube's chunks
    stack = open_stack_array(write_stack(ds, folder / "periods.tif", compress=None), chunks=chunks)
    out = []
    for k in (0, 1):
        arr = stack.isel(layer=slice(k * len(bands), (k + 1) * len(bands))).rename(layer="band")
        arr = arr.assign_coords(band=bands)
        arr.attrs = dict(before.attrs)
        out.append(arr)
    return out[0], out[1]


@dataclass
class _Period:
    """The checked request: the period [s, e], the cube cut to it and its baseline year, and the
    clear pixels per date."""

    cube: xr.DataArray
    s: dt.date
    e: dt.date
    lo: np.datetime64
    hi: np.datetime64
    in_period: np.ndarray
    counts: np.ndarray
    clear_counts: xr.DataArray
    period_clear: xr.DataArray
    n_unseen: int
    npix: int

    @property
    def times(self) -> np.ndarray:
        return self.cube.time.values

    @property
    def clear(self) -> np.ndarray:
        return self.counts > 0


def check_request(cube: xr.DataArray, start: Any, end: Any, params: SeriesParams,
                  period_days: int) -> tuple[xr.DataArray, dt.date, dt.date, np.datetime64, np.datetime64]:
    """Phase 1, checks (metadata only, no pixel read): the analysis bands are in the cube, the
    period parses and holds an acquisition. Returns the cube cut to the period and the
    ``period_days`` before it, the period's first and last day and the cut's bounds."""
    missing = [b for b in params.bands if b not in cube.band.values]
    if missing:
        raise UnknownBandError(
            f"the change analysis needs bands {list(params.bands)}; the cube lacks {missing}"
        )
    times = cube.time.values
    if times.size == 0:
        raise InsufficientDataError("the cube has no acquisition; expected at least two dates")
    first, last = _day(times.min()), _day(times.max())
    s = _as_date(start, times.min(), "start")
    e = _as_date(end, times.max(), "end")
    if s > e and start is not None and end is not None:
        raise PeriodError(f"start {s} is after end {e}; expected start <= end (both inclusive)")
    lo = np.datetime64(s) - np.timedelta64(period_days, "D")
    hi = np.datetime64(e) + np.timedelta64(1, "D")
    asked = (f"between {s} and {e}" if start is not None and end is not None else
             f"on or after {s}" if start is not None else f"on or before {e}")
    if not ((times >= np.datetime64(s)) & (times < hi)).any():
        raise InsufficientDataError(
            f"no acquisition {asked}: the cube's {times.size} acquisition(s) run from {first} to "
            f"{last}; choose a period within those dates or load items for it"
        )
    cube = cube.sel(time=slice(lo, hi), band=list(params.bands))
    tt = cube.time.values
    if tt.size < 2:
        raise InsufficientDataError(
            f"{tt.size} acquisition ({_dates(tt)}) between {_day(lo)} and {e} (the period and the "
            f"{period_days} days before it); change needs at least two: widen the period"
        )
    return cube, s, e, lo, hi


def clear_pass(cube: xr.DataArray, s: dt.date, e: dt.date, lo: np.datetime64, hi: np.datetime64) -> _Period:
    """Phase 2, one pass over the quality flags (no reflectance): clear pixels per date and the
    pixels never clear in [s, e]. Fails when the period has no clear observation or fewer than
    two dates have a clear pixel."""
    tt = cube.time.values
    in_period = (tt >= np.datetime64(s)) & (tt < hi)
    usable = (cube.mask & np.uint8(masks.DEFAULT_MASKED)) == 0
    clear_counts = usable.sum(("y", "x")).rename("clear_pixels")
    period_clear = usable.isel(time=np.flatnonzero(in_period)).any("time").reset_coords(drop=True)
    clear_counts, n_unseen = dask.compute(clear_counts, (~period_clear).sum())
    counts = np.asarray(clear_counts.values)
    clear = counts > 0
    if not clear[in_period].any():
        raise InsufficientDataError(
            f"no clear observation between {s} and {e}: every pixel of the {in_period.sum()} "
            f"acquisition(s) then ({_dates(tt[in_period])}) is cloud, shadow, cirrus, saturated "
            "or nodata; widen the period or use items with less cloud"
        )
    if clear.sum() < 2:
        raise InsufficientDataError(
            f"only {clear.sum()} of the {tt.size} acquisitions between {_day(lo)} and {e} has a clear "
            f"pixel ({_dates(tt, counts)}); change needs two dates with clear observations"
        )
    return _Period(cube, s, e, lo, hi, in_period, counts, clear_counts, period_clear, int(n_unseen),
                   int(cube.sizes["y"] * cube.sizes["x"]))


def anchor_periods(p: _Period, period_days: int) -> tuple[np.datetime64, np.datetime64, np.timedelta64,
                                                         int, list[QualityNote]]:
    """Phase 3, the bi-temporal periods: anchored on the first and last acquisitions with a clear
    pixel (one acquisition each when only two), at most ``period_days`` long. Returns the two
    anchors, the window, the span in days, and a ``period_moved`` note per period that had to move."""
    tt, clear = p.times, p.clear
    t0, t1 = tt[clear].min(), tt[clear].max()
    span = int((t1 - t0).astype("timedelta64[D]").astype(int))
    window = np.timedelta64(min(period_days, max(span // 3, 0)), "D")
    notes: list[QualityNote] = []
    for gap, stretch, which, shown in (
            (tt[tt < t0], t0 - tt.min(), "before", f"{_day(t0)}..{_day(t0 + window)}"),
            (tt[tt > t1], tt.max() - t1, "after", f"{_day(t1 - window)}..{_day(t1)}")):
        if gap.size and stretch > window:  # a whole period without a clear pixel
            notes.append(QualityNote(
                "period_moved",
                f"insufficient data: no clear observation from {_day(gap.min())} to {_day(gap.max())} "
                f"({_dates(gap)}: every pixel cloud, shadow or nodata); changes then are not "
                f"assessed, and the {which} period is {shown} instead",
                dates=(_day(gap.min()), _day(gap.max()))))
    return t0, t1, window, span, notes


def magnitude_phase(before: xr.DataArray, after: xr.DataArray, periods: tuple[str, str], npix: int,
                    series_mode: bool, method: str, threshold: str | float
                    ) -> tuple[xr.DataArray, xr.DataArray, str, float | None, list[QualityNote]]:
    """Phase 4, the change magnitude between the two period composites and its mask (255 where
    either period has no clear pixel). Without a series to fall back on, no overlap at all is an
    :class:`InsufficientDataError` naming where each period has data."""
    notes: list[QualityNote] = []
    n_both, where = _period_coverage(before, after, periods)
    if n_both:
        mag = change_magnitude(before, after, method=method, threshold=threshold)
        magnitude = mag.magnitude.astype(np.float32)
        change_mask = xr.where(mag.valid, mag.mask, NODATA_CLASS).astype(np.uint8)
        change_mask.attrs.update(mag.mask.attrs)
        mag_method, mag_threshold = mag.method, getattr(mag, "threshold", None)
        if mag.details.get("not_converged"):
            notes.append(QualityNote("irmad_not_converged", str(mag.details["not_converged"])))
        if mag.details.get("shrinkage") == 1.0 and mag.iterations > 1 and mag.method in ("irmad", "isfa"):
            notes.append(QualityNote(
                "irmad_not_converged",
                f"{mag.method}: chi-square reweighting with {mag.details.get('dof')} variate(s) "
                "degenerates; the no-change variances are left uncorrected (chi2 threshold and "
                "no-change probability uncalibrated)"))
    elif not series_mode:
        raise InsufficientDataError(
            f"no pixel is clear in both periods: {where}; they do not overlap in space, so there is "
            "nothing to compare: check that the items of both periods cover the AOI"
        )
    else:
        magnitude = xr.full_like(before.isel(band=0, drop=True), np.nan, dtype=np.float32)
        change_mask = xr.full_like(magnitude, NODATA_CLASS, dtype=np.uint8)
        mag_method, mag_threshold = method, None
        notes.append(QualityNote("no_magnitude", f"insufficient data: no change magnitude (no data): no "
                                 f"pixel is clear in both periods; {where}", fraction=1.0))
    if 0 < n_both < npix and not series_mode:
        notes.append(QualityNote(
            "partial_coverage",
            f"insufficient data: {100 * (npix - n_both) / npix:.1f}% of the AOI ({npix - n_both} of "
            f"{npix} pixels) has no clear observation in the before ({periods[0]}) or the after "
            f"({periods[1]}) period: change magnitude and mask are no data (NaN, 255) there, not no change",
            fraction=(npix - n_both) / npix))
    return magnitude, change_mask, mag_method, mag_threshold, notes


def series_phase(p: _Period, params: SeriesParams, block: int, ser: xr.Dataset | None = None,
                 period_clear: xr.DataArray | None = None) -> tuple[dict[str, xr.DataArray], list[QualityNote]]:
    """Phase 5, the per-pixel series engine: classes, dates, confidence, burn severity, flood
    timing, restricted to [s, e] and no data where a pixel has no clear observation then.
    ``ser``, ``period_clear``: the kernel's layers and ``p.period_clear`` when already computed
    (:func:`_fused_periods_series`: then this phase reads no more of the cube)."""
    ser = _series_layers(p.cube, params, block) if ser is None else ser
    period_clear = p.period_clear if period_clear is None else period_clear
    in_range = (ser.change_date >= _days(np.array([np.datetime64(p.s)]))[0]) & (
        ser.change_date <= _days(np.array([np.datetime64(p.e)]))[0])
    # no data where the pixel has no clear observation at all, or none within [s, e]
    valid = (ser.clear_count > 0) & period_clear
    notes: list[QualityNote] = []
    if p.n_unseen:
        notes.append(QualityNote(
            "unseen_pixels",
            f"insufficient data: {100 * p.n_unseen / p.npix:.1f}% of the AOI ({p.n_unseen} of {p.npix} "
            f"pixels) has no clear observation between {p.s} and {p.e} (cloud, shadow or nodata on "
            "every acquisition): change_class is no data (255) there, not no change",
            dates=(str(p.s), str(p.e)), fraction=p.n_unseen / p.npix))
    cls = xr.where(valid, xr.where(in_range, ser.change_class, 0), NODATA_CLASS).astype(np.uint8)
    layers = dict(
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
    return layers, notes


def bitemporal_phase(before: xr.DataArray, after: xr.DataArray, change_mask: xr.DataArray,
                     dates: tuple[np.datetime64, np.datetime64]) -> tuple[dict[str, xr.DataArray], list[QualityNote]]:
    """Phase 5 of a bi-temporal analysis: change classes from the two period composites
    (:func:`rsvlm_temporal.change.bitemporal.bitemporal_classes`: what replaced what, seasonal
    difference as its own class) and the change mask of real change (the magnitude's mask less
    the seasonal difference and isolated pixels; 255 where the magnitude has no data). Raw DN
    (not reflectance 0-1) or missing bands: the magnitude mask only, and a
    ``no_spectral_classes`` note. Reads a strided sample of ``before`` (the reflectance check)."""
    bands = [str(b) for b in before.band.values]
    missing = [b for b in BITEMPORAL_BANDS if b not in bands]
    if missing or not is_reflectance(before):
        why = (f"the composites lack bands {missing}" if missing else
               "the pair is not reflectance 0-1 (raw DN: a catalog without scale/offset)")
        return {"change_mask": change_mask}, [QualityNote(
            "no_spectral_classes",
            f"{why}: the spectral class rules (indices, unmixing) do not apply, so the result is the "
            "change mask of the magnitude only, with no change classes")]
    bt = bitemporal_classes(before, after, change_mask == 1, dates)
    nodata = change_mask == NODATA_CLASS
    layers = {
        "change_class": xr.where(nodata, NODATA_CLASS, bt.change_class).astype(np.uint8),
        "burn_severity": xr.where(nodata, NODATA_CLASS, bt.burn_severity).astype(np.uint8),
        "dnbr": bt.dnbr.where(~nodata),
        "change_mask": xr.where(nodata, NODATA_CLASS, bt.change_mask).astype(np.uint8),
    }
    layers["change_mask"].attrs.update(change_mask.attrs)
    return layers, list(bt.notes)


def assemble(layers: dict[str, xr.DataArray], cube: xr.DataArray, mode: str) -> xr.Dataset:
    """Phase 6, the result Dataset: every layer georeferenced like the cube, class names set."""
    attrs = georef_attrs(cube)
    ds = xr.Dataset(layers)
    for v in ds.data_vars.values():
        v.attrs.update(attrs)
    if "change_class" in ds:
        ds["change_class"].attrs["class_names"] = CHANGE_CLASSES
        ds["burn_severity"].attrs["class_names"] = BURN_SEVERITY_CLASSES
    ds.attrs.update(attrs)
    return ds


def analyze(
    cube: xr.DataArray,
    start: Any = None,
    end: Any = None,
    *,
    params: SeriesParams | None = None,
    magnitude_method: str = "irmad",
    magnitude_threshold: str | float = DEFAULT_THRESHOLD,
    period_days: int = 365,
    block: int = 64,
    workdir: str | Path | None = None,
) -> ChangeResult:
    """Change analysis of a reflectance cube between ``start`` and ``end`` (dates, inclusive).

    Data up to ``period_days`` before ``start`` (when the cube has it) serves as the seasonal
    baseline. Returns lazy layers on the cube's grid and CRS, chunked like the cube. One task
    per spatial chunk of the cube takes that chunk's whole time series (about T x bands x
    chunk^2 x 4 bytes: load the cube with chunks sized for its depth, see
    ``pipeline.analysis_cube``) and runs the per-pixel series engine ``block`` x ``block``
    pixels at a time (its temporaries, about 3 KB per pixel and date, stay bounded by the
    block: 64 px is also its fastest size). The two period composites of the change magnitude are
    computed once into ``workdir`` (default: a new temporary folder), because its iterative
    fit (IR-MAD) reads them many times; the clear pixels per date (``clear_counts``) come
    first, from the ``mask`` coordinate (flags only). The periods are anchored on the first and
    last acquisitions with a clear pixel. In series mode the composites, the series engine and
    the pixels clear in the period come from one more pass over the cube
    (:func:`_fused_periods_series`, into the same scratch stack): two reads of the cube in all.

    The phases, each a function of this module: :func:`check_request` (names and dates, no
    pixel read), :func:`clear_pass`, :func:`anchor_periods`, :func:`magnitude_phase`,
    :func:`series_phase` (series) or :func:`bitemporal_phase` (two periods: classes from the
    spectra of both, :mod:`rsvlm_temporal.change.bitemporal`), :func:`assemble`. The default
    threshold (``"auto"``) tests the magnitude for two modes before cutting it.

    Bad input fails loudly: :class:`UnknownNameError` for an unknown ``magnitude_method`` or
    threshold name (before any read); :class:`PeriodError` when ``start`` > ``end``;
    :class:`InsufficientDataError` when no acquisition or no clear pixel falls in the period,
    when fewer than two dates have a clear pixel, when no date of the period has a clear
    same-season baseline (series), or when the two periods share no clear pixel (bi-temporal;
    the message names where each one has data). Partial gaps are no data in the layers
    (change_class 255, change_mask 255, NaN) and are stated in ``notes`` (:class:`QualityNote`).
    """
    params = params or SeriesParams()
    check_method(magnitude_method, magnitude_threshold)
    cube, s, e, lo, hi = check_request(cube, start, end, params, period_days)
    p = clear_pass(cube, s, e, lo, hi)
    t0, t1, window, span, notes = anchor_periods(p, period_days)
    clear = p.clear
    series_mode = span >= MIN_SERIES_DAYS and int(clear.sum()) >= MIN_SERIES_OBS
    if series_mode:
        notes += _baseline_notes(p.times, p.counts, p.in_period, params.baseline_window_days, s, e)
    ser = period_clear = None
    if series_mode:  # one pass over the cube for the composites and the series engine
        before, after, ser, period_clear = _fused_periods_series(
            p.cube, ((t0, t0 + window), (t1 - window, t1)), p.in_period, params, block, workdir)
    else:
        before, after = _materialise_periods(
            _period_median(p.cube, t0, t0 + window, block), _period_median(p.cube, t1 - window, t1, block),
            workdir)
    periods = (f"{_day(t0)}..{_day(t0 + window)}", f"{_day(t1 - window)}..{_day(t1)}")
    magnitude, change_mask, mag_method, mag_threshold, mag_notes = magnitude_phase(
        before, after, periods, p.npix, series_mode, magnitude_method, magnitude_threshold)
    notes += mag_notes
    layers: dict[str, xr.DataArray] = {
        "change_magnitude": magnitude,
        "change_mask": change_mask,
    }
    if series_mode:
        mode = "series"
        series_layers, series_notes = series_phase(p, params, block, ser, period_clear)
        notes += series_notes
        layers.update(series_layers)
    else:
        mode = "bitemporal"
        notes.append(QualityNote(
            "bitemporal_only",
            f"{int(clear.sum())} acquisitions with clear pixels over {span} days (the series engine needs >= "
            f"{MIN_SERIES_OBS} over >= {MIN_SERIES_DAYS} days): no seasonal baseline, so no per-pixel "
            "dates; the change magnitude between the two periods and classes from their spectra"))
        if "change_mask" in layers and magnitude.size:
            bt_layers, bt_notes = bitemporal_phase(before, after, change_mask, (t0, t1))
            layers.update(bt_layers)
            notes += bt_notes
    ds = assemble(layers, p.cube, mode)
    return ChangeResult(ds, p.clear_counts, s, e, mode, params, mag_method, mag_threshold, notes)
