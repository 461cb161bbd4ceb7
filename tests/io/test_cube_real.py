"""The cube loader on real data: real STAC items and real Sentinel-2 scenes (eo-learn)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasters import item_dict, write_cog

from rsvlm_temporal.io.cube import load_cube

L1C_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


@pytest.fixture(scope="module")
def eolearn_catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The 5 real 13-band REFERENCE_SCENES written as uint16 COGs, one STAC item per date."""
    root = shared_data / "eo-learn"
    scenes = np.load(root / "REFERENCE_SCENES.npy")  # (5, 101, 100, 13) TOA reflectance
    meta = json.loads((root / "REFERENCE_SCENES.timestamps.derived.json").read_text())
    bbox = json.loads((root / "TestEOPatch" / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in bbox], [p[1] for p in bbox]
    h, w = scenes.shape[1:3]
    transform = Affine((max(xs) - min(xs)) / w, 0, min(xs), 0, -(max(ys) - min(ys)) / h, max(ys))
    out = tmp_path_factory.mktemp("eolearn")
    items = []
    for s in meta["scenes"]:
        i = s["scene_index"]
        assets = {}
        for b, name in enumerate(L1C_BANDS):
            dn = np.round(scenes[i, :, :, b] * 10000).astype(np.uint16)
            path = write_cog(out / f"scene{i}_{name}.tif", dn, transform, 32633)
            assets[name] = {"href": str(path), "proj:shape": [h, w], "proj:transform": list(transform)[:6]}
        items.append(item_dict(f"eolearn-{i}", s["timestamp"] + "Z", "sentinel-2-l1c", "sentinel-2a",
                               32633, assets, properties={"s2:processing_baseline": "02.01"}))
    return items, meta, transform, (h, w)


def test_eolearn_scenes_reproduce_published_ndvi(eolearn_catalog, shared_data: Path) -> None:
    items, meta, transform, shape = eolearn_catalog
    cube = load_cube(items, bands=["red", "nir"])
    assert cube.shape == (5, 2, *shape)
    assert cube.attrs["crs"] == "EPSG:32633"
    assert np.allclose(cube.attrs["transform"], tuple(transform)[:6])
    values = cube.values
    ndvi = (values[:, 1] - values[:, 0]) / (values[:, 1] + values[:, 0])
    published = np.load(shared_data / "eo-learn" / "TestEOPatch" / "data" / "NDVI.npy")[..., 0]
    times = cube.time.values.astype("datetime64[s]").astype(str)
    for s in meta["scenes"]:
        k = list(times).index(s["timestamp"])
        ref = published[s["timestamps_json_index"]]
        assert np.nanmax(np.abs(ndvi[k] - ref)) < 1e-5, s["timestamp"]
