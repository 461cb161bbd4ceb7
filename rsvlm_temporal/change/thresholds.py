"""Thresholds of a change magnitude: Otsu (1979), a two-Gaussian mixture fitted by EM (Bruzzone
& Prieto 2000) and the chi-square tail of the no-change model (IR-MAD, iSFA).

One lookup table, :data:`THRESHOLDS`, names the rules: it feeds :func:`threshold_value`, the
CLI's choices and the error that lists the valid names (:func:`check_threshold`, run before any
pixel is read). Histograms of dask arrays are reduced block by block (two passes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import xarray as xr
from scipy import special

from rsvlm_temporal.compute.blocks import is_dask, reduce_blocks
from rsvlm_temporal.errors import InsufficientDataError, ParameterError, unknown_name

DEFAULT_BINS = 256


def _block_range(v: np.ndarray) -> np.ndarray:
    x = np.asarray(v, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.array([0.0, np.inf, -np.inf])
    return np.array([float(x.size), x.min(), x.max()])


def _block_hist(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    x = np.asarray(v, dtype=np.float64)
    return np.histogram(x[np.isfinite(x)], bins=edges)[0].astype(np.float64)


def _data_of(values: Any) -> Any:
    if isinstance(values, xr.DataArray):
        return values.data
    return values


def histogram(values: Any, bins: int = DEFAULT_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges of ``bins`` equal bins over [min, max] of the finite values.

    ``values``: numpy, dask or xarray (numpy/dask). Dask input is reduced block by block: one pass
    for the range, one for the counts. Raises :class:`InsufficientDataError` if nothing is finite.
    """
    data = _data_of(values)
    if not is_dask(data):
        data = np.asarray(data)
    n, lo, hi = reduce_blocks(data, _block_range, 3, combine=("sum", "min", "max"))
    if n == 0:
        raise InsufficientDataError(
            "no finite value to threshold (all-NaN magnitude); expected valid pixels"
        )
    if hi == lo:
        hi = lo + max(abs(lo), 1.0) * 1e-9
    edges = np.linspace(lo, hi, bins + 1)
    counts = reduce_blocks(data, _block_hist, bins, edges)
    return counts, edges


def otsu_from_histogram(counts: np.ndarray, edges: np.ndarray) -> float:
    """Otsu (1979) threshold from a histogram: the bin edge maximising between-class variance.

    ``sigma_B^2(k) = (mu_T w0(k) - mu(k))^2 / (w0(k) (1 - w0(k)))`` with ``w0``, ``mu`` the
    cumulative probability and first moment up to bin k; values ``> threshold`` are class 1.
    """
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise InsufficientDataError("empty histogram; expected at least one value to threshold")
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts) / total
    mu = np.cumsum(counts * centres) / total
    mu_t = mu[-1]
    w1 = 1.0 - w0
    ok = (w0 > 0) & (w1 > 1e-12)
    sb = np.zeros_like(w0)
    sb[ok] = (mu_t * w0[ok] - mu[ok]) ** 2 / (w0[ok] * w1[ok])
    if not ok.any():  # one populated bin: nothing to split
        return float(edges[-1])
    k = int(np.argmax(sb))
    return float(edges[k + 1])


def otsu_threshold(values: Any, bins: int = DEFAULT_BINS) -> float:
    """Otsu threshold of the finite ``values`` (numpy, dask or xarray) on a ``bins``-bin histogram."""
    return otsu_from_histogram(*histogram(values, bins))


def mixture_from_histogram(
    counts: np.ndarray, edges: np.ndarray, max_iter: int = 500, tol: float = 1e-9
) -> dict[str, Any]:
    """Two-Gaussian mixture fitted by EM to a histogram; threshold at equal weighted densities.

    Initialised from the Otsu split. Returns ``{"threshold", "weights", "means", "stds",
    "iterations"}``; component 0 is the lower-mean (no-change) one. Threshold: the root of
    ``pi0 N(t; mu0, s0) = pi1 N(t; mu1, s1)`` between the two means (Bayes minimum error,
    Bruzzone & Prieto 2000). Raises :class:`InsufficientDataError` if no such root exists.
    """
    h = np.asarray(counts, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    c = (e[:-1] + e[1:]) / 2
    width = float(e[1] - e[0])
    smin = width / math.sqrt(12.0)
    t0 = otsu_from_histogram(h, e)
    lo = c <= t0
    if h[lo].sum() == 0 or h[~lo].sum() == 0:
        raise InsufficientDataError("histogram has a single mode; no two-class mixture to fit")
    pi = np.array([h[lo].sum(), h[~lo].sum()]) / h.sum()
    mu = np.array([np.average(c[lo], weights=h[lo]), np.average(c[~lo], weights=h[~lo])])
    sd = np.array([
        math.sqrt(max(np.average((c[lo] - mu[0]) ** 2, weights=h[lo]), smin**2)),
        math.sqrt(max(np.average((c[~lo] - mu[1]) ** 2, weights=h[~lo]), smin**2)),
    ])
    ll_old = -np.inf
    it = 0
    for it in range(1, max_iter + 1):
        logp = (np.log(pi)[:, None] - np.log(sd)[:, None]
                - 0.5 * ((c[None, :] - mu[:, None]) / sd[:, None]) ** 2)
        mx = logp.max(axis=0)
        lse = mx + np.log(np.exp(logp - mx).sum(axis=0))
        r = np.exp(logp - lse) * h
        nk = r.sum(axis=1)
        if np.any(nk <= 0):
            break
        pi = nk / nk.sum()
        mu = (r * c).sum(axis=1) / nk
        sd = np.sqrt(np.maximum((r * (c[None, :] - mu[:, None]) ** 2).sum(axis=1) / nk, smin**2))
        ll = float((h * lse).sum())
        if abs(ll - ll_old) <= tol * abs(ll):
            break
        ll_old = ll
    order = np.argsort(mu)
    pi, mu, sd = pi[order], mu[order], sd[order]
    # solve a t^2 + b t + c = 0 for log(pi0 N0) = log(pi1 N1)
    a2 = 1 / (2 * sd[1] ** 2) - 1 / (2 * sd[0] ** 2)
    b1 = mu[0] / sd[0] ** 2 - mu[1] / sd[1] ** 2
    c0 = (mu[1] ** 2 / (2 * sd[1] ** 2) - mu[0] ** 2 / (2 * sd[0] ** 2)
          + math.log(pi[0] * sd[1] / (pi[1] * sd[0])))
    if abs(a2) < 1e-15:
        roots = np.array([-c0 / b1]) if b1 != 0 else np.array([])
    else:
        roots = np.roots([a2, b1, c0])
        roots = roots[np.isreal(roots)].real
    between = roots[(roots >= mu[0]) & (roots <= mu[1])]
    if between.size == 0:
        raise InsufficientDataError(
            f"the two-Gaussian mixture (means {mu.tolist()}, stds {sd.tolist()}, weights "
            f"{pi.tolist()}) has no decision boundary between its means; use threshold='otsu'"
        )
    return {"threshold": float(between.min()), "weights": pi, "means": mu, "stds": sd,
            "iterations": it}


def mixture_threshold(values: Any, bins: int = DEFAULT_BINS) -> float:
    """Two-Gaussian-mixture (EM on the histogram) threshold of the finite ``values``."""
    return mixture_from_histogram(*histogram(values, bins))["threshold"]


# --------------------------------------------------------------------------------------------
# the lookup table


@dataclass(frozen=True)
class ThresholdRule:
    """A named threshold rule: ``apply(magnitude, fit, bins, alpha, details) -> threshold`` in
    magnitude units (``fit``: the method's fit, with ``chi_square``, ``dof`` and ``method``)."""

    apply: Callable[..., float]
    needs_chi_square: bool
    description: str


def _otsu_rule(mag: Any, fit: Any, bins: int, alpha: float, details: dict[str, Any]) -> float:
    return otsu_threshold(mag, bins)


def _mixture_rule(mag: Any, fit: Any, bins: int, alpha: float, details: dict[str, Any]) -> float:
    mix = mixture_from_histogram(*histogram(mag, bins))
    details["mixture"] = mix
    return float(mix["threshold"])


def _chi2_rule(mag: Any, fit: Any, bins: int, alpha: float, details: dict[str, Any]) -> float:
    if not fit.chi_square:
        raise ParameterError(
            f"threshold='chi2' needs a chi-square statistic (irmad, mad, isfa, sfa); "
            f"method {fit.method!r} has none: use 'otsu' or 'mixture'"
        )
    return math.sqrt(float(special.chdtri(fit.dof, alpha)))


#: the threshold rules by name
THRESHOLDS: dict[str, ThresholdRule] = {
    "otsu": ThresholdRule(_otsu_rule, False, "Otsu (1979): maximum between-class variance"),
    "mixture": ThresholdRule(_mixture_rule, False, "two-Gaussian mixture (EM), equal weighted densities"),
    "chi2": ThresholdRule(_chi2_rule, True, "chi-square tail of the no-change model at alpha"),
}


def check_threshold(threshold: str | float, alpha: float = 0.01) -> str:
    """The rule name of ``threshold`` (``"fixed"`` for a number), checked before any pixel is
    read: :class:`UnknownNameError` listing :data:`THRESHOLDS` for an unknown name,
    :class:`ParameterError` for a non-finite number or ``alpha`` outside (0, 1)."""
    if isinstance(threshold, str):
        name = threshold.lower()
        if name not in THRESHOLDS:
            raise unknown_name("threshold", threshold, [*THRESHOLDS, "a number"])
        if THRESHOLDS[name].needs_chi_square and not 0 < alpha < 1:
            raise ParameterError(f"alpha must be in (0, 1); got {alpha}")
        return name
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ParameterError(f"threshold {threshold!r} is neither a rule name {sorted(THRESHOLDS)} nor a number") from None
    if not math.isfinite(value):
        raise ParameterError(f"threshold must be finite; got {threshold}")
    return "fixed"


def threshold_value(threshold: str | float, magnitude: Any, fit: Any, bins: int = DEFAULT_BINS,
                    alpha: float = 0.01, details: dict[str, Any] | None = None) -> tuple[float, str]:
    """``(threshold in magnitude units, rule name)`` of ``threshold`` (a name of
    :data:`THRESHOLDS` or a number) on ``magnitude``; a rule may add to ``details``."""
    name = check_threshold(threshold, alpha)
    if name == "fixed":
        return float(threshold), name
    return THRESHOLDS[name].apply(magnitude, fit, bins, alpha, details if details is not None else {}), name
