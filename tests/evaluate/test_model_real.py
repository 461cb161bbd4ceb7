"""``rsvlm eval``'s real-data fields: the learned model on the Taizhou Landsat pair (Kappa) and on
the LEVIR-CD RGB samples (F1), with the DN -> reflectance conventions they rely on."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

pytest.importorskip("torch")

from rsvlm_temporal.errors import ParameterError  # noqa: E402
from rsvlm_temporal.evaluate.model import (  # noqa: E402
    etm_toa_reflectance,
    levir_model_score,
    real_data_scores,
    solar_elevation,
    srgb_to_linear,
)
from rsvlm_temporal.evaluate.real import default_data_dir  # noqa: E402

DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not ((DATA / "landsat_taizhou_cd").is_dir() and (DATA / "levir-cd_samples").is_dir()),
    reason=f"shared real data not found at {DATA} (set $RSVLM_SHARED_DATA)")


@pytest.fixture(scope="module")
def model():
    from rsvlm_temporal.model.factory import create_model

    return create_model("temporal-tiny")


def test_sun_and_reflectance_conventions() -> None:
    assert solar_elevation(dt.date(2021, 3, 21), 0.0, 12.0) == pytest.approx(90.0, abs=1.5)
    # winter is lower than spring at 32.5 N, the morning lower than noon
    assert solar_elevation(dt.date(2003, 2, 6), 32.5, 10.25) < solar_elevation(dt.date(2000, 3, 17), 32.5, 10.25)
    assert solar_elevation(dt.date(2000, 3, 17), 32.5, 10.25) < solar_elevation(dt.date(2000, 3, 17), 32.5, 12.0)
    dn = np.array([[[0, 1, 128, 255]]] * 2, np.uint8)  # 2 bands, 1 x 4 px
    r = etm_toa_reflectance(dn, ["blue", "nir08"], dt.date(2003, 2, 6), 35.0)
    assert np.isnan(r[:, 0, 0]).all()  # DN 0 = fill
    assert (np.diff(r[:, 0, 1:], axis=-1) > 0).all() and (r[:, 0, 1] < 0.01).all()
    assert 0.3 < r[0, 0, 3] < 1.2 and 0.3 < r[1, 0, 3] < 1.2  # saturated DN: bright, not absurd
    with pytest.raises(ParameterError, match="swir99"):
        etm_toa_reflectance(dn, ["blue", "swir99"], dt.date(2003, 2, 6), 35.0)
    with pytest.raises(ParameterError, match="sun elevation"):
        etm_toa_reflectance(dn, ["blue", "nir08"], dt.date(2003, 2, 6), -3.0)
    assert srgb_to_linear(np.array([0, 255]))[[0, 1]].tolist() == [0.0, 1.0]
    assert srgb_to_linear(np.array([128]))[0] == pytest.approx(0.2158, abs=1e-3)


def test_real_scores_are_null_with_a_reason_without_the_data(tmp_path, model) -> None:
    res = real_data_scores(model, tmp_path)
    assert res["taizhou_kappa"] is None and res["levir_f1"] is None and res["real"] == {}
    assert "landsat_taizhou_cd" in res["reasons"]["taizhou_kappa"]
    assert "levir-cd_samples" in res["reasons"]["levir_f1"]


@needs_data
def test_real_scores_through_the_model_path(model) -> None:
    res = real_data_scores(model, DATA, levir_stride=8)
    json.dumps(res)
    t, lv = res["real"]["taizhou"], res["real"]["levir"]
    assert res["taizhou_kappa"] == t["kappa"] and -1.0 <= t["kappa"] <= 1.0
    # every labelled Taizhou pixel is scored, and only those
    assert (t["tp"] + t["fn"], t["fp"] + t["tn"]) == (4227, 17163)
    assert t["dates"] == ["2000-03-17", "2003-02-06"] and 30 < min(t["sun_elevation_deg"]) < 60
    assert res["levir_f1"] == lv["f1"] and 0.0 <= lv["f1"] <= 1.0
    assert lv["tiles"] == 11 and lv["tp"] + lv["fp"] + lv["fn"] + lv["tn"] == 11 * 32 * 32
    # a tile's F1 is None where it is undefined (no change in the label and none predicted)
    assert set(lv["f1_per_tile"]) and all(v is None or 0.0 <= v <= 1.0 for v in lv["f1_per_tile"].values())
    for r in (t, lv):
        assert 0.0 <= r["auc"] <= 1.0 and 0.0 <= r["mean_probability_changed"] <= 1.0
    with pytest.raises(ParameterError, match="stride"):
        levir_model_score(model, DATA / "levir-cd_samples", stride=0)


def test_threshold_free_separation() -> None:
    from rsvlm_temporal.evaluate.model import _separation

    truth = np.array([0, 0, 1, 1], bool)
    assert _separation(np.array([0.1, 0.2, 0.3, 0.4]), truth)["auc"] == 1.0
    assert _separation(np.array([0.4, 0.3, 0.2, 0.1]), truth)["auc"] == 0.0
    assert _separation(np.full(4, 0.5), truth)["auc"] == 0.5  # ties count half
    s = _separation(np.array([0.1, 0.2]), np.array([False, False]))
    assert s["auc"] is None and s["mean_probability_changed"] is None and s["mean_probability_unchanged"] == 0.15
