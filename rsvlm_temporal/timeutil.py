"""Dates: float days since 1970-01-01 (NaN = none) <-> datetime64 (NaT = none), ISO strings."""

from __future__ import annotations

from typing import Any

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


def iso_date(value: Any) -> str:
    """ISO string of a date-like value: ``YYYY-MM-DD``, or ``YYYY-MM-DDThh:mm:ss`` off midnight."""
    s = str(np.datetime_as_string(np.datetime64(value, "s")))
    return s[:10] if s.endswith("T00:00:00") else s


def days_to_iso(days: float) -> str:
    """ISO date of an integer number of days since 1970-01-01."""
    return str(np.datetime64(int(days), "D"))
