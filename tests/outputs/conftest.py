"""A wildfire run with the temporal CLIP, shared by the model layers and model search tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def model_fire_run(tmp_path_factory):
    """(scene output, items, RunOutputs) of ``run_analysis`` with the default model on a 36 px
    Sentinel-2 wildfire scene over 2020-2021 (fire in 2021)."""
    pytest.importorskip("torch")
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.pipeline import run_analysis
    from rsvlm_temporal.synth import write_scene

    root = tmp_path_factory.mktemp("model-fire")
    scene = write_scene(root / "scene", "wildfire", size=36, start="2020-01-01", end="2021-12-31",
                        sensors=("s2",), seed=11, keep_arrays=False)
    items = load_items(scene.catalog_path)
    return scene, items, run_analysis(items, root / "out")
