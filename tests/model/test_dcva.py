"""DCVA from the shipped Presto encoder (model/dcva.py): a changed block stands out of a noisy
unchanged scene, the unchanged pixels sit near 1, bands are checked before any compute."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

pytest.importorskip("torch")

from rsvlm_temporal.errors import ParameterError, UnknownBandError  # noqa: E402
from rsvlm_temporal.model.dcva import dcva_magnitude  # noqa: E402

BANDS = ["blue", "green", "red", "nir", "swir16", "swir22"]
VEG = np.array([0.03, 0.06, 0.04, 0.35, 0.18, 0.09], np.float32)  # reflectance 0-1
SOIL = np.array([0.12, 0.16, 0.20, 0.26, 0.32, 0.28], np.float32)
DATES = (dt.date(2021, 6, 1), dt.date(2022, 6, 1))


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = np.broadcast_to(VEG[:, None, None], (6, 20, 20)).copy()
    after = before.copy()
    changed = np.zeros((20, 20), bool)
    changed[4:10, 8:14] = True
    after[:, changed] = SOIL[:, None]
    noise = lambda a: (a * (1 + 0.04 * rng.standard_normal(a.shape))).astype(np.float32)  # noqa: E731
    return noise(before), noise(after), changed


@pytest.mark.parametrize("mode", ["single", "pair"])
def test_a_cleared_block_stands_out(mode: str) -> None:
    before, after, changed = _pair()
    mag = dcva_magnitude(before, after, BANDS, DATES, mode=mode)
    assert mag.shape == changed.shape and np.isfinite(mag).all()
    assert mag[changed].min() > np.percentile(mag[~changed], 99)
    assert 0.5 < np.median(mag[~changed]) < 2.0  # standardised: about 1 where nothing changed


def test_invalid_pixels_are_no_data_and_bands_are_checked_first() -> None:
    before, after, _ = _pair(1)
    before[:, 0, 0] = np.nan
    mag = dcva_magnitude(before, after, BANDS, DATES)
    assert np.isnan(mag[0, 0]) and np.isfinite(mag[1:, 1:]).all()
    with pytest.raises(UnknownBandError, match="swir22"):
        dcva_magnitude(before[:5], after[:5], BANDS[:5], DATES)
    with pytest.raises(ParameterError, match="mode"):
        dcva_magnitude(before, after, BANDS, DATES, mode="triple")
