"""The area diagnostic of benchmarks/language.py (``--part area``): class maps written on a 10 m
and a 30 m grid from the demo truth itself are measured as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import from_origin

from rsvlm_temporal.classes import CHANGE_CODES


def _write(path: Path, arr: np.ndarray, res: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                       dtype="uint8", crs="EPSG:32633", transform=from_origin(500_000, 5_000_000, res, res)) as dst:
        dst.write(arr.astype(np.uint8), 1)


def test_area_part_measures_truth_and_majority_maps(bench: Any, scenes: dict[str, Any], tmp_path: Path) -> None:
    code = CHANGE_CODES["built_up_gain"]
    truth = scenes["urban_growth"].truth.change_class == code
    n = truth.shape[0]
    _write(tmp_path / "ten" / "urban_growth" / "change_class.tif", np.where(truth, code, 0), 10.0)
    share = truth.reshape(n // 3, 3, n // 3, 3).mean(axis=(1, 3))
    _write(tmp_path / "thirty" / "urban_growth" / "change_class.tif", np.where(share > 0.5, code, 0), 30.0)

    ten = bench.part_area(str(tmp_path / "ten"))["rows"]
    assert [r["scenario"] for r in ten] == ["urban_growth"]
    want = round(float(truth.sum()) * 0.01, 2)
    assert ten[0]["truth_ha"] == ten[0]["mapped_ha"] == want
    assert ten[0]["mapped_error_pct"] == 0.0 and ten[0]["mixed_pixels"] == 0

    r = bench.part_area(str(tmp_path / "thirty"))["rows"][0]
    assert r["grid_m"] == 30.0 and r["truth_ha"] == want
    assert r["mapped_ha"] == r["majority_ha"] == round(float((share > 0.5).sum()) * 0.09, 2)
    assert r["mixed_pixels"] == int(((share > 0) & (share < 1)).sum()) > 0
    # the truth area lost and gained by rounding the mixed pixels is the mapped area's error
    assert abs(r["mapped_ha"] - r["commission_ha"] + r["omission_ha"] - want) < 0.02
    assert r["mapped_by_truth_fraction"]["(0,1/2)"].startswith("0/")
    assert bench.part_area(None) == {"skipped": "needs --pipeline-dir (outputs of rsvlm demo)"}
