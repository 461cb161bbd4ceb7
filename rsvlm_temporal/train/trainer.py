"""Contrastive + supervised training of the temporal CLIP on synthetic (series, caption) pairs.

Losses per step (one scene of each scenario): change-mask BCE, change-date cross-entropy (the
first usable date on or after the true change), pixel-vs-class-prompt and scene-vs-class-prompt
cross-entropy, and a symmetric InfoNCE between scene change embeddings and their captions.
CPU, fixed seed; writes safetensors (atomic) and a JSON record of the run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rsvlm_temporal.synth import SCENARIO_NAMES
from rsvlm_temporal.train.data import Sample, make_sample

#: scenario -> change class of its scene-level label
SCENARIO_CLASS = {"wildfire": "burn", "flood": "flood", "deforestation": "vegetation_loss",
                  "urban_growth": "built_up_gain", "seasonal_crops": "no_change"}
TRAIN_SEEDS = tuple(range(8))
HELDOUT_SEEDS = (1000, 1001, 1002, 1003)


@dataclass
class TrainConfig:
    """Training options: seeds of the scenes, steps, pixels sampled per scene, learning rate."""

    model: str = "temporal-tiny"
    seeds: Sequence[int] = TRAIN_SEEDS
    steps: int = 300
    pixels: int = 256
    lr: float = 3e-3
    seed: int = 0
    drop_dates: float = 0.3
    log: list[dict[str, Any]] = field(default_factory=list)


def first_valid_after(days: np.ndarray, valid: np.ndarray, change_day: np.ndarray) -> np.ndarray:
    """Index (y, x) of the first usable date on / after ``change_day`` (-1 none); valid (T, y, x)."""
    after = (days[:, None, None] >= change_day[None]) & valid
    idx = np.argmax(after, axis=0)
    return np.where(after.any(0), idx, -1)


def _tensors(s: Sample) -> dict[str, Any]:
    import torch

    from rsvlm_temporal.model.inputs import day_numbers, sensor_codes, to_model_bands

    x = to_model_bands(s.cube.values, list(s.cube.band.values))
    days = day_numbers(s.cube.time.values)
    valid = np.isfinite(x).any(1)
    tgt = first_valid_after(days, valid, np.nan_to_num(s.change_day, nan=1e9))
    return {"x": torch.from_numpy(x), "days": torch.from_numpy(days), "valid": valid,
            "sensor": torch.from_numpy(sensor_codes(list(s.cube.sensor.values), len(days))),
            "changed": s.change_class > 0, "date_target": tgt, "cls": s.change_class}


def class_prompt_texts() -> tuple[list[str], list[list[str]]]:
    """(classes, prompts per class) of model/configs/prompts.json."""
    from rsvlm_temporal.model.factory import prompts

    p = prompts()
    return list(p["classes"]), [list(p["prompts"][c]) for c in p["classes"]]


def class_embeddings(model: Any, minilm_prompts: Sequence[Any]) -> Any:
    """[K, E] normalised class embeddings: the mean of each class's projected prompts."""
    import torch

    return torch.nn.functional.normalize(torch.stack([model.encode_text(m).mean(0) for m in minilm_prompts]), dim=-1)


def train(cfg: TrainConfig, progress: Any = print) -> tuple[Any, dict[str, Any]]:
    """Train ``cfg.model`` from scratch; returns (model, record with losses and timings)."""
    import torch
    import torch.nn.functional as F

    from rsvlm_temporal.model.clip import scene_embedding
    from rsvlm_temporal.model.factory import create_model
    from rsvlm_temporal.model.text import encode_texts

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.time()
    samples = {sc: [make_sample(sc, s) for s in cfg.seeds] for sc in SCENARIO_NAMES}
    data = {sc: [_tensors(s) for s in v] for sc, v in samples.items()}
    classes, ptexts = class_prompt_texts()
    prompt_m = [encode_texts(p) for p in ptexts]
    caps = {sc: [encode_texts(s.captions) for s in v] for sc, v in samples.items()}
    t_data = time.time() - t0
    progress(f"data: {sum(len(v) for v in samples.values())} scenes in {t_data:.0f} s")
    model = create_model(cfg.model, pretrained=None).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    code_of = {c: i for i, c in enumerate(classes)}
    from rsvlm_temporal.classes import CHANGE_CODES

    cls_index = np.zeros(256, np.int64)
    for name, code in CHANGE_CODES.items():
        cls_index[code] = code_of.get(name, 0)
    for step in range(cfg.steps):
        P = class_embeddings(model, prompt_m)
        scale = model.logit_scale.exp().clamp(max=100)
        loss_parts: dict[str, Any] = {"mask": 0.0, "date": 0.0, "pix": 0.0, "scene": 0.0}
        scene_embs, cap_embs, scene_cls = [], [], []
        for sc in SCENARIO_NAMES:
            i = int(rng.integers(len(data[sc])))
            d = data[sc][i]
            ch = d["changed"]
            yx_c, yx_u = np.argwhere(ch), np.argwhere(~ch)
            nc = min(len(yx_c), cfg.pixels // 2)
            pick = [yx_c[rng.choice(len(yx_c), nc, replace=False)]] if nc else []
            pick.append(yx_u[rng.choice(len(yx_u), cfg.pixels - nc, replace=len(yx_u) < cfg.pixels - nc)])
            yx = np.concatenate(pick)
            keep = np.sort(np.flatnonzero(rng.random(len(d["days"])) >= rng.uniform(0, cfg.drop_dates)))
            x = d["x"][keep][:, :, yx[:, 0], yx[:, 1]][..., None]  # [T, C, P, 1]
            out = model(x, d["sensor"][keep], d["days"][keep], reference=float(d["days"][0]))
            ml, emb = out["mask_logit"][:, 0], out["embedding"][:, 0]
            truth = torch.from_numpy(ch[yx[:, 0], yx[:, 1]].astype(np.float32))
            loss_parts["mask"] = loss_parts["mask"] + F.binary_cross_entropy_with_logits(ml, truth)
            cls_t = torch.from_numpy(cls_index[d["cls"][yx[:, 0], yx[:, 1]]])
            loss_parts["pix"] = loss_parts["pix"] + F.cross_entropy(scale * emb @ P.T, cls_t)
            # date target within the kept dates
            vk = d["valid"][keep][:, yx[:, 0], yx[:, 1]]
            cday = np.where(ch[yx[:, 0], yx[:, 1]], 0, 1e9)
            if nc:
                full_t = d["date_target"][yx[:, 0], yx[:, 1]]
                tday = np.where(full_t >= 0, d["days"].numpy()[np.clip(full_t, 0, None)], 1e9)
                cday = np.where(ch[yx[:, 0], yx[:, 1]], tday, 1e9)
                kd = d["days"].numpy()[keep]
                after = (kd[:, None] >= cday[None]) & vk
                tgt = np.where(after.any(0), np.argmax(after, 0), -1)
                sel = tgt >= 0
                if sel.any():
                    dl = out["date_logit"][:, sel, 0].T  # [P, T]
                    loss_parts["date"] = loss_parts["date"] + F.cross_entropy(dl, torch.from_numpy(tgt[sel]))
            scene_embs.append(scene_embedding(ml, emb))
            cap_embs.append(model.encode_text(caps[sc][i][int(rng.integers(len(caps[sc][i])))][None])[0])
            scene_cls.append(code_of[SCENARIO_CLASS[sc]])
        S, C = torch.stack(scene_embs), torch.stack(cap_embs)
        lg = scale * S @ C.T
        lab = torch.arange(len(S))
        loss_parts["scene"] = (F.cross_entropy(lg, lab) + F.cross_entropy(lg.T, lab)) / 2 + \
            F.cross_entropy(scale * S @ P.T, torch.tensor(scene_cls))
        loss = sum(loss_parts.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0 or step == cfg.steps - 1:
            rec = {"step": step, "loss": round(float(loss.detach()), 4),
                   **{k: round(float(v.detach() if hasattr(v, "detach") else v), 4) for k, v in loss_parts.items()}, "t": round(time.time() - t0, 1)}
            cfg.log.append(rec)
            progress(str(rec))
    record = {"model": cfg.model, "seeds": list(cfg.seeds), "steps": cfg.steps, "pixels": cfg.pixels, "lr": cfg.lr,
              "seed": cfg.seed, "drop_dates": cfg.drop_dates, "scenes": {"scenarios": list(SCENARIO_NAMES),
                                                                         "sensors": "cycled both/s2/landsat by seed", "clouds": "generator default cloud_prob 0.4"},
              "data_seconds": round(t_data, 1), "train_seconds": round(time.time() - t0 - t_data, 1), "log": cfg.log}
    return model.eval(), record


def save_weights(model: Any, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the trainable state (frozen pretrained towers excluded) as safetensors, atomically."""
    from safetensors.torch import save_file

    from rsvlm_temporal.atomic import atomic_path

    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.startswith("tower.encoder.")}
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=metadata or {})
        os.chmod(tmp, 0o644)
    return Path(path)


def run_training(cfg: TrainConfig, tag: str = "synthetic-v1", out: str | Path | None = None,
                 progress: Any = print) -> dict[str, Any]:
    """Train, write ``{model}-{tag}.safetensors`` (default: the package's model/weights/) and a
    ``.json`` run record beside it, and register the weights (sha256) in model/pretrained.json
    when written into the package."""
    import json

    from rsvlm_temporal.atomic import write_json_atomic
    from rsvlm_temporal.model.pretrained import REGISTRY, WEIGHTS_DIR, sha256_of

    model, record = train(cfg, progress)
    path = Path(out) if out else WEIGHTS_DIR / f"{cfg.model}-{tag}.safetensors"
    save_weights(model, path, {"model": cfg.model, "tag": tag, "seed": str(cfg.seed)})
    record.update({"file": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size})
    write_json_atomic(path.with_suffix(".json"), record)
    if out is None:
        reg = json.loads(REGISTRY.read_text())
        from rsvlm_temporal.model.inputs import MODEL_BANDS

        reg[f"{cfg.model}/{tag}"] = {"file": path.name, "sha256": record["sha256"], "bands": list(MODEL_BANDS),
                                     "normalisation": "surface reflectance 0-1 (the cube's), NaN masked",
                                     "license": "MIT (this project's trained weights; see MODEL_CARD.md)",
                                     "config": cfg.model, "record": path.with_suffix(".json").name}
        write_json_atomic(REGISTRY, reg)
        from rsvlm_temporal.model.pretrained import registry

        registry.cache_clear()
    return record
