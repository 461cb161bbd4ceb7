"""Thresholds of a change magnitude: Otsu (1979), a two-Gaussian mixture fitted by EM (Bruzzone
& Prieto 2000), the chi-square tail of the no-change model (IR-MAD, iSFA), and the default
``"auto"``: a bimodality test before any cut, so that a unimodal (no-change only) magnitude is
not split in half.

``"auto"`` (:func:`auto_threshold`): fit a two-Gaussian mixture by EM (as ``"mixture"``); the
histogram is called bimodal only when the change component's mean lies more than 2 no-change
standard deviations above the no-change mean (``(mu1 - mu0) / s0 > 2``: Ashman's D of Ashman,
Bird & Zepf 1994, AJ 108:2348, with the no-change spread for both components, because a change
component is broad and skewed and the symmetric D would call a clear two-population magnitude
one mode) and the two-component model beats one Gaussian by the Bayesian information criterion,
and (a norm) the log magnitude holds beyond its robust no-change tail more than ``TAIL_EXCESS`` =
10 times a Gaussian's 0.1 %: a no-change magnitude is skewed and heavy-tailed, about log-normal
at worst, so only an upper tail far heavier than a log-normal one is a population of change. Ashman's symmetric D is reported beside it. Bimodal: the mixture's Bayes boundary. Unimodal: no split
at the mode; only the tail beyond the robust no-change model ``median + z * 1.4826 * MAD``
(of the log for a norm) is flagged, z of a one-sided tail of probability :data:`TAIL_P` = 0.05,
the conventional significance level. The bimodality constants are fixed a priori; ``TAIL_P``
was chosen leave-one-set-out on the real labelled sets among 0.001 (the rule ``"auto-0.001"``,
the default until stop 24), 0.01 (``"auto-0.01"``) and 0.05 (``rsvlm evaluate real`` reports
the choice per held-out set; benchmarks/RESULTS.md). Otsu and the mixture are not candidates
for the default: they split a unimodal magnitude. The rule also
asks for spatial regularisation of the mask (:func:`regularise_mask`: a 3 x 3 majority, the
patch scale of a change that is more than one mixed pixel), which is what keeps the 5 % tail
of a spatially independent no-change magnitude from being flagged.

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


#: separation (no-change standard deviations) above which the change component is a mode of its own
SEPARATION_MIN = 2.0
#: z of the one-sided no-change tail (P = 0.001) beyond which the heavy-tail test counts
TAIL_Z = float(special.ndtri(1 - 0.001))
#: the bimodality-test rules by name -> the one-sided tail probability of the robust no-change
#: model flagged when the magnitude is unimodal; ``"auto"``'s 0.05 was chosen among them
#: leave-one-set-out (see the module docstring)
AUTO_TAIL_RULES: dict[str, float] = {"auto": 0.05, "auto-0.01": 0.01, "auto-0.001": 0.001}
#: the default rule's tail probability
TAIL_P = AUTO_TAIL_RULES["auto"]
#: how many times a Gaussian's share the upper tail of the log magnitude (beyond the robust
#: no-change tail) must hold to be a population of its own (a log-normal holds 1x)
TAIL_EXCESS = 10.0
#: side (px) of the majority filter of the regularised mask
REGULARISE_SIZE = 3


def _binned_loglik(h: np.ndarray, e: np.ndarray, pi: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> float:
    """Log-likelihood of histogram counts ``h`` (edges ``e``) under a Gaussian mixture, by the
    probability mass of each bin (exact for binned data)."""
    cdf = special.ndtr((e[None, :] - mu[:, None]) / sd[:, None])  # (K, bins + 1)
    mass = (pi[:, None] * np.diff(cdf, axis=1)).sum(axis=0)
    mass = np.maximum(mass, 1e-300)
    return float((h * np.log(mass)).sum())


def bimodality(counts: np.ndarray, edges: np.ndarray) -> dict[str, Any]:
    """Is the histogram (``counts``, ``edges``) two modes or one?

    Returns ``{"bimodal", "separation", "ashman_d", "delta_bic", "mixture", "median", "mad"}``:
    the two-Gaussian EM fit (None when it has no boundary), the separation ``(mu1 - mu0) / s0``
    and Ashman's D of its components, the BIC of one Gaussian minus that of the two-component
    model (> 0: two fit better), and the robust centre / spread (median, MAD, in magnitude
    units) of the histogram. ``bimodal`` is ``separation > SEPARATION_MIN`` and ``delta_bic > 0``.
    """
    h = np.asarray(counts, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    c = (e[:-1] + e[1:]) / 2
    n = float(h.sum())
    if n <= 0:
        raise InsufficientDataError("empty histogram; expected at least one value to threshold")
    cum = np.cumsum(h) / n
    med = float(np.interp(0.5, cum, e[1:]))
    dev = np.abs(c - med)
    order = np.argsort(dev)
    mad = float(dev[order][np.searchsorted(np.cumsum(h[order]) / n, 0.5)])
    mad = max(mad, float(e[1] - e[0]) / 2)
    mu1 = float(np.average(c, weights=h))
    sd1 = max(math.sqrt(float(np.average((c - mu1) ** 2, weights=h))), float(e[1] - e[0]) / math.sqrt(12))
    ll1 = _binned_loglik(h, e, np.array([1.0]), np.array([mu1]), np.array([sd1]))
    out: dict[str, Any] = {"bimodal": False, "separation": 0.0, "ashman_d": 0.0, "delta_bic": -np.inf,
                           "mixture": None, "median": med, "mad": mad}
    try:
        mix = mixture_from_histogram(h, e)
    except InsufficientDataError:
        return out
    mu, sd, pi = mix["means"], mix["stds"], mix["weights"]
    ll2 = _binned_loglik(h, e, pi, mu, sd)
    d = math.sqrt(2.0) * abs(float(mu[1] - mu[0])) / math.sqrt(float(sd[0] ** 2 + sd[1] ** 2))
    dbic = (-2 * ll1 + 2 * math.log(n)) - (-2 * ll2 + 5 * math.log(n))
    sep = float(mu[1] - mu[0]) / float(sd[0])
    out.update(mixture=mix, separation=sep, ashman_d=d, delta_bic=float(dbic),
               bimodal=bool(sep > SEPARATION_MIN and dbic > 0))
    return out


def auto_from_histogram(counts: np.ndarray, edges: np.ndarray, tail_p: float = TAIL_P) -> dict[str, Any]:
    """The ``"auto"`` threshold of a histogram: the mixture boundary when :func:`bimodality`
    finds two modes, else the robust no-change tail ``median + z * 1.4826 * MAD`` (``z`` of the
    one-sided tail probability ``tail_p``). Returns the :func:`bimodality` report plus
    ``"threshold"`` and ``"split"`` (``"mixture"`` or ``"tail"``)."""
    rep = bimodality(counts, edges)
    tail = rep["median"] + float(special.ndtri(1 - tail_p)) * 1.4826 * rep["mad"]
    if rep["bimodal"]:
        thr, how = float(rep["mixture"]["threshold"]), "mixture"
    else:
        thr, how = tail, "tail"
    rep.update(threshold=float(thr), split=how, tail=float(tail))
    return rep


def auto_threshold(values: Any, bins: int = DEFAULT_BINS, tail_p: float = TAIL_P) -> float:
    """The ``"auto"`` threshold (bimodality test, then mixture boundary or the no-change tail
    of probability ``tail_p``) of the finite ``values`` (numpy, dask or xarray), in their units."""
    return float(auto_rule_threshold(values, bins, tail_p)["threshold"])


def _majority(block: np.ndarray, size: int) -> np.ndarray:
    from scipy import ndimage

    b = np.asarray(block)
    ok = b >= 0
    votes = ndimage.uniform_filter((b == 1).astype(np.float32), size, mode="nearest")
    valid = ndimage.uniform_filter(ok.astype(np.float32), size, mode="nearest")
    out = (votes > valid / 2).astype(np.int8)
    return np.where(ok, out, -1).astype(np.int8)


def regularise_mask(mask: xr.DataArray, valid: xr.DataArray | None = None,
                    size: int = REGULARISE_SIZE) -> xr.DataArray:
    """Spatial regularisation of a boolean change mask (y, x): a pixel is changed when most
    valid pixels of its ``size`` x ``size`` window are (majority filter; invalid pixels do not
    vote and stay False). Lazy for dask input (one overlap of ``size // 2`` px)."""
    if size < 2:
        return mask
    code = xr.where(mask, 1, 0).astype(np.int8)
    if valid is not None:
        code = xr.where(valid, code, -1).astype(np.int8)
    data = code.data
    if is_dask(data):
        import dask.array as da

        out = da.map_overlap(_majority, data, depth=size // 2, boundary="nearest", dtype=np.int8,
                             size=size)
    else:
        out = _majority(np.asarray(data), size)
    res = code.copy(data=out) == 1
    res.attrs.update(mask.attrs)
    return res.rename(mask.name) if mask.name is not None else res


# --------------------------------------------------------------------------------------------
# the lookup table


@dataclass(frozen=True)
class ThresholdRule:
    """A named threshold rule: ``apply(magnitude, fit, bins, alpha, details) -> threshold`` in
    magnitude units (``fit``: the method's fit, with ``chi_square``, ``dof`` and ``method``)."""

    apply: Callable[..., float]
    needs_chi_square: bool
    description: str
    regularise: bool = False  #: the mask is spatially regularised (:func:`regularise_mask`)


def _otsu_rule(mag: Any, fit: Any, bins: int, alpha: float, details: dict[str, Any]) -> float:
    return otsu_threshold(mag, bins)


def _mixture_rule(mag: Any, fit: Any, bins: int, alpha: float, details: dict[str, Any]) -> float:
    mix = mixture_from_histogram(*histogram(mag, bins))
    details["mixture"] = mix
    return float(mix["threshold"])


def _block_hist_clip(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    x = np.asarray(v, dtype=np.float64)
    x = np.clip(x[np.isfinite(x)], edges[0], edges[-1])
    return np.histogram(x, bins=edges)[0].astype(np.float64)


def bulk_histogram(values: Any, bins: int = DEFAULT_BINS, quantile: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`histogram`, but over [min, the ``quantile``] of the finite values (larger
    values counted in the last bin) when a long tail would squeeze the bulk into a few bins of
    the [min, max] histogram (one more pass over the data)."""
    counts, edges = histogram(values, bins)
    cum = np.cumsum(counts) / counts.sum()
    k = int(np.searchsorted(cum, quantile))
    if k >= bins // 4:
        return counts, edges
    hi = float(edges[min(k + 1, bins)])
    new = np.linspace(float(edges[0]), hi, bins + 1)
    data = _data_of(values)
    if not is_dask(data):
        data = np.asarray(data)
    return reduce_blocks(data, _block_hist_clip, bins, new), new


def _log_block(v: np.ndarray, floor: float) -> np.ndarray:
    x = np.asarray(v, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(np.maximum(x, floor))


def log_values(values: Any, floor: float) -> Any:
    """``log(max(values, floor))`` of numpy, dask or xarray ``values`` (lazy for dask; NaN kept)."""
    data = _data_of(values)
    if is_dask(data):
        return data.map_blocks(_log_block, floor, dtype=np.float64)
    return _log_block(np.asarray(data), floor)


def _skewness(counts: np.ndarray, edges: np.ndarray) -> float:
    c = (edges[:-1] + edges[1:]) / 2
    w = np.asarray(counts, dtype=np.float64)
    mu = float(np.average(c, weights=w))
    sd = math.sqrt(float(np.average((c - mu) ** 2, weights=w)))
    return float(np.average((c - mu) ** 3, weights=w) / sd**3) if sd > 0 else 0.0


def _upper_mad(counts: np.ndarray, edges: np.ndarray, med: float) -> float:
    """Median of the deviations above ``med`` of a histogram (the upper half's MAD: 0.6745
    sigma for a Gaussian, blind to a long lower tail, such as the log of magnitudes near 0)."""
    c = (edges[:-1] + edges[1:]) / 2
    up = c > med
    h = np.asarray(counts, dtype=np.float64)[up]
    if h.sum() <= 0:
        return float(edges[1] - edges[0])
    dev = c[up] - med
    k = int(np.searchsorted(np.cumsum(h) / h.sum(), 0.5))
    return max(float(dev[min(k, dev.size - 1)]), float(edges[1] - edges[0]) / 2)


def auto_rule_threshold(values: Any, bins: int = DEFAULT_BINS, tail_p: float = TAIL_P) -> dict[str, Any]:
    """The ``"auto"`` rule on a magnitude (numpy, dask or xarray). Two modes when
    :func:`bimodality` finds them on the magnitude *and*, for a non-negative magnitude (a norm),
    its log holds beyond its robust tail (``median + TAIL_Z * 1.4826 MAD`` of the log, the MAD of
    its upper half, blind to the long lower tail a log gives magnitudes near 0) more than
    ``TAIL_EXCESS`` = 10 times a Gaussian's share (0.1 %): a no-change magnitude is skewed and
    heavy-tailed, at most about log-normal, so only an upper tail far heavier than a log-normal
    one is a change population (a chi, gamma, log-normal or Student magnitude alone is not split).
    Then the mixture boundary; else the no-change tail of probability ``tail_p``, computed in
    log for a norm (``exp`` of ``median + z(tail_p) * 1.4826 MAD`` of the log). Returns the
    report; ``"threshold"`` in the magnitude's units."""
    rep = auto_from_histogram(*bulk_histogram(values, bins), tail_p=tail_p)
    data = _data_of(values)
    n, lo, hi = reduce_blocks(data if is_dask(data) else np.asarray(data), _block_range, 3,
                              combine=("sum", "min", "max"))
    rep["log_skewness"] = None
    if lo >= 0 and hi > 0:
        lc, le = histogram(log_values(values, hi * 1e-6), bins)
        lrep = bimodality(lc, le)
        rep["log_skewness"] = _skewness(lc, le)
        spread = 1.4826 * _upper_mad(lc, le, lrep["median"])
        rep["tail"] = float(math.exp(lrep["median"] + float(special.ndtri(1 - tail_p)) * spread))
        centres = (le[:-1] + le[1:]) / 2
        far = lrep["median"] + TAIL_Z * spread
        rep["log_tail_share"] = excess = float(lc[centres > far].sum() / lc.sum())
        rep["bimodal"] = bool(rep["bimodal"] and excess > TAIL_EXCESS * (1 - special.ndtr(TAIL_Z)))
        if rep["bimodal"]:
            rep.update(threshold=float(rep["mixture"]["threshold"]), split="mixture")
        else:
            rep.update(threshold=rep["tail"], split="tail")
    return rep


def _auto_rule(tail_p: float) -> Callable[..., float]:
    def apply(mag: Any, fit: Any, bins: int, alpha: float, details: dict[str, Any]) -> float:
        rep = auto_rule_threshold(mag, bins, tail_p)
        details["auto"] = rep
        return float(rep["threshold"])
    return apply


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
    **{name: ThresholdRule(_auto_rule(p), False, "bimodality test (EM mixture, Ashman's D, BIC) "
                           f"before a cut; unimodal: the robust no-change tail at {100 * p:g}%; "
                           "3x3 majority", True) for name, p in AUTO_TAIL_RULES.items()},
}

#: the default rule: refuses to split a unimodal (no-change only) magnitude
DEFAULT_THRESHOLD = "auto"


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
