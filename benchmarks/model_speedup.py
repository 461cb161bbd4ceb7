"""Temporal CLIP per-chunk speed: ``run_model``'s block function now vs at a baseline commit.

Runs the block function (``model.inference._block``: one chunk, all its outputs) of the current
tree and of ``--baseline`` (a git revision: its ``model/{temporal,towers,clip,inference}.py``,
loaded from ``git show`` as a separate package with the same weights) on the same chunk of a
synthetic Sentinel-2 year (``benchmarks/model.py``'s cube), interleaved, and reports CPU and wall
seconds, Mpx-dates per CPU-second, the speed-up, and how far the outputs differ (probability
max |diff|, share of pixels with the same label and the same change date). Ablations: each
side with the other side's torch thread setting (baseline with ``--task-threads`` torch
threads, current with the process default).

``python benchmarks/model_speedup.py [--side 128] [--baseline 2f748b3] [--repeat 2] [--cloud-prob P]
[--no-ablation] [--label "contended (shared 2-core machine)"] [--no-append]``
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _common import REPO, report

_MODULES = ("temporal", "towers", "clip", "inference")


def baseline_package(rev: str, where: Path) -> Any:
    """The model modules of ``rev`` as package ``_rsvlm_model_base`` under ``where`` (imported)."""
    pkg = where / "_rsvlm_model_base"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    pat = re.compile(r"rsvlm_temporal\.model\.(" + "|".join(_MODULES) + r")\b")
    for name in _MODULES:
        src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:rsvlm_temporal/model/{name}.py"],
                             check=True, capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(pat.sub(r"_rsvlm_model_base.\1", src))
    sys.path.insert(0, str(where))
    return importlib.import_module("_rsvlm_model_base.inference"), importlib.import_module("_rsvlm_model_base.clip")


def _cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", type=int, default=128, help="chunk side, px")
    p.add_argument("--baseline", default="2f748b3", help="git revision of the baseline model code")
    p.add_argument("--repeat", type=int, default=2, help="interleaved runs of each variant (best kept)")
    p.add_argument("--no-ablation", action="store_true", help="only baseline and current")
    p.add_argument("--cloud-prob", type=float, default=None,
                   help="share of cloudy acquisitions of the synthetic year (default: the generator's, 0.4)")
    p.add_argument("--label", default="contended (shared 2-core machine)", help="machine state, for the title")
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args(argv)
    import numpy as np
    import torch
    from model import _cube  # benchmarks/model.py: the same synthetic cube

    from rsvlm_temporal.model import inference as new
    from rsvlm_temporal.model.inputs import day_numbers, sensor_codes

    m = new.cached_model("temporal-tiny", "default")
    with tempfile.TemporaryDirectory() as tmp:
        old, old_clip = baseline_package(a.baseline, Path(tmp))
        mb = old_clip.TemporalCLIP(m.cfg)
        mb.load_state_dict(m.state_dict())
        mb.name, mb.pretrained = m.name, m.pretrained
        mb.eval()
        if a.cloud_prob is None:
            cube = _cube(a.side)
        else:
            from rsvlm_temporal.train.data import make_sample

            gen = max(24, -(-a.side // 6) * 6)
            cube = make_sample("wildfire", 5000, sensors="s2", size=gen, cloud_prob=a.cloud_prob).cube.isel(
                y=slice(0, a.side), x=slice(0, a.side))
        values = np.asarray(cube.values, np.float32)
        bands = [str(b) for b in cube.band.values]
        days = day_numbers(cube.time.values)
        sensors = sensor_codes(list(cube.sensor.values), len(days))
        windows = new.year_windows(days)
        _, cemb = new.prompt_embeddings(m)
        default_threads = torch.get_num_threads()
        px_dates = values.shape[0] * values.shape[2] * values.shape[3]

        def run(mod: Any, model: Any, threads: int | None = None) -> np.ndarray:
            saved = getattr(mod, "TASK_TORCH_THREADS", None)
            if threads is not None and saved is not None:
                mod.TASK_TORCH_THREADS = threads
            torch.set_num_threads(threads if threads is not None and saved is None else default_threads)
            try:
                return mod._block(values, spec=(m.name, m.pretrained), model=model, bands=bands, days=days,
                                  sensors=sensors, reference=None, class_emb=cemb, windows=windows)
            finally:
                torch.set_num_threads(default_threads)
                if saved is not None:
                    mod.TASK_TORCH_THREADS = saved

        variants = {f"baseline {a.baseline} (torch {default_threads} threads)": lambda: run(old, mb),
                    f"current (torch {new.TASK_TORCH_THREADS} thread(s) per task)": lambda: run(new, m)}
        if not a.no_ablation:
            variants[f"baseline, torch {new.TASK_TORCH_THREADS} thread(s)"] = lambda: run(old, mb, new.TASK_TORCH_THREADS)
            variants[f"current, torch {default_threads} threads"] = lambda: run(new, m, default_threads)
        outs: dict[str, np.ndarray] = {}
        best: dict[str, tuple[float, float]] = {}
        for k, fn in variants.items():  # warm up
            outs[k] = fn()
        for _ in range(a.repeat):
            for k, fn in variants.items():
                w, c, _ = _cpu(fn)
                bw, bc = best.get(k, (np.inf, np.inf))
                best[k] = (min(bw, w), min(bc, c))
                print(f"{k}: {w:.2f} s wall, {c:.2f} s CPU", file=sys.stderr, flush=True)
    names = list(variants)
    ref, cur = outs[names[0]], outs[names[1]]
    pdiff = float(np.abs(ref[0] - cur[0]).max())
    same_date = float(np.mean((ref[1] == cur[1]) | (np.isnan(ref[1]) & np.isnan(cur[1]))))
    same_label = float(np.mean(ref[2] == cur[2]))
    ediff = float(np.abs(ref[new.N_FIXED:] - cur[new.N_FIXED:]).max())
    base_cpu = best[names[0]][1]
    clear = float(np.isfinite(values).any(1).mean())
    rows = []
    for k in names:
        w, c = best[k]
        rows.append([k, f"{a.side}x{a.side} px, {values.shape[0]} dates, {100 * clear:.0f} % clear", round(w, 2),
                     round(c, 2),
                     round(px_dates / c / 1e6, 4), f"{base_cpu / c:.2f}x"])
    notes = [f"best of {a.repeat} interleaved runs of each (after one warm-up run each); speed-up = baseline CPU s / "
             "CPU s; Mpx-dates per CPU s = time x y x x / CPU s of the block (every per-pixel output)",
             f"outputs, current vs baseline on this chunk: probability max |diff| {pdiff:.2e}, same change date on "
             f"{100 * same_date:.3f} % of pixels, same zero-shot label on {100 * same_label:.3f} %, embedding max "
             f"|diff| {ediff:.2e}",
             f"torch {torch.__version__}; CPU s: this process, all its threads"]
    report(f"model per-chunk speed vs baseline ({a.label})",
           ["what", "chunk", "seconds", "CPU s", "Mpx-dates per CPU s", "speed-up (CPU)"], rows,
           params={"model": f"{m.name}/{m.pretrained}", "side": a.side, "baseline": a.baseline, "repeat": a.repeat,
                   "cloud_prob": "default (0.4)" if a.cloud_prob is None else a.cloud_prob},
           notes=notes, append=not a.no_append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
