"""Phrase grounding and text to scene."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from rsvlm_temporal.classes import CHANGE_CLASSES
from rsvlm_temporal.grid import coords_for
from rsvlm_temporal.language.ask import ask
from rsvlm_temporal.language.ground import cell_masks, ground
from rsvlm_temporal.language.scene_prompt import parse_scene_prompt
from rsvlm_temporal.synth.prompt import scene_from_prompt, truth_evidence


def _raster(scene: Any) -> xr.DataArray:
    g = scene.grid
    return xr.DataArray(scene.truth.change_class, dims=("y", "x"), coords=coords_for(g.transform, g.shape),
                        attrs={"crs": g.crs, "transform": tuple(g.transform)[:6], "class_names": dict(CHANGE_CLASSES)})


def test_ground_truth_raster(scenes: dict[str, Any], truth_ev: dict[str, Any]) -> None:
    sc = scenes["wildfire"]
    loc = sc.truth.stats["location"]
    g = ground(f"the burned area in the {loc}", truth_ev["wildfire"], class_raster=_raster(sc))
    truth = sc.truth.change_class == 1
    inside = np.zeros(truth.shape, bool)
    for c in g.cells:
        inside |= cell_masks(truth.shape)[c]
    iou = (g.mask & truth & inside).sum() / (g.mask | (truth & inside)).sum()
    assert iou >= 0.99 and g.classes == ["burn"]
    assert g.geojson["features"] and all(f["properties"]["class"] == "burn" for f in g.geojson["features"])


def test_ground_cells_only(truth_ev: dict[str, Any]) -> None:
    g = ground("the new buildings", truth_ev["urban_growth"])
    assert g.source == "cells" and g.mask is None and g.area_ha > 0
    assert abs(g.area_ha - truth_ev["urban_growth"].class_by_name("built_up_gain").area_ha) < 1e-6


def test_parse_scene_prompt() -> None:
    s = parse_scene_prompt("a wildfire in the south-east in summer 2021, then regrowth")
    assert s["scenario"] == "wildfire" and s["place"] == "south-east" and s["then"] == ["regrowth"]
    assert s["event_window"] == {"start": "2021-06-01", "end": "2021-08-31"}
    assert parse_scene_prompt("a flood in spring 2020 seen by Landsat")["sensors"] == "landsat"


def test_prompt_scene_answer_round_trip() -> None:
    scene, spec = scene_from_prompt("a wildfire in the south-east in summer 2021, then regrowth")
    assert spec["matched"] == {"when": True, "where": True}
    ev = truth_evidence(scene)
    when = ask("When did the fire happen?", ev)
    where = ask("Where is the burn scar?", ev)
    assert "2021-06-01" <= when.facts["date"] <= "2021-08-31"
    assert where.facts["location"] == "south-east"


def test_mirror_scene_flips_landscape_truth_and_words() -> None:
    from rsvlm_temporal.synth import make_scene
    from rsvlm_temporal.synth.prompt import mirror_scene
    from rsvlm_temporal.synth.scenarios import location_name

    sc = make_scene("urban_growth", seed=0, size=24, start="2020-01-01", end="2021-12-31")
    m = mirror_scene(sc, ud=True, lr=True)
    assert np.array_equal(m.truth.change_class, sc.truth.change_class[::-1, ::-1])
    day = int((np.datetime64("2021-12-01") - np.datetime64("1970-01-01")).astype(int))
    assert np.allclose(m.fractions(day), sc.fractions(day)[:, ::-1, ::-1])  # the dynamics follow
    assert m.truth.stats["location"] == location_name(m.truth.change_class > 0)
    flip = {"north": "south", "south": "north", "east": "west", "west": "east", "centre": "centre"}
    want = "-".join(flip[w] for w in sc.truth.stats["location"].split("-"))
    assert m.truth.stats["location"] == want
    assert m.truth.stats["class_area_ha"] == sc.truth.stats["class_area_ha"]
    assert mirror_scene(sc) is sc


def test_prompt_corner_place_met_by_mirroring() -> None:
    # the town grows from a corner towards the centre, so its new districts rarely sit in a corner
    # cell as drawn: the search mirrors a drawn scene onto the asked corner
    scene, spec = scene_from_prompt("new buildings in the south-east in 2020")
    assert spec["matched"] == {"when": True, "where": True}
    assert ask("Where is the construction?", truth_evidence(scene)).facts["location"] == "south-east"
