"""Question understanding: intents (MiniLM exemplars + rules) and slots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsvlm_temporal.errors import LanguageError
from rsvlm_temporal.language.understand import (
    INTENTS,
    detect_language,
    find_region,
    find_unit,
    parse_period,
    parse_question,
)

DATA = Path(__file__).resolve().parent / "data"

DATES = ["2018-01-02", "2024-12-30"]


@pytest.mark.parametrize("q, intent", [
    ("What changed here since 2020?", "summary"), ("How much area burned in acres?", "area"),
    ("When did the flood peak?", "when"), ("Where is the burn scar?", "where"),
    ("Is there a flood in this area?", "yesno"), ("How fast was the forest cleared?", "rate"),
    ("What percentage of the area burned?", "percent"), ("What happened in the north-east corner?", "region"),
    ("How cloudy were the images?", "data_quality"), ("Was more area burned or flooded?", "compare"),
    ("How many cars are there?", "out_of_scope"), ("Who started the fire?", "out_of_scope"),
])
def test_intents(q: str, intent: str) -> None:
    assert parse_question(q, DATES).intent == intent


def test_intent_accuracy_on_held_out_paraphrases() -> None:
    items = json.loads((DATA / "paraphrases_final.json").read_text())["items"]
    assert {w for _, w in items} == set(INTENTS)
    ok = sum(parse_question(q, DATES).intent == want for q, want in items)
    assert ok / len(items) >= 0.9


@pytest.mark.parametrize("text, start, end", [
    ("since 2020", "2020-01-01", "2024-12-30"),
    ("between 2019 and 2023", "2019-01-01", "2023-12-31"),
    ("from June 2020 to 2022-03-15", "2020-06-01", "2022-03-15"),
    ("last year", "2023-01-01", "2023-12-31"),
    ("in the past six months", "2024-06-30", "2024-12-30"),
    ("in the last 2 years", "2022-12-30", "2024-12-30"),
    ("in summer 2021", "2021-06-01", "2021-08-31"),
    ("before 2020", "2018-01-02", "2019-12-31"),
    ("in 2021", "2021-01-01", "2021-12-31"),
])
def test_periods(text: str, start: str, end: str) -> None:
    p = parse_period(f"What changed {text}?", DATES)
    assert p is not None and (p["start"], p["end"]) == (start, end)


def test_no_period() -> None:
    assert parse_period("Where is the burn scar?", DATES) is None


def test_slots() -> None:
    pq = parse_question("How many hectares of forest were cleared in the southern half since 2019?", DATES)
    assert pq.cls == "vegetation_loss" and pq.unit == "ha"
    assert pq.region == {"name": "south", "cells": ["south-west", "south", "south-east"]}
    assert pq.period["start"] == "2019-01-01"
    assert find_unit("in square kilometres") == "km2" and find_unit("what share") == "%"
    assert find_region("the top right corner")["name"] == "north-east"
    assert find_region("what is left of the forest") is None
    assert find_region("in the NW")["name"] == "north-west"


def test_language() -> None:
    assert detect_language("What changed here since 2020?") == "en"
    assert detect_language("Qu'est-ce qui a changé ici depuis 2020 ?") == "unsupported"
    assert detect_language("Was hat sich hier seit 2020 verändert?") == "unsupported"
    assert detect_language("这里自2020年以来发生了什么变化") == "unsupported"
    with pytest.raises(LanguageError):
        parse_question("   ")
