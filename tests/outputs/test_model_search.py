"""Text search and few-shot over a finished run (outputs/model_search.py, ``rsvlm find`` /
``rsvlm fewshot``), against the wildfire scene's truth: the burn is found by words never in
the prompts list, dated on the fire, placed where the truth puts it; other classes find nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

pytest.importorskip("torch")

from rsvlm_temporal.classes import CHANGE_CODES  # noqa: E402
from rsvlm_temporal.errors import ParameterError  # noqa: E402
from rsvlm_temporal.evidence.schema import CELL_NAMES  # noqa: E402
from rsvlm_temporal.outputs.model_search import few_shot_run, search_run  # noqa: E402


def _truth(scene, name):
    with rasterio.open(scene.out_dir / "truth" / f"{name}.tif") as src:
        return src.read(1)


def _cell(mask: np.ndarray) -> str:
    h, w = mask.shape
    r, c = np.nonzero(mask)
    counts = np.bincount(3 * ((3 * r) // h) + (3 * c) // w, minlength=9)
    return CELL_NAMES[int(np.argmax(counts))]


def test_search_finds_the_burn_when_and_where_the_truth_has_it(model_fire_run) -> None:
    scene, _, run = model_fire_run
    burn = _truth(scene, "change_class") == CHANGE_CODES["burn"]
    day = _truth(scene, "change_date")
    res = search_run(run.out_dir, "scorched woodland after a forest fire")
    assert res.score.attrs["nearest_class"] == "burn"
    assert res.matched_ha == pytest.approx(burn.sum() * 0.01, rel=0.25)
    assert res.where == _cell(burn)
    best_day = (np.datetime64(res.dates[0][0]) - np.datetime64("1970-01-01")).astype(int)
    assert abs(best_day - np.median(day[burn])) <= 10  # within two 5-day revisits of the fire
    assert res.score.shape == burn.shape and res.score.attrs["crs"]


@pytest.mark.parametrize("query", ["when did it look flooded?", "new buildings near the road"])
def test_search_for_a_class_the_scene_lacks_finds_nothing(model_fire_run, query) -> None:
    res = search_run(model_fire_run[2].out_dir, query)
    assert res.matched_ha == 0 and res.dates == [] and res.where is None


def test_few_shot_from_three_points_each_maps_the_burn(model_fire_run) -> None:
    scene, _, run = model_fire_run
    burn = _truth(scene, "change_class") == CHANGE_CODES["burn"]
    rng = np.random.default_rng(5)
    pick = lambda m: [tuple(int(v) for v in p) for p in np.argwhere(m)[rng.choice(int(m.sum()), 3, replace=False)]]  # noqa: E731
    res = few_shot_run(run.out_dir, {"scar": pick(burn), "rest": pick(~burn)}, crs="pixel")
    lab = res.labels.values
    f1 = 2 * ((lab == 0) & burn).sum() / ((lab == 0).sum() + burn.sum())
    assert f1 > 0.85, f1
    assert res.areas_ha["scar"] == pytest.approx((lab == 0).sum() * 0.01)
    with pytest.raises(ParameterError, match="at least two classes"):
        few_shot_run(run.out_dir, {"scar": pick(burn)}, crs="pixel")
    with pytest.raises(ParameterError, match="outside"):
        few_shot_run(run.out_dir, {"a": [(0, 0)], "b": [(999, 0)]}, crs="pixel")


def test_the_commands_print_json_and_refuse_a_run_without_the_model(model_fire_run, tmp_path, capsys) -> None:
    from rsvlm_temporal.cli import main

    run = model_fire_run[2]
    assert main(["find", "burned forest", "--run", str(run.out_dir), "--json", "--out", str(tmp_path / "s.tif")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["nearest_class"] == "burn" and out["matched_ha"] > 0 and (tmp_path / "s.tif").is_file()
    assert main(["find", "burned forest", "--run", str(tmp_path)]) == 2
    assert "no model layers" in capsys.readouterr().err
