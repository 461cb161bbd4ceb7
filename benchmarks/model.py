"""Temporal CLIP inference speed: ``run_model`` on synthetic cubes of growing size (pixels per
second on the threaded scheduler, model loaded once), and the peak of one chunk.

``python benchmarks/model.py [--sizes 36 72 144] [--no-append]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[36, 72, 144], help="AOI side, 10 m pixels (multiple of 6)")
    p.add_argument("--chunk", type=int, default=72)
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args(argv)
    from rsvlm_temporal.model.inference import cached_model, run_model
    from rsvlm_temporal.train.data import make_sample

    cached_model("temporal-tiny", "default")
    rows = []
    for n in a.sizes:
        s = make_sample("wildfire", 5000, sensors="both", size=n)
        cube = s.cube.chunk({"time": 1, "band": -1, "y": a.chunk, "x": a.chunk})
        t = time.perf_counter()
        out = run_model(cube)
        out.change_mask.values, out.change_date.values
        dt = time.perf_counter() - t
        rows.append([n, cube.sizes["time"], n * n, round(dt, 2), round(n * n / dt)])
    report("model: run_model (temporal-tiny)", ["side px", "dates", "pixels", "seconds", "pixels/s"], rows,
           params={"chunk": a.chunk}, append=not a.no_append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
