"""A run is one transaction (``atomic.result_folder``): the previous result stays whole until the
new one is complete, a second run into the same folder is refused, Ctrl-C leaves the old result
or the new one (never a mix), and a folder that is not a result is never deleted."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rsvlm_temporal import atomic
from rsvlm_temporal.atomic import RESULT_MARKER, result_folder
from rsvlm_temporal.errors import BusyError, OutputError
from rsvlm_temporal.io.catalog import items_to_dicts, load_items
from rsvlm_temporal.outputs import results
from rsvlm_temporal.pipeline import run_analysis

SERIES_ONLY = {"change_date.tif", "flood_onset.tif", "flood_recession.tif", "confidence.tif"}
N_INTERRUPTS = 8
# the spectral engine only (time: the transaction is the same with the temporal CLIP)
SPECTRAL = {"model": None}


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path (the marker's time left out)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != RESULT_MARKER:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(out: Path) -> list[str]:
    """Siblings a run may leave beside ``out``: its new, old or lock entries."""
    return sorted(n for n in os.listdir(out.parent) if n.startswith(f".{out.name}."))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The wildfire catalog (24 px, 2021-2022, as ``rsvlm synth``), a short sub-catalog (176 days:
    a bitemporal run) and a series result folder made from the whole catalog."""
    from rsvlm_temporal.synth import write_scene

    root = tmp_path_factory.mktemp("txn")
    cat = write_scene(root / "wildfire", "wildfire", size=24, start="2021-01-01", end="2022-12-31",
                      keep_arrays=False).catalog_path
    items = load_items(cat)
    short = [i for i in items if "2021-09-01" <= str(i.datetime.date()) <= "2022-03-01"]
    sub = root / "short.json"
    sub.write_text(json.dumps({"type": "FeatureCollection", "features": items_to_dicts(short)}))
    series = run_analysis(items, root / "series", **SPECTRAL)
    assert series.mode == "series"
    return {"flags": ["--no-model"], "root": root, "items": items, "short": short, "short_catalog": sub, "series": root / "series"}


def _previous(scene: dict[str, Any], out: Path) -> dict[str, str]:
    shutil.copytree(scene["series"], out)
    return digests(out)


def test_rerun_in_another_mode_leaves_no_stale_file(scene: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "result"
    before = _previous(scene, out)
    assert SERIES_ONLY <= set(before)
    run = run_analysis(scene["short"], out, **SPECTRAL)
    assert run.mode == "bitemporal"
    names = {p.name for p in out.iterdir()}
    assert not names & SERIES_ONLY, names & SERIES_ONLY  # nothing of the series run is left
    assert ".work" not in names and RESULT_MARKER in names
    assert names - {RESULT_MARKER} == {p.name for p in run.files.values()}
    assert run.out_dir == out.resolve()
    assert all(p.parent == out.resolve() and p.is_file() for p in run.files.values())
    assert json.loads((out / "evidence.json").read_text())["analysis"] == "bitemporal"
    assert leftovers(out) == []


def test_failing_run_leaves_the_previous_result_byte_identical(scene: dict[str, Any], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "result"
    before = _previous(scene, out)
    marker = (out / RESULT_MARKER).read_bytes()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(results, "write_polygons", broken)  # an export step half-way through
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_analysis(scene["short"], out, **SPECTRAL)
    assert digests(out) == before
    assert (out / RESULT_MARKER).read_bytes() == marker
    assert leftovers(out) == []  # the new folder is gone, the lock released


def test_second_run_while_the_lock_is_held_is_refused(scene: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "result"
    before = _previous(scene, out)
    with result_folder(out) as txn:
        (txn.path / "partial.tif").write_bytes(b"x")
        with pytest.raises(BusyError) as info:
            run_analysis(scene["short"], out, **SPECTRAL)
        msg = str(info.value)
        assert f"another run is writing into {out.resolve()} (pid {os.getpid()} since 20" in msg
        assert "choose another --out" in msg
        # a second holder from another process is refused too
        code = ("import sys; from rsvlm_temporal.atomic import result_folder\n"
                "try:\n    result_folder(sys.argv[1]).__enter__()\n"
                "except Exception as e:\n    print(type(e).__name__, e); sys.exit(3)\n")
        other = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                               timeout=60)
        assert other.returncode == 3 and other.stdout.startswith("BusyError"), other
        assert digests(out) == before  # the held run has not swapped yet
    assert digests(out) == {"partial.tif": hashlib.sha256(b"x").hexdigest()}
    assert leftovers(out) == []


# -- the folder rules, without an analysis ----------------------------------------------------

def test_a_folder_that_is_not_a_result_is_never_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds 2 entries \(docs, notes.txt\) but no rsvlm result"):
        with result_folder(home):
            pytest.fail("entered")
    assert (home / "notes.txt").read_text() == "mine" and (home / "docs").is_dir()
    assert leftovers(home) == []
    with pytest.raises(OutputError, match="but no rsvlm result"):
        atomic.check_result_folder(home)  # the same rule, for a validation before any work
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        result_folder(tmp_path / "file")
    with pytest.raises(OutputError, match="empty"):
        result_folder("")


def test_the_current_folder_and_its_parents_are_refused(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    for out in (".", "..", str(tmp_path)):
        with pytest.raises(OutputError, match="current folder or contains it"):
            result_folder(out)


def test_empty_folder_new_folder_and_permissions(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with result_folder(empty) as txn:
        assert txn.path.parent == tmp_path and txn.path.name.startswith(".empty.new-")
        (txn.path / "a.txt").write_text("1")
        (txn.path / ".work").mkdir()
        (txn.path / ".work" / "periods.tif").write_bytes(b"w")
        assert not (empty / "a.txt").exists()  # nothing visible before the swap
    assert sorted(p.name for p in empty.iterdir()) == [RESULT_MARKER, "a.txt"]  # .work discarded
    meta = json.loads((empty / RESULT_MARKER).read_text())
    assert meta["format"] == "rsvlm-result" and meta["written"].startswith("20")
    umask = os.umask(0)
    os.umask(umask)
    assert (empty.stat().st_mode & 0o777) == (0o777 & ~umask)  # as mkdir, not mkdtemp's 0700
    with result_folder(tmp_path / "deep" / "new") as txn:
        (txn.path / "b.txt").write_text("2")
    assert (tmp_path / "deep" / "new" / "b.txt").read_text() == "2"
    assert leftovers(empty) == [] and leftovers(tmp_path / "deep" / "new") == []


@pytest.mark.parametrize("fault", [RuntimeError, KeyboardInterrupt])
def test_a_fault_inside_removes_the_new_folder_only(tmp_path: Path, fault: type[BaseException]) -> None:
    out = tmp_path / "result"
    with result_folder(out) as txn:
        (txn.path / "evidence.json").write_text("old")
    with pytest.raises(fault):
        with result_folder(out) as txn:
            (txn.path / "evidence.json").write_text("new")
            raise fault()
    assert (out / "evidence.json").read_text() == "old"
    assert leftovers(out) == []


def test_a_link_to_a_folder_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real"
    with result_folder(target) as txn:
        (txn.path / "evidence.json").write_text("1")
    link = tmp_path / "link"
    link.symlink_to(target)
    with result_folder(link) as txn:
        assert txn.final == target.resolve()
        (txn.path / "evidence.json").write_text("2")
    assert link.is_symlink() and (link / "evidence.json").read_text() == "2"


def test_what_a_killed_run_left_is_cleaned_or_rolled_back(tmp_path: Path) -> None:
    out = tmp_path / "result"
    with result_folder(out) as txn:
        (txn.path / "evidence.json").write_text("old")
    (tmp_path / ".result.new-deadbeef").mkdir()  # a run killed while writing
    (tmp_path / ".result.new-deadbeef" / "change_class.tif").write_bytes(b"half")
    with result_folder(out) as txn:
        assert not (tmp_path / ".result.new-deadbeef").exists()
        (txn.path / "evidence.json").write_text("new")
    assert (out / "evidence.json").read_text() == "new"
    # killed between the two renames of the swap: no result, the previous one as .old-*
    os.rename(out, tmp_path / ".result.old-cafe0123")
    with result_folder(out):
        assert (out / "evidence.json").read_text() == "new"  # rolled back before anything else
    assert leftovers(out) == []


def test_sigint_during_the_swap_is_held_until_it_is_done(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "result"
    with result_folder(out) as txn:
        (txn.path / "evidence.json").write_text("old")
    real_rename = os.rename
    calls: list[str] = []

    def rename(src: Any, dst: Any) -> None:
        calls.append(str(dst))
        real_rename(src, dst)
        if len(calls) == 1:  # between the two renames of the swap
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        with result_folder(out) as txn:
            (txn.path / "evidence.json").write_text("new")
    monkeypatch.setattr(atomic.os, "rename", real_rename)
    assert len(calls) == 2 and (out / "evidence.json").read_text() == "new"
    with result_folder(out):  # the old folder left by the cut-short clean-up goes next time
        pass
    assert leftovers(out) == []


def test_the_cli_never_replaces_a_folder_that_is_not_a_result(scene: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"  # `rsvlm analyze --out ~`
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("key")
    (home / "thesis.tex").write_text("years of work")
    before = digests(home)
    run = subprocess.run([sys.executable, "-m", "rsvlm_temporal.cli", "analyze", "--catalog",
                          str(scene["short_catalog"]), "--out", str(home), *scene["flags"]],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "but no rsvlm result" in run.stderr and "Traceback" not in run.stderr
    assert digests(home) == before and leftovers(home) == []


# -- fault injection: SIGINT at N points of a real `rsvlm analyze` ----------------------------

def _analyze(catalog: Path, out: Path, flags: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "rsvlm_temporal.cli", "analyze", "--catalog", str(catalog),
                             "--out", str(out), *flags], cwd=out.parent, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_work(out: Path, proc: subprocess.Popen[str], timeout: float = 120) -> float:
    """Wait until the run's work folder holds the two periods (the analysis is nearly done and
    the exports follow); returns the time (monotonic)."""
    pattern = str(out.parent / f".{out.name}.new-*" / ".work" / "periods.tif")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if glob.glob(pattern):
            return time.monotonic()
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its exports: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError("the run never reached its exports")


def test_sigint_at_any_point_leaves_the_old_or_the_new_result(scene: dict[str, Any], tmp_path: Path) -> None:
    # the new result, and how long the run takes from its periods to the swap (the exports)
    fresh = tmp_path / "fresh"
    proc = _analyze(scene["short_catalog"], fresh, scene["flags"])
    t0 = _wait_for_work(fresh, proc)
    while not fresh.exists() and proc.poll() is None:
        time.sleep(0.002)
    window = time.monotonic() - t0
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    new = digests(fresh)
    old = digests(scene["series"])
    assert set(new) != set(old) and SERIES_ONLY <= set(old) - set(new)
    seen = {"old": 0, "new": 0}
    for k in range(N_INTERRUPTS):
        out = tmp_path / f"run{k}"
        shutil.copytree(scene["series"], out)
        proc = _analyze(scene["short_catalog"], out, scene["flags"])
        start = _wait_for_work(out, proc)
        time.sleep(max(0.0, start + window * 1.2 * k / (N_INTERRUPTS - 1) - time.monotonic()))
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"point {k}: the run did not end within 60 s of Ctrl-C") from None
        assert proc.returncode in (0, 1, 130, -signal.SIGINT), (k, proc.returncode, err)
        got = digests(out)
        state = "old" if got == old else "new" if got == new else None
        assert state is not None, f"point {k}: a mixed result folder: {sorted(got)}"
        assert (out / RESULT_MARKER).is_file()
        assert leftovers(out) == [], f"point {k}: left {leftovers(out)}"
        seen[state] += 1
    assert seen["old"] >= 1, seen  # the points do interrupt runs (not only after they ended)
