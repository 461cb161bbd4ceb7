"""Heads over the model's per-pixel outputs (numpy; torch only in the model itself):
zero-shot change labels (prompt embeddings vs change embeddings), few-shot prototypes from a few
marked pixels, and text search over the series (rank dates and regions for a query)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rsvlm_temporal.errors import ParameterError


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def zero_shot_labels(embedding: np.ndarray, class_emb: np.ndarray, change_prob: np.ndarray | None = None,
                     threshold: float = 0.5, temperature: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel class index (argmax cosine to ``class_emb`` [K, E]; index 0 = no change where
    ``change_prob`` <= threshold) and its softmax score 0-1. embedding (y, x, E)."""
    sims = _unit(embedding) @ _unit(class_emb).T
    z = np.exp(temperature * (sims - sims.max(-1, keepdims=True)))
    p = z / z.sum(-1, keepdims=True)
    if change_prob is not None:  # changed pixels take the best change class (index >= 1)
        changed = change_prob > threshold
        best = 1 + np.argmax(sims[..., 1:], -1)
        lab = np.where(changed, best, 0)
    else:
        lab = np.argmax(sims, -1)
    score = np.take_along_axis(p, lab[..., None], -1)[..., 0]
    return lab.astype(np.uint8), score.astype(np.float32)


def few_shot_labels(embedding: np.ndarray, marked: Mapping[int, Sequence[tuple[int, int]]]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-prototype labels from user-marked pixels: ``marked`` = {label: [(row, col), ...]}
    (3-5 pixels per label, at least two labels); returns (labels (y, x), cosine to the winning
    prototype)."""
    if len(marked) < 2 or any(len(v) == 0 for v in marked.values()):
        raise ParameterError(f"few-shot needs marked pixels for at least two labels; got {dict(marked)}")
    e = _unit(embedding)
    h, w = e.shape[:2]
    keys = list(marked)
    protos = []
    for k in keys:
        pts = np.asarray(marked[k], int).reshape(-1, 2)
        if (pts < 0).any() or (pts[:, 0] >= h).any() or (pts[:, 1] >= w).any():
            raise ParameterError(f"marked pixels {pts.tolist()} of label {k} fall outside the {h}x{w} grid")
        protos.append(e[pts[:, 0], pts[:, 1]].mean(0))
    sims = e @ _unit(np.stack(protos)).T
    i = np.argmax(sims, -1)
    return np.asarray(keys)[i], np.take_along_axis(sims, i[..., None], -1)[..., 0].astype(np.float32)


def text_search(query_emb: np.ndarray, embedding: np.ndarray, date_prob: np.ndarray,
                change_prob: np.ndarray, top: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Rank regions and dates for a query (joint-space embedding [E]).

    Region score (y, x): cosine(query, pixel change embedding) x change probability. Date score
    (T,): date probabilities of the pixels weighted by their region score (softmax over the
    ``top`` % best pixels), normalised to sum to 1."""
    q = _unit(np.asarray(query_emb, np.float64))
    region = (_unit(embedding) @ q) * change_prob
    flat = region.reshape(-1)
    k = max(1, int(round(flat.size * top / 100)))
    idx = np.argsort(flat)[-k:]
    wgt = np.exp(10 * (flat[idx] - flat[idx].max()))
    dates = (date_prob.reshape(date_prob.shape[0], -1)[:, idx] * wgt).sum(1)
    return region.astype(np.float32), (dates / max(dates.sum(), 1e-12)).astype(np.float32)
