"""Date rasters: float days since 1970-01-01 (NaN = none) <-> datetime64 (NaT = none)."""

from __future__ import annotations

import numpy as np


def days_to_datetime(a: np.ndarray) -> np.ndarray:
    """Float days since 1970-01-01 (NaN none) -> datetime64[ns] (NaT none), any shape."""
    out = np.full(a.shape, np.datetime64("NaT"), "datetime64[ns]")
    ok = np.isfinite(a)
    out[ok] = a[ok].astype(np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return out


def datetime_to_days(times: np.ndarray) -> np.ndarray:
    """datetime64 values -> int64 days since 1970-01-01."""
    return np.asarray(times).astype("datetime64[D]").astype(np.int64)
