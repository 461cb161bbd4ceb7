"""One factory: ``create_model(name, pretrained=...)`` for the temporal CLIP configs of
``model/configs/*.json`` (open_clip's layout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsvlm_temporal.errors import ModelWeightsError, unknown_name

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_MODEL = "temporal-tiny"
_NOT_TEMPORAL = {"prompts", "rsvlm-tiny-vit"}


def list_models() -> list[str]:
    """Names of the temporal CLIP architecture configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json") if p.stem not in _NOT_TEMPORAL)


def shipped_models() -> list[str]:
    """Names of the configs whose default weights ship in the package (the others start from a
    random init and need ``rsvlm train`` first)."""
    from rsvlm_temporal.model.pretrained import registry

    return [n for n in list_models() if f"{n}/{model_config(n).get('default_pretrained')}" in registry()]


def model_config(name: str) -> dict[str, Any]:
    """The architecture config ``name`` (a dict; a copy)."""
    if name not in list_models():
        raise unknown_name("model", name, list_models())
    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def prompts() -> dict[str, Any]:
    """The zero-shot class prompts (``classes`` order, ``prompts`` per class)."""
    return json.loads((CONFIG_DIR / "prompts.json").read_text())


def create_model(name: str = DEFAULT_MODEL, pretrained: str | None = "default", *,
                 tower: dict[str, Any] | None = None, **overrides: Any) -> Any:
    """A :class:`~rsvlm_temporal.model.clip.TemporalCLIP` in eval mode.

    ``pretrained``: "default" (the config's shipped weights, random init if it has none), None
    (random init), a registry tag (``synthetic-v1`` -> ``{name}/synthetic-v1`` in pretrained.json)
    or a path to a ``.safetensors`` file. ``tower`` / ``overrides`` update the config (e.g. an
    open_clip tower's ``model`` / ``pretrained`` / ``bands``)."""
    import torch

    from rsvlm_temporal.model.clip import TemporalCLIP
    from rsvlm_temporal.model.pretrained import load_safetensors, registry, weights_path

    cfg = model_config(name)
    cfg.update(overrides)
    if tower:
        cfg["tower"] = {**cfg["tower"], **tower}
    if pretrained == "default":
        pretrained = cfg.get("default_pretrained")
        if pretrained and f"{name}/{pretrained}" not in registry():
            pretrained = None  # shipped weights not (yet) trained: random init
    path = None
    if pretrained:
        key = f"{name}/{pretrained}"
        if key in registry():
            path = weights_path(key)
        elif str(pretrained).endswith(".safetensors") or Path(str(pretrained)).exists():
            path = Path(str(pretrained))
            if not path.is_file():
                raise ModelWeightsError(f"checkpoint {path} does not exist; train one with `rsvlm train --out {path}`")
        else:
            raise unknown_name(f"pretrained weights of {name}", pretrained,
                               [k.split("/", 1)[1] for k in registry() if k.startswith(name + "/")])
    torch.manual_seed(0)
    model = TemporalCLIP(cfg)
    if path is not None:
        sd = load_safetensors(path)
        missing, unexpected = model.load_state_dict(sd, strict=False)
        # frozen pretrained towers (Presto) are not stored in our checkpoints
        missing = [k for k in missing if not k.startswith("tower.encoder.")]
        if missing or unexpected:
            raise ModelWeightsError(f"{path} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.name, model.pretrained = name, (str(pretrained) if pretrained else None)
    return model.eval()
