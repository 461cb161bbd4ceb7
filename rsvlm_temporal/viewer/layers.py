"""The analysis layers the dashboard shows, read back from the exported COGs, and the area table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from rsvlm_temporal.classes import class_table
from rsvlm_temporal.errors import RasterReadError
from rsvlm_temporal.evidence import Evidence


@dataclass
class ResultLayers:
    """Class raster (uint8, 255 nodata) with its class-table key, burn severity (uint8 or None)
    and change date (int32 days since 1970-01-01, -1 none, or None) on the analysis grid."""

    classes: np.ndarray
    table: str
    burn_severity: np.ndarray | None = None
    change_date: np.ndarray | None = None


def _read(path: Path) -> np.ndarray:
    import rasterio

    try:
        with rasterio.open(path) as ds:
            return ds.read(1)
    except (rasterio.errors.RasterioIOError, OSError) as exc:
        raise RasterReadError(f"cannot read analysis layer {path}: {exc}") from exc


def read_layers(files: Mapping[str, Path]) -> ResultLayers:
    """The layers of a run (``RunOutputs.files``): series runs give change classes, burn
    severity and change dates; bitemporal runs the change mask (``magnitude`` table)."""
    if "change_class" in files:
        return ResultLayers(_read(Path(files["change_class"])), "change",
                            _read(Path(files["burn_severity"])) if "burn_severity" in files else None,
                            _read(Path(files["change_date"])).astype(np.int32) if "change_date" in files else None)
    if "change_mask" in files:
        return ResultLayers(_read(Path(files["change_mask"])), "magnitude")
    raise RasterReadError(f"the run wrote no change_class or change_mask layer; files: {sorted(files)}")


def read_model_layers(files: Mapping[str, Path]) -> tuple[np.ndarray, np.ndarray] | None:
    """(agreement codes of ``classes.MODEL_AGREEMENT_CLASSES`` (table ``model_agreement``),
    zero-shot label codes of the change table) of a run with the temporal CLIP, None without."""
    if "model_agreement" not in files or "model_labels" not in files:
        return None
    return _read(Path(files["model_agreement"])), _read(Path(files["model_labels"]))


def search_image(run_dir: Path, query: str) -> tuple[np.ndarray, str]:
    """A text search over a run (:func:`outputs.model_search.search_run`) as a uint8 RGB map
    (matching score 0-1 of the best, through the viridis ramp) and one line
    saying how much matched, where and when."""
    from rsvlm_temporal.outputs.model_search import search_run
    from rsvlm_temporal.viewer.render import ramp

    res = search_run(run_dir, query)
    score = np.asarray(res.score.values, np.float32)
    top = float(np.nanmax(score)) if np.isfinite(score).any() else 0.0
    img = ramp(np.clip(score / top, 0, 1) if top > 0 else np.zeros_like(score), "viridis")
    return img, res.describe()


def area_table(evidence: Evidence, table: str = "change") -> list[dict[str, object]]:
    """Rows ``{class, label, area_ha, percent}`` (percent of the valid area) in legend order,
    from the evidence."""
    by_name = {c.name: c for c in evidence.classes}
    rows = []
    for info in class_table(table).legend():
        c = by_name.get(info.name)
        if c is None:
            continue
        rows.append({"class": info.name, "label": info.label, "area_ha": round(float(c.area_ha), 2),
                     "percent": round(float(c.percent_of_valid), 2)})
    return rows


def area_csv(rows: list[dict[str, object]]) -> str:
    """The area table as CSV text (class, label, area_ha, percent_of_valid)."""
    lines = ["class,label,area_ha,percent_of_valid"]
    lines += [f"{r['class']},{r['label']},{r['area_ha']},{r['percent']}" for r in rows]
    return "\n".join(lines) + "\n"


def representative_pixel(classes: np.ndarray, shape: tuple[int, int], table: str = "change",
                         skip: tuple[str, ...] = ("no_change",)) -> tuple[int, int] | None:
    """(row, col) on a grid of ``shape`` of the pixel of the largest class (but ``skip``) that
    lies nearest its centroid, None when no such class has a pixel: where to show a series."""
    codes = class_table(table).codes
    keep = [c for n, c in codes.items() if n not in skip]
    counts = {c: int((classes == c).sum()) for c in keep}
    code = max(counts, key=lambda c: counts[c]) if counts else None
    if code is None or counts[code] == 0:
        return None
    rows, cols = np.nonzero(classes == code)
    k = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    h, w = classes.shape
    return (min(shape[0] - 1, int((rows[k] + 0.5) * shape[0] / h)),
            min(shape[1] - 1, int((cols[k] + 0.5) * shape[1] / w)))
