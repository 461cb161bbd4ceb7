"""rsvlm ask / caption / ground / synth --prompt through the CLI entry point."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from rsvlm_temporal.cli import main


def test_commands_module_is_light() -> None:
    for m in [m for m in sys.modules if m.startswith("rsvlm_temporal.language.commands")]:
        del sys.modules[m]
    before = {m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")}
    importlib.import_module("rsvlm_temporal.language.commands")
    after = {m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")}
    assert after == before


def test_ask_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "How much area burned?", "--demo", "wildfire", "--truth", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d)[:7] == ["question", "intent", "slots", "answer", "evidence", "verified", "unsupported"]
    assert d["intent"] == "area" and d["verified"] is True and d["slots"]["class"] == "burn"


def test_caption_and_ground(tmp_path: Path, truth_ev: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    f = truth_ev["flood"].write_json(tmp_path / "evidence.json")
    assert main(["caption", "--evidence", str(f)]) == 0
    assert "flooded area" in capsys.readouterr().out
    gj = tmp_path / "g.geojson"
    assert main(["ground", "the flooded area", "--evidence", str(f), "--geojson", str(gj)]) == 0
    assert json.loads(gj.read_text())["features"]
    assert main(["ask", "What changed?", "--evidence", str(tmp_path / "none.json")]) == 2


def test_synth_prompt_parser() -> None:
    from rsvlm_temporal.cli import build_parser

    args = build_parser().parse_args(["synth", "out", "--prompt", "a flood in spring 2020"])
    assert args.prompt == "a flood in spring 2020"
