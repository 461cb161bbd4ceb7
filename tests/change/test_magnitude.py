"""Unsupervised change magnitude: CVA, IR-MAD, ISFA, thresholds, laziness, errors."""

from __future__ import annotations

import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from rsvlm_temporal.change.magnitude import (
    ChangeMagnitude,
    change_magnitude,
    cva,
    histogram,
    irmad,
    isfa,
    mixture_threshold,
    otsu_threshold,
    reweighting_shrinkage,
)
from rsvlm_temporal.errors import InsufficientDataError, ItemError

TRANSFORM = (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0)
ATTRS = {"crs": "EPSG:32633", "epsg": 32633, "transform": TRANSFORM, "resolution": (30.0, 30.0)}
BANDS4 = ["blue", "green", "red", "nir"]


def _da(arr: Any, bands: list[str]) -> xr.DataArray:
    h, w = arr.shape[1:]
    return xr.DataArray(
        arr, dims=("band", "y", "x"),
        coords={"band": bands, "y": 4000000.0 - 30.0 * (np.arange(h) + 0.5),
                "x": 500000.0 + 30.0 * (np.arange(w) + 0.5)},
        attrs=dict(ATTRS),
    )


def synthetic_pair(n: int = 64, bands: int = 4, seed: int = 0):
    """Before: correlated random spectra. After: per-band gain/offset of before plus noise,
    except a 16 x 16 square (6.25 %) whose spectra changed. Returns before, after, truth."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(bands, bands)) + 2 * np.eye(bands)
    x = np.einsum("ij,jyx->iyx", mix, rng.normal(size=(bands, n, n))) * 4 + 60
    truth = np.zeros((n, n), bool)
    truth[20:36, 30:46] = True
    gain = np.array([1.3, 0.8, 1.1, 0.9, 1.2, 0.7][:bands])[:, None, None]
    offset = np.array([10.0, -15.0, 5.0, 20.0, -5.0, 8.0][:bands])[:, None, None]
    delta = np.where(np.arange(bands) % 2 == 0, 15.0, -15.0)[:, None, None]
    changed = x + delta * truth
    y = gain * changed + offset + rng.normal(scale=1.0, size=x.shape)
    names = (BANDS4 + ["swir16", "swir22"])[:bands] if bands != 3 else ["red", "green", "blue"]
    return _da(x, names), _da(y, names), truth


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = np.sum(pred & truth)
    return 2 * tp / (2 * tp + np.sum(pred & ~truth) + np.sum(~pred & truth))


def test_irmad_finds_changes_under_linear_radiometric_difference():
    before, after, truth = synthetic_pair()
    res = change_magnitude(before, after)  # default: irmad + auto (bimodality test first)
    assert isinstance(res, ChangeMagnitude)
    assert res.method == "irmad" and res.threshold_method == "auto" and res.converged
    assert _f1(res.mask.values, truth) > 0.95
    # plain differencing flags (nearly) every pixel: the gain/offset dwarfs the 1-DN noise
    diff = np.sqrt(((after.values - before.values) ** 2).sum(0))
    assert np.mean(diff[~truth] > 3 * 2.0) > 0.9
    # no-change probability: ~uniform on unchanged pixels (calibrated chi-square), ~0 on changed
    p = res.no_change_probability.values
    assert 0.35 < np.median(p[~truth]) < 0.65
    assert np.mean(p[~truth] < 0.05) < 0.1
    assert np.max(p[truth]) < 1e-3
    # without the reweighting-shrinkage correction the chi-square is inflated
    raw = irmad(before, after, calibrate=False).no_change_probability.values
    assert np.mean(raw[~truth] < 0.05) > 0.3
    rho = res.details["canonical_correlations"]
    assert np.all(np.diff(rho) >= 0) and rho[-1] > 0.99


def test_reweighting_shrinkage_matches_monte_carlo():
    from scipy import special

    rng = np.random.default_rng(0)
    for k, n_it in ((4, 3), (6, 40)):
        t = np.sum(rng.normal(size=(50000, k)) ** 2, axis=1)
        s2 = 1.0
        for _ in range(n_it - 1):  # weighted variance of N(0, I) under chi-square weights
            w = special.chdtrc(k, t / s2)
            s2 = float(np.sum(t * w) / (k * np.sum(w)))
        assert reweighting_shrinkage(k, n_it) == pytest.approx(s2, rel=0.02)
    assert reweighting_shrinkage(6, 1) == 1.0
    assert reweighting_shrinkage(6, 10_000) == pytest.approx(0.4391, abs=1e-3)


def test_irmad_invariant_to_affine_change_of_one_image():
    before, after, _ = synthetic_pair(seed=1)
    a = irmad(before, after)
    b = irmad(before * 2.5 + 7.0, after)
    np.testing.assert_allclose(a.magnitude.values, b.magnitude.values, rtol=1e-4, atol=1e-4)
    assert a.iterations == b.iterations


def test_mad_is_one_iteration_and_isfa_runs():
    before, after, truth = synthetic_pair(seed=2)
    mad = change_magnitude(before, after, method="mad")
    assert mad.iterations == 1 and mad.method == "mad"
    res = change_magnitude(before, after, method="isfa")
    assert res.method == "isfa" and _f1(res.mask.values, truth) > 0.9
    assert np.all(np.diff(res.details["eigenvalues"]) >= 0)
    sfa = isfa(before, after, max_iter=1)
    assert sfa.method == "sfa" and sfa.iterations == 1


def test_cva_standardised_and_raw():
    before, after, truth = synthetic_pair(seed=3)
    std = cva(before, after)
    raw = cva(before, after, standardise=False)
    expect_raw = np.sqrt(((after.values - before.values) ** 2).sum(0))
    np.testing.assert_allclose(raw.magnitude.values, expect_raw, rtol=1e-5)
    zb = (before - before.mean(("y", "x"))) / before.std(("y", "x"))
    za = (after - after.mean(("y", "x"))) / after.std(("y", "x"))
    expect = np.sqrt(((za - zb) ** 2).sum("band")).values
    np.testing.assert_allclose(std.magnitude.values, expect, rtol=1e-4, atol=1e-5)
    assert std.no_change_probability is None


@pytest.mark.filterwarnings("ignore:IR-MAD stopped early")
def test_rgb_only_pair():
    before, after, truth = synthetic_pair(bands=3, seed=4)
    assert list(before.band.values) == ["red", "green", "blue"]
    res = change_magnitude(before, after)
    assert res.details["dof"] == 3
    assert _f1(res.mask.values, truth) > 0.9


def test_output_keeps_georeferencing_and_nan_is_invalid():
    before, after, truth = synthetic_pair(seed=5)
    b = before.copy(data=before.values.copy())
    b.values[0, 0, :5] = np.nan
    res = change_magnitude(b, after, method="cva", threshold=2.0)
    for out in (res.magnitude, res.mask, res.valid):
        assert out.dims == ("y", "x")
        assert out.attrs["crs"] == "EPSG:32633" and tuple(out.attrs["transform"]) == TRANSFORM
        np.testing.assert_array_equal(out.x.values, before.x.values)
        np.testing.assert_array_equal(out.y.values, before.y.values)
    assert np.isnan(res.magnitude.values[0, :5]).all()
    assert not res.mask.values[0, :5].any() and not res.valid.values[0, :5].any()
    assert res.valid.values.sum() == truth.size - 5
    assert res.threshold == 2.0 and res.threshold_method == "fixed"


def test_thresholds_on_known_bimodal_sample():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(2.0, 0.5, 20000), rng.normal(8.0, 1.0, 5000), [np.nan] * 10])
    t = otsu_threshold(v)
    assert 3.5 < t < 6.5
    # Bayes boundary of 0.8 N(2, .5) vs 0.2 N(8, 1), solved numerically
    xs = np.linspace(2, 8, 60001)
    g = 0.8 * np.exp(-0.5 * ((xs - 2) / 0.5) ** 2) / 0.5 - 0.2 * np.exp(-0.5 * (xs - 8) ** 2)
    bayes = xs[np.argmax(g < 0)]
    assert abs(mixture_threshold(v, bins=512) - bayes) < 0.1
    # chunked histogram = numpy histogram
    c1, e1 = histogram(v)
    c2, e2 = histogram(da.from_array(v, chunks=1000))
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_allclose(e1, e2)
    assert c1.sum() == 25000


def test_chi2_threshold_is_the_alpha_quantile():
    from scipy import stats

    before, after, _ = synthetic_pair(seed=6)
    res = change_magnitude(before, after, method="irmad", threshold="chi2", alpha=0.01)
    assert res.threshold == pytest.approx(np.sqrt(stats.chi2.isf(0.01, 4)))
    with pytest.raises(ValueError, match="chi-square"):
        change_magnitude(before, after, method="cva", threshold="chi2")


class _Recorder:
    """A dask scheduler that runs synchronously and records the size of what each compute returns."""

    def __init__(self) -> None:
        self.returned: list[int] = []

    @staticmethod
    def _nbytes(obj: Any) -> int:
        if isinstance(obj, (list, tuple)):
            return sum(_Recorder._nbytes(o) for o in obj)
        return int(getattr(obj, "nbytes", 8))

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        out = dask.local.get_sync(dsk, keys, **kwargs)
        self.returned.append(self._nbytes(out))
        return out


@pytest.mark.parametrize("method,threshold", [("irmad", "otsu"), ("isfa", "mixture"), ("cva", "otsu")])
def test_dask_input_stays_lazy_and_equals_numpy(method, threshold):
    before, after, _ = synthetic_pair(n=96, seed=7)
    lb = before.chunk({"y": 32, "x": 32})
    la = after.chunk({"y": 48, "x": 32})
    rec = _Recorder()
    with dask.config.set(scheduler=rec):
        res = change_magnitude(lb, la, method=method, threshold=threshold)
    # the per-pixel products are lazy dask arrays ...
    for out in (res.magnitude, res.mask, res.valid):
        assert isinstance(out.data, da.Array)
    # ... and building them only brought back small statistics, never an image
    assert rec.returned, "statistics should have been computed"
    assert max(rec.returned) < before.nbytes / 20
    eager = change_magnitude(before, after, method=method, threshold=threshold)
    assert isinstance(eager.magnitude.data, np.ndarray)
    np.testing.assert_allclose(res.magnitude.values, eager.magnitude.values, rtol=1e-5, atol=1e-5)
    assert res.threshold == pytest.approx(eager.threshold, rel=1e-6)
    np.testing.assert_array_equal(res.mask.values, eager.mask.values)
    assert res.iterations == eager.iterations


def test_plain_cva_with_fixed_threshold_computes_nothing():
    before, after, _ = synthetic_pair(n=64, seed=8)
    rec = _Recorder()
    with dask.config.set(scheduler=rec):
        res = change_magnitude(before.chunk({"y": 32}), after.chunk({"y": 32}), method="cva",
                               threshold=5.0, standardise=False)
    assert rec.returned == []
    assert isinstance(res.mask.data, da.Array)
    assert int(res.mask.sum().compute()) > 0


def test_band_mismatch_is_a_clear_error():
    before, after, _ = synthetic_pair(seed=9)
    with pytest.raises(ItemError, match="band counts differ"):
        change_magnitude(before, after.isel(band=[0, 1, 2]))
    with pytest.raises(ValueError):  # ItemError is a ValueError
        change_magnitude(before.isel(band=[0, 1, 2]), after)
    renamed = after.assign_coords(band=["a", "b", "c", "d"])
    with pytest.raises(ItemError, match="band names differ"):
        change_magnitude(before, renamed)
    # same bands in another order are reordered, not rejected
    res = change_magnitude(before, after.isel(band=[3, 2, 1, 0]), method="cva", threshold=1.0)
    ref = change_magnitude(before, after, method="cva", threshold=1.0)
    np.testing.assert_allclose(res.magnitude.values, ref.magnitude.values)


def test_no_overlap_and_all_nan_are_insufficient_data():
    before, after, _ = synthetic_pair(seed=10)
    shifted = after.assign_coords(x=after.x + 1e6)
    with pytest.raises(InsufficientDataError, match="do not overlap"):
        change_magnitude(before, shifted)
    nan = after.copy(data=np.full(after.shape, np.nan))
    with pytest.raises(InsufficientDataError, match="valid"):
        change_magnitude(before, nan)
    with pytest.raises(InsufficientDataError):
        change_magnitude(before, nan, method="cva")
    with pytest.raises(InsufficientDataError, match="all-NaN"):
        change_magnitude(before, nan, method="cva", standardise=False)
    with pytest.raises(ValueError, match="unknown change method"):
        change_magnitude(before, after, method="nope")


def test_partial_overlap_is_aligned():
    before, after, _ = synthetic_pair(seed=11)
    res = change_magnitude(before.isel(x=slice(0, 40)), after.isel(x=slice(10, 64)),
                           method="cva", threshold=3.0)
    assert res.magnitude.sizes["x"] == 30
    np.testing.assert_array_equal(res.magnitude.x.values, before.x.values[10:40])


def test_non_convergence_is_a_detail_not_a_warning():
    before, after, _ = synthetic_pair(seed=12)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = irmad(before, after, max_iter=2, tol=1e-12)
    assert not fit.converged and fit.iterations == 2
    assert not [x for x in w if issubclass(x.category, RuntimeWarning)]
    assert "did not converge" in fit.details["not_converged"]


def _lazy_and_in_memory(method: str, **kwargs: Any) -> tuple[Any, Any, list[int]]:
    """The same dask-backed fit twice on the threaded scheduler: pixels held in memory (the
    default for a small pair) and lazy passes (budget 0); also the sizes the first brought back."""
    import rsvlm_temporal.change.magnitude as mag_mod

    before, after, _ = synthetic_pair(n=90, bands=4, seed=11)
    b = before.where(~((before.x < before.x[5]) & (before.y > before.y[7]))).chunk({"y": 40, "x": 25})
    a = after.chunk({"y": 40, "x": 25})
    made: list[int] = []
    real = mag_mod._PixelsInMemory

    class Counting(real):  # type: ignore[misc,valid-type]
        def __init__(self, z: Any) -> None:
            super().__init__(z)
            made.append(self.nbytes)

    # fit blocks of 40 x 50 px (uneven: 40, 40, 10 by 50, 40), unlike the input's 40 x 25
    with pytest.MonkeyPatch.context() as mp, dask.config.set(scheduler="threads", num_workers=2):
        mp.setattr(mag_mod, "FIT_BLOCK", 50)
        mp.setattr(mag_mod, "_PixelsInMemory", Counting)
        mem = change_magnitude(b, a, method=method, **kwargs)
        mp.setattr(mag_mod, "_PixelsInMemory", real)
        mp.setattr(mag_mod, "FIT_MEMORY_BYTES", 0)
        lazy = change_magnitude(b, a, method=method, **kwargs)
    assert mem.magnitude.data.chunks == lazy.magnitude.data.chunks == b.data.chunks[1:]
    return mem, lazy, made


@pytest.mark.parametrize("method,threshold", [("irmad", "otsu"), ("isfa", "auto"), ("irmad", "chi2")])
def test_in_memory_fit_is_bit_identical_to_lazy_passes(method, threshold):
    mem, lazy, made = _lazy_and_in_memory(method, threshold=threshold)
    # the in-memory source was used once for the whole fit (not once per iteration), and it
    # holds only the valid pixels: 8 float64 bands x (90^2 - 5 x 7 NaN corner) pixels,
    assert len(made) == 1 and mem.iterations > 2
    assert made[0] == 8 * 8 * (90 * 90 - 5 * 7) + 90 * 90  # and a bool validity per pixel
    assert mem.iterations == lazy.iterations
    assert mem.threshold == lazy.threshold
    a, b = mem.magnitude.values, lazy.magnitude.values
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))  # bit for bit, NaN included
    assert np.array_equal(mem.mask.values, lazy.mask.values)
    key = "canonical_correlations" if method == "irmad" else "eigenvalues"
    assert np.array_equal(mem.details[key], lazy.details[key])
    assert all(np.array_equal(x, y) for x, y in zip(mem.details["history"], lazy.details["history"]))


def test_pixels_in_memory_sum_the_same_moments_as_reduce_blocks():
    from rsvlm_temporal.change.magnitude import (
        _block_moments,
        _cca_transform,
        _fit_source,
        _PixelsInMemory,
        _weighted_moments,
    )
    from rsvlm_temporal.compute.blocks import reduce_blocks

    rng = np.random.default_rng(5)
    arr = rng.lognormal(size=(6, 70, 53)).astype(np.float32) * 1e3
    arr[:, 3, :9] = np.nan
    arr[2, 40:44, 10:12] = np.inf
    z = da.from_array(arr, chunks=(6, 17, 20))  # uneven blocks, 5 x 3 of them
    with dask.config.set(scheduler="sync"):
        src = _fit_source(z)
        assert isinstance(src, _PixelsInMemory)
        n, _, mean, cov = _weighted_moments(z, None, np.zeros(6))
        t, _ = _cca_transform(mean, cov, 1e-9)
        size = 3 + 6 + 36
        for tt, shift in ((None, np.zeros(6)), (t, mean)):
            lazy = reduce_blocks(z, _block_moments, size, tt, shift)
            assert np.array_equal(src.reduce(tt, shift, size), lazy)
        assert lazy[0] == 70 * 53 - 9 - 8
        # over the budget, or not dask-backed: read lazily (or used as is)
        assert _fit_source(z, budget=z.nbytes - 1) is z
        assert _fit_source(arr) is arr
    with dask.config.set(scheduler=dask.local.get_sync):  # the same function, given directly
        assert isinstance(_fit_source(z), _PixelsInMemory)
