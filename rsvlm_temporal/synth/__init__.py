"""Synthetic Sentinel-2 / Landsat scenes with known truth (the offline demo and evaluation set).

- :func:`make_scene` builds a scenario in memory (landscape, events, clouds, truth, captions, QA);
- :func:`write_scene` writes it as Sentinel-2 L2A / Landsat C2 L2 look-alike COGs, a static STAC
  catalog and ``truth/`` rasters + ``truth.json``;
- :func:`demo_catalog` generates (once, cached) the packaged demo of all five scenarios.

Scenario definitions are data (``config/scenarios.json``); the block helpers, encoders and
renderers stay in :mod:`~rsvlm_temporal.synth.writer` and :mod:`~rsvlm_temporal.synth.scenarios`.
"""

from rsvlm_temporal.synth.scenarios import (
    LANDSAT,
    S2,
    SCENARIO_NAMES,
    SCENARIOS,
    SceneOptions,
    SceneTruth,
    SyntheticScene,
    SyntheticSceneError,
    make_scene,
)
from rsvlm_temporal.synth.writer import (
    DEMO_OPTIONS,
    DEMO_RESOLUTION_M,
    DEMO_VERSION,
    SceneOutput,
    default_cache_dir,
    demo_catalog,
    iter_demo_scenes,
    write_scene,
)

__all__ = [
    "LANDSAT", "S2", "SCENARIO_NAMES", "SCENARIOS", "DEMO_OPTIONS", "DEMO_RESOLUTION_M", "DEMO_VERSION",
    "SceneOptions", "SceneTruth", "SyntheticScene", "SyntheticSceneError", "SceneOutput",
    "make_scene", "write_scene", "demo_catalog", "default_cache_dir", "iter_demo_scenes",
]
