"""Text to scene: a free-text prompt ("a wildfire in the south-east in summer 2021, then
regrowth") parsed into a scenario spec (pure parsing; the scene is written by
:mod:`rsvlm_temporal.synth.prompt`)."""

from __future__ import annotations

from typing import Any

from rsvlm_temporal.errors import LanguageError
from rsvlm_temporal.language.understand import _find, _norm, find_region, load_data, parse_period


def parse_scene_prompt(prompt: str) -> dict[str, Any]:
    """The scenario spec of ``prompt``: {"scenario", "event_window": {"start", "end"} | None,
    "place": cell name | None, "sensors": "s2" | "landsat" | "both", "then": [...], "prompt"}."""
    if not prompt or not prompt.strip():
        raise LanguageError("the scene prompt is empty; expected e.g. 'a wildfire in the south-east in summer 2021'")
    table = load_data("scene_prompts")
    t = _norm(prompt)
    hits = []
    for name, phrases in table["scenarios"].items():
        pos = [p for ph in phrases for p in _find(ph, t)]
        if pos:
            hits.append((min(pos), name))
    if not hits:
        raise LanguageError(f"no scenario recognised in {prompt!r}; expected one of "
                            f"{sorted(table['scenarios'])} (e.g. wildfire, flood, deforestation, urban growth, crops)")
    scenario = sorted(hits)[0][1]
    sensors = [k for k, phrases in table["sensors"].items() if any(_find(p, t) for p in phrases)]
    then = [k for k, phrases in table["then"].items() if any(_find(p, t) for p in phrases)]
    region = find_region(prompt)
    period = parse_period(prompt, ())
    window = None
    if period and period.get("start") and period["text"]:
        window = {"start": period["start"], "end": period["end"]}
    return {"prompt": prompt, "scenario": scenario, "event_window": window,
            "place": region["name"] if region else None,
            "sensors": sensors[0] if len(sensors) == 1 else "both", "then": then}
