"""Unsupervised bi-temporal change magnitude: CVA, (IR-)MAD and (I)SFA, with automatic thresholds.

Inputs are two co-registered images ``before`` and ``after`` as ``xarray.DataArray`` with dims
``("band", "y", "x")`` (a size-1 ``time`` dim is squeezed; a 2-D ``(y, x)`` image is one band), any
float or integer dtype (surface reflectance 0-1 or raw DN: every method here is either invariant to,
or standardises away, a per-band linear radiometric difference, except ``cva(standardise=False)``).
NaN marks invalid pixels; a pixel is used only where every band of both images is finite.
The arrays may be numpy- or dask-backed.

Every method is a *linear change transform* of the pair followed by a squared norm::

    f(x, y) = Wx^T x - Wy^T y - c            (k change variates, k = number of bands)
    Z       = sum_j f_j^2 / var_j            (chi-square statistic, k degrees of freedom)
    magnitude = sqrt(Z)                      (length of the standardised change vector)

* ``cva``   Change vector analysis (Malila 1980; Bovolo & Bruzzone 2007). With ``standardise=True``
  each image is standardised per band, ``(x - mean) / std`` over its own valid pixels, before the
  difference (so ``var_j = 1``); with ``standardise=False`` the plain difference ``y - x``.
* ``mad`` / ``irmad``  Multivariate alteration detection (Nielsen, Conradsen & Simpson 1998) and its
  iteratively reweighted form (Nielsen 2007, IEEE TIP 16(2):463-478). Canonical correlation
  analysis of the pair with (weighted) covariances ``Sxx, Syy, Sxy``::

      Sxy Syy^-1 Syx a = rho^2 Sxx a,   b = Syy^-1 Syx a,   a^T Sxx a = b^T Syy b = 1
      MAD_j = a_j^T (x - mu_x) - b_j^T (y - mu_y),   var(MAD_j) = 2 (1 - rho_j)

  Under no change ``Z = sum_j MAD_j^2 / (2 (1 - rho_j))`` is approximately chi-square with k d.o.f.;
  IR-MAD reweights every pixel by its no-change probability ``w = P(chi2_k > Z)`` and repeats until
  the largest change in the canonical correlations is below ``tol``. The MAD variates are
  invariant to any affine (gain/offset, even band-mixing) transform of either image, which is why
  IR-MAD needs no prior radiometric normalisation (Canty & Nielsen 2008, RSE 112(3):1025-1036).
* ``sfa`` / ``isfa``  Slow feature analysis (Wu, Du & Zhang 2014, IEEE TGRS 52(5):2858-2874): both
  images are standardised per band with (weighted) means and standard deviations, then with
  ``A = cov(x_n - y_n)`` and ``B = (cov(x_n) + cov(y_n)) / 2``::

      A w = lambda B w,   w^T B w = 1,   SFA_j = w_j^T (x_n - y_n),   var(SFA_j) = lambda_j

  ISFA reweights pixels by the chi-square no-change probability as IR-MAD does.

Chi-square calibration (our addition, ``calibrate=True``): the reweighted covariances shrink the
no-change variances (the weights cut the no-change distribution's own tails), to 0.44 of the true
value for 6 bands at convergence, which inflates ``Z`` and makes the chi-square p-values far too
small. :func:`reweighting_shrinkage` gives the exact factor under a Gaussian no-change model and
the final variances are divided by it. This is a constant rescaling of the magnitude: Otsu and
mixture masks are identical with or without it; only ``threshold="chi2"`` and the no-change
probability change.

Statistics are the only non-local quantities. They are accumulated chunk by chunk (per block: the
count, ``sum w``, ``sum w^2``, ``sum w z`` and ``sum w z z^T`` of the stacked ``2k``-band vector
``z``, i.e. ``3 + 2k + 4k^2`` numbers in float64), combined by a dask tree reduction whose
every node sums exactly (``math.fsum``), and the small eigenproblems are solved in numpy.
No step uses a BLAS product over pixels (whose rounding depends on the BLAS thread count), so
the magnitude, the threshold and the mask are bit-identical on the threaded scheduler and on
any dask.distributed cluster with the same chunks. For a dask-backed pair IR-MAD / ISFA read the
images once: the valid pixels of the stacked pair are held in memory for the fit when they are
at most :data:`FIT_MEMORY_BYTES` and dask computes in this process (threaded or synchronous
scheduler), and every iteration sums the same per-block moments over them in the same tree of
exact sums (bit-identical to the lazy passes); a larger pair, or another scheduler (a
dask.distributed client), makes each iteration one lazy pass over the images whose compute
returns only those numbers. The per-pixel products (magnitude, mask, no-change probability)
stay lazy dask arrays. A threshold from the data (Otsu, mixture) costs two more passes
(range, then a fixed-bin histogram). Standardised CVA costs one pass (means, standard deviations);
plain CVA with a numeric threshold computes nothing until asked.

With few, highly correlated bands (RGB) the reweighting can keep raising the canonical correlations
towards 1 while the weights concentrate on ever fewer pixels. Iteration stops (no printed warning:
``converged=False`` and the reason in ``details["not_converged"]``, which the change analysis turns
into a typed ``irmad_not_converged`` quality note) when the effective number of weighted pixels
``(sum w)^2 / sum w^2`` falls below ``2k + 2`` or the weighted covariance becomes singular, and the
last well-posed iteration is used.

Thresholds (``changed = magnitude > threshold``):

* ``"otsu"``  Otsu (1979) between-class-variance maximum on a 256-bin histogram of the magnitude.
  In one dimension this is the global optimum of 2-means, the clustering used on sqrt(chi-square)
  of IR-MAD / ISFA in published practice.
* ``"mixture"``  Two-component Gaussian mixture fitted by EM to the histogram (initialised from the
  Otsu split), threshold where the two weighted densities are equal (Bruzzone & Prieto 2000,
  IEEE TGRS 38(3):1171-1182, Bayes minimum-error rule).
* ``"chi2"``  (chi-square methods only) changed where the no-change probability
  ``P(chi2_k > Z) < alpha``, i.e. ``threshold = sqrt(chi2_k.isf(alpha))``.
* a number: used as is, in magnitude units.

Default: ``method="irmad", threshold="auto"`` (before: ``"otsu"``). IR-MAD because it is the published unsupervised
method that is invariant to linear radiometric differences between dates (raw DN of different
sensors/dates, or surface reflectance with residual calibration differences) and is used operationally
for multi-sensor change detection and relative normalisation (Canty & Nielsen 2008); Otsu on the
sqrt(chi-square) magnitude because the chi-square p-value relies on a Gaussian no-change model that
real images violate (heavy-tailed no-change: misregistration, phenology, quantisation), while the
histogram split makes no distributional assumption.

Figures on the real Landsat 7 Taizhou pair (labelled pixels; ``python -m
rsvlm_temporal.evaluate.taizhou``): irmad+otsu Kappa 0.932, isfa+otsu 0.918, standardised
cva+otsu 0.892, irmad+chi2 (alpha 0.01, calibrated) 0.748.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import xarray as xr
from scipy import linalg, special

from rsvlm_temporal.change.thresholds import (  # noqa: F401  (re-exported: part of this module's API)
    DEFAULT_BINS,
    DEFAULT_THRESHOLD,
    THRESHOLDS,
    check_threshold,
    histogram,
    mixture_from_histogram,
    mixture_threshold,
    otsu_from_histogram,
    otsu_threshold,
    regularise_mask,
    threshold_value,
)
from rsvlm_temporal.compute.blocks import is_dask, reduce_blocks
from rsvlm_temporal.errors import InsufficientDataError, ItemError, ParameterError, unknown_name
from rsvlm_temporal.grid import georef_attrs

__all__ = [
    "ChangeMagnitude",
    "LinearChangeTransform",
    "MagnitudeFit",
    "METHODS",
    "change_magnitude",
    "cva",
    "histogram",
    "irmad",
    "isfa",
    "mixture_threshold",
    "otsu_from_histogram",
    "otsu_threshold",
    "mixture_from_histogram",
    "reweighting_shrinkage",
]

#: dask chunk side (px) the statistics passes merge small chunks up to (see _for_fit)
FIT_BLOCK = 256

ThresholdSpec = Literal["auto", "otsu", "mixture", "chi2"] | float


# --------------------------------------------------------------------------------------------
# data classes


@dataclass(frozen=True)
class LinearChangeTransform:
    """Change variates ``f = wx.T @ x - wy.T @ y - c`` and their no-change variances ``var``.

    ``wx``, ``wy``: (bands, k); ``c``, ``var``: (k,). The magnitude is ``sqrt(sum f**2 / var)``.
    """

    wx: np.ndarray
    wy: np.ndarray
    c: np.ndarray
    var: np.ndarray

    @property
    def k(self) -> int:
        """Number of change variates (degrees of freedom of the chi-square statistic)."""
        return int(self.var.shape[0])


@dataclass(frozen=True)
class MagnitudeFit:
    """A fitted change magnitude before thresholding.

    ``magnitude``: (y, x) float32, NaN where invalid (units: standard deviations of no-change for
    chi-square methods and standardised CVA, input units for plain CVA).
    ``no_change_probability``: ``P(chi2_k > magnitude^2)`` for chi-square methods, else None.
    """

    magnitude: xr.DataArray
    method: str
    transform: LinearChangeTransform
    dof: int
    chi_square: bool
    iterations: int
    converged: bool
    n_valid: int | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def no_change_probability(self) -> xr.DataArray | None:
        """Lazy ``P(chi2_dof > magnitude^2)`` (the IR-MAD / ISFA weights), None for CVA."""
        if not self.chi_square:
            return None
        k = self.dof
        out = xr.apply_ufunc(
            lambda m: special.chdtrc(k, np.square(m.astype(np.float64))).astype(np.float32),
            self.magnitude, dask="parallelized", output_dtypes=[np.float32],
        )
        out.attrs = {**georef_attrs(self.magnitude), "long_name": "no-change probability",
                     "units": "1"}
        return out.rename("no_change_probability")

    @property
    def chi2(self) -> xr.DataArray:
        """The squared magnitude (the chi-square statistic for chi-square methods)."""
        out = np.square(self.magnitude)
        out.attrs = {**georef_attrs(self.magnitude), "long_name": "chi-square change statistic"}
        return out.rename("chi2")


@dataclass(frozen=True)
class ChangeMagnitude:
    """Result of :func:`change_magnitude`.

    ``magnitude`` (y, x) float32 NaN where invalid; ``mask`` (y, x) bool, True = changed, False
    where unchanged or invalid; ``valid`` (y, x) bool. Both keep the input's ``x``/``y`` coords and
    georeferencing attrs (``crs``, ``epsg``, ``transform``, ``resolution``). ``threshold`` is in
    magnitude units; ``threshold_method`` says how it was chosen.
    """

    magnitude: xr.DataArray
    mask: xr.DataArray
    valid: xr.DataArray
    threshold: float
    threshold_method: str
    method: str
    iterations: int
    converged: bool
    no_change_probability: xr.DataArray | None
    details: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# input handling




def _as_band_yx(img: xr.DataArray, name: str) -> xr.DataArray:
    if not isinstance(img, xr.DataArray):
        raise ParameterError(f"{name} must be an xarray.DataArray with dims (band, y, x); got {type(img)}")
    if "time" in img.dims:
        if img.sizes["time"] != 1:
            raise ItemError(
                f"{name} has {img.sizes['time']} time steps; expected one image (select a date)"
            )
        img = img.isel(time=0)
    if img.ndim == 2 and set(img.dims) == {"y", "x"}:
        img = img.expand_dims("band")
    if set(img.dims) != {"band", "y", "x"}:
        raise ItemError(f"{name} has dims {img.dims}; expected ('band', 'y', 'x')")
    return img.transpose("band", "y", "x")


def _prepare(before: xr.DataArray, after: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Check and align a pair: same bands (same order), same grid, overlapping footprint."""
    before = _as_band_yx(before, "before")
    after = _as_band_yx(after, "after")
    nb, na = before.sizes["band"], after.sizes["band"]
    bnames = [str(v) for v in before["band"].values] if "band" in before.coords else None
    anames = [str(v) for v in after["band"].values] if "band" in after.coords else None
    if nb != na:
        raise ItemError(
            f"band counts differ: before has {nb} bands {bnames or ''}, after has {na} "
            f"{anames or ''}; expected the same bands in both images"
        )
    if bnames is not None and anames is not None and bnames != anames:
        if sorted(bnames) != sorted(anames):
            raise ItemError(
                f"band names differ: before {bnames}, after {anames}; expected the same bands"
            )
        after = after.sel(band=before["band"].values)
    cb, ca = before.attrs.get("crs"), after.attrs.get("crs")
    if cb is not None and ca is not None and str(cb) != str(ca):
        raise ItemError(f"CRS differ: before {cb}, after {ca}; reproject to a common grid first")
    has_xy = all(c in img.coords for img in (before, after) for c in ("x", "y"))
    if has_xy:
        same = all(
            before.sizes[d] == after.sizes[d]
            and np.array_equal(before[d].values, after[d].values)
            for d in ("x", "y")
        )
        if not same:
            before, after = xr.align(before, after, join="inner", exclude=["band"])
    elif before.shape != after.shape:
        raise InsufficientDataError(
            f"image shapes differ ({before.shape} vs {after.shape}) and there are no x/y "
            "coordinates to align them; expected co-registered images on one grid"
        )
    if before.sizes["y"] == 0 or before.sizes["x"] == 0:
        raise InsufficientDataError(
            "before and after do not overlap (no common x/y pixel centres); expected "
            "co-registered images on the same grid"
        )
    return before, after


def _stack(before: xr.DataArray, after: xr.DataArray) -> Any:
    """(2k, y, x) numpy or dask array: bands of before, then of after (band axis one chunk)."""
    b, a = before.data, after.data
    if is_dask(b) or is_dask(a):
        import dask.array as da

        z = da.concatenate([da.asarray(b), da.asarray(a)], axis=0)
        return z.rechunk({0: -1})
    return np.concatenate([np.asarray(b), np.asarray(a)], axis=0)


def _for_fit(z: Any) -> Any:
    """``z`` for the statistics passes: dask chunks merged (never split) to about
    :data:`FIT_BLOCK` px a side, so that an iterative fit over small chunks does not pay the
    per-task overhead of every chunk on every iteration (the magnitude keeps the input's chunks).
    The merge is fixed by the chunks, so the statistics stay the same on every scheduler."""
    if not is_dask(z):
        return z
    k = [max(1, round(FIT_BLOCK / max(c))) for c in z.chunks[1:]]
    if k == [1, 1]:
        return z
    merged = [tuple(sum(c[i:i + f]) for i in range(0, len(c), f)) for c, f in zip(z.chunks[1:], k)]
    return z.rechunk((z.chunks[0],) + tuple(merged))


def _out_like(template: xr.DataArray, data: Any, name: str, attrs: dict[str, Any]) -> xr.DataArray:
    coords = {d: template[d] for d in ("y", "x") if d in template.coords}
    return xr.DataArray(
        data, dims=("y", "x"), coords=coords, name=name, attrs={**georef_attrs(template), **attrs}
    )


# --------------------------------------------------------------------------------------------
# block kernels (numpy; called on the whole array or on each dask block)


def _variates(zz: np.ndarray, t: LinearChangeTransform) -> np.ndarray:
    """(k, n) change variates ``wx.T x - wy.T y - c`` of the (2p, n) float64 pixels ``zz``.

    Accumulated band by band with numpy element-wise operations in a fixed order, not a BLAS
    matrix product: every pixel gets exactly the same arithmetic whatever the array size and the
    BLAS thread count (OpenBLAS splits large products across threads and the rounding then
    depends on the split), so results are identical on any scheduler.
    """
    p = t.wx.shape[0]
    f = np.empty((t.k, zz.shape[1]), dtype=np.float64)
    f[:] = -t.c[:, None]
    for i in range(p):
        f += t.wx[i][:, None] * zz[i]
        f -= t.wy[i][:, None] * zz[p + i]
    return f


def _block_variates(z: np.ndarray, t: LinearChangeTransform) -> tuple[np.ndarray, np.ndarray]:
    """(k, n) change variates and the (n,) validity of the pixels of a (2p, h, w) block."""
    p = t.wx.shape[0]
    zz = np.asarray(z, dtype=np.float64).reshape(2 * p, -1)
    valid = np.isfinite(zz).all(axis=0)
    return _variates(zz, t), valid


def _chi2_stat(f: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``sum_j f_j^2 / var_j`` per pixel, summed over j in a fixed order."""
    z = np.zeros(f.shape[1], dtype=np.float64)
    for j in range(f.shape[0]):
        z += f[j] * f[j] / var[j]
    return z


def _block_magnitude(z: np.ndarray, t: LinearChangeTransform) -> np.ndarray:
    f, valid = _block_variates(z, t)
    m = np.sqrt(_chi2_stat(f, t.var))
    m[~valid] = np.nan
    return m.reshape(z.shape[1:]).astype(np.float32)


def _valid_pixels_where(z: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """The (2p, n) pixels of a (2p, h, w) block that are finite in every band, contiguous, in the
    block's own dtype (every float32 / integer value is exact in float64), how many, and where
    they are: the (h, w) bool validity of the block."""
    q = z.shape[0]
    z = np.asarray(z)
    flat = z.reshape(q, -1)
    valid = np.isfinite(flat).all(axis=0)
    return np.ascontiguousarray(flat[:, valid]), int(valid.sum()), valid.reshape(z.shape[1:])


def _block_moments(
    z: np.ndarray, t: LinearChangeTransform | None, shift: np.ndarray
) -> np.ndarray:
    """[n_valid, sum w, sum w^2, sum w (z - shift) (2p), sum w (z-shift)(z-shift)^T (4p^2)].

    ``w = P(chi2_k > Z)`` under transform ``t`` (IR-MAD / ISFA weights), or 1 when ``t`` is None.
    float64; every sum is a numpy reduction over a contiguous row (pairwise summation, whose
    order depends only on the number of pixels), never a BLAS product (see :func:`_variates`).
    """
    pixels, n, _ = _valid_pixels_where(z)
    return _pixel_moments(pixels, n, t, shift)


def _pixel_moments(
    pixels: np.ndarray, n_valid: int, t: LinearChangeTransform | None, shift: np.ndarray
) -> np.ndarray:
    """:func:`_block_moments` of a block's valid pixels (as :func:`_valid_pixels_where` returns them)."""
    q = pixels.shape[0]
    zz = np.array(pixels, dtype=np.float64, order="C")
    if t is None:
        w = np.ones(zz.shape[1])
    else:
        w = special.chdtrc(t.k, _chi2_stat(_variates(zz, t), t.var))
    zz -= shift[:, None]
    zw = zz * w
    s1 = zw.sum(axis=1)
    s2 = np.empty((q, q), dtype=np.float64)
    for i in range(q):
        s2[i, i:] = (zw[i] * zz[i:]).sum(axis=1)
        s2[i:, i] = s2[i, i:]
    return np.concatenate([[float(n_valid), w.sum(), (w * w).sum()], s1, s2.ravel()])


class _PixelsInMemory:
    """The valid pixels of every block of a dask-backed (2p, y, x) stack, read once and held in
    memory (in the stack's dtype), so that an iterative fit reads its inputs once, not once per
    iteration. Each iteration computes the same per-block vectors as :func:`_block_moments` (on
    a pool of the scheduler's threads) and combines them with the same dask tree of exact sums
    as :func:`~rsvlm_temporal.compute.blocks.reduce_blocks`: the statistics are bit-identical
    to the lazy passes'."""

    def __init__(self, z: Any) -> None:
        import dask

        self.shape = z.shape
        self.numblocks = z.numblocks
        self.chunks = z.chunks
        cells = z.to_delayed().ravel()
        done = dask.compute(*[dask.delayed(_valid_pixels_where)(c) for c in cells])
        self.blocks: list[tuple[np.ndarray, int]] = [(b, n) for b, n, _ in done]
        self.where: list[np.ndarray] = [v for _, _, v in done]
        self.nbytes = sum(b.nbytes + v.nbytes for b, _, v in done)  # what the fit holds

    def _map(self, fn: Callable[[tuple[np.ndarray, int]], np.ndarray]) -> list[np.ndarray]:
        """``fn`` of every block, on a pool of the scheduler's threads (in block order)."""
        from concurrent.futures import ThreadPoolExecutor

        from rsvlm_temporal.compute.store import scheduler_threads

        threads = min(scheduler_threads(), len(self.blocks))
        if threads <= 1:
            return [fn(b) for b in self.blocks]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rsvlm-fit") as pool:
            return list(pool.map(fn, self.blocks))

    def magnitude(self, t: LinearChangeTransform) -> np.ndarray:
        """The (y, x) float32 magnitude under ``t``, NaN where invalid: the values of
        :func:`_block_magnitude` (a per-pixel computation: the same whatever the blocks)."""
        def one(block: tuple[np.ndarray, int]) -> np.ndarray:
            f = _variates(np.asarray(block[0], dtype=np.float64), t)
            return np.sqrt(_chi2_stat(f, t.var)).astype(np.float32)

        out = np.full(self.shape[1:], np.nan, dtype=np.float32)
        ys, xs = (np.cumsum((0,) + c) for c in self.chunks[1:])
        for k, (m, v) in enumerate(zip(self._map(one), self.where)):
            i, j = divmod(k, len(xs) - 1)
            out[ys[i]:ys[i + 1], xs[j]:xs[j + 1]][v] = m
        return out

    def reduce(self, t: LinearChangeTransform | None, shift: np.ndarray, size: int) -> np.ndarray:
        """The summed :func:`_block_moments` vector (length ``size``) of every block."""
        import dask.array as da

        from rsvlm_temporal.compute.blocks import fsum

        def one(block: tuple[np.ndarray, int]) -> np.ndarray:
            return np.asarray(_pixel_moments(block[0], block[1], t, shift), dtype=np.float64)

        vectors = self._map(one)
        nd = len(self.numblocks)
        parts = np.stack(vectors).reshape(tuple(self.numblocks) + (size,))
        # the same tree (fixed by the number of blocks) and nodes as reduce_blocks' reduction
        arr = da.from_array(parts, chunks=tuple((1,) * n for n in self.numblocks) + ((size,),))
        sums = da.reduction(arr, fsum, fsum, axis=tuple(range(nd)), combine=fsum, dtype=np.float64,
                            concatenate=True, meta=np.empty((0,), dtype=np.float64))
        return np.asarray(sums.compute(scheduler="sync"))


#: most bytes of an iterative fit's stacked pair (both images, every band, in their dtype) that
#: IR-MAD / ISFA hold in memory to read the images once (:class:`_PixelsInMemory`); a larger
#: pair, or any pair under another scheduler than dask's threaded or synchronous one (e.g. a
#: dask.distributed client, whose workers would be sent the pixels on every iteration), is read
#: lazily once per iteration instead
FIT_MEMORY_BYTES = 256 * 2**20


def _fit_source(z: Any, budget: int | None = None) -> Any:
    """What an iterative fit reads: the dask-backed ``z`` (fit chunks) read once into memory
    when it is at most ``budget`` bytes (default :data:`FIT_MEMORY_BYTES`) and dask computes in
    this process (threaded or synchronous scheduler), else ``z`` itself (numpy: already in
    memory; otherwise lazy, read once per iteration)."""
    import dask

    from rsvlm_temporal.compute.store import current_client

    limit = FIT_MEMORY_BYTES if budget is None else budget
    if not is_dask(z) or z.nbytes > limit or current_client() is not None:
        return z
    if (dask.base.get_scheduler() or dask.threaded.get) not in (dask.threaded.get, dask.local.get_sync):
        return z
    return _PixelsInMemory(z)






def _weighted_moments(
    z: Any, t: LinearChangeTransform | None, shift: np.ndarray
) -> tuple[int, float, np.ndarray, np.ndarray]:
    """n_valid, effective sample size ``(sum w)^2 / sum w^2``, weighted mean (2p,) and weighted
    covariance (2p, 2p) of ``z``."""
    q = z.shape[0]
    if isinstance(z, _PixelsInMemory):
        tot = z.reduce(t, shift, 3 + q + q * q)
    else:
        tot = reduce_blocks(z, _block_moments, 3 + q + q * q, t, shift)
    n, sw, sw2 = int(round(tot[0])), float(tot[1]), float(tot[2])
    if n < q + 2:
        raise InsufficientDataError(
            f"only {n} pixels are valid (finite in every band of both images); expected at least "
            f"{q + 2} common valid pixels (are the images all-NaN or not overlapping?)"
        )
    if not sw > 0:
        return n, 0.0, shift, np.full((q, q), np.nan)
    m = tot[3 : 3 + q] / sw
    s2 = tot[3 + q :].reshape(q, q) / sw
    cov = s2 - np.outer(m, m)
    cov = (cov + cov.T) / 2
    return n, sw * sw / sw2, shift + m, cov


# --------------------------------------------------------------------------------------------
# transforms


def _ridge(s: np.ndarray, eps: float) -> np.ndarray:
    """``s`` plus ``eps * mean(diag(s))`` on the diagonal (keeps near-singular covariances PD)."""
    p = s.shape[0]
    scale = float(np.trace(s)) / p if np.trace(s) > 0 else 1.0
    return s + np.eye(p) * eps * scale


def _cca_transform(
    mean: np.ndarray, cov: np.ndarray, regularisation: float
) -> tuple[LinearChangeTransform, np.ndarray]:
    """MAD transform from the joint (weighted) mean and covariance; returns (transform, rho)."""
    p = mean.shape[0] // 2
    sxx = _ridge(cov[:p, :p], regularisation)
    syy = _ridge(cov[p:, p:], regularisation)
    sxy = cov[:p, p:]
    m = sxy @ linalg.solve(syy, sxy.T, assume_a="pos")
    m = (m + m.T) / 2
    r2, a = linalg.eigh(m, sxx)  # ascending; a.T sxx a = I
    rho = np.sqrt(np.clip(r2, 0.0, 1.0))
    b = linalg.solve(syy, sxy.T @ a, assume_a="pos")
    bn = np.sqrt(np.einsum("ij,ij->j", b, syy @ b))
    bn[bn == 0] = 1.0
    b = b / bn
    # sign convention (Nielsen): the canonical variate U_j correlates positively with the sum
    # of the bands of x; V_j follows so that corr(U_j, V_j) = rho_j >= 0
    sa = np.sign(np.sum(sxx @ a, axis=0))
    sa[sa == 0] = 1.0
    a = a * sa
    sb = np.sign(np.einsum("ij,ij->j", a, sxy @ b))
    sb[sb == 0] = 1.0
    b = b * sb
    var = np.maximum(2.0 * (1.0 - rho), 1e-12)
    c = a.T @ mean[:p] - b.T @ mean[p:]
    return LinearChangeTransform(wx=a, wy=b, c=c, var=var), rho


def _sfa_transform(
    mean: np.ndarray, cov: np.ndarray, regularisation: float
) -> tuple[LinearChangeTransform, np.ndarray]:
    """SFA transform (Wu, Du & Zhang 2014) from the joint (weighted) mean and covariance."""
    p = mean.shape[0] // 2
    sd = np.sqrt(np.maximum(np.diag(cov), 1e-300))
    dx, dy = np.diag(1.0 / sd[:p]), np.diag(1.0 / sd[p:])
    cxx = dx @ cov[:p, :p] @ dx
    cyy = dy @ cov[p:, p:] @ dy
    cxy = dx @ cov[:p, p:] @ dy
    a = cxx + cyy - cxy - cxy.T
    b = _ridge((cxx + cyy) / 2.0, regularisation)
    lam, w = linalg.eigh((a + a.T) / 2, b)  # ascending = slowest first; w.T b w = I
    lam = np.maximum(lam, 1e-12)
    wx, wy = dx @ w, dy @ w
    c = wx.T @ mean[:p] - wy.T @ mean[p:]
    return LinearChangeTransform(wx=wx, wy=wy, c=c, var=lam), lam


def _iterate(
    z: Any,
    fit: Callable[[np.ndarray, np.ndarray, float], tuple[LinearChangeTransform, np.ndarray]],
    *,
    max_iter: int,
    tol: float,
    regularisation: float,
    reweight: bool,
    convergence: Callable[[np.ndarray], np.ndarray],
    name: str,
) -> tuple[LinearChangeTransform, np.ndarray, int, bool, int, list[np.ndarray], str | None]:
    """The (re)weighted fit; returns the transform, its statistic, the fits made, whether it
    converged, the valid pixels, the history and why it stopped early (None: converged)."""
    if max_iter < 1:
        raise ParameterError(f"max_iter must be >= 1; got {max_iter}")
    q = z.shape[0]
    shift = np.zeros(q)
    t: LinearChangeTransform | None = None
    prev: np.ndarray | None = None
    history: list[np.ndarray] = []
    converged = False
    stopped: str | None = None
    n = 0
    fits = 0
    for it in range(1, max_iter + 1):
        n, n_eff, mean, cov = _weighted_moments(z, t, shift)
        if t is not None and not n_eff >= 2 * q + 2:
            stopped = (f"the no-change weights collapsed onto ~{n_eff:.0f} effective pixels at "
                       f"iteration {it}")
            break
        try:
            t_new, stat = fit(mean, cov, regularisation)
        except (np.linalg.LinAlgError, ValueError) as exc:
            if t is None:
                raise InsufficientDataError(
                    f"{name}: the covariance of the valid pixels is singular ({exc}); expected "
                    "bands that are neither constant nor collinear (or pass regularisation > 0)"
                ) from exc
            stopped = f"the weighted covariance became singular at iteration {it}"
            break
        t, shift, fits = t_new, mean, it
        history.append(stat)
        if not reweight:
            converged = True
            break
        cur = convergence(stat)
        if prev is not None and float(np.max(np.abs(cur - prev))) < tol:
            converged = True
            break
        prev = cur
    # no printed warning: the reason travels with the fit (``details["not_converged"]``) and
    # the change analysis turns it into a typed quality note (``irmad_not_converged``)
    reason = None
    if not converged:
        why = stopped or f"it did not converge in {max_iter} iterations (tol {tol})"
        reason = f"{name} stopped early: {why}; the result uses iteration {fits}"
    assert t is not None
    return t, history[-1], fits, converged, n, history, reason


def _fit_result(
    before: xr.DataArray,
    z: Any,
    t: LinearChangeTransform,
    method: str,
    *,
    chi_square: bool,
    iterations: int,
    converged: bool,
    n_valid: int | None,
    details: dict[str, Any],
    units: str,
    source: Any = None,
) -> MagnitudeFit:
    """The fit's lazy magnitude (``z``'s chunks); from the pixels an iterative fit holds in
    memory when ``source`` is a :class:`_PixelsInMemory` (computed once, the same values)."""
    if isinstance(source, _PixelsInMemory):
        import dask.array as da

        data = da.from_array(source.magnitude(t), chunks=z.chunks[1:])
    elif is_dask(z):
        import dask.array as da

        data = da.map_blocks(
            _block_magnitude, z, t, drop_axis=0, dtype=np.float32,
            meta=np.empty((0, 0), dtype=np.float32),
        )
    else:
        data = _block_magnitude(z, t)
    mag = _out_like(
        before, data, "magnitude",
        {"long_name": f"change magnitude ({method})", "units": units, "method": method},
    )
    return MagnitudeFit(
        magnitude=mag, method=method, transform=t, dof=t.k, chi_square=chi_square,
        iterations=iterations, converged=converged, n_valid=n_valid, details=details,
    )


def reweighting_shrinkage(dof: int, iterations: int) -> float:
    """Factor by which chi-square reweighting shrinks a Gaussian no-change variance estimate.

    IR-MAD / ISFA estimate the no-change variances from covariances weighted by
    ``w = P(chi2_k > Z)``, which down-weights the no-change distribution's own tails. For
    Gaussian no-change variates with true variance ``sigma^2`` and an estimate ``s^2 sigma^2``,
    the next weighted estimate is ``v(s^2) sigma^2`` with (``T``, ``T'`` independent chi2_k;
    ``I_x`` the regularised incomplete beta function, ``x = s^2 / (1 + s^2)``)::

        v(s^2) = E[T w] / (k E[w]) = P(T_{k+2} < s^2 T'_k) / P(T_k < s^2 T'_k)
               = I_x(k/2 + 1, k/2) / I_x(k/2, k/2)

    The first fit is unweighted (``s^2 = 1``), so after ``iterations`` fits the estimate is
    ``s_n^2 = v^(n-1)(1)``; for ``k >= 3`` this converges to a fixed point (0.188, 0.303, 0.439,
    0.520 for k = 3, 4, 6, 8), for k <= 2 it tends to 0 (IR-MAD degenerates). Dividing the
    final variances by this factor makes ``Z`` chi-square distributed again under the Gaussian
    no-change model (a consistency correction, as for reweighted robust covariance estimators,
    Croux & Haesbroeck 1999); it rescales the magnitude by a constant, so Otsu and mixture
    thresholds select the same pixels with or without it. This correction is ours, not part
    of Nielsen (2007) or Wu et al. (2014).
    """
    s2 = 1.0
    half = dof / 2.0
    for _ in range(max(int(iterations) - 1, 0)):
        x = s2 / (1.0 + s2)
        den = float(special.betainc(half, half, x))
        if den <= 0:
            break
        nxt = float(special.betainc(half + 1.0, half, x)) / den
        if abs(nxt - s2) <= 1e-12 * s2:
            s2 = nxt
            break
        s2 = nxt
    return s2


def _calibrated(t: LinearChangeTransform, iterations: int) -> tuple[LinearChangeTransform, float]:
    """The chi-square-calibrated transform and the shrinkage applied (1.0 when the reweighting
    degenerates, k <= 2: the variances are then left uncorrected, and the caller says so)."""
    kappa = reweighting_shrinkage(t.k, iterations)
    if not kappa > 1e-6:
        return t, 1.0
    return LinearChangeTransform(wx=t.wx, wy=t.wy, c=t.c, var=t.var / kappa), kappa


# --------------------------------------------------------------------------------------------
# public methods


def cva(before: xr.DataArray, after: xr.DataArray, standardise: bool = True) -> MagnitudeFit:
    """Change vector analysis magnitude ``||y' - x'||`` (Malila 1980).

    ``standardise=True``: each image is standardised per band with its own mean and standard
    deviation over the common valid pixels, ``x' = (x - mean_x) / std_x`` (one pass of chunked
    reductions), so the magnitude is in standard deviations and a global gain/offset per band is
    removed. ``standardise=False``: plain difference ``after - before`` in input units (fully
    lazy, no pass over the data).
    """
    before, after = _prepare(before, after)
    z = _stack(before, after)
    p = z.shape[0] // 2
    if standardise:
        n, _, mean, cov = _weighted_moments(_for_fit(z), None, np.zeros(2 * p))
        sd = np.sqrt(np.diag(cov))
        if np.any(sd <= 0):
            raise InsufficientDataError(
                f"band(s) {np.flatnonzero(sd <= 0).tolist()} are constant over the valid pixels; "
                "cannot standardise (use standardise=False)"
            )
        # f = x/sx - y/sy - (mx/sx - my/sy) = -(y' - x')
        wx, wy = np.diag(1.0 / sd[:p]), np.diag(1.0 / sd[p:])
        c = mean[:p] / sd[:p] - mean[p:] / sd[p:]
        t = LinearChangeTransform(wx=wx, wy=wy, c=c, var=np.ones(p))
        units = "standard deviations"
        details: dict[str, Any] = {"mean": mean, "std": sd}
    else:
        n = None
        t = LinearChangeTransform(wx=np.eye(p), wy=np.eye(p), c=np.zeros(p), var=np.ones(p))
        units = str(before.attrs.get("units", "input units"))
        details = {}
    return _fit_result(
        before, z, t, "cva" if standardise else "cva-raw", chi_square=False, iterations=1,
        converged=True, n_valid=n, details=details, units=units,
    )


def irmad(
    before: xr.DataArray,
    after: xr.DataArray,
    max_iter: int = 100,
    tol: float = 1e-4,
    regularisation: float = 1e-9,
    calibrate: bool = True,
) -> MagnitudeFit:
    """Iteratively reweighted MAD (Nielsen 2007); ``max_iter=1`` gives plain MAD (Nielsen 1998).

    Magnitude = ``sqrt(Z)``, ``Z = sum_j MAD_j^2 / (2 (1 - rho_j))`` (chi-square, ``bands`` d.o.f.
    under no change); ``no_change_probability = P(chi2 > Z)`` are the final IR-MAD weights.
    Iterates until ``max |rho_j - rho_j(previous)| < tol`` (canonical correlations) or
    ``max_iter``; each iteration sums weighted moments block by block (over the pixels read
    once into memory, or as one lazy chunked pass for a pair above :data:`FIT_MEMORY_BYTES`).
    ``regularisation``: ridge added to ``Sxx``/``Syy`` as a fraction of their mean variance
    (numerical safety for constant or collinear bands; Nielsen 2007 sec. III).
    ``calibrate``: divide the final no-change variances by :func:`reweighting_shrinkage`
    so that ``Z`` (and the no-change probability) is chi-square calibrated under a Gaussian
    no-change model; a constant rescaling that leaves Otsu/mixture masks unchanged.
    ``details["canonical_correlations"]``: rho ascending (MAD_1 = least correlated);
    ``details["shrinkage"]``: the factor applied (1 when not calibrated).
    """
    before, after = _prepare(before, after)
    z = _stack(before, after)
    src = _fit_source(_for_fit(z)) if max_iter > 1 else _for_fit(z)
    t, rho, it, conv, n, hist, why = _iterate(
        src, _cca_transform, max_iter=max_iter,
        tol=tol, regularisation=regularisation,
        reweight=max_iter > 1, convergence=lambda r: r, name="IR-MAD",
    )
    kappa = 1.0
    if calibrate and it > 1:
        t, kappa = _calibrated(t, it)
    method = "irmad" if max_iter > 1 else "mad"
    return _fit_result(
        before, z, t, method, chi_square=True, iterations=it, converged=conv, n_valid=n,
        details={"canonical_correlations": rho, "history": hist, "shrinkage": kappa,
                 "not_converged": why},
        units="standard deviations", source=src,
    )


def isfa(
    before: xr.DataArray,
    after: xr.DataArray,
    max_iter: int = 100,
    tol: float = 1e-4,
    regularisation: float = 1e-9,
    calibrate: bool = True,
) -> MagnitudeFit:
    """Iterative slow feature analysis (Wu, Du & Zhang 2014); ``max_iter=1`` gives plain SFA.

    Magnitude = ``sqrt(sum_j SFA_j^2 / lambda_j)`` (chi-square with ``bands`` d.o.f.); weights as
    IR-MAD. Converges when ``max |sqrt(lambda_j) - sqrt(lambda_j(previous))| < tol``.
    ``calibrate``: as for :func:`irmad`.
    ``details["eigenvalues"]``: lambda ascending (slowest feature first).
    """
    before, after = _prepare(before, after)
    z = _stack(before, after)
    src = _fit_source(_for_fit(z)) if max_iter > 1 else _for_fit(z)
    t, lam, it, conv, n, hist, why = _iterate(
        src, _sfa_transform, max_iter=max_iter,
        tol=tol, regularisation=regularisation,
        reweight=max_iter > 1, convergence=np.sqrt, name="ISFA",
    )
    kappa = 1.0
    if calibrate and it > 1:
        t, kappa = _calibrated(t, it)
    method = "isfa" if max_iter > 1 else "sfa"
    return _fit_result(
        before, z, t, method, chi_square=True, iterations=it, converged=conv, n_valid=n,
        details={"eigenvalues": lam, "history": hist, "shrinkage": kappa, "not_converged": why},
        units="standard deviations", source=src,
    )


# --------------------------------------------------------------------------------------------
# thresholds


















# --------------------------------------------------------------------------------------------
# the lookup table and the entry point


@dataclass(frozen=True)
class MethodSpec:
    """A named change-magnitude method: the fit function, the keyword arguments it fixes, and
    what it is."""

    fit: Callable[..., MagnitudeFit]
    fixed: dict[str, Any]
    description: str


#: the change-magnitude methods by name: one table feeds :func:`change_magnitude`, the CLI's
#: choices and the error listing the valid names
METHOD_TABLE: dict[str, MethodSpec] = {
    "irmad": MethodSpec(irmad, {}, "iteratively reweighted MAD (Nielsen 2007), chi-square no-change model"),
    "mad": MethodSpec(irmad, {"max_iter": 1}, "multivariate alteration detection (one CCA, Nielsen 1998)"),
    "isfa": MethodSpec(isfa, {}, "iterative slow feature analysis (Wu, Du & Zhang 2014)"),
    "sfa": MethodSpec(isfa, {"max_iter": 1}, "slow feature analysis (one pass)"),
    "cva": MethodSpec(cva, {}, "change vector analysis on standardised bands"),
    "cva-raw": MethodSpec(cva, {"standardise": False}, "change vector analysis on the plain difference"),
}
METHODS: tuple[str, ...] = tuple(METHOD_TABLE)


def check_method(method: str, threshold: str | float = DEFAULT_THRESHOLD, alpha: float = 0.01) -> str:
    """The lower-cased method name, with ``method`` and ``threshold`` checked against
    :data:`METHOD_TABLE` and :data:`~rsvlm_temporal.change.thresholds.THRESHOLDS` before any
    pixel is read (:class:`UnknownNameError` listing the valid names)."""
    name = str(method).lower()
    if name not in METHOD_TABLE:
        raise unknown_name("change method", method, METHODS)
    check_threshold(threshold, alpha)
    return name


def change_magnitude(
    before: xr.DataArray,
    after: xr.DataArray,
    method: str = "irmad",
    threshold: ThresholdSpec = DEFAULT_THRESHOLD,
    *,
    alpha: float = 0.01,
    bins: int = DEFAULT_BINS,
    **method_kwargs: Any,
) -> ChangeMagnitude:
    """Unsupervised change magnitude and binary change mask of a co-registered pair.

    ``before``/``after``: DataArrays (band, y, x), reflectance 0-1 or DN, NaN = invalid, numpy
    or dask; any CRS (kept from ``before``: attrs ``crs``, ``epsg``, ``transform``,
    ``resolution``, coords ``x``/``y``). ``method``: ``"irmad"`` (default), ``"mad"``, ``"isfa"``,
    ``"sfa"``, ``"cva"`` (standardised) or ``"cva-raw"`` (plain difference, = ``standardise=False``).
    ``threshold``: ``"auto"`` (default: a bimodality test before any cut, then a 3 x 3 majority;
    see :mod:`~rsvlm_temporal.change.thresholds`), ``"otsu"``, ``"mixture"``, ``"chi2"`` (chi-square methods; changed
    where no-change probability < ``alpha``) or a number in magnitude units. ``method_kwargs`` go
    to the method (``max_iter``, ``tol``, ``regularisation``, ``standardise``).

    Raises :class:`ItemError` when the band sets differ, :class:`InsufficientDataError` when the
    images do not overlap or share no valid pixel.
    """
    method = check_method(method, threshold, alpha)
    spec = METHOD_TABLE[method]
    fit = spec.fit(before, after, **{**method_kwargs, **spec.fixed})
    details: dict[str, Any] = dict(fit.details)
    mag = fit.magnitude
    thr, tm = threshold_value(threshold, mag, fit, bins, alpha, details)
    attrs = {**georef_attrs(mag), "long_name": "change mask (1 = changed)", "method": fit.method,
             "threshold": thr, "threshold_method": tm}
    valid = mag.notnull().rename("valid").assign_attrs(
        {**georef_attrs(mag), "long_name": "valid in both images"}
    )
    mask = (mag > thr).rename("change")
    if tm in THRESHOLDS and THRESHOLDS[tm].regularise:
        mask = regularise_mask(mask, valid).rename("change")
        attrs["regularised"] = "3x3 majority"
    mask = mask.assign_attrs(attrs)
    details["n_valid"] = fit.n_valid
    details["transform"] = fit.transform
    details["dof"] = fit.dof
    mag = mag.assign_attrs(threshold=thr, threshold_method=tm)
    return ChangeMagnitude(
        magnitude=mag, mask=mask, valid=valid, threshold=thr, threshold_method=tm,
        method=fit.method, iterations=fit.iterations, converged=fit.converged,
        no_change_probability=fit.no_change_probability, details=details,
    )
