"""The one-sort NaN order statistics equal numpy's nanmedian / nanmin / nanmax, without warnings."""

import warnings

import numpy as np
import pytest

from rsvlm_temporal.compute.nanstats import nan_envelope, nanmedian


def _sample(dtype, shape=(7, 5, 300), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape).astype(dtype)
    a[rng.random(shape) < 0.4] = np.nan  # odd and even counts of valid values
    a[:, :, :20] = np.nan  # all-NaN slices along axis 0
    a[:3, :, 20:40] = 1.0  # ties
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_equal_to_numpy(dtype, axis):
    a = _sample(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = (np.nanmin(a, axis), np.nanmedian(a, axis), np.nanmax(a, axis))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none may be raised
        got_med = nanmedian(a, axis)
        got = nan_envelope(a, axis)
    np.testing.assert_array_equal(got_med, want[1])
    assert got_med.dtype == dtype
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == dtype


def test_all_nan_and_empty_axis_give_nan():
    a = np.full((4, 3), np.nan, np.float32)
    assert np.isnan(nanmedian(a)).all() and np.isnan(nan_envelope(a)[2]).all()
    empty = np.empty((0, 3), np.float32)
    assert nanmedian(empty).shape == (3,) and np.isnan(nanmedian(empty)).all()
    assert all(np.isnan(e).all() and e.shape == (3,) for e in nan_envelope(empty))


def test_integers_are_promoted():
    assert nanmedian(np.array([[1, 2], [4, 8]]), axis=0).tolist() == [2.5, 5.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6, 7])
def test_short_axis_network_equals_numpy_bit_for_bit(dtype, length):
    # a short axis 0 (<= NETWORK_MAX) is sorted by the compare-exchange network, not np.sort:
    # the same values in the same order, so the same bits; +-inf and NaN in the mix
    from rsvlm_temporal.compute.nanstats import NETWORK_MAX

    assert NETWORK_MAX >= 2
    rng = np.random.default_rng(length)
    a = rng.normal(size=(length, 4, 500)).astype(dtype)
    a[rng.random(a.shape) < 0.4] = np.nan
    a[rng.random(a.shape) < 0.05] = np.inf
    a[rng.random(a.shape) < 0.05] = -np.inf
    a[rng.random(a.shape) < 0.1] = 0.25  # ties
    a[:, :, :7] = np.nan  # all-NaN slices
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = (np.nanmin(a, 0), np.nanmedian(a, 0), np.nanmax(a, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the median of -inf and inf is NaN
        got = nan_envelope(a, 0)
        got_med = nanmedian(a, 0)
    for g, w in zip(got + (got_med,), want + (want[1],)):
        assert g.dtype == dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
        finite = ~np.isnan(w)
        assert np.array_equal(g[finite].view(np.uint8), w[finite].view(np.uint8))
