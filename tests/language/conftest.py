"""Fixtures of the language tests: demo-scene truth evidence, the benchmark module, a tiny LM."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def bench() -> Any:
    """benchmarks/language.py as a module (grading, perturbations, prompts)."""
    spec = importlib.util.spec_from_file_location("rsvlm_bench_language", ROOT / "benchmarks" / "language.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def scenes() -> dict[str, Any]:
    from rsvlm_temporal.synth import DEMO_OPTIONS, SCENARIO_NAMES, make_scene

    return {n: make_scene(n, **DEMO_OPTIONS) for n in SCENARIO_NAMES}


@pytest.fixture(scope="session")
def truth_ev(scenes: dict[str, Any]) -> dict[str, Any]:
    from rsvlm_temporal.synth.prompt import truth_evidence

    return {n: truth_evidence(s) for n, s in scenes.items()}


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rsvlm_temporal.language.head import tiny_random_lm

    return tiny_random_lm(tmp_path_factory.mktemp("tiny-lm"))
