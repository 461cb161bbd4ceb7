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
