"""The LM head with a tiny random Llama: generation, visual prefix, verifier fallback, LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rsvlm_temporal.errors import LanguageError, ModelWeightsError
from rsvlm_temporal.language.ask import ask
from rsvlm_temporal.language.head import LMHead, PrefixProjection, evidence_text, load_causal_lm


@pytest.fixture(scope="module")
def head(tiny_lm: Path) -> LMHead:
    lm, tok = load_causal_lm(tiny_lm)
    return LMHead(lm=lm, tokenizer=tok, prefix=PrefixProjection(16, lm.config.hidden_size, n_tokens=3))


def test_generate_text_and_visual(head: LMHead, truth_ev: dict[str, Any]) -> None:
    ev = truth_ev["wildfire"]
    g = head.generate("What changed here?", ev, max_new_tokens=8)
    assert g.tokens <= 8 and g.seconds > 0
    g2 = head.generate("What changed here?", ev, visual=np.ones(16, np.float32), max_new_tokens=8)
    assert g2.tokens <= 8
    with pytest.raises(LanguageError):
        head.generate("What changed?", ev, visual=np.ones(5, np.float32), max_new_tokens=2)


def test_unverified_lm_text_falls_back(head: LMHead, truth_ev: dict[str, Any]) -> None:
    ev = truth_ev["wildfire"]
    r = ask("How much area burned?", ev, head=head, use_lm=True)
    assert r.verified
    if r.source == "template":  # random weights: gibberish or unsupported text is replaced
        assert r.answer.endswith("ha of burned area (" + f"{ev.class_by_name('burn').percent_of_valid:.1f}" +
                                 "% of the area), on " + ev.class_by_name("burn").first_date + ".") or r.answer


def test_prefix_save_load(tmp_path: Path) -> None:
    p = PrefixProjection(8, 32, n_tokens=2, seed=1)
    f = p.save(tmp_path / "prefix.safetensors")
    q = PrefixProjection.load(f)
    v = np.arange(8, dtype=np.float32)
    assert np.allclose(p(v).detach().numpy(), q(v).detach().numpy())


def test_evidence_text(truth_ev: dict[str, Any]) -> None:
    t = evidence_text(truth_ev["flood"])
    assert "flood:" in t and "period:" in t and "absent:" in t


def test_missing_models(tmp_path: Path) -> None:
    with pytest.raises(LanguageError):
        load_causal_lm(tmp_path)  # a folder without config.json
    with pytest.raises(ModelWeightsError):
        load_causal_lm(tmp_path / "missing.gguf")
    with pytest.raises(ModelWeightsError):
        load_causal_lm("no-such-org/no-such-model")


def test_finetune_lora(tiny_lm: Path, tmp_path: Path) -> None:
    from rsvlm_temporal.train.language import finetune, read_pairs, write_pairs

    pairs = [{"question": "Describe the change.", "evidence": "burn: 4.00 ha", "answer": "A fire burned 4.00 ha."}] * 3
    f = write_pairs(tmp_path / "caps.jsonl", pairs)
    assert len(read_pairs(f)) == 3
    rep = finetune(f, out_dir=tmp_path / "adapter", model=str(tiny_lm), steps=3, rank=2, batch=2)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "adapter" / "README.md").read_text().startswith("# rsvlm-temporal")
    assert rep["steps"] == 3
    lm, _ = load_causal_lm(tiny_lm, adapter=tmp_path / "adapter")
    assert any("lora" in n for n, _ in lm.named_parameters())
    with pytest.raises(LanguageError):
        read_pairs(tmp_path / "none.jsonl")
