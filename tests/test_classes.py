"""The class tables (config/classes.json) and the QA_PIXEL bit fields (config/qa_pixel.json):
loaded once, validated, shared by every consumer."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from rsvlm_temporal import classes
from rsvlm_temporal.errors import ConfigError
from rsvlm_temporal.io.sensors import sensor_table


def test_tables_match_the_published_conventions() -> None:
    assert classes.NODATA_CLASS == 255
    assert classes.CHANGE_CLASSES == {0: "no_change", 1: "burn", 2: "flood", 3: "vegetation_loss",
                                      4: "vegetation_gain", 5: "built_up_gain", 6: "water_gain",
                                      7: "water_loss", 8: "seasonal", 9: "other_change"}
    # Key & Benson (2006) dNBR class bounds
    assert classes.BURN_SEVERITY_BOUNDS == {1: float("-inf"), 2: -0.1, 3: 0.1, 4: 0.27, 5: 0.44, 6: 0.66}
    assert classes.MAGNITUDE_CLASSES == {0: "no_change", 1: "change"}


def test_every_legend_lists_every_class_once_with_a_label_and_colour() -> None:
    for table in classes.class_tables().values():
        legend = table.legend()
        assert sorted(c.code for c in legend) == sorted(table.names)
        assert all(c.label and len(c.color) == 3 for c in legend)
    assert classes.class_color(1, "burn") == classes.class_table("change").by_name("burn").color
    assert classes.class_color(99) == classes.CODE_COLORS[99 % len(classes.CODE_COLORS)]


def test_a_malformed_table_is_refused() -> None:
    raw = {"classes": [{"code": 0, "name": "a", "label": "A", "color": [1, 2, 3]},
                       {"code": 0, "name": "b", "label": "B", "color": [1, 2, 3]}]}
    with pytest.raises(ConfigError, match="repeats a code"):
        classes._table("x", raw)
    raw["classes"][1]["code"] = 1
    raw["legend_order"] = ["a"]
    with pytest.raises(ConfigError, match="legend_order"):
        classes._table("x", raw)
    raw["classes"][1]["color"] = [300, 0, 0]
    with pytest.raises(ConfigError, match="colour"):
        classes._table("x", raw)


def test_qa_pixel_bitfields_agree_with_the_mask_decoding() -> None:
    fields = json.loads(resources.files("rsvlm_temporal").joinpath("config", "qa_pixel.json").read_text())["bitfields"]
    by_offset = {f["offset"]: f["name"] for f in fields if f["length"] == 1}
    # USGS C2 L2 QA_PIXEL: bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water
    assert by_offset == {0: "fill", 1: "dilated_cloud", 2: "cirrus", 3: "cloud", 4: "cloud_shadow", 5: "snow",
                         6: "clear", 7: "water"}
    decoded = sensor_table()["landsat-c2-l2"].quality["bits"]
    expect = {"fill": "nodata", "dilated_cloud": "cloud", "cirrus": "cirrus", "cloud": "cloud",
              "cloud_shadow": "shadow", "snow": "snow", "water": "water"}
    assert {by_offset[int(b)]: names[0] for b, names in decoded.items()} == expect
