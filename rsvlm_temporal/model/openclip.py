"""open_clip models resolved offline: an architecture name (random init), a ``pretrained=`` tag
found in the local Hugging Face cache, an ``hf-hub:org/repo`` id resolved from a local cache folder
only, or a local ``.safetensors`` checkpoint. Never a network call, never a pickle: a missing
checkpoint raises :class:`~rsvlm_temporal.errors.ModelWeightsError` at once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from rsvlm_temporal.errors import ModelWeightsError, unknown_name

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: open_clip architecture configs of ours (registered with open_clip on first use)
OWN_ARCHS = ("rsvlm-tiny-vit",)


def hf_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local Hugging Face hub cache: ``cache_dir``, $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


def _snapshot_file(repo: str, names: Sequence[str], cache: Path) -> Path | None:
    snaps = cache / ("models--" + repo.strip("/").replace("/", "--")) / "snapshots"
    for snap in sorted(snaps.glob("*")) if snaps.is_dir() else []:
        for n in names:
            if (snap / n).is_file():
                return snap / n
    return None


def _register_own() -> None:
    import open_clip

    for arch in OWN_ARCHS:
        if arch not in open_clip.list_models():
            open_clip.add_model_config(CONFIG_DIR / f"{arch}.json")


def _how(what: str) -> str:
    return (f"{what}; there is no network here: put the open_clip weights as .safetensors in the "
            "Hugging Face cache (HF_HUB_CACHE / cache_dir: models--ORG--REPO/snapshots/REV/), or pass "
            "pretrained=/path/to/checkpoint.safetensors (convert .bin/.pt once with "
            "torch.load(weights_only=True) + safetensors.torch.save_file)")


def resolve_checkpoint(model: str, pretrained: str | None, cache_dir: str | os.PathLike[str] | None = None
                       ) -> tuple[str, dict[str, Any] | None, Path | None]:
    """(open_clip architecture name, config dict for hf-hub ids or None, checkpoint path or None).
    Checks the files first, so a missing checkpoint fails in milliseconds."""
    import open_clip

    _register_own()
    cache = hf_cache_dir(cache_dir)
    if model.startswith("hf-hub:"):
        repo = model[len("hf-hub:"):]
        cfg_file = _snapshot_file(repo, ["open_clip_config.json"], cache)
        ckpt = _snapshot_file(repo, ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                                     "model.safetensors"], cache)
        if cfg_file is None or ckpt is None:
            raise ModelWeightsError(_how(f"{model}: no open_clip_config.json + *.safetensors under {cache}"))
        return "hf-local-" + repo.replace("/", "-"), json.loads(cfg_file.read_text())["model_cfg"], ckpt
    if model not in open_clip.list_models():
        raise unknown_name("open_clip model", model, open_clip.list_models())
    if pretrained is None:
        return model, None, None
    p = Path(pretrained)
    if p.suffix in (".safetensors", ".bin", ".pt", ".pth") or p.exists():
        if not p.is_file():
            raise ModelWeightsError(_how(f"checkpoint {p} does not exist"))
        if p.suffix != ".safetensors":
            raise ModelWeightsError(_how(f"checkpoint {p} is a pickle; pickles are not loaded at run time"))
        return model, None, p
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained not in tags:
        raise unknown_name(f"pretrained tag of {model}", pretrained, tags)
    pcfg = open_clip.get_pretrained_cfg(model, pretrained)
    repo = (pcfg.get("hf_hub") or "").strip("/")
    ckpt = _snapshot_file(repo, ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors"], cache) if repo else None
    if ckpt is None:
        raise ModelWeightsError(_how(f"{model} pretrained={pretrained!r}: not in the local cache {cache}"
                                     + (f" (hf repo {repo})" if repo else "")))
    return model, None, ckpt


def create_open_clip(model: str, pretrained: str | None = None, cache_dir: str | os.PathLike[str] | None = None) -> nn.Module:
    """An open_clip CLIP model built offline (see the module docstring)."""
    import open_clip
    from open_clip import factory

    name, cfg, ckpt = resolve_checkpoint(model, pretrained, cache_dir)
    if cfg is not None:
        factory._MODEL_CONFIGS[name] = cfg  # open_clip's registry of architectures
    clip = open_clip.create_model(name, pretrained=None)
    if ckpt is not None:
        from safetensors.torch import load_file

        clip.load_state_dict(load_file(str(ckpt)), strict=True)
    return clip


def widen_patch_embed(visual: nn.Module, bands: Sequence[str], rgb: Sequence[str] = ("red", "green", "blue")) -> None:
    """Replace ``visual.conv1`` (3 input channels) by one over ``bands``: the RGB bands keep their
    weights, the others start at the RGB mean; all scaled by 3 / len(bands) so the activation
    scale is kept."""
    old = visual.conv1
    w = old.weight.data  # [width, 3, p, p]
    new = nn.Conv2d(len(bands), old.out_channels, old.kernel_size, old.stride, bias=old.bias is not None)
    nw = w.mean(1, keepdim=True).repeat(1, len(bands), 1, 1)
    for i, b in enumerate(rgb):
        if b in bands:
            nw[:, list(bands).index(b)] = w[:, i]
    with torch.no_grad():
        new.weight.copy_(nw * 3.0 / len(bands))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    visual.conv1 = new
