"""Stage 3, model: the temporal CLIP.

Pretrained remote-sensing towers (Presto, Galileo nano) or any open_clip image tower per date,
temporal embeddings of the acquisition dates and a temporal transformer, aligned with a text
tower (MiniLM, or open_clip's); heads for change masks, change dates, zero-shot and few-shot
labels and text search over the series. Laid out as open_clip is: architecture configs as
JSON, one factory, a registry of weights with sha256, training code apart (``rsvlm_temporal.train``).
torch is imported only when a model is used.
"""

from typing import Any

#: public names, imported lazily so that ``import rsvlm_temporal.model`` does not import torch
_LAZY = {
    "run_model": "rsvlm_temporal.model.inference", "ModelOutputs": "rsvlm_temporal.model.inference",
    "create_model": "rsvlm_temporal.model.factory", "list_models": "rsvlm_temporal.model.factory",
    "few_shot_labels": "rsvlm_temporal.model.heads", "zero_shot_labels": "rsvlm_temporal.model.heads",
    "text_search": "rsvlm_temporal.model.heads", "encode_texts": "rsvlm_temporal.model.text",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rsvlm_temporal.model' has no attribute {name!r}")
