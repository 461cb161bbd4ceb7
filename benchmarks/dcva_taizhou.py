"""Deep change vectors (DCVA) from the pretrained Presto encoder against raw-band CVA on Taizhou.

Issue 18/15's question: do the pretrained encoder's features beat the raw bands for a
bitemporal change magnitude on real data? Run by hand (not a test; ~2-3 min on 2 cores):

    python benchmarks/dcva_taizhou.py [--data ../shared/data/landsat_taizhou_cd]

The Taizhou pair is Landsat TM digital numbers (0-255), not reflectance: both magnitudes get the
same pseudo-reflectance DN / 510 (0-0.5). Raw-band CVA is standardised per band exactly as DCVA
standardises its features (median / 1.4826 MAD of the differences); both are cut by Otsu and by
2-means, nothing is fitted to the labels. Results go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

from rsvlm_temporal.change.thresholds import otsu_threshold
from rsvlm_temporal.evaluate.metrics import evaluate_labelled
from rsvlm_temporal.evaluate.taizhou import load_taizhou
from rsvlm_temporal.model.dcva import DCVA_MODES, dcva_magnitude

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]  # TM 1-5, 7
DATES = (dt.date(2000, 4, 27), dt.date(2003, 5, 14))
LATLON = (32.5, 119.9)  # Taizhou, Jiangsu (degrees)


def two_means(v: np.ndarray, iters: int = 50) -> float:
    """The midpoint of the two centres of 1-D k-means (k=2) on ``v``."""
    c = np.percentile(v, [10, 90]).astype(float)
    for _ in range(iters):
        lab = np.abs(v[:, None] - c[None]).argmin(1)
        c = np.array([v[lab == k].mean() for k in (0, 1)])
    return float(c.mean())


def raw_cva(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-band robustly standardised change vector magnitude (y, x), unitless."""
    d = (after - before).reshape(before.shape[0], -1)
    med = np.median(d, 1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(d - med), 1, keepdims=True)
    return np.sqrt((((d - med) / mad) ** 2).mean(0)).reshape(before.shape[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/landsat_taizhou_cd"))
    args = p.parse_args()
    b, a, ch, nc = load_taizhou(args.data)
    before = b.values.astype(np.float32) / 510
    after = a.values.astype(np.float32) / 510
    mags = {"cva_raw_bands": raw_cva(before, after)}
    seconds = {}
    for mode in DCVA_MODES:
        t = time.perf_counter()
        mags[f"dcva_presto_{mode}"] = dcva_magnitude(before, after, BANDS, DATES, latlon=LATLON, mode=mode)
        seconds[mode] = round(time.perf_counter() - t, 1)
    rows = []
    for name, mag in mags.items():
        v = mag[np.isfinite(mag)]
        for rule, thr in (("otsu", otsu_threshold(v)), ("2-means", two_means(v))):
            m = evaluate_labelled(mag > thr, ch.values, nc.values, pred_valid=np.isfinite(mag))
            rows.append({"magnitude": name, "threshold": rule, "kappa": round(m["kappa"], 4), "f1": round(m["f1"], 4)})
    for r in rows:
        print(f"{r['magnitude']:<22} {r['threshold']:<8} kappa {r['kappa']:.4f}  F1 {r['f1']:.4f}")
    print(json.dumps({"rows": rows, "presto_seconds": seconds}))


if __name__ == "__main__":
    main()
