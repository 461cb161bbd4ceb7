"""Ask a question of the evidence: parse, re-run for another period (a callback of the caller),
compose the deterministic answer, optionally let the LM phrase it, verify, regenerate once,
fall back to the deterministic phrasing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from rsvlm_temporal.evidence.schema import Evidence
from rsvlm_temporal.language.compose import Answer, analysed_period, answer, caption, series_dates
from rsvlm_temporal.language.understand import IntentClassifier, ParsedQuestion, parse_question
from rsvlm_temporal.language.verify import verify

log = logging.getLogger(__name__)

#: ``rerun(start, end) -> Evidence``: the caller re-runs the analysis for another period
Rerun = Callable[[str, str], Evidence]
#: a period differs from the analysed one when an end moves by more than this (days)
PERIOD_SLACK_DAYS = 45


@dataclass
class AskResult:
    """What ``rsvlm ask --json`` prints: question, intent, slots, answer, evidence (used),
    verified, unsupported, plus the source of the text (template / lm) and the failures."""

    question: str
    intent: str
    slots: dict[str, Any]
    answer: str
    evidence: dict[str, Any]
    verified: bool
    unsupported: list[str] = field(default_factory=list)
    refusal: bool = False
    source: str = "template"
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dict(self.__dict__)


def period_differs(period: dict[str, Any] | None, ev: Evidence) -> bool:
    """True when the asked period starts or ends well inside the analysed one."""
    if not period or not period.get("start"):
        return False
    a, b = analysed_period(ev)
    if not a or not b:
        return False

    def gap(x: str, y: str) -> int:
        return abs((dt.date.fromisoformat(x[:10]) - dt.date.fromisoformat(y[:10])).days)

    start_in = period["start"] > a and gap(period["start"], a) > PERIOD_SLACK_DAYS
    end_in = period["end"] < b and gap(period["end"], b) > PERIOD_SLACK_DAYS
    return start_in or end_in


def finish(a: Answer, ev: Evidence, head: Any = None, question: str = "", visual: Sequence[float] | None = None,
           use_lm: bool = False, max_new_tokens: int = 60) -> tuple[str, bool, list[str], str]:
    """(text, verified, unsupported, source): the LM phrasing when it passes the verifier (one
    regeneration), else the deterministic text (verified too)."""
    failures: list[str] = []
    if a.refusal:
        return a.text, True, [], "template"
    if head is not None and use_lm:
        for attempt in range(2):
            g = head.generate(question, ev, draft=a.text, visual=visual, seed=attempt, sample=attempt > 0,
                              max_new_tokens=max_new_tokens)
            v = verify(g.text, ev)
            if v.ok and g.text:
                return g.text, True, failures, "lm"
            failures += [f"lm attempt {attempt + 1}: {u}" for u in v.unsupported] or [f"lm attempt {attempt + 1}: empty"]
            log.warning("LM text failed verification (attempt %d): %r %s", attempt + 1, g.text, v.unsupported)
    v = verify(a.text, ev)
    if not v.ok:
        log.error("deterministic answer failed verification: %r %s", a.text, v.unsupported)
    return a.text, v.ok, failures + v.unsupported, "template"


def ask(question: str, ev: Evidence, *, rerun: Rerun | None = None, head: Any = None, use_lm: bool = False,
        classifier: IntentClassifier | None = None, visual: Sequence[float] | None = None,
        max_new_tokens: int = 60) -> AskResult:
    """Answer ``question`` from ``ev``. ``rerun(start, end)`` re-runs the analysis when the
    question's period differs from the analysed one; ``head`` (an :class:`LMHead`) phrases the
    answer when ``use_lm``; ``visual``: the change embedding for the head's prefix."""
    pq: ParsedQuestion = parse_question(question, series_dates(ev), classifier)
    notes: list[str] = []
    if pq.period and period_differs(pq.period, ev) and pq.intent not in ("out_of_scope", "data_quality"):
        dates = series_dates(ev)
        if rerun is not None and not (dates and pq.period["end"] < dates[0]):
            start = max(pq.period["start"], dates[0]) if dates else pq.period["start"]
            ev = rerun(start, pq.period["end"])
            notes.append(f"re-analysed for {start} to {pq.period['end']}")
        else:
            a0, b0 = analysed_period(ev)
            notes.append(f"the analysis covers {a0} to {b0}; pass a re-run callback to analyse "
                         f"{pq.period['start']} to {pq.period['end']} only")
    a = answer(pq, ev)
    text, ok, unsupported, source = finish(a, ev, head, question, visual, use_lm, max_new_tokens)
    return AskResult(question=question, intent=a.intent if a.refusal else pq.intent, slots=pq.slots(), answer=text,
                     evidence=a.used, verified=ok, unsupported=unsupported, refusal=a.refusal, source=source,
                     facts=a.facts, notes=notes)


def describe(ev: Evidence, head: Any = None, use_lm: bool = False, visual: Sequence[float] | None = None) -> AskResult:
    """A verified change caption of the evidence."""
    a = caption(ev)
    q = "Describe the change in this area."
    text, ok, unsupported, source = finish(a, ev, head, q, visual, use_lm)
    return AskResult(question=q, intent="summary", slots={}, answer=text, evidence=a.used, verified=ok,
                     unsupported=unsupported, source=source, facts=a.facts)
