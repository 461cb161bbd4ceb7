"""Per-class extras of the evidence, computed block by block from the result layers: the burn
severity breakdown (ha per dNBR class) and the flood's peak extent, peak date and recession.
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


def class_extras(layers: xr.Dataset, times: np.ndarray, pix_ha: float) -> dict[int, dict[str, Any]]:
    """``{change code: extras}`` of a series result: burn severity areas (ha per class) and the
    flood's peak date, peak extent (ha) and recession date; one pass over the layers."""
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

