"""Issue 19, the CLI side: every argument is checked before work starts, and there is one error
path. Each case runs the ``rsvlm`` command line (in-process ``cli.main`` for most, a subprocess
of ``python -m rsvlm_temporal.cli`` for the entry point itself) in a fresh working folder and
checks: exit 2, a message naming the problem, no traceback, and nothing created (no ``--out``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rsvlm_temporal import cli
from rsvlm_temporal.errors import OutputError, PeriodError
from rsvlm_temporal.timeutil import parse_date

SYNTH = ["--scenario", "wildfire", "--size", "24", "--start", "2021-01-01", "--end", "2022-12-31"]
BBOX_WEST = "-8.21,39.94,-8.19,39.96"  # the synthetic wildfire scene lies at -8.2 E, 39.95 N
POLYGON = {"type": "Polygon", "coordinates": [[[-8.3, 39.9], [-8.1, 39.9], [-8.1, 40.0], [-8.3, 40.0], [-8.3, 39.9]]]}


def _rsvlm(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The README's ``rsvlm ...`` as a process (the console script is ``rsvlm_temporal.cli:main``)."""
    return subprocess.run([sys.executable, "-m", "rsvlm_temporal.cli", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder in which the README's ``rsvlm synth scenes/ ...`` ran as written (relative)."""
    root = tmp_path_factory.mktemp("readme")
    run = _rsvlm("synth", "scenes/", *SYNTH, cwd=root, timeout=300)
    assert run.returncode == 0, run.stderr
    return root


@pytest.fixture(scope="module")
def catalog(readme: Path) -> str:
    return str(readme / "scenes" / "wildfire" / "catalog.json")


@pytest.fixture()
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _count(stdout: str) -> int:
    m = re.search(r"^(\d+) item\(s\)$", stdout, re.M)
    assert m, stdout
    return int(m.group(1))


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# --- the one date parser ---------------------------------------------------------------------

def test_parse_date_forms_and_refusals() -> None:
    assert str(parse_date("2021-03-04", "--from")) == "2021-03-04"
    assert str(parse_date("2024-02", "--from")) == "2024-02-01"
    assert str(parse_date("2024-02", "--to", end=True)) == "2024-02-29"
    assert str(parse_date("2021", "--to", end=True)) == "2021-12-31"
    for bad in ("2021-13-01", "2024/01/01", "2021-02-30", "garbage", "", "2021-1-1", "2021-03-04T00:00"):
        with pytest.raises(PeriodError, match=r"is not a date; expected YYYY-MM-DD|is not a date \("):
            parse_date(bad, "--from")
    with pytest.raises(PeriodError, match=r"--from '2021-13-01' is not a date"):
        parse_date("2021-13-01", "--from")


# --- refused before any work: exit 2, a message, no traceback, nothing created -----------------

REFUSED: list[tuple[list[str], str]] = [
    (["analyze", "--catalog", "{C}", "--out", "o", "--from", "2021-13-01"], "--from '2021-13-01' is not a date"),
    (["search", "--catalog", "{C}", "--from", "garbage", "--to", "rubbish"], "--from 'garbage' is not a date"),
    (["search", "--catalog", "{C}", "--to", "rubbish"], "--to 'rubbish' is not a date"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--from", "2022-06-01", "--to", "2022-01-01"], "is after --to"),
    (["synth", "o", "--start", "2024/01/01"], "--start '2024/01/01' is not a date"),
    (["synth", "o", "--size", "25"], "--size 25"),
    (["synth", "o", "--size", "100000"], "--size 100000"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--chunk-memory", "-5"], "--chunk-memory"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--chunk-memory", "nan"], "--chunk-memory"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--chunk-memory", "inf"], "--chunk-memory"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--workers", "0"], "--workers 0"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--workers", "-1"], "--workers -1"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--workers", "100000"], "--workers 1.."),
    (["demo", "--out", "o", "--workers", "0"], "--workers 0"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--workers", "2", "--scheduler", "tcp://x:1"], "not both"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--scheduler", "http://x:8787"], "web address"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--scheduler", "tcp://x"], "HOST:PORT"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--epsg", "99999"], "not a known CRS"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--epsg", "4326"], "resolutions are metres"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--resolution", "0"], "--resolution"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--resolution", "nan"], "--resolution"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--resolution", "100000"], "10 km"),
    (["search", "--catalog", "{C}", "--max-cloud", "500"], "--max-cloud"),
    (["search", "--catalog", "{C}", "--max-cloud", "nan"], "--max-cloud"),
    (["search", "--catalog", "{C}", "--http-timeout", "0"], "--http-timeout"),
    (["search", "--catalog", "{C}", "--max-pixels", "0"], "--max-pixels"),
    (["search", "--catalog", "{C}", "--bbox="], "--bbox is empty"),
    (["search", "--catalog", "{C}", "--bbox", "1,2,3"], "4 numbers"),
    (["search", "--catalog", "{C}", "--bbox", BBOX_WEST, "--aoi", "a.geojson"], "not both"),
    (["search", "--catalog", "{C}", "--aoi", "missing.txt"], "AOI file not found"),
    (["search", "--stac", "earth-search", "--from", "2022-01-01"], "needs an AOI"),
    (["search", "--catalog", "nowhere.json"], "no such file"),
    (["search", "--catalog", "{C}", "--collections", "no-such-collection"], "matches none"),
    # analyze applies the same filters as search, with or without an AOI
    (["analyze", "--catalog", "{C}", "--out", "o", "--collections", "no-such-collection"], "matches none"),
    (["analyze", "--catalog", "{C}", "--out", "o", "--from", "2030-01-01", "--to", "2030-12-31"],
     "..2030-12-31: widen --from/--to"),  # (the start moved back by the baseline years)
    (["analyze", "--catalog", "{C}", "--out", "o", "--from", "2030-01-01", "--max-cloud", "5"],
     "with eo:cloud_cover <= 5: widen --from/--to or raise --max-cloud"),
    (["analyze", "--catalog", "{C}", "--out", ""], "--out is empty"),
    (["search", "--catalog", "{C}", "--out", ""], "--out is empty"),
    (["search", "--catalog", "{C}", "--out", "/dev/null"], "character device"),
    (["evaluate", "taizhou", "--data", "/nonexistent"], "no such folder"),
    (["evaluate", "levir"], "needs --data"),
]


@pytest.mark.parametrize(("argv", "words"), REFUSED, ids=[" ".join(a[2:] if a[1] == "--catalog" else a)[:60]
                                                            for a, _ in REFUSED])
def test_refused_before_work(argv: list[str], words: str, catalog: str, cwd: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _main([a.replace("{C}", catalog) for a in argv], capsys)
    assert rc == 2, (out, err)
    assert err.startswith(f"rsvlm {argv[0]}: error: ") and words in err, err
    assert "Traceback" not in err and "item(s)" not in out  # nothing was searched or run
    assert list(cwd.iterdir()) == []  # no --out, no default result folder, no work file


def test_out_that_is_a_file_or_a_folder_is_refused(catalog: str, cwd: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    f = cwd / "taken.txt"
    f.write_text("keep me")
    rc, _, err = _main(["analyze", "--catalog", catalog, "--out", "taken.txt"], capsys)
    assert rc == 2 and "not a folder" in err and "Traceback" not in err
    assert f.read_text() == "keep me"
    rc, _, err = _main(["analyze", "--catalog", catalog, "--out", "taken.txt/sub"], capsys)
    assert rc == 2 and "which is a file" in err
    (cwd / "folder").mkdir()
    rc, out, err = _main(["search", "--catalog", catalog, "--out", "folder"], capsys)
    assert rc == 2 and "is a folder; expected a file name" in err and "item(s)" not in out
    assert sorted(p.name for p in cwd.iterdir()) == ["folder", "taken.txt"]
    assert list((cwd / "folder").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_out_in_an_unwritable_folder_is_refused(catalog: str, cwd: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ro = cwd / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, _, err = _main(["analyze", "--catalog", catalog, "--out", "ro/result"], capsys)
        assert rc == 2 and "not writable" in err
        rc, _, err = _main(["search", "--catalog", catalog, "--out", "ro/items.json"], capsys)
        assert rc == 2 and "not writable" in err
    finally:
        ro.chmod(0o755)


def test_unknown_method_is_refused_by_the_parser(catalog: str, cwd: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze", "--catalog", catalog, "--out", "o", "--method", "bogus"])
    assert exc.value.code == 2
    assert list(cwd.iterdir()) == []


def test_a_string_cloud_cover_is_a_clear_error(catalog: str, cwd: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["search", "--catalog", catalog, "--out", "items.json"]) == 0
    capsys.readouterr()
    fc = json.loads((cwd / "items.json").read_text())
    fc["features"][3]["properties"]["eo:cloud_cover"] = "10"
    (cwd / "bad.json").write_text(json.dumps(fc))
    for extra in ([], ["--bbox", BBOX_WEST]):
        rc, _, err = _main(["search", "--catalog", "bad.json", "--max-cloud", "50", *extra], capsys)
        assert rc == 2 and "eo:cloud_cover is '10', not a number" in err and "Traceback" not in err


# --- accepted: what used to fail or be ignored ----------------------------------------------

def test_filters_apply_without_an_aoi(catalog: str, cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _main(["search", "--catalog", catalog], capsys)
    every = _count(out)
    assert rc == 0 and every > 100 and "note:" not in err  # a local catalog: every collection
    rc, out, _ = _main(["search", "--catalog", catalog, "--from", "2022-01-01"], capsys)
    later = _count(out)
    assert rc == 0 and 0 < later < every
    assert all(line[:4] == "2022" for line in out.splitlines()[:-1])
    rc, out, _ = _main(["search", "--catalog", catalog, "--from", "2022-01", "--to", "2022"], capsys)
    assert rc == 0 and _count(out) == later  # a month or a year: its first / last day
    rc, out, _ = _main(["search", "--catalog", catalog, "--max-cloud", "20"], capsys)
    assert rc == 0 and 0 < _count(out) < every
    rc, out, err = _main(["search", "--catalog", catalog, "--collections", "s2"], capsys)
    s2 = _count(out)
    assert rc == 0 and 0 < s2 < every and "landsat-c2-l2" not in out
    assert "note: --collections s2 leaves out" in err and "landsat-c2-l2" in err and "--collections s2,landsat" in err
    rc, out, err = _main(["search", "--catalog", catalog, "--collections", "s2,landsat"], capsys)
    assert rc == 0 and _count(out) == every and "note:" not in err
    rc, out, _ = _main(["search", "--catalog", catalog, "--bbox", BBOX_WEST, "--collections", "landsat"], capsys)
    assert rc == 0 and _count(out) == every - s2  # with an AOI too


def test_aoi_is_always_a_geojson_file(catalog: str, cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cwd / "x.txt").write_text(json.dumps(POLYGON))
    rc, out, err = _main(["search", "--catalog", catalog, "--aoi", "x.txt"], capsys)
    assert rc == 0 and _count(out) > 100, err
    (cwd / "1,2,3,4").write_text(json.dumps(POLYGON))  # a file named like a bbox is still a file
    rc, out, err = _main(["search", "--catalog", catalog, "--aoi", "1,2,3,4"], capsys)
    assert rc == 0 and _count(out) > 100, err


def test_search_out_writes_through_a_symlink(catalog: str, cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cwd / "link.json").symlink_to("real.json")
    rc, out, _ = _main(["search", "--catalog", catalog, "--from", "2022-06-01", "--out", "link.json"], capsys)
    assert rc == 0 and (cwd / "link.json").is_symlink()
    assert len(json.loads((cwd / "real.json").read_text())["features"]) == _count(out)


def test_limit_flags_apply_for_the_run_only(catalog: str, cwd: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from rsvlm_temporal.io import cube, reader

    before_px, before_http = cube.MAX_GRID_PIXELS, dict(reader.HTTP_OPTIONS)
    seen: dict[str, Any] = {}

    def spy(args: Any) -> int:
        seen.update(px=cube.MAX_GRID_PIXELS, http=dict(reader.HTTP_OPTIONS))
        return 0

    monkeypatch.setattr(cli, "cmd_search", spy)
    rc, _, err = _main(["search", "--catalog", catalog, "--max-pixels", "5e8", "--http-timeout", "7",
                        "--http-retries", "1"], capsys)
    assert rc == 0, err
    assert seen["px"] == 500_000_000
    assert seen["http"]["GDAL_HTTP_TIMEOUT"] == "7" and seen["http"]["GDAL_HTTP_MAX_RETRY"] == "1"
    assert cube.MAX_GRID_PIXELS == before_px and reader.HTTP_OPTIONS == before_http


# --- one error path ----------------------------------------------------------------------------

@pytest.mark.parametrize(("exc", "rc", "words"), [
    (ZeroDivisionError("division by zero"), 1, "internal error: this is a bug, please report it"),
    (KeyboardInterrupt(), 130, "rsvlm search: interrupted"),
    (MemoryError(), 2, "rsvlm search: error: out of memory"),
    (OutputError("cannot write x: No space left on device"), 2, "rsvlm search: error: cannot write x"),
    (OSError(28, "No space left on device", "x.tif"), 2, "rsvlm search: error: cannot write x.tif"),
])
def test_one_error_path(exc: BaseException, rc: int, words: str, catalog: str, cwd: Path,
                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: Any) -> int:
        raise exc

    monkeypatch.setattr(cli, "cmd_search", boom)
    got, _, err = _main(["search", "--catalog", catalog], capsys)
    assert got == rc and words in err, err
    if rc == 1:  # a bug: the traceback, the command line, a request to report it
        assert "Traceback" in err and "ZeroDivisionError" in err and "command line: rsvlm search" in err
    else:
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- through the real entry point (subprocesses) --------------------------------------------------

def test_readme_flow_with_relative_paths(readme: Path) -> None:
    """README: ``rsvlm synth scenes/ ...`` (the fixture) then ``rsvlm search --catalog
    scenes/wildfire/catalog.json``, in that folder; the asset hrefs resolve from anywhere."""
    run = _rsvlm("search", "--catalog", "scenes/wildfire/catalog.json", "--out", "items.json", cwd=readme)
    assert run.returncode == 0, run.stderr
    assert _count(run.stdout) > 100 and "Traceback" not in run.stderr
    hrefs = [a["href"] for f in json.loads((readme / "items.json").read_text())["features"]
             for a in f["assets"].values()]
    assert hrefs and all(Path(h).is_absolute() and Path(h).is_file() for h in hrefs)


def test_every_refusal_through_the_entry_point(catalog: str, tmp_path: Path) -> None:
    """The table of refusals (:data:`REFUSED`) replayed through ``python -m rsvlm_temporal.cli``,
    each in its own process and fresh folder (two at a time): exit 2, the message, one line on
    stderr, no traceback, nothing written."""
    from concurrent.futures import ThreadPoolExecutor

    def replay(k: int) -> tuple[list[str], str, subprocess.CompletedProcess[str], list[Path]]:
        argv, words = REFUSED[k]
        work = tmp_path / f"case{k}"
        work.mkdir()
        run = _rsvlm(*[a.replace("{C}", catalog) for a in argv], cwd=work)
        return argv, words, run, list(work.iterdir())

    with ThreadPoolExecutor(2) as pool:
        for argv, words, run, left in pool.map(replay, range(len(REFUSED))):
            assert run.returncode == 2, (argv, run.stderr)
            assert run.stderr.startswith(f"rsvlm {argv[0]}: error: ") and words in run.stderr, (argv, run.stderr)
            assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1, (argv, run.stderr)
            assert left == [], (argv, left)


def test_entry_point_bbox_with_a_leading_minus_and_refusals(catalog: str, tmp_path: Path) -> None:
    run = _rsvlm("search", "--catalog", catalog, "--bbox", BBOX_WEST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _count(run.stdout) > 100
    run = _rsvlm("analyze", "--catalog", catalog, "--out", "o", "--from", "2021-13-01", cwd=tmp_path)
    assert run.returncode == 2 and "--from '2021-13-01' is not a date" in run.stderr
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_catalog_that_links_to_itself_is_a_clear_error(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A child link back to the catalog itself (a cycle) ends in exit 2, not a RecursionError."""
    (cwd / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "loop", "description": "links to itself",
        "links": [{"rel": "root", "href": "./catalog.json"}, {"rel": "child", "href": "./catalog.json"}]}))
    for argv in (["search", "--catalog", "catalog.json"], ["analyze", "--catalog", "catalog.json", "--out", "o"]):
        rc, out, err = _main(argv, capsys)
        assert rc == 2 and "form a cycle" in err and "Traceback" not in err, err
    assert sorted(p.name for p in cwd.iterdir()) == ["catalog.json"]
