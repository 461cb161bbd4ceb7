"""The change analysis now against a baseline commit, same inputs, same session (issue 20 item 3).

``python benchmarks/analysis_speed.py --baseline COMMIT`` times ``distributed.analysis_workload``
(the full ``run_analysis`` of one AOI, ``model=None``; 24 dates, 6 bands + SCL, every 30 days)
on the threaded scheduler, alternating runs of the current tree and of the baseline's analysis
modules (:data:`MODULES`, read with ``git show COMMIT:PATH`` and imported in their place; the
rest of the package is the current one), each in a fresh process. ``--step PATH`` (repeatable)
adds a third variant, "before this step": only those modules from the baseline, the rest
current (e.g. ``--step rsvlm_temporal/change/magnitude.py`` times the tree without its latest
change to that module). Reports wall and process CPU seconds (all threads) and the ratios; CPU
seconds are the figure to trust on a loaded machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: modules taken from the baseline commit (import order: dependencies first)
MODULES = (
    ("rsvlm_temporal.compute.nanstats", "rsvlm_temporal/compute/nanstats.py"),
    ("rsvlm_temporal.change.series", "rsvlm_temporal/change/series.py"),
    ("rsvlm_temporal.change.magnitude", "rsvlm_temporal/change/magnitude.py"),
    ("rsvlm_temporal.change.analysis", "rsvlm_temporal/change/analysis.py"),
)


def _install_baseline(commit: str, folder: Path, only: tuple[str, ...] = ()) -> None:
    """Import the baseline's :data:`MODULES` (``only``: just those paths) under their own names
    (before anything imports them)."""
    for name, path in MODULES:
        if only and path not in only:
            continue
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"], check=True,
                             capture_output=True, text=True).stdout
        file = folder / path.replace("/", "_")
        file.write_text(src)
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


def child(which: str, commit: str, base: int, factor: int, threads: int,
          step: tuple[str, ...] = ()) -> dict[str, Any]:
    """One timed run in this (fresh) process: ``which`` is "current", "baseline" or "step"
    (only the ``step`` modules from the baseline)."""
    with tempfile.TemporaryDirectory(prefix="analysis-speed-") as tmp:
        if which == "baseline":
            _install_baseline(commit, Path(tmp))
        elif which == "step":
            _install_baseline(commit, Path(tmp), only=step)
        from benchmarks._common import threaded_dask, warm_page_cache
        from benchmarks.distributed import analysis_workload, aoi, inputs_for

        inp = inputs_for(base, 24, 30)
        warm_page_cache(inp.band_files() + inp.quality_files())
        bounds = aoi(inp, int(round(base * factor ** 0.5)))
        out = Path(tmp) / "out"
        with threaded_dask(threads):
            c0, t0 = time.process_time(), time.perf_counter()
            res = analysis_workload(inp.items, bounds, out, read_outputs=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        shutil.rmtree(out, ignore_errors=True)
    return {"wall": wall, "cpu": cpu, "px_dates": res["height"] * res["width"] * 24,
            "shape": f"{res['height']}x{res['width']}"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="HEAD", help="commit whose analysis modules are the baseline")
    ap.add_argument("--base", type=int, default=512, help="side of the 1x AOI in px (10 m)")
    ap.add_argument("--factor", type=int, default=1, help="AOI area factor (as distributed.py)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--label", default="", help="e.g. 'contended' (shown in the title)")
    ap.add_argument("--step", action="append", default=[], metavar="PATH",
                    help="also time the tree with only this module (one of MODULES) from the baseline")
    ap.add_argument("--child", choices=["current", "baseline", "step"], help=argparse.SUPPRESS)
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args(argv)
    from benchmarks._common import cores, report

    threads = a.threads or cores()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", a.baseline], check=True,
                            capture_output=True, text=True).stdout.strip()
    known = {path for _, path in MODULES}
    if any(s not in known for s in a.step):
        ap.error(f"--step takes one of {sorted(known)}")
    if a.child:
        print(json.dumps(child(a.child, commit, a.base, a.factor, threads, tuple(a.step))))
        return
    kinds = ("baseline",) + (("step",) if a.step else ()) + ("current",)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for _ in range(a.repeat):
        for which in kinds:
            cmd = [sys.executable, __file__, "--child", which, "--baseline", commit, "--base", str(a.base),
                   "--factor", str(a.factor), "--threads", str(threads)] + [f"--step={s}" for s in a.step]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[which].append(json.loads(out.strip().splitlines()[-1]))
            print(which, runs[which][-1], flush=True)
    best = {w: (min(r["wall"] for r in rs), min(r["cpu"] for r in rs)) for w, rs in runs.items()}
    mpx = runs["current"][0]["px_dates"] / 1e6
    rows = []
    labels = {"baseline": f"baseline {commit}", "step": f"before this step ({', '.join(a.step)} from {commit})",
              "current": "current tree"}
    for which in kinds:
        label = labels[which]
        wall, cpu = best[which]
        rows.append([label, runs[which][0]["shape"], wall, cpu, mpx / wall, mpx / cpu,
                     best["baseline"][1] / cpu])
    report(f"analysis now vs baseline{f' ({a.label})' if a.label else ''}",
           ["code", "AOI px", "wall s", "CPU s", "Mpx-dates/s", "Mpx-dates per CPU s", "speed-up (CPU)"],
           rows, params={"baseline": commit, "factor": a.factor, "dates": 24, "threads": threads,
                         "repeat": a.repeat, "model": "None", **({"step": a.step} if a.step else {})},
           notes=["best of the interleaved runs, each in a fresh process; CPU s: that process, all threads",
                  f"baseline: {', '.join(p for _, p in MODULES)} from {commit}, the rest of the tree current"],
           append=not a.no_append)


if __name__ == "__main__":
    main()
