"""A tiny training run writes loadable safetensors; eval reports every metric on held-out seeds;
the CLI registers ``train`` and ``eval``."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("torch")

from rsvlm_temporal.errors import ParameterError  # noqa: E402
from rsvlm_temporal.model.factory import create_model  # noqa: E402
from rsvlm_temporal.train.evaluation import evaluate, heldout_prompts  # noqa: E402
from rsvlm_temporal.train.trainer import TrainConfig, run_training  # noqa: E402


def test_tiny_training_run_writes_weights(tmp_path) -> None:
    out = tmp_path / "w.safetensors"
    rec = run_training(TrainConfig(seeds=(0,), steps=2, pixels=32), out=out, progress=lambda *_: None)
    assert out.is_file() and rec["sha256"] and json.loads(out.with_suffix(".json").read_text())["steps"] == 2
    m = create_model("temporal-tiny", pretrained=str(out))
    assert m.pretrained == str(out)


def test_eval_on_heldout_seeds_reports_every_metric() -> None:
    res = evaluate(seeds=(1000,))
    for k in ("mask_f1", "date_within_revisit", "zero_shot_top1", "zero_shot_top1_heldout_prompts",
              "retrieval_r1", "few_shot_accuracy"):
        assert 0.0 <= res[k] <= 1.0, k
    json.dumps(res)  # JSON-ready
    assert res["mask_f1"] > 0.7
    with pytest.raises(ParameterError):
        evaluate(seeds=(3,))


def test_heldout_prompts_are_not_training_text() -> None:
    from rsvlm_temporal.model.factory import prompts
    from rsvlm_temporal.train.data import make_sample

    train_text = {p.lower() for v in prompts()["prompts"].values() for p in v}
    train_text |= {c.lower() for sc in ("wildfire", "flood") for c in make_sample(sc, 0).captions}
    for v in heldout_prompts().values():
        assert not (set(p.lower() for p in v) & train_text)


def test_cli_registers_train_and_eval() -> None:
    from rsvlm_temporal.model.commands import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="cmd"))
    a = p.parse_args(["eval", "--json", "--seeds", "1000"])
    assert a.json and a.seeds == [1000]
    assert p.parse_args(["train", "--steps", "3"]).steps == 3
