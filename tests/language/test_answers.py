"""Answers graded against the generator truth; refusals; re-run callback; captions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsvlm_temporal.language.ask import ask, describe, period_differs
from rsvlm_temporal.language.compose import REFUSAL

DATA = Path(__file__).resolve().parent / "data"


def test_question_set_accuracy(bench: Any, scenes: dict[str, Any], truth_ev: dict[str, Any]) -> None:
    items = json.loads((DATA / "question_set.json").read_text())["items"]
    assert len(items) >= 150
    truths = {n: bench.truth_facts(s) for n, s in scenes.items()}
    ok = 0
    for it in items:
        res = ask(it["question"], truth_ev[it["scenario"]])
        ok += bench.grade(it, res, truths[it["scenario"]])
        assert res.verified, (it, res.answer, res.unsupported)
    assert ok / len(items) >= 0.9


def test_refusals(truth_ev: dict[str, Any]) -> None:
    ev = truth_ev["wildfire"]
    for q in ("What is the capital of France?", "How much snow fell here?", "What changed here before 2015?"):
        r = ask(q, ev)
        assert r.refusal and r.answer.startswith(REFUSAL), (q, r.answer)
    r = ask("¿Qué cambió aquí desde 2020?", ev)
    assert r.refusal and "English" in r.answer


def test_answer_carries_evidence(truth_ev: dict[str, Any]) -> None:
    r = ask("How much area burned?", truth_ev["wildfire"])
    assert r.evidence["classes"] == ["burn"] and r.evidence["areas_ha"]["burn"] > 0
    assert r.evidence["refs"]["mask"] == "change_class.tif" and r.verified
    d = r.to_dict()
    assert {"question", "intent", "slots", "answer", "evidence", "verified", "unsupported"} <= set(d)


def test_rerun_callback(truth_ev: dict[str, Any]) -> None:
    ev = truth_ev["deforestation"]
    calls = []

    def rerun(start: str, end: str) -> Any:
        calls.append((start, end))
        return ev

    r = ask("How much forest was lost between 2020 and 2021?", ev, rerun=rerun)
    assert calls == [("2020-01-01", "2021-12-31")] and r.notes
    calls.clear()
    ask("How much forest was lost?", ev, rerun=rerun)
    assert calls == []
    assert not period_differs({"start": "2018-01-01", "end": "2024-12-31"}, ev)


def test_caption(truth_ev: dict[str, Any]) -> None:
    r = describe(truth_ev["flood"])
    assert r.verified and "flooded area" in r.answer
    assert "No persistent change" in describe(truth_ev["seasonal_crops"]).answer


def test_date_events_leave_out_isolated_pixels() -> None:
    import numpy as np

    from rsvlm_temporal.evidence.extras import date_events

    d0 = int((np.datetime64("2021-08-01") - np.datetime64("1970-01-01")).astype(int))
    days = np.array([d0 - 235, d0 - 9, d0, d0 + 90])
    ev = date_events(days, np.array([1, 3, 48, 1]), 0.09)
    assert [e["date"] for e in ev] == ["2021-08-01"]
    assert ev[0]["start"] == "2021-07-23" and ev[0]["pixels"] == 51
    assert date_events(np.array([d0]), np.array([0]), 0.09) == []


def test_when_uses_dated_events_not_outlier_pixels(truth_ev: dict[str, Any]) -> None:
    import copy

    ev = copy.deepcopy(truth_ev["wildfire"])
    burn = ev.class_by_name("burn")
    true_date = burn.first_date
    burn.first_date = "2020-12-09"  # one stray pixel dated months before the fire
    r = ask("When did the fire happen?", ev)
    assert r.facts["date"] == true_date and r.verified
    burn.extra.pop("events")  # evidence written before events: the raw first date
    assert ask("When did the fire happen?", ev).facts["date"] == "2020-12-09"
