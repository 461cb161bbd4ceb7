"""Registry of shipped weights (``pretrained.json``: file, sha256, bands, normalisation, licence),
checked by sha256 and read as safetensors only (never a pickle at run time)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from rsvlm_temporal.errors import ModelWeightsError, unknown_name

HERE = Path(__file__).resolve().parent
WEIGHTS_DIR = HERE / "weights"
REGISTRY = HERE / "pretrained.json"


@lru_cache(maxsize=1)
def registry() -> dict[str, dict[str, Any]]:
    """name -> entry (``file``, ``sha256``, ``bands``, ``normalisation``, ``license``, ``config``)."""
    data = json.loads(REGISTRY.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_path(name: str, verify: bool = True) -> Path:
    """Path of registered weights ``name`` (checked against the registry's sha256)."""
    reg = registry()
    if name not in reg:
        raise unknown_name("pretrained weights", name, reg)
    p = WEIGHTS_DIR / reg[name]["file"]
    if not p.is_file():
        raise ModelWeightsError(f"weights {name!r} missing at {p}; reinstall rsvlm-temporal or run `rsvlm train` "
                                "to write them")
    if verify and sha256_of(p) != reg[name]["sha256"]:
        raise ModelWeightsError(f"weights {p} do not match the registry's sha256 {reg[name]['sha256']}; "
                                "the file is corrupt or was retrained without updating model/pretrained.json")
    return p


def load_safetensors(path: str | Path) -> dict[str, Any]:
    """State dict of a .safetensors file (torch tensors)."""
    p = Path(path)
    if p.suffix != ".safetensors":
        raise ModelWeightsError(f"{p}: expected a .safetensors file (pickles are not loaded at run time)")
    if not p.is_file():
        raise ModelWeightsError(f"checkpoint {p} does not exist; pass a path to a .safetensors file")
    from safetensors.torch import load_file

    return load_file(str(p))
