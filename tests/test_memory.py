"""Peak memory of the whole analysis (run_analysis: cube, series engine, change magnitude,
result stack, COGs, polygons, evidence) as the AOI grows 4x and 16x with the chunk size fixed,
each run in a fresh Python process (peak RSS from getrusage), the three runs side by side.

Issue 3: a 4x larger AOI stays within 1.5x peak memory; issue 9: so does a 16x larger one. The
AOIs are small (48, 96, 192 px of 10 m, chunks of 24 px: 4, 16, 64 chunks) so that the test
stays quick; ``python benchmarks/distributed.py --part memory`` measures the same at 256 px+.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rsvlm_temporal.synth import write_scene

SIDES = (48, 96, 192)
CHUNK = 24
PROBE = """
import json, resource, sys
import dask
from rsvlm_temporal.catalog import load_items
from rsvlm_temporal.pipeline import run_analysis
with dask.config.set(num_workers=1):
    out = run_analysis(load_items(sys.argv[1]), sys.argv[2], chunksize=int(sys.argv[3]), block=int(sys.argv[3]))
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "changed_px": sum(c["n_pixels"] for c in out.evidence.to_dict()["classes"]
                                    if c["name"] != "no_change")}))
"""


def _peak(catalog: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(catalog), str(out), str(CHUNK)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def peaks(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    root = tmp_path_factory.mktemp("memory")
    for side in SIDES:  # the same wildfire scene, larger; 2.5 years of Sentinel-2 every 45 days
        write_scene(root / f"s{side}", "wildfire", size=side, start="2018-01-01", end="2020-06-30",
                    sensors=("s2",), s2_revisit_days=45, seed=5, keep_arrays=False)
    with ThreadPoolExecutor(len(SIDES)) as pool:
        runs = {s: pool.submit(_peak, root / f"s{s}" / "catalog.json", root / f"out{s}") for s in SIDES}
        return {s: f.result() for s, f in runs.items()}


def test_the_runs_found_the_fire(peaks: dict[int, dict]) -> None:
    # the AOIs hold a real event, more of it as they grow: the runs did the work being measured
    assert 0 < peaks[48]["changed_px"] < peaks[192]["changed_px"]


@pytest.mark.parametrize("side", [96, 192])
def test_peak_memory_within_1_5x_as_the_aoi_grows(peaks: dict[int, dict], side: int) -> None:
    ratio = peaks[side]["peak_mib"] / peaks[48]["peak_mib"]
    assert ratio <= 1.5, {s: round(p["peak_mib"]) for s, p in peaks.items()}
