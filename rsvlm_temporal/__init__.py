"""rsvlm-temporal: what changed here, and when? Landsat + Sentinel-2 time series analysis.

The few entry points, one per step of the flow (``catalog -> cube -> change -> evidence ->
outputs``; see ``docs/CONTRACTS.md``)::

    from rsvlm_temporal import search, load_cube, analyze, run_analysis

    items = search([14.2, 45.9, 14.3, 46.0], "2019-01-01", "2024-12-31", collections=["s2", "landsat"])
    cube = load_cube(items, resolution=30)            # lazy (time, band, y, x), reflectance 0-1
    result = analyze(cube, "2020-01-01", "2024-12-31")   # lazy change layers on the cube's grid
    outputs = run_analysis(items, "out/", "2020-01-01", "2024-12-31")  # COG, GeoJSON, evidence

Names are imported on first use, so ``import rsvlm_temporal`` stays fast and needs none of the
heavy optional dependencies (torch, transformers, streamlit).
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("rsvlm-temporal")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "search": "rsvlm_temporal.io.catalog",
    "load_items": "rsvlm_temporal.io.catalog",
    "parse_aoi": "rsvlm_temporal.io.aoi",
    "load_cube": "rsvlm_temporal.io.cube",
    "composite": "rsvlm_temporal.io.cube",
    "analyze": "rsvlm_temporal.change.analysis",
    "ChangeResult": "rsvlm_temporal.change.analysis",
    "change_magnitude": "rsvlm_temporal.change.magnitude",
    "compute_indices": "rsvlm_temporal.change.indices",
    "Evidence": "rsvlm_temporal.evidence.schema",
    "QualityNote": "rsvlm_temporal.quality",
    "build_evidence": "rsvlm_temporal.evidence.build",
    "run_analysis": "rsvlm_temporal.pipeline",
    "RunOutputs": "rsvlm_temporal.outputs.results",
    "make_scene": "rsvlm_temporal.synth.scenarios",
    "write_scene": "rsvlm_temporal.synth.writer",
    "demo_catalog": "rsvlm_temporal.synth.writer",
    "RsvlmError": "rsvlm_temporal.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rsvlm_temporal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
