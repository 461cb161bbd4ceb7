"""NaN-aware order statistics over a short axis (the time axis of a block), from one sort.

``numpy.nanmedian`` over a short axis goes through masked arrays and raises (and, inside
``warnings.catch_warnings``, suppresses) a warning for every all-NaN slice, which made it three
quarters of the series kernel's time; ``catch_warnings`` is also not thread-safe, and dask runs
the kernels on threads. Sorting puts NaN last, so the valid values of each slice are its first
``n`` elements: their median, lowest and highest are three ``take_along_axis`` away. Results
equal ``numpy.nanmedian`` / ``nanmin`` / ``nanmax`` (all-NaN slice -> NaN), with no warning.

A short axis 0 (at most :data:`NETWORK_MAX` values: the few observations of a seasonal window,
the persistence run after a break, a period of a few dates) is sorted by a compare-exchange
network vectorised over the other axes instead of ``numpy.sort``, whose cost there is one call
per slice (some 45 000 slices of 2-10 values per block of 64 x 64 px x 11 series). The network
only selects (``minimum`` / ``maximum`` of pairs), so it yields the same values in the same
order as ``numpy.sort``: NaN are swapped for +inf first and put back after the ``n`` valid ones.
"""

from __future__ import annotations

import numpy as np


def _floating(a: np.ndarray) -> np.ndarray:
    """``a`` as an array of a float dtype (its own if it has one, else float64), so NaN fits."""
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


#: longest axis 0 sorted by the compare-exchange network (odd-even transposition: L (L - 1) / 2
#: exchanges over the whole block) rather than by ``numpy.sort`` (one call per slice)
NETWORK_MAX = 6


def _network_sort0(a: np.ndarray, nan: np.ndarray) -> np.ndarray:
    """``a`` (float, axis 0 of length <= :data:`NETWORK_MAX`) sorted along axis 0, NaN last, as
    ``numpy.sort`` sorts it; ``nan``: ``isnan(a)``."""
    x = [np.where(m, np.inf, v) for v, m in zip(a, nan)]  # NaN -> +inf: ordered last
    L = len(x)
    spare = np.empty_like(x[0])
    for rnd in range(L):  # odd-even transposition: sorted after L rounds
        for i in range(rnd % 2, L - 1, 2):
            lo = np.minimum(x[i], x[i + 1], out=spare)
            np.maximum(x[i], x[i + 1], out=x[i + 1])
            spare, x[i] = x[i], lo
    s = np.stack(x)
    # slots at and after the count of non-NaN values held a NaN (genuine +inf sort before them)
    n = L - np.count_nonzero(nan, axis=0)
    s[np.arange(L).reshape((L,) + (1,) * (a.ndim - 1)) >= n] = np.nan
    return s


def _sorted_valid(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``a`` sorted along ``axis`` (NaN last) and the count of non-NaN values, kept as a length-1
    axis so it indexes the sorted array."""
    nan = np.isnan(a)
    n = a.shape[axis] - np.count_nonzero(nan, axis=axis, keepdims=True)
    if axis == 0 and a.shape[0] == 1:
        return a.copy(), n
    if axis == 0 and a.shape[0] <= NETWORK_MAX:
        return _network_sort0(a, nan), n
    return np.sort(a, axis=axis), n


def _pick(s: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """``s`` at index ``k`` (a length-1 axis) along ``axis``, kept as a length-1 axis; a short
    axis 0 by ``numpy.choose`` (no index arrays built)."""
    if axis == 0 and s.shape[0] <= NETWORK_MAX:
        return np.choose(k[0], s)[None] if s.shape[0] > 1 else s[:1]
    return np.take_along_axis(s, k, axis=axis)


def _median_of_sorted(s: np.ndarray, n: np.ndarray, axis: int) -> np.ndarray:
    lo = _pick(s, np.maximum((n - 1) // 2, 0), axis)
    hi = _pick(s, n // 2, axis)  # n // 2 <= len - 1 whenever len >= 1
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
    highest = np.squeeze(_pick(s, np.maximum(n - 1, 0), axis), axis=axis)
    return lowest, _median_of_sorted(s, n, axis), highest
