"""Cube chunks -> model inputs (numpy only; no torch here).

The model sees :data:`MODEL_BANDS` (the Sentinel-2 L2A bands of the cube, common names). A
Landsat date goes in as the matching S2 bands (blue, green, red, nir08 <- Landsat B5, swir16,
swir22) with the rest (nir B8, red edges) masked; masked / cloudy values (NaN in the cube) are
masked per band. Reflectance 0-1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

MODEL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "rededge1", "rededge2", "rededge3",
                                "nir08", "swir16", "swir22")
#: sensor codes of the model (0 = Sentinel-2, 1 = Landsat)
SENSOR_CODES: dict[str, int] = {"sentinel-2-l2a": 0, "landsat-c2-l2": 1}
EPOCH = np.datetime64("1970-01-01", "D")


def to_model_bands(values: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """(time, band, y, x) in ``bands`` order -> (time, len(MODEL_BANDS), y, x) float32, NaN where a
    band is absent from the input (the model masks it)."""
    t, _, h, w = values.shape
    out = np.full((t, len(MODEL_BANDS), h, w), np.nan, np.float32)
    index = {str(b): i for i, b in enumerate(bands)}
    for j, b in enumerate(MODEL_BANDS):
        if b in index:
            out[:, j] = values[:, index[b]]
    return out


def day_numbers(times: np.ndarray) -> np.ndarray:
    """datetime64 -> float64 days since 1970-01-01 (UTC)."""
    return (np.asarray(times).astype("datetime64[D]") - EPOCH).astype(np.float64)


def sensor_codes(sensors: Sequence[str] | None, n: int) -> np.ndarray:
    """Per-date sensor codes (unknown sensors count as Sentinel-2)."""
    if sensors is None:
        return np.zeros(n, np.int64)
    return np.array([SENSOR_CODES.get(str(s), 0) for s in sensors], np.int64)
