"""The change engine against the synthetic generator's truth (small scenes: 60x60 px, 4 years)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from rsvlm_temporal.analysis import analyze
from rsvlm_temporal.catalog import load_items
from rsvlm_temporal.classes import CHANGE_CODES
from rsvlm_temporal.cube import load_cube
from rsvlm_temporal.synth import write_scene

OPTIONS = dict(size=60, start="2019-01-01", end="2022-12-31", sensors=("s2",), s2_revisit_days=10, seed=1)


@pytest.fixture(scope="module")
def wildfire(tmp_path_factory):
    root = tmp_path_factory.mktemp("wildfire")
    write_scene(root, "wildfire", **OPTIONS)
    cube = load_cube(load_items(root / "catalog.json"))
    return analyze(cube, workdir=root / "work").compute(), root / "truth"


def _truth(folder: Path, name: str) -> np.ndarray:
    with rasterio.open(folder / f"{name}.tif") as src:
        return src.read(1)


def test_wildfire_burn_f1_severity_and_dates(wildfire):
    result, truth = wildfire
    t = _truth(truth, "change_class") == CHANGE_CODES["burn"]
    p = result.layers.change_class.values == CHANGE_CODES["burn"]
    f1 = 2 * (t & p).sum() / (t.sum() + p.sum())
    assert f1 >= 0.9, f1  # measured 0.936 (60x60, seed 1)
    sev_t, sev_p = _truth(truth, "burn_severity"), result.layers.burn_severity.values
    burned = t & p
    assert (sev_t[burned] == sev_p[burned]).mean() >= 0.9
    days_t = _truth(truth, "change_date")
    days_p = result.layers.change_date.values.astype("datetime64[D]").astype(np.int64)
    assert (np.abs(days_p[burned] - days_t[burned]) <= 10).mean() >= 0.9  # within one revisit
