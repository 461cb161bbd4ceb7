"""Evidence: exact patches across chunk borders, areas in ha, % of valid area, location, JSON."""

from __future__ import annotations

import json

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from rsvlm_temporal.compute.blocks import label_block, merge_edge_patches
from rsvlm_temporal.evidence import Evidence, build_evidence
from rsvlm_temporal.evidence.schema import SCATTERED_PHRASE
from rsvlm_temporal.grid import GridError, coords_for

EPSG = 32633
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)  # 10 m pixels -> 0.01 ha
NAMES = {0: "no_change", 1: "burn", 2: "flood"}


def raster(values: np.ndarray, chunks: int | tuple[int, int] = 16, **attrs: object) -> xr.DataArray:
    """A georeferenced dask-backed 2-D raster as in docs/CONTRACTS.md."""
    from affine import Affine

    a = dict(crs=f"EPSG:{EPSG}", epsg=EPSG, transform=TRANSFORM, resolution=(10.0, 10.0))
    a.update(attrs)
    return xr.DataArray(
        dsa.from_array(values, chunks=chunks), dims=("y", "x"),
        coords=coords_for(Affine(*TRANSFORM), values.shape), attrs=a,
    )


def global_patches(cls: np.ndarray, code: int) -> tuple[int, int]:
    lab, n = ndimage.label(cls == code, structure=np.ones((3, 3), bool))
    sizes = np.bincount(lab.ravel())[1:]
    return n, int(sizes.max()) if n else 0


def corner_case() -> np.ndarray:
    """48 x 48, chunks of 16: patches straddling borders and diagonal-only corner contacts."""
    a = np.zeros((48, 48), np.uint8)
    a[15, 15] = 1  # diagonal across the corner of blocks (0,0)/(1,1) ...
    a[16, 16] = 1  # ... -> one patch of 2 pixels
    a[15, 32] = 1  # diagonal across the corner of blocks (0,2)/(1,1): bottom-left / top-right
    a[16, 31] = 1
    a[31, 31] = 2  # single-pixel flood touching 4 blocks' corner region only diagonally
    a[32, 32] = 2
    a[33, 33] = 2
    a[5:40, 8] = 1  # a long vertical burn crossing two horizontal borders
    a[20, 0:48] = 2  # a flood line crossing all vertical borders
    a[40:44, 40:44] = 1  # interior patch
    a[47, 0] = 1  # raster corner
    return a


@pytest.mark.parametrize("chunks", [16, (16, 16), (7, 11), 48])
def test_patches_match_global_label_corner_cases(chunks: object) -> None:
    a = corner_case()
    ev = build_evidence(raster(a, chunks=chunks), NAMES)
    for code in (1, 2):
        n, largest = global_patches(a, code)
        c = ev.classes[code]
        assert c.code == code and c.name == NAMES[code]
        assert c.n_patches == n
        assert c.largest_patch_ha == pytest.approx(largest * 0.01)


def test_patches_match_global_label_random() -> None:
    rng = np.random.default_rng(0)
    a = rng.choice([0, 1, 2], p=[0.6, 0.25, 0.15], size=(96, 80)).astype(np.uint8)
    ev = build_evidence(raster(a, chunks=(16, 24)), NAMES)
    for code in (0, 1, 2):
        n, largest = global_patches(a, code)
        assert ev.classes[code].n_patches == n
        assert ev.classes[code].largest_patch_ha == pytest.approx(largest * 0.01)
        assert ev.classes[code].n_pixels == int((a == code).sum())


def test_merge_edge_patches_corner_only() -> None:
    """Four 2x2 blocks; only the diagonal pixels at the shared corner are set."""
    a = np.zeros((4, 4), np.uint8)
    a[1, 1] = a[2, 2] = 1
    a[1, 2] = a[2, 1] = 2
    valid = np.ones_like(a, bool)
    res = [[label_block(a[r:r + 2, c:c + 2], valid[r:r + 2, c:c + 2], (1, 2)) for c in (0, 2)]
           for r in (0, 2)]
    base, comp, n = merge_edge_patches([[x[1] for x in row] for row in res],
                                       [[x[2] for x in row] for row in res])
    assert n == 2  # one burn patch (1,1)-(2,2), one flood patch (1,2)-(2,1)
    assert len(comp) == 4


def test_areas_percent_nodata_and_location() -> None:
    a = np.zeros((60, 60), np.uint8)
    a[:, :30] = 255  # west half is nodata
    a[2:8, 50:58] = 1  # a 6 x 8 burn in the north-east
    ev = build_evidence(raster(a, chunks=16), NAMES)
    assert ev.aoi.total_pixels == 3600
    assert ev.aoi.valid_pixels == 1800
    assert ev.aoi.valid_area_ha == pytest.approx(18.0)
    assert ev.aoi.pixel_size_m == [10.0, 10.0]
    burn = ev.class_by_name("burn")
    assert burn.n_pixels == 48
    assert burn.area_ha == pytest.approx(0.48)
    assert burn.percent_of_valid == pytest.approx(100 * 48 / 1800)
    assert burn.n_patches == 1 and burn.largest_patch_ha == pytest.approx(0.48)
    assert burn.location == "north-east" and burn.location_phrase == "north-east"
    assert burn.cell_shares["north-east"] == pytest.approx(1.0)
    assert burn.centroid_x == pytest.approx(500000 + 540.0)  # columns 50..57 -> centre 54.0
    assert burn.centroid_y == pytest.approx(4650000 - 50.0)  # rows 2..7 -> centre 5.0
    assert 14.9 < burn.centroid_lon < 15.1 and 41.9 < burn.centroid_lat < 42.1  # UTM 33N
    w, s, e, n = ev.aoi.bounds_lonlat
    assert w < burn.centroid_lon < e and s < burn.centroid_lat < n
    assert ev.class_by_name("flood").n_pixels == 0
    assert ev.class_by_name("flood").location_phrase == "absent"
    assert ev.quality.status == "ok"


def test_valid_mask_and_scattered() -> None:
    a = np.zeros((60, 60), np.uint8)
    for r, c in [(5, 5), (5, 30), (5, 55), (30, 5), (30, 55), (55, 30)]:
        a[r:r + 2, c:c + 2] = 1
    mask = np.ones_like(a, bool)
    mask[55:, :] = False  # removes the southern patch
    ev = build_evidence(raster(a), NAMES, valid_mask=raster(mask))
    burn = ev.class_by_name("burn")
    assert burn.n_patches == 5 and burn.n_pixels == 20
    assert burn.scattered and burn.location_phrase == SCATTERED_PHRASE
    assert ev.aoi.valid_pixels == 60 * 55


def test_dates_confidence_quality_and_json_round_trip() -> None:
    a = np.zeros((32, 32), np.uint8)
    a[4:10, 4:10] = 1
    a[20:30, 20:30] = 2
    dates = np.full(a.shape, np.datetime64("NaT"), "datetime64[ns]")
    dates[4:10, 4:10] = np.datetime64("2023-07-02")
    dates[5, 5] = np.datetime64("2023-06-30")
    dates[9, 9] = np.datetime64("2023-07-15")
    conf = np.full(a.shape, np.nan, np.float32)
    conf[4:10, 4:10] = 0.8
    ev = build_evidence(
        raster(a), NAMES, date_raster=raster(dates), confidence=raster(conf),
        clear_counts={"2023-07-10": 512, np.datetime64("2023-06-01"): 1024},
        notes=["only 2 clear dates after the event"],
        extra={1: {"severity_ha": {"high": 0.1}}}, analysis="burn",
    )
    burn, flood = ev.class_by_name("burn"), ev.class_by_name("flood")
    assert (burn.first_date, burn.last_date) == ("2023-06-30", "2023-07-15")
    assert flood.first_date is None
    assert burn.confidence == pytest.approx(0.8)
    assert flood.confidence is None
    assert burn.extra == {"severity_ha": {"high": 0.1}}
    obs = ev.quality.clear_observations
    assert [o.date for o in obs] == ["2023-06-01", "2023-07-10"]
    assert obs[0].clear_count == 1024 and obs[0].clear_fraction == pytest.approx(1.0)
    assert ev.quality.status == "insufficient_data"
    text = ev.to_json()
    assert Evidence.from_json(text) == ev
    assert Evidence.from_dict(json.loads(text)).to_dict() == json.loads(text)


def test_confidence_per_class_and_date_days() -> None:
    a = np.zeros((20, 20), np.uint8)
    a[0:3, 0:3] = 1
    days = np.full(a.shape, -1, np.int32)
    days[0:3, 0:3] = 19000
    ev = build_evidence(raster(a), NAMES, confidence={1: 0.9},
                        date_raster=raster(days, nodata=-1))
    assert ev.class_by_name("burn").confidence == 0.9
    assert ev.class_by_name("burn").first_date == "2022-01-08"
    with pytest.raises(GridError):
        build_evidence(raster(a), NAMES, confidence=1.5)


def test_errors_and_insufficient() -> None:
    a = np.full((20, 20), 255, np.uint8)
    ev = build_evidence(raster(a), NAMES)
    assert ev.quality.status == "insufficient_data" and ev.aoi.valid_pixels == 0
    assert ev.classes[1].percent_of_valid == 0.0
    with pytest.raises(GridError, match="class_names"):
        build_evidence(raster(a), None)
    with pytest.raises(GridError, match="shape"):
        build_evidence(raster(a), NAMES, valid_mask=raster(np.ones((10, 10), bool)))
    with pytest.raises(GridError, match="geographic"):
        build_evidence(raster(a, crs="EPSG:4326"), NAMES)


def test_numpy_backed_and_attr_class_names() -> None:
    a = corner_case()
    r = raster(a).compute()
    r.attrs["class_names"] = {"1": "burn", "2": "flood"}
    ev = build_evidence(r)
    assert [c.name for c in ev.classes] == ["burn", "flood"]
    assert ev.classes[0].n_patches == global_patches(a, 1)[0]


def test_distributed_client() -> None:
    distributed = pytest.importorskip("distributed")
    a = corner_case()
    with distributed.Client(n_workers=1, threads_per_worker=1, processes=True,
                            dashboard_address=None) as _client:
        ev = build_evidence(raster(a), NAMES)
    assert ev.classes[1].n_patches == global_patches(a, 1)[0]
    assert ev.classes[2].largest_patch_ha == pytest.approx(global_patches(a, 2)[1] * 0.01)
