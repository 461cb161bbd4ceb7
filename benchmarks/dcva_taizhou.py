"""Deep change vectors (DCVA) from the pretrained Presto encoder against raw-band CVA on Taizhou
and the OSCD cities.

Issue 18/15's question: do the pretrained encoder's features beat the raw bands for a
bitemporal change magnitude on real data? Run by hand (not a test; ~2-3 min on 2 cores):

    python benchmarks/dcva_taizhou.py [--data ../shared/data/landsat_taizhou_cd] [--oscd ../shared/data/oscd_s2]

OSCD (``--oscd``; ~15 min more): Sentinel-2 L1C DN / 1e4 (TOA reflectance), Presto in "pair" mode,
F1 of the change against the urban-change labels (every pixel labelled), pooled over the cities.
The Taizhou pair is Landsat 7 ETM+ digital numbers (0-255), not reflectance: both magnitudes get the
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

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]  # ETM+ 1-5, 7
DATES = (dt.date(2000, 3, 17), dt.date(2003, 2, 6))  # the scene ids of the ENVI band names (L71119038_...)
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
    p.add_argument("--oscd", default=None, help="also the OSCD cities (../shared/data/oscd_s2)")
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
    if args.oscd:
        print(json.dumps({"oscd": oscd(Path(args.oscd))}))


def _date(text: str) -> dt.date:
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def oscd(root: Path) -> list[dict[str, object]]:
    """Pooled and per-city F1 of DCVA (Presto, pair) and raw-band CVA, Otsu, on the OSCD cities."""
    from rsvlm_temporal.evaluate.metrics import confusion_counts
    from rsvlm_temporal.evaluate.oscd import OSCD_BANDS, oscd_cities, read_city_band, read_city_label

    files = {name: f for f, (name, _) in OSCD_BANDS.items() if name in ("blue", "green", "red", "nir", "swir16", "swir22")}
    names = list(files)
    pooled: dict[str, list[int]] = {}
    rows = []
    for city in oscd_cities(root):
        d = root / city
        lines = [ln.split(":")[-1].strip() for ln in (d / "dates.txt").read_text().splitlines() if ln.strip()]
        imgs = [np.stack([read_city_band(d, k, files[n]).astype(np.float32) / 1e4 for n in names]) for k in (1, 2)]
        label = read_city_label(d)
        t = time.perf_counter()
        mags = {"dcva_presto_pair": dcva_magnitude(imgs[0], imgs[1], names, (_date(lines[0]), _date(lines[1])), mode="pair"),
                "cva_raw_bands": raw_cva(imgs[0], imgs[1])}
        for name, mag in mags.items():
            valid = np.isfinite(mag)
            c = confusion_counts(mag > otsu_threshold(mag[valid]), label, valid)
            pooled.setdefault(name, [0, 0, 0])
            pooled[name] = [pooled[name][0] + c.tp, pooled[name][1] + c.fp, pooled[name][2] + c.fn]
            rows.append({"city": city, "magnitude": name, "f1": round(c.f1, 4), "seconds": round(time.perf_counter() - t, 1)})
            print(f"{city:<12} {name:<18} F1 {c.f1:.4f}")
    for name, (tp, fp, fn) in pooled.items():
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        rows.append({"city": "pooled", "magnitude": name, "f1": round(f1, 4)})
        print(f"{'pooled':<12} {name:<18} F1 {f1:.4f}")
    return rows


if __name__ == "__main__":
    main()
