"""The verifier: every number (with its unit), date, class, direction (gain/loss) and place
phrase of a generated text must be supported by the evidence, within rounding tolerance.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from rsvlm_temporal.evidence.schema import Evidence
from rsvlm_temporal.language.compose import analysed_period, event_span, events_of, series_dates
from rsvlm_temporal.language.understand import _find, _norm, find_classes, find_not_assessed, load_data

log = logging.getLogger(__name__)

#: relative tolerance on top of the printed rounding (0.5 units of the last printed digit)
REL_TOL = 0.01
_UNIT_RE = (r"(ha|hectares?|km2|km²|sq\.? ?km|square kilomet(?:re|er)s?|acres?|%|percent|per cent|"
            r"years?|days?|patch(?:es)?|acquisitions?|images?|observations?)")
_NUM_RE = re.compile(rf"(?<![\w.])(\d+(?:,\d{{3}})*(?:\.\d+)?)\s*{_UNIT_RE}?(?![\w])", re.I)
_ISO_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTH_RE = re.compile(r"\b(" + "|".join(m for m in calendar.month_name if m) + r")\s+(\d{4})\b", re.I)
_YEAR_RE = re.compile(r"\b(19[7-9]\d|20\d\d)\b")
_IGNORE_RE = re.compile(r"sentinel-?\s?\d\w?|landsat[- ]?\d|\b\d+\s?m\b|3x3|\bl2a\b|\bc2\b|\bl2\b", re.I)
_NEG_RE = re.compile(r"\b(no|not|none|without|never|nothing|absent|neither|nor)\b")
#: a claim that nothing changed (anywhere: a sentence naming a region is checked by its place)
_NO_CHANGE_RE = re.compile(r"\bno (?:persistent |significant |visible |detectable )?changes?\b(?!\s+(?:in|of|to)\b)|"
                           r"\bnothing (?:has |have )?changed\b|\b(?:has|have|did) not changed?\b|\bunchanged\b")
_HA_FACTOR = {"ha": 1.0, "km2": 100.0, "acres": 1 / 2.4710538}


@dataclass
class Verification:
    """The verdict on one text: ``ok`` and the ``unsupported`` claims (what, why)."""

    ok: bool
    unsupported: list[str] = field(default_factory=list)
    checked: int = 0


def _unit(u: str | None) -> str | None:
    if not u:
        return None
    u = u.lower()
    if u.startswith(("ha", "hect")):
        return "ha"
    if u.startswith(("km", "sq", "square")):
        return "km2"
    if u.startswith("acre"):
        return "acres"
    if u in ("%", "percent", "per cent"):
        return "%"
    if u.startswith("year"):
        return "years"
    if u.startswith("day"):
        return "days"
    return "count"


def supported_values(ev: Evidence) -> dict[str, set[float]]:
    """Every value the evidence supports, by unit: ``ha`` (class, severity, peak, per-region
    and per-year areas), ``%``, ``years`` and ``days`` (spans between dates), ``count``."""
    lex = load_data("lexicon")
    regions = list(lex["region_cells"].values()) + [[c] for c in lex["region_cells"]["north"] +
                                                      lex["region_cells"]["south"] + ["west", "centre", "east"]]
    ha: set[float] = set()
    pct: set[float] = {10.0, 50.0}  # the recession rule (10% of the peak) and "half clear"
    counts: set[float] = set()
    spans: set[float] = set()
    days: set[float] = set()
    present = [c for c in ev.classes if c.n_pixels > 0]
    for c in ev.classes:
        ha.add(c.area_ha)
        pct.add(c.percent_of_valid)
        counts.update({float(c.n_patches), float(c.n_pixels)})
        ha.add(c.largest_patch_ha)
        for cells in regions:
            ha.add(c.area_ha * sum(c.cell_shares.get(k, 0.0) for k in cells))
        for v in (c.extra or {}).get("severity_ha", {}).values():
            ha.add(float(v))
        if (c.extra or {}).get("peak_extent_ha") is not None:
            ha.add(float(c.extra["peak_extent_ha"]))
        counts.add(float(len(events_of(c))))
        for e in events_of(c):
            ha.add(float(e.get("area_ha", 0.0)))
        for first, last in {(c.first_date, c.last_date), event_span(c)}:
            if first and last:
                d = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days
                days.add(float(d))
                spans.add(d / 365.25)
                if d / 365.25 >= 0.25:
                    ha.add(c.area_ha / (d / 365.25))
    for a, b in itertools.combinations(present, 2):
        ha.update({abs(a.area_ha - b.area_ha), a.area_ha + b.area_ha})
    ha.add(sum(c.area_ha for c in present if c.name != "no_change"))
    ha.add(ev.aoi.valid_area_ha)
    obs = ev.quality.clear_observations
    counts.update({float(len(obs)), float(sum(1 for o in obs if o.clear_fraction >= 0.5)), 0.0})
    pct.update(100.0 * o.clear_fraction for o in obs)
    for n in ev.quality.notes:
        if n.fraction is not None:
            pct.add(100.0 * n.fraction)
    return {"ha": ha, "%": pct, "count": counts, "years": spans, "days": days}


def supported_dates(ev: Evidence) -> set[str]:
    """ISO dates the evidence supports: class first/last, peak / recession, period, acquisitions."""
    out = set(series_dates(ev))
    for c in ev.classes:
        out.update(d for d in (c.first_date, c.last_date) if d)
        out.update(str(e["date"])[:10] for e in events_of(c))
        for k in ("peak_date", "recession_date"):
            if (c.extra or {}).get(k):
                out.add(str(c.extra[k])[:10])
    out.update(d for d in analysed_period(ev) if d)
    for n in ev.quality.notes:
        out.update(str(d)[:10] for d in n.dates)
    return out


def _event_dates(ev: Evidence) -> set[str]:
    out = {d for d in analysed_period(ev) if d}
    for c in ev.classes:
        out.update(d for d in (c.first_date, c.last_date) if d)
        out.update(str(e["date"])[:10] for e in events_of(c))
        for k in ("peak_date", "recession_date"):
            if (c.extra or {}).get(k):
                out.add(str(c.extra[k])[:10])
    return out


def _close(v: float, printed: str, values: Iterable[float], factor: float = 1.0) -> bool:
    dec = len(printed.split(".")[1]) if "." in printed else 0
    tol_abs = 0.5 * 10 ** (-dec) * factor + 1e-9
    x = v * factor
    return any(abs(x - s) <= max(tol_abs, REL_TOL * abs(s)) for s in values)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;!?])\s+|;\s*", text) if s.strip()]


def _places(sentence: str) -> list[str]:
    """Every region phrase of a sentence (longest match first, no overlaps)."""
    t = _norm(sentence)
    lex = load_data("lexicon")
    hits: list[tuple[int, int, str]] = []
    for name, phrases in lex["regions"].items():
        for ph in phrases:
            if len(ph) <= 2 or ph in ("top", "upper", "bottom", "lower", "left", "right"):
                continue
            hits += [(p, p + len(ph), name) for p in _find(ph, t)]
    hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
    out, end = [], -1
    for a, b, name in hits:
        if a >= end:
            out.append(name)
            end = b
    return out


def verify(text: str, ev: Evidence) -> Verification:
    """Check ``text`` against ``ev``: numbers, dates, classes, directions and places."""
    bad: list[str] = []
    n_checked = 0
    lex = load_data("lexicon")
    vals = supported_values(ev)
    dates = supported_dates(ev)
    event_dates = _event_dates(ev)
    clean = _IGNORE_RE.sub(" ", text)
    # dates first (their digits are not numbers)
    for m in _ISO_RE.finditer(clean):
        n_checked += 1
        if m[0] not in dates:
            bad.append(f"date {m[0]}: not a date of the evidence")
    clean = _ISO_RE.sub(" ", clean)
    for m in _MONTH_RE.finditer(clean):
        n_checked += 1
        mo = list(calendar.month_name).index(m[1].capitalize())
        key = f"{int(m[2]):04d}-{mo:02d}"
        if not any(d.startswith(key) for d in event_dates):
            bad.append(f"month {m[0]}: no event or period date in that month")
    clean = _MONTH_RE.sub(" ", clean)
    years = {d[:4] for d in event_dates}
    for m in _YEAR_RE.finditer(clean):
        n_checked += 1
        if m[0] not in years:
            bad.append(f"year {m[0]}: no event or period date in that year")
    clean = _YEAR_RE.sub(" ", clean)
    for m in _NUM_RE.finditer(clean):
        raw, unit = m[1].replace(",", ""), _unit(m[2])
        v = float(raw)
        n_checked += 1
        if unit in _HA_FACTOR:
            if not _close(v * _HA_FACTOR[unit], raw, vals["ha"], 1.0) and not _close(
                    v, raw, {s / _HA_FACTOR[unit] for s in vals["ha"]}):
                bad.append(f"area {m[0].strip()}: no area of the evidence matches")
        elif unit == "%":
            if not _close(v, raw, vals["%"]):
                bad.append(f"percentage {m[0].strip()}: no share of the evidence matches")
        elif unit == "years":
            if not _close(v, raw, vals["years"]):
                bad.append(f"duration {m[0].strip()}: no span of the evidence matches")
        elif unit == "days":
            if not _close(v, raw, vals["days"]):
                bad.append(f"duration {m[0].strip()}: no span of the evidence matches")
        else:
            if not _close(v, raw, vals["count"]):
                bad.append(f"number {m[0].strip()}: no count of the evidence matches")
    for w in find_not_assessed(text):
        n_checked += 1
        bad.append(f"class {w!r}: not assessed by this analysis")
    by_name = {c.name: c for c in ev.classes}
    present = {c.name for c in ev.classes if c.n_pixels > 0 and c.name != "no_change"}
    for s in _sentences(text):
        ns = _norm(s)
        negated = bool(_NEG_RE.search(ns))
        named = find_classes(s)
        for name in named:
            n_checked += 1
            if name not in by_name:
                bad.append(f"class {name}: not assessed by this analysis")
            elif name not in present and not negated:
                bad.append(f"class {name}: the evidence has none of it")
        if present and _NO_CHANGE_RE.search(ns) and not _places(s):
            n_checked += 1
            bad.append(f"claim {s.strip()!r}: no change stated, the evidence has {', '.join(sorted(present))}")
        # directions: vegetation and built-up
        gains = any(_find(w, ns) for w in lex["directions"]["gain"])
        losses = any(_find(w, ns) for w in lex["directions"]["loss"])
        veg = re.search(r"\b(forest|vegetation|trees?|green(?:ness)?|woodland)\b", ns)
        if veg and (gains or losses) and not negated:
            n_checked += 1
            if gains and not losses and "vegetation_gain" not in present:
                bad.append(f"direction: vegetation gain claimed in {s.strip()!r}, the evidence shows none")
            if losses and not gains and "vegetation_loss" not in present and "burn" not in present:
                bad.append(f"direction: vegetation loss claimed in {s.strip()!r}, the evidence shows none")
        if re.search(r"\b(built-up|buildings?|urban|town|city)\b", ns) and losses and not gains and not negated:
            n_checked += 1
            bad.append(f"direction: built-up loss claimed in {s.strip()!r}; only built-up gain is assessed")
        places = _places(s)
        if places:
            refs = [by_name[n] for n in named if n in by_name] or [by_name[n] for n in present]
            ok_cells: set[str] = set()
            for c in refs:
                if c.location:
                    ok_cells.add(c.location)
                ok_cells.update(k for k, v in c.cell_shares.items() if v >= 0.05)
                for reg, cells in lex["region_cells"].items():
                    if sum(c.cell_shares.get(k, 0.0) for k in cells) >= 0.15:
                        ok_cells.add(reg)
            for p in places:
                n_checked += 1
                if p not in ok_cells and not negated:
                    bad.append(f"place {p}: the evidence places {', '.join(sorted(n for n in named) or ['the change'])} elsewhere")
        if "scattered" in ns and not negated:
            n_checked += 1
            refs = [by_name[n] for n in named if n in by_name] or [by_name[n] for n in present]
            if not any(c.scattered for c in refs):
                bad.append("place 'scattered': no such class is scattered")
    if bad:
        log.info("verifier rejected %r: %s", text, bad)
    return Verification(ok=not bad, unsupported=bad, checked=n_checked)


def verify_answer(text: str, ev: Evidence, **_: Any) -> Verification:
    """Alias of :func:`verify` (kept for the ask loop's callback signature)."""
    return verify(text, ev)
