"""Bitemporal change classes from the spectra of two dates (change/bitemporal.py), on small
synthetic pairs with known truth, through ``analyze``'s bitemporal branch."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsvlm_temporal.change.analysis import analyze
from rsvlm_temporal.change.bitemporal import season_gap_days
from rsvlm_temporal.change.spectra import MATERIALS, signature_matrix
from rsvlm_temporal.classes import CHANGE_CODES

BANDS = ["blue", "green", "red", "nir", "swir16", "swir22"]
N = 64
RES = 10.0
TRANSFORM = (RES, 0.0, 500000.0, 0.0, -RES, 4000000.0)


def _spectra() -> dict[str, np.ndarray]:
    m = signature_matrix("sentinel-2-l2a", BANDS)
    return {name: m[i] for i, name in enumerate(MATERIALS)}


def _image(fractions: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(B, N, N) reflectance: linear mixture of the materials, plus 0.004 sensor noise."""
    sp = _spectra()
    img = sum(f[None] * sp[name][:, None, None] for name, f in fractions.items())
    return (img + rng.normal(scale=0.004, size=img.shape)).astype(np.float32)


def _cube(b: np.ndarray, a: np.ndarray, dates: tuple[str, str]) -> xr.DataArray:
    data = np.stack([b, a])
    ys = TRANSFORM[5] - RES * (np.arange(N) + 0.5)
    xs = TRANSFORM[2] + RES * (np.arange(N) + 0.5)
    return xr.DataArray(
        data, dims=("time", "band", "y", "x"),
        coords={"time": np.array(dates, dtype="datetime64[ns]"), "band": BANDS, "y": ys, "x": xs,
                "sensor": ("time", ["sentinel-2-l2a"] * 2), "id": ("time", ["a", "b"]),
                "mask": (("time", "y", "x"), np.zeros((2, N, N), np.uint8))},
        attrs={"crs": "EPSG:32633", "epsg": 32633, "transform": TRANSFORM, "resolution": (RES, RES)},
    ).chunk({"time": 1, "band": -1, "y": 32, "x": 32})


def _landscape(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fields of crop (left half), forest (right half), a built-up block (top left) and bare
    soil strips, with small random mixing."""
    z = np.zeros((N, N), np.float32)
    crop, forest, built, soil = z.copy(), z.copy(), z.copy(), z.copy()
    crop[:, :32] = 1.0
    forest[:, 32:] = 1.0
    built[:10, :10], crop[:10, :10] = 1.0, 0.0
    soil[40:44, :32], crop[40:44, :32] = 1.0, 0.0
    jitter = rng.uniform(0, 0.05, (N, N)).astype(np.float32)
    return {"crop": crop * (1 - jitter), "forest": forest * (1 - jitter), "built_up": built,
            "bare_soil": soil + jitter * (crop + forest > 0)}


def _run(b: np.ndarray, a: np.ndarray, dates: tuple[str, str], tmp_path) -> tuple[np.ndarray, np.ndarray, list]:
    res = analyze(_cube(b, a, dates), workdir=tmp_path).compute()
    assert res.mode == "bitemporal"
    return res.layers.change_class.values, res.layers.change_mask.values, res.notes


def test_season_gap_days() -> None:
    assert season_gap_days(np.datetime64("2015-07-11"), np.datetime64("2017-10-18")) == 99
    assert season_gap_days(np.datetime64("2015-12-20"), np.datetime64("2017-01-10")) == 21


def test_seasons_without_change_flag_under_one_percent(tmp_path) -> None:
    rng = np.random.default_rng(1)
    summer = _landscape(rng)
    winter = dict(summer)
    # winter: the crops are harvested (mostly bare soil), the forest a little drier
    winter["crop"] = summer["crop"] * 0.25
    winter["bare_soil"] = summer["bare_soil"] + summer["crop"] * 0.75
    winter["forest"] = summer["forest"] * 0.85
    winter["dry_vegetation"] = summer["forest"] * 0.15
    cls, mask, notes = _run(_image(summer, rng), _image(winter, rng), ("2021-07-10", "2023-01-15"), tmp_path)
    assert any(n.kind == "season_mismatch" for n in notes)
    assert float((mask == 1).mean()) < 0.01
    # the difference is there, and named: seasonal, not vegetation loss
    assert float((cls == CHANGE_CODES["seasonal"]).mean()) > 0.3
    assert float((cls == CHANGE_CODES["vegetation_loss"]).mean()) == 0.0


def test_built_up_gain_and_burn_between_two_dates(tmp_path) -> None:
    rng = np.random.default_rng(2)
    before = _landscape(rng)
    after = {k: v.copy() for k, v in before.items()}
    truth_built = np.zeros((N, N), bool)
    truth_built[20:32, 4:20] = True  # crop field built over
    truth_burn = np.zeros((N, N), bool)
    truth_burn[30:50, 40:60] = True  # forest burned
    for k in after:
        after[k][truth_built | truth_burn] = 0.0
    after["built_up"][truth_built] = 1.0
    after["burned"] = truth_burn.astype(np.float32)
    cls, mask, notes = _run(_image(before, rng), _image(after, rng), ("2021-07-10", "2023-07-20"), tmp_path)
    assert not any(n.kind == "season_mismatch" for n in notes)
    for code, truth in ((CHANGE_CODES["built_up_gain"], truth_built), (CHANGE_CODES["burn"], truth_burn)):
        pred = cls == code
        tp = np.sum(pred & truth)
        f1 = 2 * tp / (2 * tp + np.sum(pred & ~truth) + np.sum(~pred & truth))
        assert f1 >= 0.9, (code, f1)
    real = truth_built | truth_burn
    assert float((mask[~real] == 1).mean()) < 0.01


@pytest.mark.parametrize("scale", [255.0])
def test_raw_dn_pair_gets_mask_only(tmp_path, scale: float) -> None:
    rng = np.random.default_rng(3)
    land = _landscape(rng)
    b, a = _image(land, rng) * scale, _image(land, rng) * scale
    res = analyze(_cube(b, a, ("2021-07-10", "2023-07-20")), workdir=tmp_path)
    assert "change_class" not in res.layers
    assert any(n.kind == "no_spectral_classes" for n in res.notes)


def test_across_seasons_without_phenology_a_change_stays_change(tmp_path) -> None:
    """A landscape that does not move with the seasons (a dry, built and bare scene: no
    phenology) read across seasons: a significant change the class rules cannot type (bare
    soil turned to a bright, different soil) is other change, not the seasonal difference."""
    rng = np.random.default_rng(3)
    z = np.zeros((N, N), np.float32)
    before = {"bare_soil": z + 0.7, "built_up": z + 0.3}
    after = {k: v.copy() for k, v in before.items()}
    truth = np.zeros((N, N), bool)
    truth[16:40, 20:44] = True  # a construction site: soil scraped and mixed with built-up
    after["bare_soil"][truth] = 0.0
    after["built_up"][truth] = 0.0
    after["dry_vegetation"] = np.where(truth, 1.0, 0.0).astype(np.float32)
    cls, mask, notes = _run(_image(before, rng), _image(after, rng), ("2021-07-10", "2023-01-15"), tmp_path)
    assert any(n.kind == "season_mismatch" for n in notes)  # the seasons differ, and it says so
    pred = mask == 1
    tp = np.sum(pred & truth)
    f1 = 2 * tp / (2 * tp + np.sum(pred & ~truth) + np.sum(~pred & truth))
    assert f1 >= 0.9, f1
    assert float((cls[truth] == CHANGE_CODES["seasonal"]).mean()) < 0.05
