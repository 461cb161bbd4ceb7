"""The fast inference path gives the model's own outputs: each pixel's clear dates only, pixels
grouped by their number of clear dates, the transformer layers written out with
``scaled_dot_product_attention`` (model/clip.py, model/temporal.py), against the padded forward
through ``nn.TransformerEncoder`` (every pixel padded to all dates, gaps as masked keys)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rsvlm_temporal.model import clip  # noqa: E402
from rsvlm_temporal.model.factory import create_model  # noqa: E402
from rsvlm_temporal.model.inputs import MODEL_BANDS  # noqa: E402


def _chip(t: int = 11, h: int = 5, w: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reflectance with cloud gaps (whole dates of some pixels), a band missing on some dates
    (Landsat-like), four pixels never clear and one date clear nowhere; irregular days."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(t, len(MODEL_BANDS), h, w, generator=g) * 0.5
    cloud = torch.rand(t, h, w, generator=g) < 0.4
    x = x.masked_fill(cloud[:, None], float("nan"))
    x[:, 3, :, :][torch.rand(t, h, w, generator=g) < 0.3] = float("nan")  # nir alone missing
    x[:, :, 0, :4] = float("nan")  # never clear (more pixels than a group of 3: a group with no token)
    x[4] = float("nan")  # no pixel clear on this date
    days = torch.cumsum(torch.randint(1, 40, (t,), generator=g), 0).to(torch.float64) + 18600
    sensor = torch.randint(0, 2, (t,), generator=g)
    return x, sensor, days


def _reference(m, x, sensor, days) -> dict[str, torch.Tensor]:
    """The padded forward with the layers' training-time arithmetic (autograd on)."""
    with torch.enable_grad():
        return {k: v.detach() for k, v in m(x, sensor, days, compact=False).items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert torch.equal(a["valid"], b["valid"])
    for k in ("mask_logit", "embedding"):
        assert torch.allclose(a[k], b[k], atol=1e-5), (k, (a[k] - b[k]).abs().max())
    fa, fb = torch.isfinite(a["date_logit"]), torch.isfinite(b["date_logit"])
    assert torch.equal(fa, fb) and torch.equal(fa, a["valid"])  # -inf exactly at the unusable dates
    assert torch.allclose(a["date_logit"][fa], b["date_logit"][fb], atol=1e-5)


@pytest.mark.parametrize("group", [4096, 3])
def test_compact_forward_equals_the_padded_forward_on_a_random_tiny_model(monkeypatch, group) -> None:
    m = create_model("temporal-tiny", pretrained=None, dim=16, embed_dim=8,
                     temporal={"depth": 2, "heads": 2, "mlp_ratio": 2.0})
    monkeypatch.setattr(clip, "COMPACT_GROUP", group)  # 3: many groups of different lengths
    monkeypatch.setattr(clip, "COMPACT_GROUP_THREADED", group)
    x, sensor, days = _chip()
    ref = _reference(m, x, sensor, days)
    with torch.inference_mode():
        fast = m(x, sensor, days)
        padded_fast = m(x, sensor, days, compact=False)  # written-out layers, every date
    _assert_same(ref, fast)
    _assert_same(ref, padded_fast)
    # a pixel with no clear date is read as before (the summary token alone), not dropped
    assert torch.isfinite(fast["mask_logit"][0, 0]) and torch.isinf(fast["date_logit"][:, 0, 0]).all()
    # the reference is not trivially equal: the gaps matter, and another model differs
    other = create_model("temporal-tiny", pretrained=None, dim=16, embed_dim=8,
                         temporal={"depth": 1, "heads": 2, "mlp_ratio": 2.0})
    with torch.inference_mode():
        assert not torch.allclose(other(x, sensor, days)["embedding"], fast["embedding"], atol=1e-3)


def test_compact_forward_of_a_sequence_tower_equals_the_padded_one() -> None:
    """Presto (stride 1, not pointwise: the tower reads every date, the temporal encoder only
    the clear ones)."""
    m = create_model("temporal-presto", pretrained=None)
    x, sensor, days = _chip(t=7, h=3, w=4, seed=1)
    ref = _reference(m, x, sensor, days)
    with torch.inference_mode():
        _assert_same(ref, m(x, sensor, days))


def test_the_block_function_keeps_the_callers_torch_threads() -> None:
    from rsvlm_temporal.model.inference import N_FIXED, TASK_TORCH_THREADS, _block, year_windows

    m = create_model("temporal-tiny", pretrained=None, dim=16, embed_dim=8,
                     temporal={"depth": 1, "heads": 2, "mlp_ratio": 2.0})
    x, sensor, days = _chip()
    before = torch.get_num_threads()
    want = before + 1 if before == TASK_TORCH_THREADS else before
    torch.set_num_threads(want)
    try:
        out = _block(x.numpy(), spec=("temporal-tiny", None), model=m, bands=list(MODEL_BANDS),
                     days=days.numpy(), sensors=sensor.numpy(), reference=None,
                     class_emb=np.eye(3, 8, dtype=np.float32), windows=year_windows(days.numpy()))
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)
    assert out.shape == (N_FIXED + 8, 5, 7) and out.dtype == np.float32
    assert out[0, 0, 0] == 0.0  # the never-clear pixel: probability 0
