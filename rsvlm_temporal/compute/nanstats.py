"""NaN-aware order statistics over a short axis (the time axis of a block), from one sort.

``numpy.nanmedian`` over a short axis goes through masked arrays and raises (and, inside
``warnings.catch_warnings``, suppresses) a warning for every all-NaN slice, which made it three
quarters of the series kernel's time; ``catch_warnings`` is also not thread-safe, and dask runs
the kernels on threads. Sorting puts NaN last, so the valid values of each slice are its first
``n`` elements: their median, lowest and highest are three ``take_along_axis`` away. Results
equal ``numpy.nanmedian`` / ``nanmin`` / ``nanmax`` (all-NaN slice -> NaN), with no warning.
"""

from __future__ import annotations

import numpy as np


def _floating(a: np.ndarray) -> np.ndarray:
    """``a`` as an array of a float dtype (its own if it has one, else float64), so NaN fits."""
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def _sorted_valid(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``a`` sorted along ``axis`` (NaN last) and the count of non-NaN values, kept as a length-1
    axis so it indexes the sorted array."""
    s = np.sort(a, axis=axis)
    n = np.count_nonzero(~np.isnan(a), axis=axis, keepdims=True)
    return s, n


def _median_of_sorted(s: np.ndarray, n: np.ndarray, axis: int) -> np.ndarray:
    lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0), axis=axis)
    hi = np.take_along_axis(s, n // 2, axis=axis)  # n // 2 <= len - 1 whenever len >= 1
    med = (lo + hi) / 2  # numpy's median: the mean of the two middle values, in the input dtype
    return np.squeeze(np.where(n > 0, med, np.nan).astype(s.dtype, copy=False), axis=axis)


def nanmedian(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Median along ``axis`` ignoring NaN; NaN where a slice has no value (no warning).

    Keeps the input's float dtype (integers become float64). An empty axis gives NaN everywhere.
    """
    a = _floating(a)
    if a.shape[axis] == 0:
        return np.full(a.shape[:axis] + a.shape[axis + 1:], np.nan, a.dtype)
    s, n = _sorted_valid(a, axis)
    return _median_of_sorted(s, n, axis)


def nan_envelope(a: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lowest, median and highest value along ``axis`` ignoring NaN, from one sort (each NaN where
    a slice has no value; no warning). Integers are promoted to float64, as in :func:`nanmedian`."""
    a = _floating(a)
    if a.shape[axis] == 0:
        empty = np.full(a.shape[:axis] + a.shape[axis + 1:], np.nan, a.dtype)
        return empty, empty.copy(), empty.copy()
    s, n = _sorted_valid(a, axis)
    lowest = np.squeeze(np.take(s, [0], axis=axis), axis=axis)  # NaN when the slice is all NaN
    highest = np.squeeze(np.take_along_axis(s, np.maximum(n - 1, 0), axis=axis), axis=axis)
    return lowest, _median_of_sorted(s, n, axis), highest
