"""Bounded memory (issue 3, issue 9): the peak memory of the whole analysis (run_analysis: cube,
change magnitude, series engine, result stack, exports, evidence) does not grow with the AOI.

Each AOI runs in a fresh Python process on the threaded scheduler (2 threads), the three side by
side. The measure is the peak RSS (``ru_maxrss``) above the RSS the process had after importing
the libraries and reading the catalog, so that the ~170 MiB of imports cannot hide growth. Every
block size is small (48 px chunks, series engine blocks and magnitude-fit blocks), so the 1x AOI
already has 4 chunks and the 16x AOI has 64. The test is sensitive: materialising the 16x cube
(~50 MiB) or computing one whole layer in one dask computation (dask then reads every input
ahead) made it fail (measured increases 89/113/170 and 99/114/156 MiB, against 87/104/121).
GDAL's block cache, which run_analysis caps at 32 MiB, is set to 4 MiB so that it is equally
full at every size. The magnitude is CVA (one statistics pass) rather than IR-MAD (tens of the
same passes), to keep the test short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BASE = 96  # px; the 1x AOI is BASE/2 x BASE (2 chunks), the 4x twice that, the 16x 4 times
CHUNK = 48

CHILD = r"""
import gc, json, resource, sys
import dask, numpy, rasterio, stackstac, xarray  # noqa: F401  (the baseline: libraries loaded)
import rsvlm_temporal.change.magnitude as magnitude
from rsvlm_temporal.io.catalog import load_items
from rsvlm_temporal.io.cube import load_cube
from rsvlm_temporal.pipeline import run_analysis

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

catalog, out, side, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
magnitude.FIT_BLOCK = chunk  # the magnitude's statistics passes in the same small blocks
items = load_items(catalog)
full = load_cube(items)
t, n = full.attrs["transform"], full.sizes["x"]
x0, y0 = t[2] + (n - side) * 10, t[5] - (n - side // 2) * 10
bounds = (x0, y0 - side // 2 * 10, x0 + side * 10, y0)  # the scene's bottom-right side/2 x side px
nblocks = load_cube(items, bounds=bounds, chunksize=chunk).data.numblocks
gc.collect()
base = rss()
with dask.config.set(scheduler="threads", num_workers=2):
    res = run_analysis(items, out, bounds=bounds, chunksize=chunk, block=chunk, magnitude_method="cva", model=None)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
changed = sum(c.n_pixels for c in res.evidence.classes if c.name != "no_change")
print(json.dumps({"base": base, "peak": peak, "blocks": nblocks[2] * nblocks[3], "mode": res.mode,
                  "shape": [res.evidence.aoi.height, res.evidence.aoi.width], "changed": changed}))
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4*BASE px wildfire (in the bottom-right of the scene), 20 months of Sentinel-2 every 45
    days (14 dates; written here, before any measured process starts)."""
    from rsvlm_temporal.synth import write_scene

    root = tmp_path_factory.mktemp("memory")
    write_scene(root, "wildfire", size=4 * BASE, start="2019-01-01", end="2020-08-31", sensors=("s2",),
                s2_revisit_days=45, cloud_prob=0.2, seed=7, keep_arrays=False)
    return root / "catalog.json"


def _measure(catalog: Path, out: Path, side: int) -> dict:
    env = {**os.environ, "GDAL_CACHEMAX": "4", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(catalog), str(out), str(side), str(CHUNK)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_peak_memory_stays_flat_from_1x_to_4x_and_16x_aoi(catalog: Path, tmp_path: Path) -> None:
    sides = {1: BASE, 4: 2 * BASE, 16: 4 * BASE}
    with ThreadPoolExecutor(max_workers=len(sides)) as pool:  # one fresh process per AOI
        runs = dict(zip(sides, pool.map(lambda s: _measure(catalog, tmp_path / f"aoi{s}", s),
                                        sides.values())))
    for factor, r in runs.items():
        # the AOI really is factor x the area in factor x the chunks, through the series engine
        assert r["shape"] == [sides[factor] // 2, sides[factor]]
        assert r["blocks"] == factor * runs[1]["blocks"] and runs[1]["blocks"] >= 2
        assert r["mode"] == "series"
    # the runs did the work being measured: the fire is found, more of it in larger AOIs
    assert 0 < runs[1]["changed"] < runs[16]["changed"]
    increase = {f: r["peak"] - r["base"] for f, r in runs.items()}
    mib = {f: round(v / 2**20) for f, v in increase.items()}
    print("peak RSS increase over the imports, MiB:", mib)
    assert increase[1] > 0
    assert increase[4] <= 1.5 * increase[1], mib  # issue 3
    assert increase[16] <= 1.5 * increase[1], mib  # issue 9


def test_chunk_side_follows_the_memory_budget() -> None:
    """One chunk's whole series (float32 bands + uint8 flags) fits the budget; edges stay on the
    files' tile edges (powers of two of the max chunk); a bad budget is refused."""
    from rsvlm_temporal.pipeline import ANALYSIS_CHUNK_BYTES, analysis_chunksize, run_analysis

    assert analysis_chunksize(24, 6) == 256  # 24 x 25 B x 256^2 = 37.5 MiB <= 48 MiB < 150 MiB at 512
    assert analysis_chunksize(24, 6, budget=160 * 2**20) == 512
    assert analysis_chunksize(2000, 6) == 64  # never below min_chunk
    for n in (10, 24, 73, 400):
        c = analysis_chunksize(n, 6)
        assert c == 64 or n * 25 * c * c <= ANALYSIS_CHUNK_BYTES < n * 25 * (2 * c) ** 2
    with pytest.raises(ValueError, match="chunk_memory must be a positive"):
        run_analysis([], "unused", chunk_memory=0)
