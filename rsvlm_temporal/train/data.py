"""Training / evaluation samples from the synthetic generator, in memory: a cube shaped as
``io.cube.load_cube`` returns (time, band, y, x; reflectance 0-1, NaN where cloud / shadow /
cirrus / nodata) on the 10 m truth grid, with the truth (change class, change dates, captions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from rsvlm_temporal.synth import make_scene
from rsvlm_temporal.synth.scenarios import SENSOR_BANDS
from rsvlm_temporal.synth.writer import _observe, upsample

SCENE_KW: dict[str, Any] = {"size": 36, "start": "2021-01-01", "end": "2021-12-31"}
SENSOR_MODES = ("both", "s2", "landsat")


@dataclass
class Sample:
    """One scene: cube (xr.DataArray), change_class (y, x) uint8, change_day (y, x) float days
    since 1970 (NaN none), captions, scenario, sensors."""

    cube: xr.DataArray
    change_class: np.ndarray
    change_day: np.ndarray
    captions: list[str]
    scenario: str
    sensors: str
    seed: int


def scene_cube(scene: Any) -> xr.DataArray:
    """A synthetic scene observed by its sensors, as a load_cube-like DataArray at 10 m."""
    bands = list(dict.fromkeys(b for c in scene.acquisitions for b in SENSOR_BANDS[c]))
    acqs = sorted((a for v in scene.acquisitions.values() for a in v), key=lambda a: (a.day, a.collection))
    n = scene.grid.shape[0]
    vals = np.full((len(acqs), len(bands), n, n), np.nan, np.float32)
    flags = np.zeros((len(acqs), n, n), np.uint8)
    for i, acq in enumerate(acqs):
        atm = scene.atmosphere(acq)
        refl, _ = _observe(scene, acq, atm)
        bad = atm.cloud | atm.shadow | atm.cirrus | atm.nodata
        flags[i] = atm.flags()
        for b, x in refl.items():
            k = n // x.shape[0]
            up = upsample(x, k) if k > 1 else x
            vals[i, bands.index(b)] = np.where(bad, np.nan, up).astype(np.float32)
    transform, _ = scene.grid.at(10.0)
    xs = transform.c + (np.arange(n) + 0.5) * transform.a
    ys = transform.f + (np.arange(n) + 0.5) * transform.e
    times = np.array([np.datetime64(a.datetime.replace(tzinfo=None), "ns") for a in acqs])
    return xr.DataArray(
        vals, dims=("time", "band", "y", "x"),
        coords={"time": times, "band": bands, "y": ys, "x": xs,
                "sensor": ("time", [a.collection for a in acqs]), "id": ("time", [a.item_id for a in acqs]),
                "mask": (("time", "y", "x"), flags)},
        attrs={"crs": scene.grid.crs, "epsg": scene.grid.epsg, "transform": tuple(transform)[:6],
               "resolution": (10.0, 10.0)})


def make_sample(scenario: str, seed: int, sensors: str | None = None, **kw: Any) -> Sample:
    """One synthetic sample (sensors default: cycles both / s2 / landsat with the seed)."""
    sensors = sensors or SENSOR_MODES[seed % len(SENSOR_MODES)]
    opts = {**SCENE_KW, **kw}
    scene = make_scene(scenario, seed=seed, sensors=sensors, **opts)
    cd = scene.truth.change_date
    day = np.where(np.isnat(cd), np.nan, (cd - np.datetime64("1970-01-01", "D")).astype("float64"))
    return Sample(scene_cube(scene), scene.truth.change_class.copy(), day, list(scene.truth.captions),
                  scenario, sensors, seed)
