"""Galileo nano encoder (Tseng et al. 2025, arXiv 2502.09356), re-implemented so the released
checkpoint (MIT, nasaharvest/galileo ``data/models/nano/encoder.pt``) loads strictly from safetensors.

Only the space-time path is run (S1, S2 band groups and NDVI, with month / time-step / 2-D space
embeddings); the space, time and static modalities (SRTM, DW, WC, ERA5, TC, VIIRS, LS, location)
keep their weights, so the checkpoint loads strictly, but are always masked, i.e. left out.

Input ``s_t_x`` [B, H, W, T, 13] in :data:`SPACE_TIME_BANDS` order, normalised with
:func:`normalise` (S1 dB and S2 DN = reflectance x 1e4, each band shifted by mean - 2 std and
divided by 4 std of Galileo's training set; NDVI as is); ``s_t_m`` [B, H, W, T, 7] per band group
with 1 = missing (the token of a patch is masked where its top-left pixel is, as in the reference);
``months`` [B, T] 0-11. Each token's 128 dims are [channel 32 | time-step sincos 32 | month 32 |
2-D space sincos 32]; blocks are pre-norm with separate q/k/v. Masked tokens are left out of
attention with a key-padding mask, which equals the reference's token removal.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rsvlm_temporal.errors import ParameterError

SPACE_TIME_BANDS = ("VV", "VH", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12", "NDVI")
S_T_GROUPS: dict[str, list[int]] = {"S1": [0, 1], "S2_RGB": [2, 3, 4], "S2_Red_Edge": [5, 6, 7], "S2_NIR_10m": [8],
                                    "S2_NIR_20m": [9], "S2_SWIR": [10, 11], "NDVI": [12]}
SPACE_GROUPS = {"SRTM": 2, "DW": 9, "WC": 5}
TIME_GROUPS = {"ERA5": 2, "TC": 3, "VIIRS": 1}
STATIC_GROUPS = {"LS": 1, "location": 3, "DW_static": 9, "WC_static": 5}
BASE_GSD = 10.0
#: Galileo's normalisation statistics (config/normalization.json, key "13": S1 dB, S2 DN, NDVI)
NORM_MEAN = (-11.728724389184965, -18.85558188024017, 1395.3408730676722, 1338.4026921784578, 1343.09883810357,
             1543.8607982512297, 2186.2022069512263, 2525.0932853316694, 2410.3377187373408, 2750.2854646886753,
             2234.911100061487, 1474.5311266077113, 0.2892116502999044)
NORM_STD = (4.887145774840316, 5.730270320384293, 917.7041440370853, 913.2988423581528, 1092.678723527555,
            1047.2206083460424, 1048.0101611156767, 1143.6903026819996, 1098.979177731649, 1204.472755085893,
            1145.9774063078878, 980.2429840007796, 0.2720939024500081)
STD_MULTIPLIER = 2.0


def normalise(s_t_x: torch.Tensor) -> torch.Tensor:
    """[..., 13] raw values (S1 dB, S2 DN = reflectance x 1e4, NDVI -1..1) -> Galileo's inputs:
    (x - (mean - 2 std)) / (4 std) per band, NDVI unchanged."""
    mean, std = torch.tensor(NORM_MEAN, dtype=s_t_x.dtype), torch.tensor(NORM_STD, dtype=s_t_x.dtype)
    shift, div = mean - STD_MULTIPLIER * std, 2 * STD_MULTIPLIER * std
    shift[-1], div[-1] = 0.0, 1.0
    return (s_t_x - shift) / div


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """Galileo's 1-D sinusoid: [M] positions -> [M, dim] (sin | cos, omega = 10000^-(k / 2dim))."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / dim / 2.0)
    out = pos.reshape(-1).float()[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], 1)


def space_embed(dim: int, h: int, w: int, gsd_ratio: float) -> torch.Tensor:
    """[h, w, dim] 2-D sinusoid of a token grid: [sincos(col * r) | sincos(row * r)], r = token
    size / 10 m (as Galileo's ``get_2d_sincos_pos_embed_with_resolution``)."""
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    e = torch.cat([sincos_1d(dim // 2, cols * gsd_ratio), sincos_1d(dim // 2, rows * gsd_ratio)], 1)
    return e.reshape(h, w, dim)


def resize_matrix_pinv(old: int, new: int) -> torch.Tensor:
    """FlexiViT pseudo-inverse [new^2, old^2] of the bicubic (antialiased) resize old -> new."""
    eye = torch.eye(old * old).reshape(old * old, 1, old, old)
    mat = nn.functional.interpolate(eye, (new, new), mode="bicubic", antialias=True).reshape(old * old, -1)
    return torch.linalg.pinv(mat)


class PatchEmbed(nn.Module):
    """Conv patch embedding (``proj`` [D, C, 8, 8]) whose kernel is resized FlexiViT-style to the
    requested patch size."""

    def __init__(self, in_chans: int, dim: int, patch: int = 8):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self._pinv: dict[int, torch.Tensor] = {}

    def weight(self, p: int) -> torch.Tensor:
        """The kernel resized to p x p."""
        w = self.proj.weight
        if p == self.patch:
            return w
        if p not in self._pinv:
            self._pinv[p] = resize_matrix_pinv(self.patch, p)
        o, c = w.shape[:2]
        return (w.reshape(o * c, -1) @ self._pinv[p].to(w).T).reshape(o, c, p, p)

    def forward(self, x: torch.Tensor, p: int) -> torch.Tensor:
        """[N, C, H, W] -> [N, H/p, W/p, D]."""
        return nn.functional.conv2d(x, self.weight(p), self.proj.bias, stride=p).permute(0, 2, 3, 1)


class Block(nn.Module):
    """Pre-norm transformer block with separate q / k / v projections (with bias)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.Module()
        self.attn.q, self.attn.k, self.attn.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, int(dim * mlp_ratio)), nn.Linear(int(dim * mlp_ratio), dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        y = self.norm1(x)
        q, k, v = (lin(y).reshape(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for lin in (self.attn.q, self.attn.k, self.attn.v))
        bias = None if pad is None else torch.zeros(b, 1, 1, n, dtype=x.dtype).masked_fill(pad[:, None, None], float("-inf"))
        a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.attn.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp.fc2(nn.functional.gelu(self.mlp.fc1(self.norm2(x))))


class GalileoEncoder(nn.Module):
    """The Galileo nano encoder: width 128, depth 4, 8 heads, MLP ratio 4, up to 24 time steps,
    patch sizes 1-8 (kernels stored at 8); 1,037,856 parameters."""

    def __init__(self, dim: int = 128, depth: int = 4, heads: int = 8, mlp_ratio: float = 4.0, max_len: int = 24,
                 max_patch: int = 8):
        super().__init__()
        q = dim // 4
        self.dim = dim
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.pos_embed = nn.Parameter(sincos_1d(q, torch.arange(max_len)), requires_grad=False)
        months = torch.arange(12) / (12 / (2 * math.pi))
        self.month_embed = nn.Embedding.from_pretrained(
            torch.cat([months[:, None].sin().expand(12, q // 2), months[:, None].cos().expand(12, q // 2)], 1))
        self.s_t_channel_embed = nn.Parameter(torch.zeros(len(S_T_GROUPS), q))
        self.sp_channel_embed = nn.Parameter(torch.zeros(len(SPACE_GROUPS), q))
        self.t_channel_embed = nn.Parameter(torch.zeros(len(TIME_GROUPS), q))
        self.st_channel_embed = nn.Parameter(torch.zeros(len(STATIC_GROUPS), q))
        self.space_time_embed = nn.ModuleDict({g: PatchEmbed(len(i), dim, max_patch) for g, i in S_T_GROUPS.items()})
        self.space_embed = nn.ModuleDict({g: PatchEmbed(c, dim, max_patch) for g, c in SPACE_GROUPS.items()})
        self.time_embed = nn.ModuleDict({g: nn.Linear(c, dim) for g, c in TIME_GROUPS.items()})
        self.static_embed = nn.ModuleDict({g: nn.Linear(c, dim) for g, c in STATIC_GROUPS.items()})
        self.norm = nn.LayerNorm(dim)

    def forward(self, s_t_x: torch.Tensor, s_t_m: torch.Tensor, months: torch.Tensor, patch_size: int = 4,
                input_res_m: float = BASE_GSD) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens [B, H/p, W/p, T, 7, 128] (LayerNorm'd, as the reference's encoder output; 0 for a
        group masked everywhere) and their mask [B, H/p, W/p, T, 7] (True = masked, left out of
        attention). ``input_res_m``: pixel size in metres (sets the space embedding's scale)."""
        b, hh, ww, t, _ = s_t_x.shape
        p = int(patch_size)
        if hh % p or ww % p:
            raise ParameterError(f"Galileo input of {hh} x {ww} px is not a multiple of patch_size {p}")
        h, w = hh // p, ww // p
        mask = s_t_m[:, ::p, ::p].bool()
        used = [gi for gi in range(len(S_T_GROUPS)) if not mask[..., gi].all()]  # a group masked everywhere: skipped
        used = used or [0]
        img = s_t_x.permute(0, 3, 4, 1, 2).reshape(b * t, -1, hh, ww)
        names = list(S_T_GROUPS)
        x = torch.stack([self.space_time_embed[names[gi]](img[:, S_T_GROUPS[names[gi]]], p)
                         .reshape(b, t, h, w, -1).permute(0, 2, 3, 1, 4) for gi in used], -2)  # b h w t g d
        q, g = self.dim // 4, len(used)
        emb = torch.cat([self.s_t_channel_embed[used][None, None, None, None].expand(b, h, w, t, g, q),
                         self.pos_embed[:t][None, None, None, :, None].expand(b, h, w, t, g, q),
                         self.month_embed(months.long() % 12)[:, None, None, :, None].expand(b, h, w, t, g, q),
                         space_embed(q, h, w, input_res_m * p / BASE_GSD).to(x)[None, :, :, None, None]
                         .expand(b, h, w, t, g, q)], -1)
        x = (x + emb).reshape(b, h * w * t * g, -1)
        pad = mask[..., used].reshape(b, -1)
        pad = pad & ~pad.all(1, keepdim=True)  # a sample with nothing kept: attend to all (outputs unused)
        for blk in self.blocks:
            x = blk(x, pad)
        out = x.new_zeros(b, h, w, t, len(S_T_GROUPS), self.dim)
        out[..., used, :] = self.norm(x).reshape(b, h, w, t, g, -1)
        return out, mask

    def pooled(self, s_t_x: torch.Tensor, s_t_m: torch.Tensor, months: torch.Tensor, patch_size: int = 4,
               input_res_m: float = BASE_GSD) -> torch.Tensor:
        """Mean of the kept (normalised) tokens: [B, 128] (the reference's ``average_tokens``)."""
        tok, mask = self(s_t_x, s_t_m, months, patch_size, input_res_m)
        keep = (~mask).to(tok.dtype)[..., None]
        b = tok.shape[0]
        return (tok * keep).reshape(b, -1, self.dim).sum(1) / keep.reshape(b, -1).sum(1, keepdim=True)
