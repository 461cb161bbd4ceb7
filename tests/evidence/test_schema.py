"""The evidence schema: typed quality notes (version 2), and files of version 1 still read."""

from __future__ import annotations

import json

import pytest

from rsvlm_temporal.errors import UnknownNameError
from rsvlm_temporal.evidence import SCHEMA_VERSION, Evidence, QualityNote
from rsvlm_temporal.quality import NOTE_KINDS

#: an evidence.json as schema version 1 wrote it (free-text reasons under quality.insufficient_data)
V1 = {
    "aoi": {"crs": "EPSG:32629", "bounds": [0.0, 0.0, 160.0, 160.0], "bounds_lonlat": [-8.2, 39.9, -8.19, 39.91],
            "pixel_size_m": [10.0, 10.0], "width": 16, "height": 16, "total_pixels": 256,
            "valid_pixels": 192, "valid_area_ha": 1.92},
    "classes": [{"name": "change", "code": 1, "n_pixels": 12, "area_ha": 0.12, "percent_of_valid": 6.25,
                 "n_patches": 1, "largest_patch_ha": 0.12, "location": "north-east",
                 "location_phrase": "north-east"}],
    "quality": {"clear_observations": [{"date": "2021-03-01", "clear_count": 256, "clear_fraction": 1.0}],
                "insufficient_data": ["insufficient data: 25.0% of the AOI (64 of 256 pixels) has no clear "
                                      "observation in the before or the after period"],
                "status": "insufficient_data"},
    "analysis": "bitemporal",
    "extra": {"period": ["2021-01-01", "2021-12-31"]},
    "schema_version": 1,
}


def test_a_version_1_file_is_read_with_its_notes_as_unclassified() -> None:
    ev = Evidence.from_json(json.dumps(V1))
    assert ev.schema_version == SCHEMA_VERSION == 2
    assert ev.quality.status == "insufficient_data"
    assert [n.kind for n in ev.quality.notes] == ["unclassified"]
    assert ev.quality.notes[0].text.startswith("insufficient data: 25.0% of the AOI")
    assert ev.class_by_name("change").area_ha == pytest.approx(0.12)
    # written again, it is a version 2 file with typed notes
    d = ev.to_dict()
    assert d["schema_version"] == 2 and "insufficient_data" not in d["quality"]
    assert d["quality"]["notes"][0]["kind"] == "unclassified"


def test_typed_notes_round_trip_through_json() -> None:
    ev = Evidence.from_json(json.dumps(V1))
    ev.quality.notes = [QualityNote("unseen_pixels", "25% never clear", dates=("2021-01-01", "2021-12-31"),
                                    fraction=0.25),
                        QualityNote("period_moved", "moved", dates=("2021-01-01", "2021-01-31"))]
    back = Evidence.from_json(ev.to_json())
    assert back.quality.notes == ev.quality.notes
    assert back.quality.notes_of("unseen_pixels")[0].fraction == 0.25
    assert json.loads(ev.to_json())["quality"]["notes"][0] == {
        "kind": "unseen_pixels", "text": "25% never clear", "dates": ["2021-01-01", "2021-12-31"], "fraction": 0.25}


def test_a_note_kind_comes_from_the_fixed_set() -> None:
    with pytest.raises(UnknownNameError, match="unknown quality note kind 'cloudy'; expected one of"):
        QualityNote("cloudy", "it was cloudy")
    assert QualityNote.of("free text") == QualityNote("unclassified", "free text")
    assert all(isinstance(v, str) and v for v in NOTE_KINDS.values())
