"""The factory and the weights registry: configs as data, sha256-checked safetensors."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from rsvlm_temporal.errors import ModelWeightsError, UnknownNameError  # noqa: E402
from rsvlm_temporal.model import pretrained as pt  # noqa: E402
from rsvlm_temporal.model.factory import create_model, list_models, prompts  # noqa: E402
from rsvlm_temporal.model.inputs import MODEL_BANDS  # noqa: E402


def test_configs_and_registry() -> None:
    assert {"temporal-tiny", "temporal-presto", "temporal-openclip"} <= set(list_models())
    reg = pt.registry()
    for name, e in reg.items():
        p = pt.weights_path(name)  # sha256-checked
        assert p.suffix == ".safetensors" and e["bands"]
    assert reg["temporal-tiny/synthetic-v1"]["bands"] == list(MODEL_BANDS)
    assert prompts()["classes"][0] == "no_change"


def test_unknown_names_and_bad_weights(tmp_path, monkeypatch) -> None:
    with pytest.raises(UnknownNameError):
        create_model("no-such-model")
    with pytest.raises(UnknownNameError):
        create_model("temporal-tiny", pretrained="no-such-tag")
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"0" * 10)
    monkeypatch.setattr(pt, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(pt, "registry", lambda: {"x": {"file": "x.safetensors", "sha256": "0" * 64}})
    with pytest.raises(ModelWeightsError, match="sha256"):
        pt.weights_path("x")


def test_presto_tower_runs_on_a_chip() -> None:
    import torch

    m = create_model("temporal-presto", pretrained=None)
    x = torch.rand(30, len(MODEL_BANDS), 3, 3) * 0.3
    x[4:8] = float("nan")  # cloud gap
    x[10:14, 3:7] = float("nan")  # Landsat-like dates: nir, red edges masked
    out = m(x, torch.zeros(30, dtype=torch.long), torch.arange(30.0) * 12 + 18600)
    assert out["embedding"].shape == (3, 3, 64) and torch.isfinite(out["mask_logit"]).all()
