"""The real default head (SmolLM2-135M-Instruct GGUF), loaded once: its text goes through the
verifier and falls back to the deterministic answer when unsupported."""

from __future__ import annotations

from typing import Any

import pytest

from rsvlm_temporal.language.ask import ask


@pytest.fixture(scope="module")
def real_head() -> Any:
    pytest.importorskip("gguf")
    from rsvlm_temporal.errors import ModelWeightsError
    from rsvlm_temporal.language.head import LMHead

    try:
        return LMHead()
    except ModelWeightsError as exc:
        pytest.skip(f"default LM not installed: {exc}")


def test_real_lm_answer_is_verified(real_head: Any, truth_ev: dict[str, Any]) -> None:
    g = real_head.generate("How much area burned?", truth_ev["wildfire"], max_new_tokens=6)
    assert g.tokens >= 1 and g.text
    r = ask("How much area burned?", truth_ev["wildfire"], head=real_head, use_lm=True, max_new_tokens=10)
    assert r.verified and r.source in ("lm", "template")
