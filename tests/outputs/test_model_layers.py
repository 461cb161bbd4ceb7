"""The temporal CLIP in a run (outputs/model_layers.py, pipeline.run_analysis(model=...)): the
learned mask, probability, date and zero-shot labels as COGs on the result's grid, the agreement
layer against the spectral change, and the evidence's model section; ``--no-model`` skips it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio

pytest.importorskip("torch")

from rsvlm_temporal.classes import CHANGE_CODES, MODEL_AGREEMENT_CLASSES, NODATA_CLASS  # noqa: E402
from rsvlm_temporal.model.inference import year_windows  # noqa: E402
from rsvlm_temporal.outputs.model_layers import MODEL_FILES  # noqa: E402


@pytest.fixture(scope="module")
def fire(model_fire_run):
    return model_fire_run


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.crs


def test_the_model_layers_sit_on_the_result_grid_and_agree_with_the_truth(fire) -> None:
    scene, _, run = fire
    cls, transform, crs = _read(run.files["change_class"])
    for name in MODEL_FILES:
        assert run.files[name].is_file() and run.files[name].parent == run.out_dir, name
    mask, t2, c2 = _read(run.files["model_change_mask"])
    assert (t2, c2, mask.shape) == (transform, crs, cls.shape)
    truth, _, _ = _read(scene.out_dir / "truth" / "change_class.tif")
    assert truth.shape == mask.shape  # Sentinel-2 only: the 10 m truth grid
    m, t = mask == 1, truth == CHANGE_CODES["burn"]
    f1 = 2 * (m & t).sum() / (m.sum() + t.sum())
    assert f1 > 0.8, f1
    # the learned date falls on the fire (first clear view after it), within two revisits
    date, _, _ = _read(run.files["model_change_date"])
    tday, _, _ = _read(scene.out_dir / "truth" / "change_date.tif")
    both = m & t & np.isfinite(date)
    assert both.sum() > 0.8 * t.sum()
    assert np.median(np.abs(date[both] - tday[both])) <= 10
    labels, _, _ = _read(run.files["model_labels"])
    assert (labels[m] == CHANGE_CODES["burn"]).mean() > 0.9 and (labels[~m & (cls != NODATA_CLASS)] == 0).all()


def test_the_agreement_layer_and_the_evidence_section_follow_from_the_two_masks(fire) -> None:
    _, _, run = fire
    cls, _, _ = _read(run.files["change_class"])
    mask, _, _ = _read(run.files["model_change_mask"])
    agree, _, _ = _read(run.files["model_agreement"])
    spectral = ~np.isin(cls, [0, CHANGE_CODES["seasonal"], NODATA_CLASS])
    model = mask == 1
    expect = np.where(cls == NODATA_CLASS, NODATA_CLASS,
                      np.where(spectral, np.where(model, 1, 2), np.where(model, 3, 0)))
    assert np.array_equal(agree, expect)
    ev = json.loads(run.files["evidence"].read_text())
    sec = ev["extra"]["model"]
    pix_ha = 0.01  # 10 m pixels
    for code, name in MODEL_AGREEMENT_CLASSES.items():
        assert sec["agreement_ha"][name] == pytest.approx((agree == code).sum() * pix_ha, abs=1e-6)
    assert sec["iou"] == pytest.approx((agree == 1).sum() / np.isin(agree, [1, 2, 3]).sum(), abs=1e-4)
    assert sec["iou"] > 0.7 and sec["scene_label"] == "burn" and sec["pretrained"] == "synthetic-v1"
    assert len(sec["embedding"]) == 64 and abs(np.linalg.norm(sec["embedding"]) - 1) < 1e-3
    kinds = [n["kind"] for n in ev["quality"]["notes"]]
    assert ("model_disagreement" in kinds) == (sec["disagreement_share"] > 0.01 and sec["iou"] < 0.5)


def test_no_model_writes_no_model_layers(fire, tmp_path) -> None:
    from rsvlm_temporal.cli import main

    catalog = fire[0].catalog_path
    assert main(["analyze", "--catalog", str(catalog), "--out", str(tmp_path / "plain"), "--no-model",
                 "--from", "2021-01-01", "--to", "2021-12-31"]) == 0
    names = {p.name for p in (tmp_path / "plain").iterdir()}
    assert "change_class.tif" in names or "change_mask.tif" in names
    assert not names & set(MODEL_FILES.values())
    ev = json.loads((tmp_path / "plain" / "evidence.json").read_text())
    assert "model" not in ev["extra"]


def test_year_windows_split_at_new_year_and_a_model_needs_two_dates_in_one() -> None:
    from rsvlm_temporal.pipeline import run_model_stack

    days = (pd.DatetimeIndex(["2020-06-01", "2020-12-31", "2021-01-01", "2021-03-01", "2023-05-05"])
            - pd.Timestamp("1970-01-01")).days.to_numpy(float)
    assert year_windows(days) == ((0, 2), (2, 4), (4, 5))
    import xarray as xr

    times = pd.DatetimeIndex(["2020-06-01", "2021-06-01", "2022-06-01"])
    cube = xr.DataArray(np.full((3, 6, 4, 4), 0.1, np.float32), dims=("time", "band", "y", "x"),
                        coords={"time": times, "band": ["blue", "green", "red", "nir", "swir16", "swir22"],
                                "y": np.arange(4.0), "x": np.arange(4.0)},
                        attrs={"crs": "EPSG:32633", "epsg": 32633, "transform": (10, 0, 0, 0, -10, 40)})
    run = run_model_stack(cube, None)  # type: ignore[arg-type]  # refused before any write
    assert run.outputs is None and "2 dates within one calendar year" in run.reason


def test_auto_skips_the_model_over_its_budget_and_says_how_to_force_it(monkeypatch) -> None:
    import xarray as xr

    from rsvlm_temporal import pipeline

    times = pd.DatetimeIndex(["2021-06-01", "2021-07-01"])
    cube = xr.DataArray(np.full((2, 6, 4, 4), 0.1, np.float32), dims=("time", "band", "y", "x"),
                        coords={"time": times, "band": ["blue", "green", "red", "nir", "swir16", "swir22"],
                                "y": np.arange(4.0), "x": np.arange(4.0)})
    monkeypatch.setattr(pipeline, "AUTO_MODEL_PX_DATES", 31)  # the cube holds 32 pixel-dates
    run = pipeline._model_run(cube, None, "auto")  # type: ignore[arg-type]  # decided before any write
    assert run is not None and run.outputs is None
    assert "not run by default" in run.reason and "--model temporal-tiny" in run.reason
    assert pipeline._model_run(cube, None, None) is None  # type: ignore[arg-type]
