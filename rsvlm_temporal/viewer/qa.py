"""Questions and captions for the dashboard: the language stage's answer when it exposes one,
else the evidence summary (never invented text)."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rsvlm_temporal.errors import ParameterError, RsvlmError
from rsvlm_temporal.evidence import Evidence

log = logging.getLogger(__name__)

#: names under which ``rsvlm_temporal.language`` may expose its answer / caption functions
ANSWER_NAMES = ("answer_question", "ask", "answer")
CAPTION_NAMES = ("caption_evidence", "describe", "caption")
EVIDENCE_SUMMARY = "evidence summary"


@dataclass
class ViewerAnswer:
    """Text shown to the user, the evidence lines it rests on, and where it came from
    (``"language"`` or :data:`EVIDENCE_SUMMARY`)."""

    text: str
    evidence: list[str] = field(default_factory=list)
    source: str = EVIDENCE_SUMMARY
    used: dict[str, Any] = field(default_factory=dict)


def _language_fn(names: tuple[str, ...]) -> Callable[..., Any] | None:
    try:
        lang = importlib.import_module("rsvlm_temporal.language.ask")
    except ImportError:  # the stage is optional
        return None
    for name in names:
        fn = getattr(lang, name, None)
        if callable(fn):
            return fn
    return None


def language_available() -> bool:
    """Whether ``rsvlm_temporal.language`` exposes an answer function."""
    return _language_fn(ANSWER_NAMES) is not None


def evidence_summary(evidence: Evidence, mode: str | None = None) -> list[str]:
    """The library's summary lines of the evidence (classes with area, place, dates; notes)."""
    from rsvlm_temporal.outputs.report import summary_lines
    from rsvlm_temporal.outputs.results import RunOutputs

    lines = summary_lines(RunOutputs(Path("."), evidence, {}, mode or evidence.analysis or "series"))
    return [" ".join(ln.split()) for ln in lines[1:]] or ["no change class has any area in this AOI and period"]


def _as_answer(result: Any, evidence: Evidence) -> ViewerAnswer:
    """A language-stage result (``AskResult``: ``answer`` and the ``evidence`` it used) for the page."""
    text = str(getattr(result, "answer", None) or getattr(result, "text", None) or result)
    used = getattr(result, "evidence", None)
    used = used if isinstance(used, dict) else (getattr(result, "used", None) or {})
    lines = [f"{k}: {v}" for k, v in dict(used).items()] or evidence_summary(evidence)
    return ViewerAnswer(text, lines, "language", dict(used))


def ask(question: str, evidence: Evidence) -> ViewerAnswer:
    """Answer ``question`` from ``evidence`` through the language stage when it exposes an
    answer function; otherwise the evidence summary, said to be one."""
    if not question or not question.strip():
        raise ParameterError("the question is empty: type a question about the change")
    fn = _language_fn(ANSWER_NAMES)
    if fn is not None:
        try:
            return _as_answer(fn(question, evidence), evidence)
        except RsvlmError as exc:
            return ViewerAnswer(str(exc), evidence_summary(evidence), "language")
    lines = evidence_summary(evidence)
    return ViewerAnswer("The language stage is not installed; here is what the evidence says.", lines)


def caption(evidence: Evidence) -> ViewerAnswer:
    """The change caption from the language stage, else the evidence summary."""
    fn = _language_fn(CAPTION_NAMES)
    if fn is not None:
        try:
            return _as_answer(fn(evidence), evidence)
        except RsvlmError as exc:
            log.info("caption failed: %s", exc)
    lines = evidence_summary(evidence)
    return ViewerAnswer("; ".join(lines), lines)
