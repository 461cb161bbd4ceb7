"""``outputs.model_layers.export_model`` now (one pass over the model stack into a scratch stack,
then the five COGs) vs at a baseline commit (one pass over the stack per COG and per count).

Synthetic inputs on a ``--side`` px grid: a model stack as ``write_model_stack`` writes it
(probability, date, label, label score and 64 embedding layers) and a spectral result stack
(change class, magnitude). Reports CPU and wall seconds (interleaved, best of ``--repeat``) and
whether the five COGs are byte-identical.

``python benchmarks/model_export.py [--side 1024] [--baseline 2f748b3] [--repeat 2] [--no-append]``
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import tempfile
import time
import types
from pathlib import Path

from _common import REPO, report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", type=int, default=1024)
    p.add_argument("--baseline", default="2f748b3")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--label", default="contended (shared 2-core machine)")
    p.add_argument("--no-append", action="store_true")
    a = p.parse_args(argv)
    import numpy as np
    import xarray as xr

    from rsvlm_temporal.compute.store import open_stack, write_stack
    from rsvlm_temporal.grid import coords_for
    from rsvlm_temporal.outputs import model_layers as new

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = subprocess.run(["git", "-C", str(REPO), "show", f"{a.baseline}:rsvlm_temporal/outputs/model_layers.py"],
                             check=True, capture_output=True, text=True).stdout
        (root / "old_model_layers.py").write_text(src)
        spec = importlib.util.spec_from_file_location("_old_model_layers", root / "old_model_layers.py")
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        n = a.side
        rng = np.random.default_rng(0)
        transform = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
        from rasterio.transform import Affine

        coords = coords_for(Affine(*transform), (n, n))
        georef = {"crs": "EPSG:32633", "epsg": 32633, "transform": transform, "resolution": (10.0, 10.0)}

        def layer(v: np.ndarray) -> xr.DataArray:
            return xr.DataArray(v, dims=("y", "x"), coords=coords)

        prob = rng.random((n, n), dtype=np.float32)
        days = (18628 + rng.integers(0, 365, (n, n))).astype("datetime64[D]").astype("datetime64[ns]")
        date = np.where(prob > 0.5, days, np.datetime64("NaT", "ns"))
        model = {"probability": layer(prob), "date": layer(date),
                 "labels": layer(rng.integers(0, 8, (n, n)).astype(np.uint8)),
                 "label_score": layer(rng.random((n, n), dtype=np.float32))}
        for k in range(64):
            model[f"embedding_{k}"] = layer(rng.standard_normal((n, n), dtype=np.float32))
        stack = write_stack(xr.Dataset(model, attrs=georef), root / "model_layers.tif")
        cls = rng.integers(0, 6, (n, n)).astype(np.uint8)
        cls[:, : n // 20] = 255
        result = write_stack(xr.Dataset({"change_class": layer(cls),
                                         "change_magnitude": layer(rng.random((n, n), dtype=np.float32))},
                                        attrs=georef), root / "layers.tif")
        layers = open_stack(result)
        mo = types.SimpleNamespace(model="temporal-tiny", pretrained="synthetic-v1", scene_label="burn",
                                   scene_scores={}, embedding=np.zeros(4, np.float32), notes=[])
        best: dict[str, tuple[float, float]] = {}
        files: dict[str, dict[str, Path]] = {}
        for r in range(a.repeat):
            for name, mod in (("baseline", old), ("current", new)):
                out = root / f"{name}{r}"
                out.mkdir()
                t, c = time.perf_counter(), time.process_time()
                files[name] = mod.export_model(mo, stack, layers, out, 0.01)[0]
                w, cpu = time.perf_counter() - t, time.process_time() - c
                bw, bc = best.get(name, (np.inf, np.inf))
                best[name] = (min(bw, w), min(bc, cpu))
        same = all(hashlib.sha256(files["baseline"][k].read_bytes()).digest()
                   == hashlib.sha256(files["current"][k].read_bytes()).digest() for k in files["baseline"])
    rows = [[f"export_model, {name}" + (f" {a.baseline}" if name == "baseline" else ""), f"{n}x{n} px",
             round(w, 2), round(c, 2), f"{best['baseline'][1] / c:.2f}x"] for name, (w, c) in best.items()]
    report(f"model exports ({a.label})", ["what", "grid", "seconds", "CPU s", "speed-up (CPU)"], rows,
           params={"side": n, "baseline": a.baseline, "repeat": a.repeat},
           notes=[f"five COGs (mask, probability, date, labels, agreement) and the area counts; best of {a.repeat} "
                  "interleaved runs each; synthetic model stack (68 layers) and result stack on the same grid",
                  f"COGs byte-identical to the baseline's: {'yes' if same else 'NO'}"],
           append=not a.no_append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
