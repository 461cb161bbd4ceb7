"""Building blocks of the per-pixel series engine against hand-computed truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from rsvlm_temporal.change.series import (
    ENDMEMBERS,
    SeriesParams,
    _fcls_at,
    _first_persistent,
    _last_median,
    _post_median,
    _run_start,
    _seasonal_envelope,
    endmember_matrix,
    series_kernel,
)
from rsvlm_temporal.change.unmixing import fcls
from rsvlm_temporal.classes import CHANGE_CODES

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")


def test_fcls_recovers_mixtures_and_obeys_the_constraints() -> None:
    em = endmember_matrix(BANDS).astype(np.float64)
    rng = np.random.default_rng(0)
    truth = rng.dirichlet(np.full(len(ENDMEMBERS), 0.4), 500).T  # (E, P), sparse-ish mixtures
    frac, rms = fcls(em.T @ truth, em)
    assert np.abs(frac - truth).max() < 1e-4
    assert rms.max() < 1e-6
    noisy = em.T @ truth + rng.normal(0, 0.02, (len(BANDS), 500))
    frac, rms = fcls(noisy, em)
    assert frac.min() >= 0 and np.allclose(frac.sum(axis=0), 1)
    # the same optimum as NNLS with a heavily weighted sum-to-one row (Heinz & Chang 2001)
    w = 1e4
    a = np.vstack([em.T, w * np.ones(len(ENDMEMBERS))])
    ref = np.stack([nnls(a, np.r_[noisy[:, i], w])[0] for i in range(500)], axis=1)
    assert np.abs(frac - ref).max() < 1e-4
    assert np.allclose(rms, np.sqrt(((em.T @ frac - noisy) ** 2).mean(axis=0)))


def test_fcls_gives_nan_for_pixels_with_a_missing_band() -> None:
    em = endmember_matrix(BANDS)
    y = np.tile(em[0][:, None], (1, 3)).astype(np.float64)
    y[2, 1] = np.nan
    frac, rms = fcls(y, em)
    assert np.isnan(frac[:, 1]).all() and np.isnan(rms[1])
    assert np.allclose(frac[:, 0], np.eye(len(ENDMEMBERS))[0], atol=1e-6)


def test_seasonal_envelope_uses_the_same_days_of_the_previous_year_only() -> None:
    days = np.array([0, 10, 20, 30, 40, 365, 375, 385, 395, 405], np.float64)
    v = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [9.0], [9.0], [9.0], [9.0], [9.0]])
    valid = np.ones_like(v, bool)
    valid[1] = False  # a cloudy baseline date is not part of the envelope
    lo, mid, hi = _seasonal_envelope(v, valid, days, window=10)
    # day 375 looks at days 0..20 of the previous year: 1 and 3 (day 10 is cloudy)
    assert (lo[6, 0], mid[6, 0], hi[6, 0]) == (1.0, 2.0, 3.0)
    # day 405 looks at 30..50: 4 and 5
    assert (lo[9, 0], hi[9, 0]) == (4.0, 5.0)
    assert np.isnan(lo[:5]).all()  # no previous year


def test_first_persistent_skips_clouds_and_needs_n_in_a_row() -> None:
    flag = np.array([[1], [0], [1], [1], [0], [1]], bool)
    valid = np.array([[1], [1], [1], [0], [1], [1]], bool)
    days = np.arange(6, dtype=np.float32) * 10
    idx, date = _first_persistent(flag, valid, 2, days)
    assert idx[0] == -1  # t=2 is followed by a cloud (skipped) then a calm t=4
    flag[4] = True
    idx, date = _first_persistent(flag, valid, 2, days)
    assert idx[0] == 2 and date[0] == 20


def test_run_start_goes_back_over_the_elevated_run_only() -> None:
    elevated = np.array([[0, 1], [1, 1], [1, 0], [1, 1], [1, 1]], bool)
    valid = np.array([[1, 1], [1, 1], [0, 1], [1, 1], [1, 1]], bool)
    start = _run_start(elevated, valid, np.array([4, 4]))
    # pixel 0: calm at t=0, elevated from t=1 on (t=2 is cloudy, skipped) -> 1
    # pixel 1: calm at t=2 -> the run starts at t=3
    assert start.tolist() == [1, 3]
    assert _run_start(elevated, valid, np.array([-1, 0])).tolist() == [-1, 0]


def _series(days: np.ndarray, spectrum_before: np.ndarray, spectrum_after: np.ndarray, change_day: int,
            rng: np.random.Generator) -> np.ndarray:
    spec = np.where(days[:, None] >= change_day, spectrum_after[None], spectrum_before[None])
    return (spec + rng.normal(0, 0.004, spec.shape)).astype(np.float32)[:, :, None, None]


@pytest.mark.parametrize("after, code", [("burned", "burn"), ("bare_soil", "vegetation_loss"),
                                          ("built_up", "built_up_gain"), ("water_clear", "flood")])
def test_kernel_names_what_replaced_a_forest_and_when(after: str, code: str) -> None:
    em = dict(zip(ENDMEMBERS, endmember_matrix(BANDS)))
    days = np.arange(0, 3 * 365, 10).astype(np.float64)
    change_day = 600
    refl = _series(days, em["forest"], em[after], change_day, np.random.default_rng(1))
    out = series_kernel(refl, days, SeriesParams(), BANDS)
    assert out[0, 0, 0] == CHANGE_CODES[code]
    assert out[1, 0, 0] == days[days >= change_day][0]  # dated on the first observation after


def test_kernel_keeps_a_stable_forest_unchanged() -> None:
    em = dict(zip(ENDMEMBERS, endmember_matrix(BANDS)))
    days = np.arange(0, 3 * 365, 10).astype(np.float64)
    refl = _series(days, em["forest"], em["forest"], 10**6, np.random.default_rng(2))
    out = series_kernel(refl, days, SeriesParams(), BANDS)
    assert out[0, 0, 0] == 0 and np.isnan(out[1, 0, 0])


def _shore_series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A mixed shore pixel seen by two interleaved sensors: one sees open water, the other the
    wooded shore. In the second year's northern-winter months only the land-seeing sensor is
    clear (clouds hide the other), so the same-season window of the third year holds land only."""
    em = dict(zip(ENDMEMBERS, endmember_matrix(BANDS)))
    days = np.arange(0, 3 * 365, 5).astype(np.float64)
    water_view = (np.arange(days.size) % 2) == 0
    spec = np.where(water_view[:, None], em["water_clear"][None], em["forest"][None])
    refl = (spec + rng.normal(0, 0.003, spec.shape)).astype(np.float32)
    hidden = water_view & (days >= 365 + 300) & (days < 365 + 365)
    refl[hidden] = np.nan
    return refl[:, :, None, None], days


def test_intermittent_water_is_no_flood() -> None:
    refl, days = _shore_series(np.random.default_rng(3))
    out = series_kernel(refl, days, SeriesParams(), BANDS)
    assert out[0, 0, 0] != CHANGE_CODES["flood"], out[:2, 0, 0]
    # without the dry-baseline rule the same pixel is a "flood": the test can fail
    loose = series_kernel(refl, days, SeriesParams(max_prior_water_share=1.0), BANDS)
    assert loose[0, 0, 0] == CHANGE_CODES["flood"]


def _crop_series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A crop field, the same cycle every year: sown on day 140, green from day 170, cut on day
    240 (bare soil after). The third year's harvest season is cloudy: only the green days before
    it are clear, so that year's same-season baseline misses the trough."""
    em = dict(zip(ENDMEMBERS, endmember_matrix(BANDS)))
    days = np.arange(0, 4 * 365, 5).astype(np.float64)
    doy = days % 365
    green = np.where(doy < 240, np.clip((doy - 140) / 30, 0, 1), 0.0)
    spec = green[:, None] * em["forest"][None] + (1 - green[:, None]) * em["bare_soil"][None]
    refl = (spec + rng.normal(0, 0.003, spec.shape)).astype(np.float32)
    refl[(days >= 2 * 365 + 235) & (days < 2 * 365 + 300)] = np.nan  # year 3's harvest: cloud
    return refl[:, :, None, None], days


def test_a_recurring_crop_trough_is_no_vegetation_loss() -> None:
    refl, days = _crop_series(np.random.default_rng(4))
    out = series_kernel(refl, days, SeriesParams(), BANDS)
    assert out[0, 0, 0] == 0, out[:2, 0, 0]
    # one year of baseline (the late one) alone calls the next, usual harvest a loss
    one = series_kernel(refl, days, SeriesParams(baseline_years=1), BANDS)
    assert one[0, 0, 0] == CHANGE_CODES["vegetation_loss"]


def _series_sample(seed: int = 0, T: int = 40, P: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(T, 3, P)).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan  # a NaN index on a valid date is skipped
    valid = rng.random((T, P)) < 0.6
    idx = rng.integers(-1, T, P)
    idx[:50] = -1
    return values, valid, idx


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_post_and_last_median_equal_the_median_of_the_selected_observations(n: int) -> None:
    # the kernel moves the <= n selected observations into n slots before the median: the
    # result must be the NaN-median over the whole series of exactly those observations
    values, valid, idx = _series_sample(n)
    T, P = valid.shape
    order = np.cumsum(valid, axis=0)
    start = np.where(idx >= 0, order[np.clip(idx, 0, T - 1), np.arange(P)], 0)
    sel = valid & (order >= start) & (order < start + n) & (idx >= 0)
    back = np.cumsum(valid[::-1], axis=0)[::-1]
    sel_last = valid & (back <= n) & (idx >= 0)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanmedian(np.where(sel[:, None], values, np.nan), axis=0)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want_last = np.nanmedian(np.where(sel_last[:, None], values, np.nan), axis=0)
    for got in (_post_median(values, valid, idx, n), _post_median(values, valid, idx, n, order)):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(_post_median(values[:, 0], valid, idx, n), want[0])
    np.testing.assert_array_equal(_last_median(values, valid, idx, n), want_last)
    assert np.isnan(want[:, :50]).all() and np.isfinite(want).any()


def test_unmixing_only_where_a_break_was_found_equals_unmixing_everything() -> None:
    em = endmember_matrix(BANDS)
    rng = np.random.default_rng(3)
    y = (em.T.astype(np.float64) @ rng.dirichlet(np.ones(len(ENDMEMBERS)), 300).T
         + rng.normal(0, 0.01, (len(BANDS), 300)))
    cols = np.flatnonzero(rng.random(300) < 0.3)
    y[:, np.setdiff1d(np.arange(300), cols)] = np.nan  # the kernel's pixels without a break
    frac, rms = fcls(y, em)
    got_frac, got_rms = _fcls_at(y, em, cols)
    np.testing.assert_array_equal(got_frac, frac)
    np.testing.assert_array_equal(got_rms, rms)
    assert all(np.isnan(a).all() for a in _fcls_at(y, em, cols[:0]))


def test_fused_pass_equals_the_separate_passes(tmp_path) -> None:
    # analyze() reads the cube once for the period composites, the series layers and the
    # pixels clear in the period: each must equal what its own pass over the cube gives
    import dask

    from rsvlm_temporal.change.analysis import (
        _fused_periods_series,
        _period_median,
        _series_layers,
        clear_pass,
    )
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.pipeline import analysis_cube
    from rsvlm_temporal.synth import write_scene

    scene = write_scene(tmp_path / "scene", "wildfire", keep_arrays=False, size=24, start="2019-01-01",
                        end="2020-12-31", sensors=("s2",), s2_revisit_days=10, seed=3)
    cube = analysis_cube(load_items(scene.catalog_path), chunksize=16)  # several chunks
    cube = cube.sel(band=list(SeriesParams().bands))
    times = cube.time.values
    s, e = times[len(times) // 2].astype("datetime64[D]").item(), times[-1].astype("datetime64[D]").item()
    p = clear_pass(cube, s, e, times[0], times[-1] + np.timedelta64(1, "D"))
    windows = ((times[0], times[5]), (times[-6], times[-1]))
    with dask.config.set(scheduler="sync"):
        before, after, ser, period_clear = _fused_periods_series(cube, windows, p.in_period, SeriesParams(),
                                                                 8, tmp_path / "work")
        want = [_period_median(cube, *w, block=8).values for w in windows]
        want_ser = _series_layers(cube, SeriesParams(), 8).compute()
        for got, w in zip((before.values, after.values), want):
            assert np.array_equal(got.view(np.uint32), w.view(np.uint32))
        for name in want_ser.data_vars:
            assert np.array_equal(ser[name].values.view(np.uint32), want_ser[name].values.view(np.uint32)), name
        np.testing.assert_array_equal(period_clear.values, p.period_clear.values)
    assert 0 < int(p.period_clear.sum()) and np.isfinite(want_ser.change_class.values).any()
