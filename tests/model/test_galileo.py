"""Galileo nano loads strictly from the shipped safetensors (converted from the real checkpoint)
and reproduces the reference encoder, written out here step by step from the original formula
(nasaharvest/galileo ``single_file_galileo.py``: all four modalities, token removal by sorting,
FlexiViT pseudo-inverse kernel resize); the tower and ``temporal-galileo`` run on tiny cubes."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rsvlm_temporal.errors import ParameterError  # noqa: E402
from rsvlm_temporal.model.galileo import S_T_GROUPS, GalileoEncoder, normalise  # noqa: E402
from rsvlm_temporal.model.pretrained import load_safetensors, registry, sha256_of, weights_path  # noqa: E402

F = torch.nn.functional
D, Q = 128, 32


@pytest.fixture(scope="module")
def galileo_pt(shared_data):
    """The original Galileo nano encoder.pt in ../shared/data/weights (skips where it is absent)."""
    p = shared_data / "weights" / "galileo-nano" / "encoder.pt"
    if not p.is_file():
        pytest.skip(f"real Galileo checkpoint not found at {p}: clone with ../shared beside the repo")
    return p


@pytest.fixture(scope="module")
def encoder() -> GalileoEncoder:
    m = GalileoEncoder().eval()
    m.load_state_dict(load_safetensors(weights_path("galileo-nano-encoder")), strict=True)
    return m


# ---- the reference, following single_file_galileo.py ------------------------------------------

def _sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:  # get_1d_sincos_pos_embed_from_grid_torch
    omega = torch.arange(dim // 2) / dim / 2.0
    omega = 1.0 / 10000**omega
    out = torch.einsum("m,d->md", pos.reshape(-1).float(), omega)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def _space_embed(dim: int, grid_size: int, res: torch.Tensor) -> torch.Tensor:  # ..._with_resolution
    grid_h, grid_w = torch.arange(grid_size), torch.arange(grid_size)
    grid = torch.stack(torch.meshgrid(grid_w, grid_h, indexing="xy"), dim=0)
    grid = torch.einsum("chw,n->cnhw", grid.float(), res)
    _, n, h, w = grid.shape
    emb = torch.cat([_sincos_1d(dim // 2, grid[0]), _sincos_1d(dim // 2, grid[1])], dim=1)
    return emb.reshape(n, h * w, dim)


def _month_table(dim: int) -> torch.Tensor:  # get_month_encoding_table
    angles = torch.arange(0, 13) / (12 / (2 * np.pi))
    sin_t = torch.sin(torch.stack([angles for _ in range(dim // 2)], axis=-1))
    cos_t = torch.cos(torch.stack([angles for _ in range(dim // 2)], axis=-1))
    return torch.cat([sin_t[:-1], cos_t[:-1]], -1)


def _flexi(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, p: int) -> torch.Tensor:
    """FlexiPatchEmbed.forward on [b, h, w, (t), c] -> [b, h/p, w/p, (t), d]."""
    if p != 8:  # _calculate_pinv + resize_patch_embed, one (out, in) kernel at a time
        mat = []
        for i in range(64):
            basis = torch.zeros(8, 8)
            basis[np.unravel_index(i, (8, 8))] = 1.0
            mat.append(F.interpolate(basis[None, None], (p, p), mode="bicubic", antialias=True)[0, 0].reshape(-1))
        pinv = torch.linalg.pinv(torch.stack(mat))
        weight = torch.stack([torch.stack([(pinv @ weight[o, c].reshape(-1)).reshape(p, p)
                                           for c in range(weight.shape[1])]) for o in range(weight.shape[0])])
    if x.ndim == 5:
        b, h, w, t, c = x.shape
        y = F.conv2d(x.permute(0, 3, 4, 1, 2).reshape(b * t, c, h, w), weight, bias, stride=p)
        return y.reshape(b, t, D, h // p, w // p).permute(0, 3, 4, 1, 2)
    return F.conv2d(x.permute(0, 3, 1, 2), weight, bias, stride=p).permute(0, 2, 3, 1)


SP = {"SRTM": [0, 1], "DW": list(range(2, 11)), "WC": list(range(11, 16))}
TI = {"ERA5": [0, 1], "TC": [2, 3, 4], "VIIRS": [5]}
ST = {"LS": [0], "location": [1, 2, 3], "DW_static": list(range(4, 13)), "WC_static": list(range(13, 18))}


def _reference(sd: dict, s_t_x, s_t_m, months, p: int):
    """Encoder.forward + average_tokens with every non-space-time modality present but masked."""
    b, hh, ww, t, _ = s_t_x.shape
    sp_x, t_x, st_x = torch.rand(b, hh, ww, 16), torch.rand(b, t, 6), torch.rand(b, 18)
    sp_m, t_m, st_m = torch.ones(b, hh, ww, 3), torch.ones(b, t, 3), torch.ones(b, 4)
    lin = lambda v, k: v @ sd[k + ".weight"].T + sd[k + ".bias"]  # noqa: E731
    # apply_linear_projection
    s_t_l, s_t_ml = [], []
    for gi, (g, idx) in enumerate(S_T_GROUPS.items()):
        s_t_ml.append(s_t_m[:, 0::p, 0::p, :, gi])
        if s_t_ml[-1].min() == 0:
            s_t_l.append(_flexi(s_t_x[..., idx], sd[f"space_time_embed.{g}.proj.weight"],
                                sd[f"space_time_embed.{g}.proj.bias"], p))
        else:
            s_t_l.append(torch.zeros(b, hh // p, ww // p, t, D))
    s_t, s_t_m = torch.stack(s_t_l, -2), torch.stack(s_t_ml, -1)
    sp = torch.stack([_flexi(sp_x[..., i], sd[f"space_embed.{g}.proj.weight"], sd[f"space_embed.{g}.proj.bias"], p)
                      for g, i in SP.items()], -2)
    sp_m = sp_m[:, 0::p, 0::p]
    tt = torch.stack([lin(t_x[..., i], f"time_embed.{g}") for g, i in TI.items()], -2)
    st = torch.stack([lin(st_x[..., i], f"static_embed.{g}") for g, i in ST.items()], -2)
    # apply_encodings
    _, h, w, _, cg, _ = s_t.shape
    pos, mon = sd["pos_embed"][:t], sd["month_embed.weight"][months]  # [t, q], [b, t, q]
    s_t_e = torch.cat([sd["s_t_channel_embed"].expand(b, h, w, t, cg, Q), pos[None, None, None, :, None].expand(b, h, w, t, cg, Q),
                       mon[:, None, None, :, None].expand(b, h, w, t, cg, Q)], -1)
    space = _space_embed(Q, h, torch.ones(b) * (10 * p / 10)).reshape(b, h, w, Q)
    s_t_e = torch.cat([s_t_e, space[:, :, :, None, None].expand(b, h, w, t, cg, Q)], -1)
    sp_e = torch.cat([sd["sp_channel_embed"].expand(b, h, w, 3, Q), torch.zeros(b, h, w, 3, 2 * Q),
                      space[:, :, :, None].expand(b, h, w, 3, Q)], -1)
    t_e = torch.cat([sd["t_channel_embed"].expand(b, t, 3, Q), pos[None, :, None].expand(b, t, 3, Q),
                     mon[:, :, None].expand(b, t, 3, Q), torch.zeros(b, t, 3, Q)], -1)
    st_e = torch.cat([sd["st_channel_embed"].expand(b, 4, Q), torch.zeros(b, 4, 3 * Q)], -1)
    s_t, sp, tt, st = s_t + s_t_e, sp + sp_e, tt + t_e, st + st_e
    # collapse_and_combine_hwtc
    x = torch.cat([s_t.reshape(b, -1, D), sp.reshape(b, -1, D), tt.reshape(b, -1, D), st], 1)
    m = torch.cat([s_t_m.reshape(b, -1), sp_m.reshape(b, -1), t_m.reshape(b, -1), st_m], 1)
    # remove_masked_tokens
    mask = m >= 1
    sorted_mask, indices = torch.sort((~mask).int(), dim=1, descending=True, stable=True)
    x = x.gather(1, indices[:, :, None].expand_as(x)) * sorted_mask.unsqueeze(-1)
    n_max = int(sorted_mask.sum(-1).max())
    x, new_m = x[:, :n_max], 1 - sorted_mask[:, :n_max]
    ln = lambda v, k: F.layer_norm(v, (D,), sd[k + ".weight"], sd[k + ".bias"])  # noqa: E731
    for i in range(4):
        pre = f"blocks.{i}."
        y = ln(x, pre + "norm1")
        q, k, v = (lin(y, pre + "attn." + n).reshape(b, -1, 8, 16).transpose(1, 2) for n in "qkv")
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(16)
        logits = logits.masked_fill(new_m.bool()[:, None, None], float("-inf"))
        a = torch.softmax(logits, -1) @ v
        x = x + lin(a.transpose(1, 2).reshape(b, -1, D), pre + "attn.proj")
        y = F.gelu(lin(ln(x, pre + "norm2"), pre + "mlp.fc1"))
        x = x + lin(y, pre + "mlp.fc2")
    # add_removed_tokens
    full_mask = torch.cat([new_m, torch.ones(b, indices.shape[1] - x.shape[1], dtype=new_m.dtype)], -1)
    out = torch.zeros(b, indices.shape[1], D)
    out[~full_mask.bool()] = x[~new_m.bool()]
    out = out.scatter(1, indices[:, :, None].expand_as(out), out)
    s_t_out = ln(out[:, : h * w * t * cg].reshape(b, h, w, t, cg, D), "norm")
    # average_tokens over all (normalised) tokens, masked ones excluded
    alln = ln(out, "norm")
    keep = (~mask).float()
    return s_t_out, (alln * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)


def _inputs(b: int, hw: int, t: int, p: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, hw, hw, t, 13, generator=g)
    m = torch.zeros(b, hw, hw, t, 7)
    m[..., 0] = 1  # no S1
    m[0, :p, :p, 1, 1] = 1  # sample 0: one S2_RGB token dropped at step 1
    m[1, :, p:2 * p, 2, 6] = 1  # sample 1: a column of NDVI tokens dropped at step 2
    m[1, p:2 * p, :, 0, 3] = 1  # and a row of S2_NIR_10m tokens at step 0
    months = torch.tensor([[4, 5, 6], [11, 0, 1]])[:, :t]
    return x, m, months


# ---- tests ------------------------------------------------------------------------------------

def test_shipped_galileo_is_the_real_checkpoint_and_loads_strictly(galileo_pt) -> None:
    orig = torch.load(galileo_pt, map_location="cpu", weights_only=True)
    shipped = load_safetensors(weights_path("galileo-nano-encoder"))
    assert len(orig) == 106 and set(shipped) == set(orig)
    assert all(torch.equal(shipped[k], orig[k]) for k in orig)
    assert sha256_of(weights_path("galileo-nano-encoder")) == registry()["galileo-nano-encoder"]["sha256"]
    m = GalileoEncoder()
    m.load_state_dict(shipped, strict=True)
    assert sum(p.numel() for p in m.parameters()) == 1037856
    # the frozen sinusoids in the checkpoint are the original formulas
    assert torch.allclose(shipped["pos_embed"], _sincos_1d(Q, torch.arange(24)), atol=1e-6)
    assert torch.allclose(shipped["month_embed.weight"], _month_table(Q), atol=1e-6)
    assert torch.allclose(GalileoEncoder().pos_embed, shipped["pos_embed"], atol=1e-6)


@pytest.mark.parametrize("p", [4, 8])
def test_galileo_reproduces_the_reference_output(galileo_pt, encoder, p: int) -> None:
    sd = load_safetensors(weights_path("galileo-nano-encoder"))
    x, m, months = _inputs(2, 4 * p if p == 4 else 2 * p, 3, p)
    with torch.no_grad():
        tok, mask = encoder(x, m, months, patch_size=p)
        pooled = encoder.pooled(x, m, months, patch_size=p)
        ref_tok, ref_pooled = _reference(sd, x, m, months, p)
    assert tok.shape == ref_tok.shape and pooled.shape == (2, 128)
    keep = ~mask
    assert keep.sum() < keep.numel() and mask[..., 1:].sum() == (m[:, ::p, ::p, :, 1:] > 0).sum()
    err = (tok - ref_tok)[keep].abs().max()
    assert err < 1e-4, float(err)
    assert torch.allclose(pooled, ref_pooled, atol=1e-5), float((pooled - ref_pooled).abs().max())
    # the masks matter: dropping tokens changes the others
    with torch.no_grad():
        other = encoder.pooled(x, torch.zeros_like(m), months, patch_size=p)
    assert (other - pooled).abs().max() > 1e-3


def test_galileo_normalisation_and_patch_size_check(encoder) -> None:
    from rsvlm_temporal.model.galileo import NORM_MEAN, NORM_STD

    mean = torch.tensor(NORM_MEAN)
    assert torch.allclose(normalise(mean)[:-1], torch.full((12,), 0.5))
    assert normalise(mean)[-1] == pytest.approx(NORM_MEAN[-1])
    hi = mean + 2 * torch.tensor(NORM_STD)
    assert torch.allclose(normalise(hi)[:-1], torch.ones(12))
    with pytest.raises(ParameterError, match="multiple of patch_size"):
        encoder(torch.zeros(1, 10, 10, 2, 13), torch.zeros(1, 10, 10, 2, 7), torch.zeros(1, 2), patch_size=4)


def _cube(t: int = 4, h: int = 18, w: int = 20):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(t, 10, h, w, generator=g) * 0.3 + 0.02
    x[1, :, :8] = float("nan")  # a cloud over the top rows at date 1
    x[2, 3] = float("nan")  # Landsat-like date: no B8 (nir), no red edges
    x[2, 4:7] = float("nan")
    sensor = torch.tensor([0, 0, 1, 0])[:t]
    days = torch.tensor([18000.0, 18016.0, 18040.0, 18100.0])[:t]
    return x, sensor, days


def test_galileo_tower_tokens_per_patch_and_date() -> None:
    from rsvlm_temporal.model.towers import GalileoTower, build_tower

    tower = build_tower({"type": "galileo", "dim": 16, "patch_size": 4, "tile": 2, "window": 3})
    assert isinstance(tower, GalileoTower) and tower.stride == 4
    assert not any(p.requires_grad for p in tower.encoder.parameters())
    x, sensor, days = _cube()
    with torch.no_grad():
        tok, valid = tower(x, sensor, days)
    assert tok.shape == (4, 5, 5, 16) and valid.shape == (4, 5, 5)
    assert torch.isfinite(tok).all()
    assert valid[0].all() and valid[2].all() and valid[3].all()
    assert not valid[1, :2].any() and valid[1, 2:].all()  # rows 0-7 clouded: patch rows 0, 1
    # the tokens depend on the data of their date (not a constant)
    x2 = x.clone()
    x2[3, :, :4, :4] = 0.6
    with torch.no_grad():
        tok2, _ = tower(x2, sensor, days)
    assert (tok2[3, 0, 0] - tok[3, 0, 0]).abs().max() > 1e-3
    with pytest.raises(ParameterError, match="patch_size"):
        build_tower({"type": "galileo", "patch_size": 9, "weights": None})


def test_create_model_temporal_galileo_runs_on_a_tiny_cube() -> None:
    from rsvlm_temporal.model.factory import create_model

    m = create_model("temporal-galileo", pretrained=None)
    x, sensor, days = _cube(t=4, h=16, w=12)
    with torch.no_grad():
        out = m(x, sensor, days)
    assert out["mask_logit"].shape == (16, 12) and out["date_logit"].shape == (4, 16, 12)
    assert out["embedding"].shape[:2] == (16, 12)
    assert torch.isfinite(out["mask_logit"]).all() and torch.isfinite(out["embedding"]).all()
    assert torch.isneginf(out["date_logit"][1, :8]).all()  # the clouded rows are no usable date
