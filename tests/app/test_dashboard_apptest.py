"""The dashboard driven by streamlit.testing.v1.AppTest on the tiny offline demo."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from rsvlm_temporal import viewer

FRAME_RE = re.compile(r"^frame (\d+) / (\d+)$")


def _markdown(at) -> list[str]:
    return [m.value for m in at.markdown]


def _frame_caption(at) -> tuple[int, int]:
    for text in _markdown(at):
        m = FRAME_RE.match(text)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise AssertionError(f"no frame caption on the page: {_markdown(at)}")


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed once the socket is


def test_opens_on_demo_with_player_and_results(app):
    k, n = _frame_caption(app)
    assert 1 <= k <= n and n > 10
    text = "\n".join(_markdown(app))
    assert "#### What changed" in text and ("Sentinel-2 L2A" in text or "Landsat C2 L2" in text)
    assert any("burn" in i.value for i in app.info), [i.value for i in app.info]  # the evidence summary
    assert not _errors(app)
    # the legend comes from the shared class table
    burn = next(e for e in viewer.legend("change") if e.name == "burn")
    assert f"background:{burn.color}" in text and burn.label in text


def test_slider_moves_to_another_date(app):
    date0 = next(t for t in _markdown(app) if re.match(r"^\*\*\d{4}-\d\d-\d\d\*\*$", t))
    app.select_slider(key="frame_pos").set_value(7).run()
    assert not app.exception
    assert _frame_caption(app)[0] == 8
    date1 = next(t for t in _markdown(app) if re.match(r"^\*\*\d{4}-\d\d-\d\d\*\*$", t))
    assert date1 != date0


def test_step_back_and_play(app):
    k, n = _frame_caption(app)
    app.button(key="step").click().run()
    assert _frame_caption(app)[0] == k % n + 1
    app.button(key="back").click().run()
    assert _frame_caption(app)[0] == k
    app.button(key="play_toggle").click().run()
    assert app.session_state.playing and app.button(key="play_toggle").label == "Pause"
    app.button(key="play_toggle").click().run()
    assert not app.session_state.playing


@pytest.mark.parametrize("view", list(viewer.VIEWS))
def test_every_view_renders(app, view):
    app.selectbox(key="view").set_value(view).run()
    assert not app.exception, [e.value for e in app.exception]
    if viewer.VIEWS[view].kind == "index":
        assert app.session_state.pixel_series_summary["index"] == viewer.VIEWS[view].index


def test_clear_filter_skips_cloudy_frames(app):
    n_all = _frame_caption(app)[1]
    app.slider(key="min_clear").set_value(1.0).run()
    n_clear = _frame_caption(app)[1]
    assert n_clear < n_all
    app.radio(key="cloudy").set_value("dim").run()
    assert _frame_caption(app)[1] >= n_all


def test_pixel_by_row_col_gives_its_series(app):
    app.number_input(key="pixel_row").set_value(11).run()
    app.number_input(key="pixel_col").set_value(30).run()
    got = app.session_state.pixel_series_summary
    assert (got["row"], got["col"]) == (11, 30)
    from rsvlm_temporal.io.catalog import load_items

    scene = app.selectbox(key="demo_scene").value
    root = Path(app.session_state["_store_key_path"])
    assert root.parent.name == scene
    store = viewer.FrameStore(viewer.player_cube(load_items(root)))
    series = viewer.pixel_series(store, got["index"], 11, 30)
    assert got["n_clear"] == int(series.clear.sum()) > 0
    assert got["mean"] == pytest.approx(float(series.value.mean()))


def test_question_shows_answer_and_evidence(app):
    app.text_input(key="question").input("How much burned, and when?").run()
    text = "\n".join(_markdown(app))
    assert "**Answer**" in text
    assert "burn" in text and "ha" in text  # the evidence lines under the answer


def test_download_mask_and_exports(app):
    labels = [b.label for b in app.get("download_button")]
    assert "change_class.tif" in labels and "change_polygons.geojson" in labels and "areas.csv" in labels
    app.button(key="make_gif").click().run()
    app.button(key="make_report").click().run()
    labels = [b.label for b in app.get("download_button")]
    assert any(lbl.endswith(".gif") for lbl in labels) and "report.png" in labels
    import rasterio

    run = Path(app.session_state["_last_out_dir"])
    with rasterio.open(run / "change_class.tif") as ds:
        assert ds.dtypes[0] == "uint8" and ds.crs is not None


def test_run_analysis_on_a_local_catalog(app, demo_dir):
    app.radio(key="source_kind").set_value("local").run()
    app.text_input(key="local_path").input(str(demo_dir / "flood" / "catalog.json")).run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("Run analysis" in i.value for i in app.info)
    app.button(key="run_analysis").click().run()
    assert not app.exception and not _errors(app), _errors(app)
    assert "#### What changed" in "\n".join(_markdown(app))
    # the Model tab: the temporal CLIP's learned change beside the spectral one, and its scene scores
    metrics = {m.label: m.value for m in app.metric}
    assert {"Learned change", "Spectral change", "IoU of the two"} <= set(metrics), sorted(metrics)
    scores = [d.value for d in app.dataframe if "scene score" in d.value.columns]
    assert scores and scores[0].iloc[0]["class"] == "flood", scores
    app.text_input(key="model_query").input("flooded farmland").run()
    assert not app.exception, [e.value for e in app.exception]
    found = [m for m in _markdown(app) if m.startswith("**Search:**")]
    assert found and "ha match" in found[0] and "flood" in found[0].lower(), found


def test_local_catalog_without_items_is_an_in_page_error(app, tmp_path):
    app.radio(key="source_kind").set_value("local").run()
    app.text_input(key="local_path").input(str(tmp_path / "nothing" / "catalog.json")).run()
    assert not app.exception
    errs = _errors(app)
    assert errs and "Error" in errs[0], errs


def _stac(app):
    app.radio(key="source_kind").set_value("stac").run()
    app.selectbox(key="stac_api").set_value("custom URL").run()
    return app


def test_unreachable_stac_api_is_an_in_page_error(app):
    _stac(app).text_input(key="stac_url").input(f"http://127.0.0.1:{_closed_port()}/v1").run()
    app.button(key="stac_search").click().run()
    assert not app.exception
    errs = _errors(app)
    assert errs and "CatalogError" in errs[0], errs


BAD_GEOJSON = {
    "empty": (b"", "is empty"),
    "malformed": (b'{"type": "Polygon", "coordinates": [[[0, 0], [1, 0]', "malformed JSON"),
    "point": (json.dumps({"type": "Point", "coordinates": [14.2, 45.9]}).encode(), "no area"),
    "empty_collection": (json.dumps({"type": "FeatureCollection", "features": []}).encode(), "empty FeatureCollection"),
    "too_large": (json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 5], [0, 0]]]}).encode(),
                  "at most"),
    "not_geojson": (b"[1, 2, 3]", "not GeoJSON"),
}


@pytest.mark.parametrize("case", list(BAD_GEOJSON))
def test_bad_geojson_upload_is_an_in_page_error(app, case):
    data, message = BAD_GEOJSON[case]
    _stac(app).radio(key="aoi_mode").set_value("GeoJSON upload").run()
    app.get("file_uploader")[0].upload(f"{case}.geojson", data, "application/geo+json").run()
    assert not app.exception, [e.value for e in app.exception]
    errs = _errors(app)
    assert errs and errs[0].startswith("AOI:") and message in errs[0], errs


def test_pasted_geojson_is_validated_too(app):
    _stac(app).radio(key="aoi_mode").set_value("GeoJSON text").run()
    app.text_area(key="aoi_text").input('{"type": "Point", "coordinates": [1, 2]}').run()
    assert any("no area" in e for e in _errors(app))
