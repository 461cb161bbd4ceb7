"""A tiny seeded wildfire scene (Sentinel-2 + Landsat, 48 px at 10 m), its frame store and run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TINY = {"size": 48, "start": "2020-01-01", "end": "2022-12-31", "s2_revisit_days": 20,
        "landsat_revisit_days": 32, "landsat_dual_revisit_days": 32, "seed": 7, "cloud_prob": 0.35}


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The written scene (``SceneOutput``)."""
    from rsvlm_temporal.synth import write_scene

    return write_scene(tmp_path_factory.mktemp("viewer-scene"), "wildfire", keep_arrays=False, **TINY)


@pytest.fixture(scope="session")
def items(scene: Any) -> list[Any]:
    from rsvlm_temporal.io.catalog import load_items

    return load_items(scene.catalog_path)


@pytest.fixture(scope="session")
def cube(items: list[Any]) -> Any:
    from rsvlm_temporal.viewer import player_cube

    return player_cube(items)


@pytest.fixture(scope="session")
def store(cube: Any) -> Any:
    from rsvlm_temporal.viewer import FrameStore

    return FrameStore(cube, batch=8)


@pytest.fixture(scope="session")
def run(items: list[Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(RunOutputs, run folder) of the change analysis of the scene."""
    from rsvlm_temporal.viewer import analyse_cached

    out = tmp_path_factory.mktemp("viewer-run")
    outputs, fresh = analyse_cached(items, out)
    assert fresh
    return outputs, Path(out)
