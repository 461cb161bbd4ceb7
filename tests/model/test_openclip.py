"""open_clip towers offline: by name (random init), local safetensors checkpoint, hf-hub id from a
local cache folder, widened patch embedding; a missing checkpoint fails at once."""

from __future__ import annotations

import json
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from safetensors.torch import save_file  # noqa: E402

from rsvlm_temporal.errors import ModelWeightsError, UnknownNameError  # noqa: E402
from rsvlm_temporal.model.factory import create_model  # noqa: E402
from rsvlm_temporal.model.inputs import MODEL_BANDS  # noqa: E402
from rsvlm_temporal.model.openclip import CONFIG_DIR, create_open_clip, widen_patch_embed  # noqa: E402

ARCH = "rsvlm-tiny-vit"


def _chip(t: int = 4, h: int = 16, w: int = 16):
    x = torch.rand(t, len(MODEL_BANDS), h, w) * 0.4
    x[1, :, :4] = float("nan")
    return x, torch.zeros(t, dtype=torch.long), torch.arange(t, dtype=torch.float64) * 5 + 18700


def test_open_clip_by_name_random_init() -> None:
    m = create_model("temporal-openclip", pretrained=None)
    out = m(*_chip())
    assert out["mask_logit"].shape == (16, 16) and out["embedding"].shape == (16, 16, 64)
    assert out["date_logit"].shape == (4, 16, 16)


def test_local_safetensors_checkpoint_roundtrip(tmp_path) -> None:
    a = create_open_clip(ARCH)
    ck = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(ck))
    b = create_open_clip(ARCH, pretrained=str(ck))
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    pkl = tmp_path / "tiny.pt"
    torch.save(a.state_dict(), pkl)
    with pytest.raises(ModelWeightsError, match="pickle"):
        create_open_clip(ARCH, pretrained=str(pkl))


def test_hf_hub_id_from_a_local_cache_folder(tmp_path) -> None:
    a = create_open_clip(ARCH)
    snap = tmp_path / "models--someorg--tiny-rs-clip" / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    cfg = json.loads((CONFIG_DIR / f"{ARCH}.json").read_text())
    (snap / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(snap / "open_clip_model.safetensors"))
    b = create_open_clip("hf-hub:someorg/tiny-rs-clip", cache_dir=tmp_path)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    m = create_model("temporal-openclip", pretrained=None,
                     tower={"model": "hf-hub:someorg/tiny-rs-clip", "cache_dir": str(tmp_path)})
    assert m(*_chip())["mask_logit"].shape == (16, 16)


def test_widened_patch_embedding_keeps_rgb_weights() -> None:
    clip = create_open_clip(ARCH)
    w = clip.visual.conv1.weight.detach().clone()
    widen_patch_embed(clip.visual, MODEL_BANDS)
    nw = clip.visual.conv1.weight
    assert nw.shape[1] == len(MODEL_BANDS)
    k = 3.0 / len(MODEL_BANDS)
    assert torch.allclose(nw[:, MODEL_BANDS.index("red")], w[:, 0] * k)
    assert torch.allclose(nw[:, MODEL_BANDS.index("nir")], w.mean(1) * k)
    m = create_model("temporal-openclip", pretrained=None, tower={"bands": "all"})
    assert m(*_chip())["embedding"].shape == (16, 16, 64)


def test_missing_checkpoint_fails_at_once(tmp_path) -> None:
    t = time.perf_counter()
    with pytest.raises(ModelWeightsError, match="no network"):
        create_open_clip("ViT-B-32", pretrained="openai", cache_dir=tmp_path)
    with pytest.raises(ModelWeightsError):
        create_open_clip("hf-hub:nobody/absent", cache_dir=tmp_path)
    with pytest.raises(ModelWeightsError):
        create_open_clip(ARCH, pretrained=str(tmp_path / "absent.safetensors"))
    with pytest.raises(ModelWeightsError):
        create_model("temporal-tiny", pretrained=str(tmp_path / "absent.safetensors"))
    assert time.perf_counter() - t < 1.0
    with pytest.raises(UnknownNameError):
        create_open_clip("no-such-arch")
