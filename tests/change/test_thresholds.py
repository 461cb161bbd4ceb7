"""Thresholds that know when there is nothing to split: the "auto" rule's bimodality test."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from rsvlm_temporal.change.thresholds import (
    AUTO_TAIL_RULES,
    DEFAULT_THRESHOLD,
    TAIL_P,
    THRESHOLDS,
    auto_rule_threshold,
    auto_threshold,
    check_threshold,
    otsu_threshold,
    regularise_mask,
)
from rsvlm_temporal.errors import UnknownNameError

RNG = np.random.default_rng(0)


def test_default_is_auto_and_old_rules_remain() -> None:
    assert DEFAULT_THRESHOLD == "auto"
    assert {"otsu", "mixture", "chi2", "auto", "auto-0.01", "auto-0.001"} <= set(THRESHOLDS)
    with pytest.raises(UnknownNameError):
        check_threshold("kittler")


@pytest.mark.parametrize("name,values", [
    ("chi6", np.sqrt(RNG.chisquare(6, 100_000))),
    ("chi3", np.sqrt(RNG.chisquare(3, 100_000))),
    ("lognormal", RNG.lognormal(1.0, 0.5, 100_000)),
    ("half-student", np.abs(RNG.standard_t(3, 100_000))),
    ("gamma", RNG.gamma(2.0, 1.0, 100_000)),
])
def test_unimodal_magnitude_is_not_split(name: str, values: np.ndarray) -> None:
    rep = auto_rule_threshold(values)
    assert not rep["bimodal"], name
    # the robust no-change tail only (TAIL_P = 5%), never a split at the mode
    assert float((values > rep["threshold"]).mean()) <= TAIL_P, name
    assert float((values > otsu_threshold(values)).mean()) > 2 * TAIL_P  # what Otsu does
    # spatially independent no-change noise: the 3 x 3 majority leaves (almost) nothing flagged
    field = xr.DataArray((values > rep["threshold"]).reshape(250, 400), dims=("y", "x"))
    assert float(regularise_mask(field).values.mean()) < 0.001, name
    # the strict rule flags the far tail only
    strict = auto_rule_threshold(values, tail_p=AUTO_TAIL_RULES["auto-0.001"])
    assert float((values > strict["threshold"]).mean()) < 0.005, name


def test_two_populations_are_split_near_the_truth() -> None:
    rng = np.random.default_rng(1)
    nochange = np.sqrt(rng.chisquare(6, 95_000))
    change = rng.normal(9.0, 2.0, 5_000).clip(0.1)
    x = np.concatenate([nochange, change])
    truth = np.r_[np.zeros(95_000, bool), np.ones(5_000, bool)]
    rep = auto_rule_threshold(x)
    assert rep["bimodal"] and rep["split"] == "mixture"
    pred = x > rep["threshold"]
    tp = np.sum(pred & truth)
    assert 2 * tp / (2 * tp + np.sum(pred & ~truth) + np.sum(~pred & truth)) > 0.9


def test_auto_is_lazy_and_equal_on_dask() -> None:
    x = np.sqrt(np.random.default_rng(2).chisquare(4, (128, 128))).astype(np.float32)
    d = xr.DataArray(da.from_array(x, chunks=32), dims=("y", "x"))
    assert auto_threshold(d) == pytest.approx(auto_threshold(x), rel=1e-6)


def test_regularise_mask_removes_isolated_pixels() -> None:
    m = np.zeros((20, 20), bool)
    m[5:10, 5:10] = True
    m[15, 15] = True
    arr = xr.DataArray(da.from_array(m, chunks=8), dims=("y", "x"))
    out = regularise_mask(arr).values
    assert not out[15, 15] and out[6:9, 6:9].all()
