"""Presto loads strictly from the shipped safetensors (converted from the real checkpoint) and
reproduces the reference encoder, computed here from the original formula (token removal)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rsvlm_temporal.model.presto import GROUPS, PrestoEncoder  # noqa: E402
from rsvlm_temporal.model.pretrained import load_safetensors, registry, sha256_of, weights_path  # noqa: E402


def _reference(sd: dict, x, dw, latlons, mask, month: int):
    """Presto's Encoder.forward(eval_task=True) written out from the paper's code: tokens of the
    masked band groups are removed (every sample has the same number masked)."""
    b, t, _ = x.shape
    months = (month + torch.arange(t)) % 12
    me = sd["month_embed.weight"][months][None].expand(b, t, -1)
    pe = sd["pos_embed"][:, :t].expand(b, t, -1)
    toks, masks = [], []
    for gi, (g, idx) in enumerate(GROUPS.items()):
        tok = x[:, :, idx] @ sd[f"eo_patch_embed.{g}.weight"].T + sd[f"eo_patch_embed.{g}.bias"]
        ce = sd["channel_embed.weight"][gi].expand(b, t, -1)
        if g == "SRTM":
            tok = tok[:, :1] + torch.cat([torch.zeros_like(me[:, :1]), ce[:, :1], torch.zeros_like(pe[:, :1])], -1)
            m = mask[:, :1, idx].max(-1)[0]
        else:
            tok = tok + torch.cat([me, ce, pe], -1)
            m = mask[:, :, idx].max(-1)[0]
        toks.append(tok), masks.append(m)
    ce = sd["channel_embed.weight"][len(GROUPS)].expand(b, t, -1)
    toks.append(sd["dw_embed.weight"][dw] + torch.cat([me, ce, pe], -1)), masks.append((dw == 9).float())
    h, m = torch.cat(toks, 1), torch.cat(masks, 1).bool()
    kept = h[~m].view(b, -1, h.shape[-1])
    lat, lon = torch.deg2rad(latlons[:, 0]), torch.deg2rad(latlons[:, 1])
    xyz = torch.stack([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()], -1)
    h = torch.cat([(xyz @ sd["latlon_embed.weight"].T + sd["latlon_embed.bias"])[:, None], kept], 1)
    ln = torch.nn.functional.layer_norm
    for i in range(2):
        p = f"blocks.{i}."
        y = ln(h, (128,), sd[p + "norm1.weight"], sd[p + "norm1.bias"])
        qkv = (y @ sd[p + "attn.qkv.weight"].T + sd[p + "attn.qkv.bias"]).reshape(b, -1, 3, 8, 16).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(16), -1) @ qkv[2]
        h = h + att.transpose(1, 2).reshape(b, -1, 128) @ sd[p + "attn.proj.weight"].T + sd[p + "attn.proj.bias"]
        y = ln(h, (128,), sd[p + "norm2.weight"], sd[p + "norm2.bias"])
        y = torch.nn.functional.gelu(y @ sd[p + "mlp.fc1.weight"].T + sd[p + "mlp.fc1.bias"])
        h = h + y @ sd[p + "mlp.fc2.weight"].T + sd[p + "mlp.fc2.bias"]
    return ln(h.mean(1), (128,), sd["norm.weight"], sd["norm.bias"])


def test_shipped_presto_is_the_real_checkpoint_and_loads_strictly(presto_pt) -> None:
    orig = torch.load(presto_pt, map_location="cpu", weights_only=True)
    enc = {k[len("encoder."):]: v for k, v in orig.items() if k.startswith("encoder.")}
    shipped = load_safetensors(weights_path("presto-encoder"))
    assert set(shipped) == set(enc)
    assert all(torch.equal(shipped[k], enc[k]) for k in enc)
    assert sha256_of(weights_path("presto-encoder")) == registry()["presto-encoder"]["sha256"]
    m = PrestoEncoder()
    m.load_state_dict(shipped, strict=True)
    assert sum(p.numel() for p in m.parameters()) == 404160


def test_presto_reproduces_the_reference_output(presto_pt) -> None:
    sd = load_safetensors(weights_path("presto-encoder"))
    m = PrestoEncoder().eval()
    m.load_state_dict(sd, strict=True)
    g = torch.Generator().manual_seed(0)
    b, t = 3, 12
    x = torch.rand(b, t, 17, generator=g)
    dw = torch.randint(0, 9, (b, t), generator=g)
    dw[:, 5] = 9
    latlons = torch.tensor([[45.0, 10.0], [-12.0, 130.0], [0.0, 0.0]])
    mask = torch.zeros(b, t, 17)
    mask[:, :, 0:2] = 1  # no S1 anywhere
    mask[:, 3, 2] = 1  # an S2_RGB token dropped at step 3 (same count per sample, as the reference needs)
    with torch.no_grad():
        ours = m(x, dw, latlons, mask, month=4)
        ref = _reference(sd, x, dw, latlons, mask, month=4)
    assert ours.shape == (b, 128)
    assert torch.allclose(ours, ref, atol=1e-5), float((ours - ref).abs().max())


def test_presto_per_sample_masks_equal_single_sample_runs(presto_pt) -> None:
    """Masking by attention (not removal) lets each sample drop different tokens."""
    sd = load_safetensors(weights_path("presto-encoder"))
    m = PrestoEncoder().eval()
    m.load_state_dict(sd, strict=True)
    x = torch.rand(2, 6, 17)
    dw = torch.full((2, 6), 9)
    ll = torch.zeros(2, 2)
    mask = torch.zeros(2, 6, 17)
    mask[0, 2:4, 2:5] = 1
    with torch.no_grad():
        both = m(x, dw, ll, mask)
        one = torch.cat([_reference(sd, x[i:i + 1], dw[i:i + 1], ll[i:i + 1], mask[i:i + 1], 0) for i in range(2)])
    assert torch.allclose(both, one, atol=1e-5)
