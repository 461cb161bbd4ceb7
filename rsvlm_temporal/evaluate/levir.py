"""RGB-only change magnitude on real LEVIR-CD tiles (Chen & Shi 2020; 0.5 m Google Earth RGB).

Data (``../shared/data/levir-cd_samples/``, SOURCES.md section 3): ``A/`` (before), ``B/`` (after),
``label/`` (255 = building change) 256 x 256 PNGs, 11 tiles. Every pixel is labelled (binary).

The method is the generic unsupervised one of :mod:`rsvlm_temporal.change.magnitude` run on the three
RGB bands of each tile separately (statistics and threshold per tile, nothing learnt from labels).
LEVIR-CD labels only *building* change, while an unsupervised magnitude flags every radiometric
change (vegetation phenology, shadows, cars, roads), so its scores are expected to be far below
those of supervised networks; they are reported as they are. An optional binary morphological
opening (``opening`` = radius in pixels of a square structuring element, 0 = none) removes isolated
changed pixels; it is a standard post-processing step, documented as such, not a tuned parameter.

Run ``python -m rsvlm_temporal.evaluate.levir`` to print per-tile and pooled F1 / precision /
recall / IoU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from rsvlm_temporal.errors import InsufficientDataError, RasterReadError
from rsvlm_temporal.evaluate.metrics import ConfusionCounts, confusion_counts

__all__ = ["evaluate_levir", "levir_tiles", "load_levir_tile", "predict_levir_tile"]

RGB = ["red", "green", "blue"]


def _png(path: Path, mode: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert(mode))
    except OSError as exc:
        raise RasterReadError(f"cannot read {path}: {exc}") from exc


def levir_tiles(data_dir: str | os.PathLike[str]) -> list[str]:
    """Names (without .png) of the tiles present in ``A/``, ``B/`` and ``label/``."""
    d = Path(data_dir)
    for sub in ("A", "B", "label"):
        if not (d / sub).is_dir():
            raise RasterReadError(f"{d / sub} not found; expected LEVIR-CD A/ B/ label/ folders")
    names = sorted(
        p.stem for p in (d / "A").glob("*.png")
        if (d / "B" / p.name).exists() and (d / "label" / p.name).exists()
    )
    if not names:
        raise InsufficientDataError(f"no tile with A/, B/ and label/ PNGs in {d}")
    return names


def load_levir_tile(
    data_dir: str | os.PathLike[str], name: str
) -> tuple[xr.DataArray, xr.DataArray, np.ndarray]:
    """``(before, after, label)``: RGB DataArrays (band=red,green,blue; y; x) as float32 0-255
    DN (no georeferencing: pixel grid, 0.5 m) and the boolean building-change label (y, x)."""
    d = Path(data_dir)
    imgs = []
    for sub in ("A", "B"):
        a = _png(d / sub / f"{name}.png", "RGB").astype(np.float32)
        imgs.append(xr.DataArray(
            np.moveaxis(a, -1, 0), dims=("band", "y", "x"),
            coords={"band": RGB, "y": np.arange(a.shape[0]), "x": np.arange(a.shape[1])},
            attrs={"units": "DN", "resolution": (0.5, 0.5), "source": str(d / sub / f"{name}.png")},
            name=f"{sub}/{name}",
        ))
    label = _png(d / "label" / f"{name}.png", "L") > 127
    if label.shape != imgs[0].shape[1:]:
        raise RasterReadError(f"label {name} is {label.shape}; expected {imgs[0].shape[1:]}")
    return imgs[0], imgs[1], label


def _open(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    from scipy import ndimage

    return ndimage.binary_opening(mask, structure=np.ones((2 * radius + 1, 2 * radius + 1), bool))


def predict_levir_tile(
    before: xr.DataArray, after: xr.DataArray, method: str = "irmad", threshold: Any = "otsu",
    opening: int = 0, **kwargs: Any,
) -> np.ndarray:
    """Boolean change mask of one RGB pair: ``change_magnitude`` then an optional opening."""
    from rsvlm_temporal.change.magnitude import change_magnitude

    res = change_magnitude(before, after, method=method, threshold=threshold, **kwargs)
    return _open(np.asarray(res.mask.values, bool), opening)


def evaluate_levir(
    data_dir: str | os.PathLike[str],
    method: str = "irmad",
    threshold: Any = "otsu",
    opening: int = 0,
    return_masks: bool = False,
    tiles: list[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """F1, precision, recall, IoU (and OA, Kappa) per tile and pooled over all tiles.

    Returns ``{"method", "threshold", "opening", "tiles": {name: metrics}, "pooled": metrics
    (from the summed counts), "mean_f1": mean of the per-tile F1 where defined}``; with
    ``return_masks`` also ``"masks": {name: bool array}``. ``tiles``: a subset of tile names
    (default: all in :func:`levir_tiles`). Per-tile ratios with a zero
    denominator (e.g. recall on a tile without change) are ``nan``.
    """
    per_tile: dict[str, Any] = {}
    masks: dict[str, np.ndarray] = {}
    total = ConfusionCounts(0, 0, 0, 0)
    available = levir_tiles(data_dir)
    names = available if tiles is None else list(tiles)
    missing = sorted(set(names) - set(available))
    if missing:
        raise RasterReadError(f"tiles {missing} not found in {data_dir}; available: {available}")
    for name in names:
        before, after, label = load_levir_tile(data_dir, name)
        mask = predict_levir_tile(before, after, method, threshold, opening, **kwargs)
        cc = confusion_counts(mask, label)
        total = total + cc
        per_tile[name] = cc.metrics() | {"label_fraction": float(label.mean()),
                                      "predicted_fraction": float(mask.mean())}
        if return_masks:
            masks[name] = mask
    f1s = [m["f1"] for m in per_tile.values() if np.isfinite(m["f1"])]
    out: dict[str, Any] = {
        "method": method, "threshold": threshold, "opening": opening, "tiles": per_tile,
        "pooled": total.metrics(), "mean_f1": float(np.mean(f1s)) if f1s else float("nan"),
    }
    if return_masks:
        out["masks"] = masks
    return out


def _default_data_dir() -> Path:
    env = os.environ.get("RSVLM_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base / "levir-cd_samples"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=_default_data_dir())
    ap.add_argument("--method", default=None, help="one method (default: irmad and cva)")
    ap.add_argument("--threshold", default="otsu")
    ap.add_argument("--opening", type=int, default=None, help="radius (default: 0 and 1)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    methods = [a.method] if a.method else ["irmad", "cva"]
    openings = [a.opening] if a.opening is not None else [0, 1]
    thr: Any = a.threshold
    try:
        thr = float(thr)
    except ValueError:
        pass
    results = []
    for m in methods:
        for op in openings:
            r = evaluate_levir(a.data_dir, method=m, threshold=thr, opening=op)
            results.append(r)
            if a.json:
                continue
            p = r["pooled"]
            print(f"== {m} / {thr} / opening {op}: pooled F1={p['f1']:.4f} P={p['precision']:.4f} "
                  f"R={p['recall']:.4f} IoU={p['iou']:.4f} OA={p['overall_accuracy']:.4f} "
                  f"Kappa={p['kappa']:.4f}; mean tile F1={r['mean_f1']:.4f}")
            for name, t in r["tiles"].items():
                print(f"   {name:24s} F1={t['f1']:.4f} P={t['precision']:.4f} R={t['recall']:.4f} "
                      f"IoU={t['iou']:.4f} label={t['label_fraction']:.3f} "
                      f"pred={t['predicted_fraction']:.3f}")
    if a.json:
        json.dump(results, sys.stdout, indent=1, default=float)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
