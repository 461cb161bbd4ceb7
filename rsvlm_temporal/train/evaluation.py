"""``rsvlm eval``: the temporal CLIP on held-out synthetic seeds (never trained or tuned on).

Metrics (all on held-out seeds, every scenario, sensors cycled both / s2 / landsat):
- mask_f1: pixel F1 of the learned change mask (probability > 0.5), pooled over scenes;
- date_within_revisit: share of truly changed pixels whose predicted date lies within one revisit
  of the true date, or on the first usable date after it (clouds can delay it further);
- zero_shot_top1: scene change label (change embedding vs class prompts of prompts.json);
- zero_shot_top1_heldout_prompts: the same with heldout_prompts.json (worded unlike training);
- retrieval_r1: caption -> series recall@1 within each seed's gallery of one scene per scenario;
- few_shot_accuracy: pixel accuracy (change / no change) from prototypes of 5 + 5 marked pixels;
- taizhou_kappa, levir_f1: the real data through the model path, added by ``rsvlm eval`` from
  :mod:`rsvlm_temporal.evaluate.model` (the evaluation stage reads the real sets).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rsvlm_temporal.errors import ParameterError
from rsvlm_temporal.synth import SCENARIO_NAMES
from rsvlm_temporal.train.data import make_sample
from rsvlm_temporal.train.trainer import HELDOUT_SEEDS, SCENARIO_CLASS, first_valid_after

HELDOUT_PROMPTS = Path(__file__).resolve().parent / "heldout_prompts.json"
REVISIT = {"both": 5, "s2": 5, "landsat": 16}
SHARED_ENV = "RSVLM_SHARED_DATA"

def heldout_prompts() -> dict[str, list[str]]:
    """class -> held-out prompts."""
    return json.loads(HELDOUT_PROMPTS.read_text())["prompts"]


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1)


def evaluate(model: Any = "temporal-tiny", pretrained: str | None = "default",
             seeds: Sequence[int] = HELDOUT_SEEDS) -> dict[str, Any]:
    """Recompute every synthetic metric on ``seeds``; one JSON-ready dict (``rsvlm eval`` adds the
    real-data fields of :func:`rsvlm_temporal.evaluate.model.real_data_scores`)."""
    import torch

    from rsvlm_temporal.model.clip import scene_embedding
    from rsvlm_temporal.model.factory import create_model
    from rsvlm_temporal.model.text import encode_texts
    from rsvlm_temporal.train.trainer import _tensors, class_embeddings, class_prompt_texts

    if isinstance(model, str):
        model = create_model(model, pretrained=pretrained)
    if set(seeds) & set(range(64)):
        raise ParameterError(f"eval seeds {sorted(seeds)} overlap the training seeds 0..63; use held-out seeds (>= 1000)")
    t0 = time.time()
    classes, ptexts = class_prompt_texts()
    ho = heldout_prompts()
    tp = fp = fn = 0
    date_ok = date_n = 0
    zs, zs_ho, r1, fs = [], [], [], []
    rng = np.random.default_rng(12345)
    with torch.no_grad():
        P = class_embeddings(model, [encode_texts(p) for p in ptexts])
        PH = class_embeddings(model, [encode_texts(ho[c]) for c in classes])
        for seed in seeds:
            gallery, cap_sets = [], []
            for sc in SCENARIO_NAMES:
                s = make_sample(sc, seed)
                d = _tensors(s)
                out = model(d["x"], d["sensor"], d["days"])
                prob = torch.sigmoid(out["mask_logit"]).numpy()
                pred, ch = prob > 0.5, d["changed"]
                tp += int((pred & ch).sum())
                fp += int((pred & ~ch).sum())
                fn += int((~pred & ch).sum())
                days = d["days"].numpy()
                if ch.any():
                    di = out["date_logit"].argmax(0).numpy()
                    pday = days[di][ch]
                    tday = s.change_day[ch]
                    fva = first_valid_after(days, d["valid"], np.nan_to_num(s.change_day, nan=1e9))[ch]
                    fday = np.where(fva >= 0, days[np.clip(fva, 0, None)], tday)
                    rv = REVISIT[s.sensors]
                    ok = (pday >= tday - rv) & (pday <= np.maximum(tday + rv, fday))
                    date_ok += int(ok.sum())
                    date_n += int(ch.sum())
                    # few-shot: 5 changed + 5 unchanged marked pixels -> prototypes
                    emb = out["embedding"].numpy()
                    yc, yu = np.argwhere(ch), np.argwhere(~ch)
                    mc = yc[rng.choice(len(yc), 5, replace=False)]
                    mu = yu[rng.choice(len(yu), 5, replace=False)]
                    from rsvlm_temporal.model.heads import few_shot_labels

                    lab, _ = few_shot_labels(emb, {1: [tuple(p) for p in mc], 0: [tuple(p) for p in mu]})
                    fs.append(float(((lab == 1) == ch).mean()))
                se = scene_embedding(out["mask_logit"], out["embedding"])
                want = classes.index(SCENARIO_CLASS[sc])
                zs.append(int((se @ P.T).argmax()) == want)
                zs_ho.append(int((se @ PH.T).argmax()) == want)
                gallery.append(se)
                cap_sets.append(model.encode_text(encode_texts(s.captions)))
            G = torch.stack(gallery)
            for i, caps in enumerate(cap_sets):
                r1 += [bool(v) for v in ((caps @ G.T).argmax(1) == i).tolist()]
    return {
        "model": getattr(model, "name", None), "pretrained": getattr(model, "pretrained", None),
        "seeds": list(seeds), "scenes": len(seeds) * len(SCENARIO_NAMES),
        "mask_f1": round(_f1(tp, fp, fn), 4),
        "date_within_revisit": round(date_ok / max(date_n, 1), 4),
        "zero_shot_top1": round(float(np.mean(zs)), 4),
        "zero_shot_top1_heldout_prompts": round(float(np.mean(zs_ho)), 4),
        "retrieval_r1": round(float(np.mean(r1)), 4),
        "few_shot_accuracy": round(float(np.mean(fs)), 4),
        "seconds": round(time.time() - t0, 1),
    }
