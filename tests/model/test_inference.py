"""run_model on a cube: georeferenced lazy layers per dask chunk, model loaded once, torch not
imported by ``import rsvlm_temporal.model``; heads (zero-shot, few-shot, text search)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from rsvlm_temporal.errors import InsufficientDataError, ModelWeightsError, ParameterError  # noqa: E402
from rsvlm_temporal.model.heads import few_shot_labels, text_search, zero_shot_labels  # noqa: E402
from rsvlm_temporal.model.inference import cached_model, run_model  # noqa: E402
from rsvlm_temporal.train.data import make_sample  # noqa: E402


@pytest.fixture(scope="module")
def fire():
    return make_sample("wildfire", 2001, sensors="s2", size=36)


def test_run_model_gives_georeferenced_layers_per_chunk(fire) -> None:
    cube = fire.cube.chunk({"time": 1, "band": -1, "y": 18, "x": 18})
    cached_model.cache_clear()
    out = run_model(cube)
    assert cached_model.cache_info().misses == 1  # loaded once for all 4 chunks
    mask = out.change_mask
    assert mask.dims == ("y", "x") and mask.attrs["crs"] == cube.attrs["crs"]
    assert tuple(mask.attrs["transform"]) == tuple(cube.attrs["transform"])
    assert mask.chunks == ((18, 18), (18, 18))
    m = mask.values.astype(bool)
    truth = fire.change_class > 0
    f1 = 2 * (m & truth).sum() / (m.sum() + truth.sum())
    assert f1 > 0.7
    dates = out.change_date.values
    assert dates.dtype.kind == "M" and np.isnat(dates[~m]).all() and not np.isnat(dates[m]).any()
    assert out.scene_label == "burn" and set(out.labels.attrs["class_names"].values()) >= {"burn", "no_change"}
    assert out.embedding.shape == (64,) and abs(np.linalg.norm(out.embedding) - 1) < 1e-4
    assert out.pixel_embedding.shape == (64, 36, 36)


def test_run_model_refuses_a_single_date(fire) -> None:
    with pytest.raises(InsufficientDataError):
        run_model(fire.cube.isel(time=[0]))


def test_heads_on_embeddings() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 6, 8))
    emb[:3] += 5 * np.eye(8)[0]
    emb[3:] += 5 * np.eye(8)[1]
    lab, _ = few_shot_labels(emb, {1: [(0, 0), (1, 2), (2, 5)], 0: [(4, 4), (5, 0), (3, 3)]})
    assert (lab[:3] == 1).all() and (lab[3:] == 0).all()
    with pytest.raises(ParameterError):
        few_shot_labels(emb, {1: [(0, 0)]})
    cls = np.stack([np.eye(8)[1], np.eye(8)[0]])
    lab, score = zero_shot_labels(emb, cls)
    assert (lab[:3] == 1).all() and score.min() > 0.5
    prob = np.ones((6, 6))
    dp = np.zeros((4, 6, 6))
    dp[2, :3] = 1
    dp[0, 3:] = 1
    region, dates = text_search(np.eye(8)[0], emb, dp, prob, top=40)
    assert region[:3].mean() > region[3:].mean() and int(np.argmax(dates)) == 2


def test_import_is_light_and_missing_weights_are_specific(tmp_path) -> None:
    code = "import sys, rsvlm_temporal, rsvlm_temporal.model; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    from rsvlm_temporal.model.factory import create_model

    with pytest.raises(ModelWeightsError):
        create_model("temporal-tiny", pretrained=str(tmp_path / "nope.safetensors"))


def test_text_search_ranks_the_event_dates(fire) -> None:
    from rsvlm_temporal.model.inference import search_series

    region, dates = search_series(fire.cube, "where and when did the forest burn")
    truth = fire.change_class > 0
    assert region.values[truth].mean() > region.values[~truth].mean()
    best = np.datetime64(dates[0][0])
    fire_day = np.datetime64("1970-01-01") + int(np.nanmin(fire.change_day))
    assert abs((best - fire_day).astype(int)) <= 20, (best, fire_day)
