"""Synthetic Sentinel-2 / Landsat scenes with known truth (the offline demo and evaluation set).

- :func:`make_scene` builds a scenario in memory (landscape, events, clouds, truth, captions, QA);
- :func:`write_scene` writes it as Sentinel-2 L2A / Landsat C2 L2 look-alike COGs, a static STAC
  catalog and ``truth/`` rasters + ``truth.json``;
- :func:`demo_catalog` generates (once, cached) the packaged demo of all five scenarios.
"""

from .scenarios import (
    COVERS,
    LANDSAT,
    S2,
    SCENARIO_NAMES,
    SCENARIOS,
    SENSOR_BANDS,
    Acquisition,
    Atmosphere,
    GridSpec,
    SceneOptions,
    SceneTruth,
    SyntheticScene,
    SyntheticSceneError,
    location_name,
    make_grid,
    make_scene,
    normalise_sensors,
)
from ..spectra import MATERIALS, SIGNATURES, index_of, mix, signature, signature_matrix
from .writer import (
    DEMO_OPTIONS,
    DEMO_VERSION,
    SceneOutput,
    SensorSeries,
    block_any,
    block_mean,
    decode_dn,
    default_cache_dir,
    demo_catalog,
    encode_reflectance,
    iter_demo_scenes,
    qa_pixel_values,
    s2_boa_offset_dn,
    scale_offset,
    upsample,
    write_cog,
    write_scene,
)

__all__ = [
    "COVERS", "LANDSAT", "S2", "SCENARIO_NAMES", "SCENARIOS", "SENSOR_BANDS", "MATERIALS", "SIGNATURES",
    "Acquisition", "Atmosphere", "GridSpec", "SceneOptions", "SceneTruth", "SyntheticScene",
    "SyntheticSceneError", "SceneOutput", "SensorSeries", "DEMO_OPTIONS", "DEMO_VERSION",
    "location_name", "make_grid", "make_scene", "normalise_sensors", "index_of", "mix", "signature",
    "signature_matrix", "block_any", "block_mean", "upsample", "decode_dn", "default_cache_dir", "demo_catalog", "encode_reflectance",
    "iter_demo_scenes", "qa_pixel_values", "s2_boa_offset_dn", "scale_offset", "write_cog", "write_scene",
]
