"""Confusion-matrix metrics for binary change detection, on labelled pixels only.

Positive class = changed. With ``tp, fp, fn, tn`` counts and ``n = tp + fp + fn + tn``:

* overall accuracy ``OA = (tp + tn) / n``
* Cohen's Kappa ``(OA - pe) / (1 - pe)``, ``pe = ((tp + fp)(tp + fn) + (fn + tn)(fp + tn)) / n^2``
  (Cohen 1960; Congalton 1991)
* precision ``tp / (tp + fp)``, recall ``tp / (tp + fn)``, F1 ``2 tp / (2 tp + fp + fn)``,
  IoU ``tp / (tp + fp + fn)``

A ratio whose denominator is 0 (e.g. precision when nothing is predicted changed) is undefined and
returned as ``nan``; the counts are always returned so that results can be pooled by summing counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rsvlm_temporal.errors import ParameterError

__all__ = ["ConfusionCounts", "binary_metrics", "confusion_counts", "evaluate_labelled"]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


@dataclass(frozen=True)
class ConfusionCounts:
    """Binary confusion matrix counts (positive = changed)."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: "ConfusionCounts") -> "ConfusionCounts":
        return ConfusionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                               self.tn + other.tn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def overall_accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.n)

    @property
    def kappa(self) -> float:
        n = self.n
        if n == 0:
            return float("nan")
        po = (self.tp + self.tn) / n
        pe = ((self.tp + self.fp) * (self.tp + self.fn) + (self.fn + self.tn) * (self.fp + self.tn)) / (n * n)
        return _ratio(po - pe, 1.0 - pe) if pe < 1.0 else float("nan")

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    def metrics(self) -> dict[str, Any]:
        """OA, Kappa, precision, recall, F1, IoU and the counts as a plain dict."""
        return {
            "overall_accuracy": self.overall_accuracy,
            "kappa": self.kappa,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "iou": self.iou,
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "n": self.n,
        }


def _bool(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(getattr(a, "values", a))
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ParameterError(f"{name} contains NaN; expected a boolean (or 0/1) array")
    return arr != 0


def confusion_counts(pred: Any, truth: Any, valid: Any | None = None) -> ConfusionCounts:
    """Counts of ``pred`` (True = changed) against ``truth`` (True = changed) where ``valid``.

    Arrays (numpy, xarray) of the same shape; ``valid`` defaults to every pixel.
    """
    p, t = _bool(pred, "pred"), _bool(truth, "truth")
    if p.shape != t.shape:
        raise ParameterError(f"pred shape {p.shape} differs from truth shape {t.shape}")
    v = np.ones(p.shape, bool) if valid is None else _bool(valid, "valid")
    if v.shape != p.shape:
        raise ParameterError(f"valid shape {v.shape} differs from pred shape {p.shape}")
    p, t = p[v], t[v]
    return ConfusionCounts(
        tp=int(np.count_nonzero(p & t)), fp=int(np.count_nonzero(p & ~t)),
        fn=int(np.count_nonzero(~p & t)), tn=int(np.count_nonzero(~p & ~t)),
    )


def binary_metrics(pred: Any, truth: Any, valid: Any | None = None) -> dict[str, Any]:
    """OA, Kappa, precision, recall, F1, IoU and counts of ``pred`` vs ``truth`` on ``valid``."""
    return confusion_counts(pred, truth, valid).metrics()


def evaluate_labelled(
    pred: Any, change_label: Any, nochange_label: Any, pred_valid: Any | None = None
) -> dict[str, Any]:
    """Metrics of ``pred`` on the labelled pixels only (change or no-change reference).

    ``change_label`` / ``nochange_label``: boolean rasters, True where the reference says changed /
    unchanged; the rest is unlabelled and ignored. They must not overlap. ``pred_valid``: where the
    prediction is defined (default everywhere); labelled pixels outside it are excluded and
    counted in ``n_labelled_invalid``.
    """
    ch, nc = _bool(change_label, "change_label"), _bool(nochange_label, "nochange_label")
    if ch.shape != nc.shape:
        raise ParameterError(f"change_label shape {ch.shape} differs from nochange_label {nc.shape}")
    both = int(np.count_nonzero(ch & nc))
    if both:
        raise ParameterError(f"{both} pixels are labelled both changed and unchanged; expected disjoint labels")
    labelled = ch | nc
    if pred_valid is not None:
        pv = _bool(pred_valid, "pred_valid")
        n_invalid = int(np.count_nonzero(labelled & ~pv))
        labelled = labelled & pv
    else:
        n_invalid = 0
    out = confusion_counts(pred, ch, labelled).metrics()
    out["n_labelled_invalid"] = n_invalid
    return out
