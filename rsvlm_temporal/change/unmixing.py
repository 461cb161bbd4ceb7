"""Linear spectral unmixing with the physical constraints: fractions >= 0 that sum to one.

The fully constrained least-squares (FCLS) fractions of Heinz & Chang (2001) are found exactly
and vectorised over pixels: the optimum is the sum-to-one least-squares solution on its own set
of non-zero endmembers (Karush-Kuhn-Tucker), so every non-empty subset of the few endmembers is
solved in closed form and the feasible solution with the smallest residual wins. With E
endmembers that is 2**E - 1 small solves, cheap for the handful of surfaces used here.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np


@lru_cache(maxsize=16)
def _subset_operators(em_bytes: bytes, shape: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each endmember subset: (indices, M (k, B), g (k,)) with the sum-to-one LS solution
    f = M y - g (1'M y - 1)."""
    em = np.frombuffer(em_bytes, dtype=np.float64).reshape(shape)
    E = em.shape[0]
    ops = []
    for k in range(1, E + 1):
        for subset in combinations(range(E), k):
            a = em[list(subset)].T  # (B, k)
            inv = np.linalg.pinv(a.T @ a)
            m = inv @ a.T
            ones = np.ones(k)
            denom = ones @ inv @ ones
            if abs(denom) < 1e-12:
                continue
            ops.append((np.array(subset), m, inv @ ones / denom))
    return ops


def fcls(spectra: np.ndarray, endmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fully constrained fractions of ``spectra`` (B, P) reflectance 0-1 over ``endmembers``
    (E, B). Returns (fractions (E, P) >= 0 summing to 1, residual RMS (P,) in reflectance);
    NaN for pixels with any NaN band."""
    em = np.asarray(endmembers, dtype=np.float64)
    y = np.asarray(spectra, dtype=np.float64)
    E, P = em.shape[0], y.shape[1]
    ok = np.isfinite(y).all(axis=0)
    y0 = np.where(ok, y, 0.0)
    best = np.full(P, np.inf)
    frac = np.zeros((E, P))
    for idx, m, g in _subset_operators(em.tobytes(), em.shape):
        fu = m @ y0  # (k, P)
        f = fu - g[:, None] * (fu.sum(axis=0) - 1.0)[None, :]
        feasible = (f >= -1e-9).all(axis=0)
        res = ((em[idx].T @ f - y0) ** 2).sum(axis=0)
        take = feasible & (res < best - 1e-15)
        if take.any():
            best = np.where(take, res, best)
            frac[:, take] = 0.0
            frac[idx[:, None], np.flatnonzero(take)[None, :]] = np.clip(f[:, take], 0.0, None)
    frac = np.where(ok, frac, np.nan)
    rms = np.where(ok, np.sqrt(best / y.shape[0]), np.nan)
    return frac, rms
