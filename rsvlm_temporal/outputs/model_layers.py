"""The temporal CLIP's layers beside the spectral result of a run: the learned change mask,
probability, date and zero-shot labels as COGs, an agreement layer (both changed, spectral only,
model only; codes of :data:`classes.MODEL_AGREEMENT_CLASSES`) and the evidence's ``model``
section (areas in hectares, the IoU of the two masks, the scene's zero-shot scores and change
embedding for the language stage). Computed chunk by chunk: the model runs once per chunk into a
stack file (``compute.store``), every export reads that stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from rsvlm_temporal.classes import CHANGE_CLASSES, CHANGE_CODES, MODEL_AGREEMENT_CLASSES, NODATA_CLASS
from rsvlm_temporal.compute.store import open_stack, open_stack_array, write_stack
from rsvlm_temporal.errors import GridError
from rsvlm_temporal.model.inference import N_FIXED, ModelOutputs, with_scene
from rsvlm_temporal.outputs.cog import write_cog
from rsvlm_temporal.quality import QualityNote

__all__ = ["DISAGREEMENT_NOTE_SHARE", "MODEL_FILES", "export_model", "spectral_change", "write_model_stack"]

#: the files the model adds to a result folder, by name
MODEL_FILES = {"model_stack": "model_layers.tif", "model_change_mask": "model_change_mask.tif",
               "model_change_probability": "model_change_probability.tif",
               "model_change_date": "model_change_date.tif", "model_labels": "model_labels.tif",
               "model_agreement": "model_agreement.tif"}
#: a ``model_disagreement`` note is written when the masks differ over more than this share of
#: the valid area (0-1) and their IoU is below one half
DISAGREEMENT_NOTE_SHARE = 0.01
#: change-class codes that are not change (the series and bitemporal engines)
_NOT_CHANGE = (0, CHANGE_CODES["seasonal"], NODATA_CLASS)


def spectral_change(layers: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """(changed, valid) boolean (y, x) of the spectral result: a change class other than
    no change and seasonal difference, else the bitemporal change mask."""
    if "change_class" in layers:
        cls = layers.change_class
        valid = cls != NODATA_CLASS
        return valid & ~cls.isin(_NOT_CHANGE), valid
    valid = layers.change_magnitude.notnull()
    return valid & (layers.change_mask == 1), valid


def write_model_stack(mo: ModelOutputs, out_dir: Path) -> tuple[ModelOutputs, Path]:
    """Run the model of ``mo`` (``run_model(..., scene=False)``) chunk by chunk, on the dask
    workers where a client is active, into ``out_dir/model_layers.tif``: probability 0-1, date,
    zero-shot label code, label score and the E pixel embeddings; then the scene embedding and
    label from that file (the model runs once). Returns ``mo`` with its scene, and the stack."""
    georef = {k: mo.change_mask.attrs[k] for k in ("crs", "epsg", "transform", "resolution") if k in mo.change_mask.attrs}
    layers = {"probability": mo.change_probability, "date": mo.change_date,
              "labels": mo.labels, "label_score": mo.label_score}
    emb = mo.pixel_embedding
    for k in range(emb.sizes["embed"]):
        layers[f"embedding_{k}"] = xr.DataArray(emb.data[k], dims=("y", "x"), coords={"y": emb.y, "x": emb.x})
    stack = write_stack(xr.Dataset(layers, attrs=georef), out_dir / MODEL_FILES["model_stack"])
    arr = open_stack_array(stack)
    return with_scene(mo, arr.data[N_FIXED:], arr.data[0]), stack


def export_model(mo: ModelOutputs, stack: Path, layers: xr.Dataset, out_dir: Path, pix_ha: float
                 ) -> tuple[dict[str, Path], dict[str, Any], list[QualityNote]]:
    """COGs of the model stack ``stack`` (:func:`write_model_stack`) beside the spectral result
    ``layers`` (an opened result stack on the same grid) in ``out_dir``, the agreement layer, and
    the evidence's ``model`` section with its notes. ``pix_ha``: the area of one pixel, hectares."""
    m = open_stack(stack)
    if m.probability.shape != layers.change_magnitude.shape:
        raise GridError(f"the model layers {m.probability.shape} and the result {layers.change_magnitude.shape} "
                        "are not on one grid")
    changed, valid = spectral_change(layers)
    changed = changed.assign_coords(y=m.y, x=m.x).chunk(m.probability.chunksizes)
    valid = valid.assign_coords(y=m.y, x=m.x).chunk(m.probability.chunksizes)
    model_changed = (m.probability > 0.5) & valid
    agreement = xr.where(~valid, NODATA_CLASS,
                         xr.where(changed, xr.where(model_changed, 1, 2), xr.where(model_changed, 3, 0))).astype(np.uint8)
    labels = xr.where(model_changed, m.labels, xr.where(valid, 0, NODATA_CLASS)).astype(np.uint8)
    mask = xr.where(valid, model_changed, NODATA_CLASS).astype(np.uint8)
    for a in (agreement, labels, mask):
        a.attrs.update(m.probability.attrs)
    files: dict[str, Path] = {"model_stack": stack}
    files["model_change_mask"] = write_cog(mask, out_dir / MODEL_FILES["model_change_mask"],
                                           nodata=NODATA_CLASS, class_names={0: "no_change", 1: "change"},
                                           description=f"learned change mask ({mo.model})")
    files["model_change_probability"] = write_cog(m.probability, out_dir / MODEL_FILES["model_change_probability"],
                                                  nodata=np.nan, description="learned change probability 0-1")
    files["model_change_date"] = write_cog(m.date, out_dir / MODEL_FILES["model_change_date"],
                                           description="learned change date")
    files["model_labels"] = write_cog(labels, out_dir / MODEL_FILES["model_labels"],
                                      nodata=NODATA_CLASS, class_names=CHANGE_CLASSES,
                                      description="zero-shot change labels (text prompts)")
    files["model_agreement"] = write_cog(agreement, out_dir / MODEL_FILES["model_agreement"],
                                         nodata=NODATA_CLASS, class_names=MODEL_AGREEMENT_CLASSES,
                                         description="spectral change vs the learned change mask")
    counts, label_counts = dask.compute(da.bincount(agreement.data.ravel(), minlength=256),
                                        da.bincount(labels.data.ravel(), minlength=256))
    n_valid = int(counts[:4].sum())
    ha = {MODEL_AGREEMENT_CLASSES[c]: round(float(counts[c]) * pix_ha, 4) for c in MODEL_AGREEMENT_CLASSES}
    both, s_only, m_only = counts[1], counts[2], counts[3]
    union = int(both + s_only + m_only)
    iou = float(both / union) if union else None
    disagree = float((s_only + m_only) / n_valid) if n_valid else 0.0
    section = {
        "model": mo.model, "pretrained": mo.pretrained,
        "change_ha": round(float((both + m_only) * pix_ha), 4),
        "spectral_change_ha": round(float((both + s_only) * pix_ha), 4),
        "agreement_ha": ha, "iou": None if iou is None else round(iou, 4),
        "disagreement_share": round(disagree, 4),
        "labels_ha": {CHANGE_CLASSES[c]: round(float(label_counts[c]) * pix_ha, 4)
                      for c in CHANGE_CLASSES if c and label_counts[c]},
        "scene_label": mo.scene_label,
        "scene_scores": {k: round(float(v), 4) for k, v in mo.scene_scores.items()},
        "embedding": [round(float(v), 6) for v in mo.embedding],
        "notes": list(mo.notes),
    }
    notes = []
    if disagree > DISAGREEMENT_NOTE_SHARE and (iou is None or iou < 0.5):
        notes.append(QualityNote(
            "model_disagreement",
            f"the learned change mask ({mo.model}) and the spectral change disagree over "
            f"{100 * disagree:.1f}% of the valid area (IoU {0 if iou is None else iou:.2f}): "
            f"{ha['spectral_only']:g} ha changed by the spectral engine only, {ha['model_only']:g} ha by "
            "the model only (layer model_agreement.tif)", fraction=round(disagree, 4)))
    return files, section, notes
