"""Issue 19: the README's own path, run as a user would. The ``rsvlm synth scenes/ ...`` and
``rsvlm analyze --catalog ...`` lines are read from README.md (so the test fails when the README
drifts from what works) and run as written, with relative paths, through
``python -m rsvlm_temporal.cli`` in a fresh working folder; then the result folder is checked
against the synthetic scene's truth.

Small-size flags, and why: as written, ``synth --scenario wildfire flood --size 120`` writes
2018-2024 at 120 px (measured 366 s on the 2-core machine, contended; 202 s at ``--size 24``) and
``analyze`` over that catalog with the temporal CLIP took 230 s; so synth gets ``--size 24
--start 2021-01-01 --end 2022-12-31`` (the smallest scene with a year before and after the fire)
and analyze ``--no-model`` (90 s + 67 s, contended). Everything else (scenarios, relative
folders, dates, ``--out``) is the README's.

The README's analyze line names a placeholder catalog (``path/to/catalog.json``); where it does,
the synth's first scenario (``scenes/<scenario>/catalog.json``) takes its place. A line with
``--catalog scenes/...`` is used as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PLACEHOLDER = "path/to/catalog.json"
SMALL_SYNTH = ["--size", "24", "--start", "2021-01-01", "--end", "2022-12-31"]  # see the docstring
SMALL_ANALYZE = ["--no-model"]


def _commands() -> list[str]:
    """Every ``rsvlm ...`` line of the README's bash blocks (comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    lines = (line.split(" #", 1)[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line.startswith("rsvlm ")]


def readme_commands() -> tuple[list[str], list[str], str]:
    """(synth argv, analyze argv, the scenario whose catalog analyze reads), from the README."""
    cmds = _commands()
    synth = next((c for c in cmds if c.startswith("rsvlm synth scenes/ ") and "--scenario" in c), None)
    assert synth is not None, "README.md has no `rsvlm synth scenes/ --scenario ...` line"
    synth_argv = shlex.split(synth)[1:]
    scenarios = synth_argv[synth_argv.index("--scenario") + 1:]
    scenarios = scenarios[:next((i for i, a in enumerate(scenarios) if a.startswith("-")), len(scenarios))]
    assert scenarios, synth
    analyze = next((c for c in cmds if c.startswith("rsvlm analyze --catalog scenes/")), None)
    if analyze is None:
        analyze = next((c for c in cmds if c.startswith(f"rsvlm analyze --catalog {PLACEHOLDER} --from")), None)
        assert analyze is not None, ("README.md has neither `rsvlm analyze --catalog scenes/...` nor "
                                     f"`rsvlm analyze --catalog {PLACEHOLDER} --from ...`")
        analyze = analyze.replace(PLACEHOLDER, f"scenes/{scenarios[0]}/catalog.json")
    analyze_argv = shlex.split(analyze)[1:]
    catalog = analyze_argv[analyze_argv.index("--catalog") + 1]
    scenario = Path(catalog).parent.name
    assert scenario in scenarios, (catalog, scenarios)
    return synth_argv, analyze_argv, scenario


def readme_result_files() -> list[str]:
    """The result files the README says a run writes (its "The demo writes ..." sentence)."""
    text = README.read_text(encoding="utf-8")
    m = re.search(r"The demo writes, per scenario.*?\),(.*?)under `demo-output/`", text, re.S)
    assert m, "README.md no longer says which files a run writes"
    names = re.findall(r"`([\w.]+\.(?:tif|geojson|png|json))`", m.group(1))
    assert "evidence.json" in names and "change_class.tif" in names, names
    return names


def _rsvlm(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``rsvlm ARGV`` (the console script is ``rsvlm_temporal.cli:main``) as a process, on this tree."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "rsvlm_temporal.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_readme_commands_parse() -> None:
    synth, analyze, scenario = readme_commands()
    assert synth[:2] == ["synth", "scenes/"] and scenario in synth
    assert analyze[0] == "analyze" and "--out" in analyze and "--from" in analyze


def test_the_readme_synth_then_analyze_run_as_written(tmp_path: Path) -> None:
    import rasterio

    synth, analyze, scenario = readme_commands()
    work = tmp_path / "fresh"
    work.mkdir()
    run = _rsvlm(synth + SMALL_SYNTH, work)
    assert run.returncode == 0, run.stderr[-3000:]
    scenarios = synth[synth.index("--scenario") + 1:]
    for name in scenarios:
        if name.startswith("-"):
            break
        assert (work / "scenes" / name / "catalog.json").is_file(), name
    truth = json.loads((work / "scenes" / scenario / "truth" / "truth.json").read_text())
    run = _rsvlm(analyze + SMALL_ANALYZE, work)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    out = work / analyze[analyze.index("--out") + 1]
    for name in readme_result_files():
        assert (out / name).is_file(), (name, sorted(p.name for p in out.iterdir()))
    # nothing written outside the scenes/ and --out folders
    assert sorted(p.name for p in work.iterdir()) == sorted({"scenes", out.relative_to(work).parts[0]})
    # the rasters on the scene's grid: its CRS and footprint (pixels of the merged 30 m cube)
    minx, miny, maxx, maxy = truth["grid"]["bounds"]
    for tif in sorted(out.glob("*.tif")):
        with rasterio.open(tif) as ds:
            assert ds.crs.to_epsg() == truth["grid"]["epsg"], tif.name
            assert tuple(ds.bounds) == pytest.approx((minx, miny, maxx, maxy)), tif.name
    # the evidence reports the scenario's class over a non-zero area, about the drawn one
    evidence = json.loads((out / "evidence.json").read_text())
    assert evidence["aoi"]["crs"] == truth["grid"]["crs"]
    drawn = truth["stats"]["class_area_ha"]  # e.g. {"burn": 0.95} for wildfire
    assert drawn and all(v > 0 for v in drawn.values()), drawn
    found = {c["name"]: c["area_ha"] for c in evidence["classes"]}
    for name, area in drawn.items():
        assert found.get(name, 0) > 0, (name, found)
        assert 0.5 * area <= found[name] <= 1.5 * area, (name, found[name], area)
    # the polygons are in EPSG:4326, inside the scene's lon/lat box
    lon0, lat0, lon1, lat1 = truth["grid"]["bbox_lonlat"]
    polygons = json.loads((out / "change_polygons.geojson").read_text())
    assert polygons["features"]
    for feature in polygons["features"]:
        for lon, lat in _points(feature["geometry"]["coordinates"]):
            assert lon0 - 1e-6 <= lon <= lon1 + 1e-6 and lat0 - 1e-6 <= lat <= lat1 + 1e-6


def _points(coords: list) -> list[tuple[float, float]]:
    """The (lon, lat) vertices of a Polygon's or MultiPolygon's coordinates."""
    if coords and isinstance(coords[0], (int, float)):
        return [(coords[0], coords[1])]
    return [p for part in coords for p in _points(part)]
