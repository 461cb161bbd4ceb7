"""Index series over time: one pixel (row, col) of the player's grid, or the whole AOI."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from rsvlm_temporal.errors import ParameterError
from rsvlm_temporal.viewer.frames import FrameStore


def pixel_series(store: FrameStore, index: str, row: int, col: int) -> pd.DataFrame:
    """Columns ``date``, ``value`` (NaN when masked), ``sensor``, ``clear`` for pixel (row, col)."""
    h, w = store.shape
    if not (0 <= row < h and 0 <= col < w):
        raise ParameterError(f"pixel (row {row}, col {col}) lies outside the {h} x {w} px grid")
    vals = store.index_values(index)[:, row, col].astype(np.float64)
    return pd.DataFrame({
        "date": pd.to_datetime([f.date for f in store.infos]),
        "value": vals,
        "sensor": [f.sensor for f in store.infos],
        "clear": np.isfinite(vals),
    })


def aoi_series(store: FrameStore, index: str, min_clear: float = 0.05) -> pd.DataFrame:
    """Columns ``date``, ``median``, ``p25``, ``p75``, ``clear_fraction``, ``sensor``: the index
    over the clear pixels of the AOI per date; NaN where less than ``min_clear`` is clear.
    Computed once per store, index and ``min_clear``."""
    memo = store.memo.setdefault("aoi_series", {})
    if (index, min_clear) in memo:
        return memo[(index, min_clear)].copy()
    vals = store.index_values(index).reshape(len(store), -1).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(vals, [25, 50, 75], axis=1)
    frac = np.array([f.clear_fraction for f in store.infos])
    q[:, frac < min_clear] = np.nan
    out = pd.DataFrame({
        "date": pd.to_datetime([f.date for f in store.infos]),
        "median": q[1], "p25": q[0], "p75": q[2],
        "clear_fraction": frac,
        "sensor": [f.sensor for f in store.infos],
    })
    memo[(index, min_clear)] = out
    return out.copy()
