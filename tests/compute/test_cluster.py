"""dask.distributed plumbing: a LocalCluster gives exactly the threaded scheduler's cube; a bad
scheduler address fails fast with a clear error."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from distributed import get_task_stream
from rasters import item_dict, write_cog

from rsvlm_temporal.compute.cluster import ClusterError, dask_client
from rsvlm_temporal.errors import RsvlmError
from rsvlm_temporal.io.cube import load_cube

EPSG = 32633
X0, Y0 = 500000.0, 5000000.0


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """4 Sentinel-2 L2A items (red, nir at 10 m, SCL at 20 m), 96 x 80 px COGs with 32 px tiles:
    clouds, shadow and a nodata corner, so the mask coordinate carries several flags."""
    out: Path = tmp_path_factory.mktemp("cluster")
    rng = np.random.default_rng(42)
    h, w = 96, 80
    t10 = Affine(10, 0, X0, 0, -10, Y0)
    t20 = Affine(20, 0, X0, 0, -20, Y0)
    result = []
    for d in range(4):
        assets = {}
        for band in ("red", "nir"):
            dn = rng.integers(1100, 6000, (h, w)).astype(np.uint16)
            dn[:8, :12] = 0  # nodata corner
            path = write_cog(out / f"d{d}_{band}.tif", dn, t10, EPSG, nodata=0, blocksize=32)
            assets[band] = {"href": str(path), "proj:shape": [h, w], "proj:transform": list(t10)[:6],
                            "raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}
        scl = rng.choice(np.array([4, 5, 6, 8, 9, 3, 10], np.uint8), (h // 2, w // 2),
                         p=[0.5, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05])
        path = write_cog(out / f"d{d}_scl.tif", scl, t20, EPSG, nodata=0, blocksize=32)
        assets["scl"] = {"href": str(path), "proj:shape": [h // 2, w // 2], "proj:transform": list(t20)[:6]}
        result.append(item_dict(f"S2A_T33_{d}", f"2023-0{d + 4}-10T10:00:00Z", "sentinel-2-l2a",
                                "sentinel-2a", EPSG, assets))
    return result


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


def test_local_cluster_workers_start_with_the_malloc_settings(client) -> None:
    """dask's MALLOC_TRIM_THRESHOLD_ switches off glibc's dynamic mmap threshold; the workers must
    start with a fixed one (else numpy temporaries are page-faulted afresh: 2.5x slower)."""
    import os

    from rsvlm_temporal.compute.cluster import WORKER_MALLOC_ENV

    got = client.run(lambda: {k: os.environ.get(k) for k in WORKER_MALLOC_ENV})
    assert len(got) == 2
    for env in got.values():
        assert env == {k: os.environ.get(k, v) for k, v in WORKER_MALLOC_ENV.items()}


def _cube(items: list[dict]) -> xr.DataArray:
    # an AOI that crops the files (not tile-aligned) and chunks smaller than the tiles
    return load_cube(items, bands=["red", "nir"], bounds=(X0 + 30, Y0 - 900, X0 + 770, Y0 - 20),
                     chunksize=40)


def test_local_cluster_matches_threaded_scheduler_exactly(items, client) -> None:
    cube = _cube(items)
    assert cube.sizes == {"time": 4, "band": 2, "y": 88, "x": 74}
    with dask.config.set(scheduler="threads"):
        expected = cube.compute()
        expected_sum = cube.sum("time").compute()
        expected_flags = (cube.mask > 0).sum("time").compute()
    assert len(client.scheduler_info()["workers"]) == 2
    with dask_client(client=client) as c:
        assert c is client
        assert dask.base.get_scheduler() == client.get  # .compute() goes to the cluster
        with get_task_stream(client) as stream:
            got = cube.compute()
        got_sum = cube.sum("time").compute()
        got_flags = (cube.mask > 0).sum("time").compute()
    assert len({t["worker"] for t in stream.data}) == 2  # both worker processes read
    xr.testing.assert_identical(got, expected)  # values (NaN where masked), mask, all coords
    assert np.array_equal(got.mask.values, expected.mask.values)
    xr.testing.assert_identical(got_sum, expected_sum)
    xr.testing.assert_identical(got_flags, expected_flags)
    # the fixture really has masked pixels of several kinds, and valid ones
    flags = set(np.unique(expected.mask.values).tolist())
    assert {0, 1, 2, 4, 8} <= flags
    assert np.isnan(expected.values).any() and np.isfinite(expected.values).any()
    assert client.status == "running"  # a given client is left open


def test_unreachable_scheduler_fails_fast_with_clear_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match=rf"cannot reach the dask scheduler at tcp://127.0.0.1:{port}"):
        with dask_client(scheduler=f"tcp://127.0.0.1:{port}", timeout=2):
            pass  # pragma: no cover
    assert time.perf_counter() - t0 < 5
    assert issubclass(ClusterError, RsvlmError)
    with pytest.raises(ClusterError, match="expected tcp://HOST:PORT"):
        with dask_client(scheduler="tcp://no-port-here"):
            pass  # pragma: no cover


def test_no_cluster_and_bad_arguments() -> None:
    with dask_client() as c:
        assert c is None
    with pytest.raises(ValueError, match="at most one"):
        with dask_client(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="workers must be"):
        with dask_client(workers=0):
            pass  # pragma: no cover


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> list:
    """A small synthetic flood (42 x 42 px, two years of Sentinel-2 every 30 days)."""
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.synth import write_scene

    root: Path = tmp_path_factory.mktemp("flood")
    write_scene(root, "flood", size=42, start="2019-01-01", end="2020-12-31", sensors=("s2",),
                s2_revisit_days=30, seed=5, keep_arrays=False)
    return load_items(root / "catalog.json")


def _rasters(folder: Path) -> dict[str, np.ndarray]:
    import rasterio

    out = {}
    for path in sorted(folder.glob("*.tif")):
        with rasterio.open(path) as src:
            out[path.name] = src.read()
    return out


def test_run_analysis_on_local_cluster_is_identical_to_threaded(scene, client, tmp_path) -> None:
    import json

    from rsvlm_temporal.pipeline import run_analysis

    # 24 px chunks: 2 x 2 blocks, so the IR-MAD statistics, the Otsu histogram, the polygons
    # and the evidence all combine several blocks
    opts = dict(chunksize=24, block=24)
    with dask.config.set(scheduler="threads"):
        ref = run_analysis(scene, tmp_path / "threads", **opts)
    got = run_analysis(scene, tmp_path / "cluster", client=client, **opts)
    a, b = _rasters(tmp_path / "threads"), _rasters(tmp_path / "cluster")
    # every layer of the stack, the class / date / magnitude COGs
    assert set(a) == set(b) >= {"layers.tif", "change_class.tif", "change_date.tif", "flood_onset.tif",
                                "flood_recession.tif", "change_magnitude.tif", "confidence.tif",
                                # the temporal CLIP, run per chunk on the workers (loaded once each)
                                "model_layers.tif", "model_change_mask.tif", "model_agreement.tif"}
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name], equal_nan=True), name
    ev_a = json.loads((tmp_path / "threads" / "evidence.json").read_text())
    ev_b = json.loads((tmp_path / "cluster" / "evidence.json").read_text())
    assert ev_a == ev_b
    assert ref.evidence.to_dict() == got.evidence.to_dict()
    # ... and there was something to compare: a flood with dates, a magnitude with a threshold
    assert ref.mode == "series"
    assert ev_a["extra"]["model"]["scene_label"] == "flood" and ev_a["extra"]["model"]["change_ha"] > 0
    flood = ref.evidence.class_by_name("flood")
    assert flood.n_pixels > 20 and flood.first_date is not None
    mag = a["change_magnitude.tif"]
    assert np.isfinite(mag).mean() > 0.9 and np.nanstd(mag) > 0
