"""The exports and evidence of one analysis: COGs, GeoJSON (EPSG:4326), PNG quicklook and
``evidence.json``, from a result already written as a stack (``compute.store``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from rsvlm_temporal.atomic import write_json_atomic
from rsvlm_temporal.change.analysis import ChangeResult
from rsvlm_temporal.classes import BURN_SEVERITY_CLASSES, CHANGE_CLASSES, MAGNITUDE_CLASSES, NODATA_CLASS
from rsvlm_temporal.compute.store import open_stack
from rsvlm_temporal.evidence import Evidence, build_evidence
from rsvlm_temporal.evidence.extras import class_extras
from rsvlm_temporal.grid import pixel_area_m2
from rsvlm_temporal.model.inference import ModelOutputs
from rsvlm_temporal.outputs.cog import write_cog
from rsvlm_temporal.outputs.model_layers import export_model
from rsvlm_temporal.outputs.polygons import write_polygons
from rsvlm_temporal.outputs.quicklook import write_quicklook_png


@dataclass
class ModelRun:
    """The temporal CLIP in a run: its outputs and their stack (``model_layers.tif``), or None and
    the ``reason`` it did not run (e.g. no year of the series with two dates, torch missing)."""

    name: str
    outputs: ModelOutputs | None = None
    stack: Path | None = None
    reason: str | None = None


@dataclass
class RunOutputs:
    """What :func:`run_analysis` wrote: file paths by name, and the evidence."""

    out_dir: Path
    evidence: Evidence
    files: dict[str, Path] = field(default_factory=dict)
    mode: str = "series"


def export_result(result: ChangeResult, cube: xr.DataArray, out_dir: Path,
                  stack_path: Path | None = None, model: ModelRun | None = None) -> RunOutputs:
    """Exports and evidence from a result already written as a stack (see :mod:`store`).

    Series: the change class, burn severity, dates, confidence COGs. Bitemporal: the change
    mask COG and, when the pair is reflectance, the bitemporal change class COG (codes of
    ``classes.CHANGE_CLASSES``, incl. ``seasonal``), burn severity and dNBR COGs, class
    polygons, and an evidence of the classes (else an evidence of the mask). ``model``: the
    temporal CLIP's outputs and their stack (:mod:`outputs.model_layers`), exported beside the
    spectral layers with an agreement layer and the evidence's ``model`` section; or the reason
    the model did not run (a note)."""
    out_dir = Path(out_dir)
    stack_path = stack_path or out_dir / "layers.tif"
    layers = open_stack(stack_path)
    files: dict[str, Path] = {"stack": stack_path}
    pix_ha = pixel_area_m2(layers.change_magnitude) / 10_000
    counts = result.clear_counts
    if result.mode == "series":
        cls = layers.change_class
        cls.attrs["class_names"] = CHANGE_CLASSES
        valid = cls != NODATA_CLASS
        files["change_class"] = write_cog(cls, out_dir / "change_class.tif", nodata=NODATA_CLASS,
                                          class_names=CHANGE_CLASSES, description="change class")
        files["burn_severity"] = write_cog(layers.burn_severity, out_dir / "burn_severity.tif",
                                           nodata=NODATA_CLASS, class_names=BURN_SEVERITY_CLASSES,
                                           description="burn severity (dNBR, Key & Benson)")
        for name in ("change_date", "flood_onset", "flood_recession"):
            files[name] = write_cog(layers[name], out_dir / f"{name}.tif", description=name.replace("_", " "))
        files["confidence"] = write_cog(layers.confidence, out_dir / "confidence.tif", nodata=np.nan)
        files["polygons"] = write_polygons(cls, out_dir / "change_polygons.geojson", CHANGE_CLASSES,
                                           date_raster=layers.change_date, valid_mask=valid,
                                           codes=[c for c in CHANGE_CLASSES if c > 0])
        files["quicklook"] = write_quicklook_png(cls, out_dir / "change_class.png", kind="class",
                                                 class_names=CHANGE_CLASSES)
        extras = class_extras(layers, cube.time.values, pix_ha)
        evidence = build_evidence(
            cls, CHANGE_CLASSES, valid_mask=valid, date_raster=layers.change_date,
            confidence=layers.confidence, clear_counts=counts.values, clear_dates=counts.time.values,
            notes=result.notes, extra=extras, analysis="series",
            evidence_extra={"period": [str(result.start), str(result.end)],
                            "magnitude_method": result.magnitude_method},
        )
    else:
        mask = layers.change_mask.astype(np.uint8)
        mask.attrs.update(layers.change_mask.attrs)
        valid = layers.change_magnitude.notnull()
        files["change_mask"] = write_cog(mask, out_dir / "change_mask.tif", class_names=MAGNITUDE_CLASSES,
                                         description="change mask (unsupervised change magnitude)")
        files["polygons"] = write_polygons(mask, out_dir / "change_polygons.geojson", MAGNITUDE_CLASSES,
                                           valid_mask=valid, codes=[1])
        extra_ev = {"period": [str(result.start), str(result.end)],
                    "magnitude_method": result.magnitude_method,
                    "magnitude_threshold": result.magnitude_threshold}
        if "change_class" in layers:
            # the bitemporal classes (change/bitemporal.py) beside the mask; the evidence
            # reports them (the seasonal difference as its own class, not change)
            cls = layers.change_class
            cls.attrs["class_names"] = CHANGE_CLASSES
            files["change_class"] = write_cog(cls, out_dir / "change_class.tif", nodata=NODATA_CLASS,
                                              class_names=CHANGE_CLASSES,
                                              description="change class (bitemporal: from the two periods' spectra)")
            files["burn_severity"] = write_cog(layers.burn_severity, out_dir / "burn_severity.tif",
                                               nodata=NODATA_CLASS, class_names=BURN_SEVERITY_CLASSES,
                                               description="burn severity (dNBR, Key & Benson)")
            files["dnbr"] = write_cog(layers.dnbr, out_dir / "dnbr.tif", nodata=np.nan, description="dNBR")
            files["class_polygons"] = write_polygons(
                cls, out_dir / "change_class_polygons.geojson", CHANGE_CLASSES,
                valid_mask=cls != NODATA_CLASS, codes=[c for c in CHANGE_CLASSES if c > 0])
            files["quicklook"] = write_quicklook_png(cls, out_dir / "change_class.png", kind="class",
                                                     class_names=CHANGE_CLASSES)
            extra_ev["change_mask_ha"] = float((mask == 1).sum().compute().item() * pix_ha)
            evidence = build_evidence(
                cls, CHANGE_CLASSES, valid_mask=cls != NODATA_CLASS, clear_counts=counts.values,
                clear_dates=counts.time.values, notes=result.notes, analysis="bitemporal",
                evidence_extra=extra_ev,
            )
        else:
            files["quicklook"] = write_quicklook_png(mask, out_dir / "change_mask.png", kind="class",
                                                     class_names=MAGNITUDE_CLASSES)
            evidence = build_evidence(
                mask, MAGNITUDE_CLASSES, valid_mask=valid, clear_counts=counts.values,
                clear_dates=counts.time.values, notes=result.notes, analysis="bitemporal",
                evidence_extra=extra_ev,
            )
    files["change_magnitude"] = write_cog(layers.change_magnitude, out_dir / "change_magnitude.tif",
                                          nodata=np.nan, description="change magnitude")
    if model is not None:
        if model.outputs is not None and model.stack is not None:
            m_files, section, m_notes = export_model(model.outputs, model.stack, layers, out_dir, pix_ha)
            files.update(m_files)
            evidence.extra["model"] = section
            evidence.quality.notes.extend(m_notes)
        else:
            evidence.extra["model"] = {"model": model.name, "run": False, "reason": model.reason}
    files["evidence"] = write_json_atomic(out_dir / "evidence.json", evidence.to_dict())
    return RunOutputs(out_dir, evidence, files, result.mode)

