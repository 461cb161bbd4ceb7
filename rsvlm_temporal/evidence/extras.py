"""Per-class extras of the evidence, computed block by block from the result layers: the burn
severity breakdown (ha per dNBR class), the flood's peak extent, peak date and recession, and
each change class's dated events (:func:`date_events`: the change dates that a group of pixels
shares, isolated single-pixel dates left out).
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from rsvlm_temporal.classes import BURN_SEVERITY_CLASSES, CHANGE_CODES
from rsvlm_temporal.timeutil import datetime_to_days


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


#: change dates closer than this (days) belong to one event (about two 16-day revisits)
EVENT_GAP_DAYS = 32
#: an event needs at least this share of the class's dated pixels (and EVENT_MIN_PIXELS)
EVENT_MIN_SHARE = 0.05
EVENT_MIN_PIXELS = 2


def date_events(days: np.ndarray, counts: np.ndarray, pix_ha: float, gap_days: int = EVENT_GAP_DAYS,
                min_share: float = EVENT_MIN_SHARE, min_pixels: int = EVENT_MIN_PIXELS) -> list[dict[str, Any]]:
    """The dated events of one class from its pixel count per change date (``days``: days since
    1970-01-01, ``counts``: pixels): dates closer than ``gap_days`` form one event, dated by its
    modal date (most pixels); events with fewer than ``min_pixels`` pixels or ``min_share`` of
    the dated pixels are dropped (isolated detections). Each event: ``date`` (modal), ``start``,
    ``end`` (ISO), ``pixels``, ``area_ha``; sorted by date. Empty when nothing is dated."""
    days = np.asarray(days, np.int64)
    counts = np.asarray(counts, np.int64)
    keep = counts > 0
    days, counts = days[keep], counts[keep]
    if days.size == 0:
        return []
    order = np.argsort(days)
    days, counts = days[order], counts[order]
    cut = np.flatnonzero(np.diff(days) > gap_days) + 1
    total = int(counts.sum())
    events = []
    for d, n in zip(np.split(days, cut), np.split(counts, cut)):
        px = int(n.sum())
        if px < min_pixels or px < min_share * total:
            continue
        iso = [str(np.datetime64(int(x), "D")) for x in (d[int(np.argmax(n))], d[0], d[-1])]
        events.append({"date": iso[0], "start": iso[1], "end": iso[2], "pixels": px,
                       "area_ha": round(px * pix_ha, 4)})
    return events


def _date_hist_block(cls: np.ndarray, days: np.ndarray, d0: int, n_days: int, n_codes: int) -> np.ndarray:
    ok = np.isfinite(days) & (cls > 0) & (cls < n_codes)
    idx = cls[ok].astype(np.int64) * n_days + np.clip(days[ok].astype(np.int64) - d0, 0, n_days - 1)
    return np.bincount(idx, minlength=n_codes * n_days).reshape(n_codes, n_days)[None, None]


def _days_of(layer: xr.DataArray) -> da.Array:
    if np.issubdtype(layer.dtype, np.datetime64):
        d = layer.astype("datetime64[D]").astype("int64").astype("float64")
        return xr.where(layer.isnull(), np.nan, d).data
    d = layer.astype("float64")
    return xr.where(d < 0, np.nan, d).data


def class_extras(layers: xr.Dataset, times: np.ndarray, pix_ha: float) -> dict[int, dict[str, Any]]:
    """``{change code: extras}`` of a series result: burn severity areas (ha per class), the
    flood's peak date, peak extent (ha) and recession date, and each class's dated ``events``
    (:func:`date_events`, from the ``change_date`` layer); one pass over the layers."""
    extras: dict[int, dict[str, Any]] = {}
    cls = layers.change_class.data
    sev = layers.burn_severity.data
    n = len(BURN_SEVERITY_CLASSES)
    counts = da.map_blocks(_severity_block, cls, sev, dtype=np.int64, new_axis=2,
                           chunks=tuple((1,) * len(c) for c in cls.chunks) + ((n,),)).sum(axis=(0, 1))
    day_s = datetime_to_days(times).astype(np.int64)
    d0, n_days, n_codes = int(day_s.min()), int(day_s.max() - day_s.min()) + 1, 16
    hist = da.map_blocks(_date_hist_block, cls, _days_of(layers.change_date), d0, n_days, n_codes, dtype=np.int64,
                         new_axis=[2, 3], chunks=tuple((1,) * len(c) for c in cls.chunks) + ((n_codes,), (n_days,))
                         ).sum(axis=(0, 1))
    counts, extent, hist = dask.compute(counts, _flood_extent_blocks(layers, times), hist)  # one pass
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
    for code in range(1, n_codes):
        if hist[code].any():
            ev = date_events(np.arange(d0, d0 + n_days), hist[code], pix_ha)
            if ev:
                extras.setdefault(code, {})["events"] = ev
    return extras

