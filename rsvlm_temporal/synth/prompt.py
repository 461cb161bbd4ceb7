"""Text to scene: a prompt parsed by :func:`rsvlm_temporal.language.scene_prompt.parse_scene_prompt`
becomes a synthetic scene whose event falls in the asked window and place.

The generator (:func:`make_scene`) controls event timing only through the series period (events
fall in its middle part, within each scenario's season) and draws the place from the seed, so
the scene is found by a seed search: the first seed whose truth matches the spec's window and
place, as drawn or mirrored (:func:`mirror_scene`: the whole landscape, dynamics and truth
flipped north-south and/or east-west, so that e.g. a town growing from the south-east corner
grows from the north-west one). A place the search cannot meet is reported in
``spec["matched"]``.

:func:`truth_evidence` summarises a scene's truth as :class:`Evidence` (the oracle evidence of
the language benchmarks: it isolates the language stage from the change analysis).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from rsvlm_temporal.classes import CHANGE_CLASSES, CHANGE_CODES
from rsvlm_temporal.errors import SyntheticSceneError
from rsvlm_temporal.evidence.build import build_evidence
from rsvlm_temporal.evidence.extras import date_events
from rsvlm_temporal.evidence.schema import Evidence
from rsvlm_temporal.grid import coords_for
from rsvlm_temporal.language.scene_prompt import parse_scene_prompt
from rsvlm_temporal.synth.scenarios import PIXEL_HA, SyntheticScene, location_name, make_scene
from rsvlm_temporal.synth.writer import write_scene

#: seeds tried per prompt before giving up on the place
MAX_SEEDS = 200


def scene_options(spec: dict[str, Any], size: int = 48) -> dict[str, Any]:
    """make_scene options putting the event window in the middle of a three-year series."""
    opts: dict[str, Any] = {"size": size, "sensors": spec.get("sensors") or "both", "cloud_prob": 0.3}
    win = spec.get("event_window")
    if win:
        y = int(win["start"][:4])
        opts.update(start=f"{y - 1}-01-01", end=f"{y + 1}-12-31")
    return opts


_FLIPS: tuple[tuple[bool, bool], ...] = ((False, False), (True, False), (False, True), (True, True))


def _swap_words(text: str, a: str, b: str) -> str:
    def sub(m: re.Match[str]) -> str:
        w = m[0]
        out = b if w.lower() == a else a
        return out.capitalize() if w[0].isupper() else out

    return re.sub(rf"\b(?:{a}|{b})", sub, text, flags=re.I)


def _mirror_text(value: Any, ud: bool, lr: bool) -> Any:
    if isinstance(value, str):
        if ud:
            value = _swap_words(value, "north", "south")
        if lr:
            value = _swap_words(value, "east", "west")
        return value
    if isinstance(value, dict):
        return {k: _mirror_text(v, ud, lr) for k, v in value.items()}
    if isinstance(value, list):
        return [_mirror_text(v, ud, lr) for v in value]
    return value


def mirror_scene(scene: SyntheticScene, ud: bool = False, lr: bool = False) -> SyntheticScene:
    """The scene mirrored north-south (``ud``) and/or east-west (``lr``): every per-pixel array
    of the landscape, the dynamics and the truth is flipped (the georeference, acquisition plan
    and atmosphere stay), and the place words of the truth texts and the truth location follow."""
    if not (ud or lr):
        return scene
    shape = tuple(scene.grid.shape)
    axes = tuple(a for a, f in ((-2, ud), (-1, lr)) if f)

    def flip(v: Any) -> Any:
        if isinstance(v, np.ndarray) and v.ndim >= 2 and tuple(v.shape[-2:]) == shape:
            return np.flip(v, axis=axes).copy()
        return v

    t = scene.truth
    rasters = {k: flip(v) for k, v in t.rasters().items()}
    stats = dict(t.stats)
    stats["location"] = location_name(rasters["change_class"] > 0)
    truth = dataclasses.replace(t, **rasters, stats=stats, captions=_mirror_text(list(t.captions), ud, lr),
                                qa=_mirror_text([dict(q) for q in t.qa], ud, lr))
    return dataclasses.replace(scene, base=flip(scene.base), crop_field=flip(scene.crop_field),
                               params={k: flip(v) for k, v in scene.params.items()}, truth=truth)


def _matches(scene: SyntheticScene, spec: dict[str, Any]) -> tuple[bool, bool]:
    key = scene.truth.events.get("key_dates") or []
    win = spec.get("event_window")
    when_ok = not win or (bool(key) and win["start"] <= key[0] <= win["end"])
    place = spec.get("place")
    mask = scene.truth.change_class > 0
    where_ok = not place or (location_name(mask) == place and _centroid_cell(mask) == place)
    return when_ok, where_ok


def _centroid_cell(mask: np.ndarray) -> str | None:
    """The 3x3 cell of the mask centroid as the evidence names it (pixel centres, north up)."""
    from rsvlm_temporal.evidence.schema import CELL_NAMES

    rr, cc = np.nonzero(mask)
    if rr.size == 0:
        return None
    h, w = mask.shape
    return CELL_NAMES[min(int(3 * (rr.mean() + 0.5) / h), 2) * 3 + min(int(3 * (cc.mean() + 0.5) / w), 2)]


def scene_from_prompt(prompt: str | dict[str, Any], size: int = 48, max_seeds: int = MAX_SEEDS
                      ) -> tuple[SyntheticScene, dict[str, Any]]:
    """(scene, spec): the first seed whose event matches the prompt's window and place, as drawn
    or mirrored (:func:`mirror_scene`); the spec records ``seed``, ``options``, ``mirror``
    ({"north_south", "east_west"}: how to rebuild it from the seed) and ``matched`` ({"when", "where"})."""
    spec = dict(parse_scene_prompt(prompt) if isinstance(prompt, str) else prompt)
    opts = scene_options(spec, size)
    best: tuple[int, SyntheticScene, tuple[bool, bool], tuple[bool, bool]] | None = None
    for seed in range(max_seeds):
        scene = make_scene(spec["scenario"], seed=seed, **opts)
        ok = _matches(scene, spec)
        flip = (False, False)
        if ok[0] and not ok[1]:
            for f in _FLIPS[1:]:
                m = mirror_scene(scene, *f)
                if _matches(m, spec)[1]:
                    scene, ok, flip = m, (True, True), f
                    break
        if best is None or sum(ok) > sum(best[2]):
            best = (seed, scene, ok, flip)
        if all(ok):
            break
    assert best is not None
    seed, scene, ok, flip = best
    spec.update(seed=seed, options={**opts, "seed": seed}, mirror={"north_south": flip[0], "east_west": flip[1]},
                matched={"when": ok[0], "where": ok[1]})
    return scene, spec


def write_prompt_scene(out_dir: str | Path, prompt: str, size: int = 48) -> tuple[Any, dict[str, Any]]:
    """Write the scene of ``prompt`` (COGs, STAC catalog, truth) to ``out_dir``; (SceneOutput, spec)."""
    scene, spec = scene_from_prompt(prompt, size)
    out = write_scene(out_dir, scene)
    from rsvlm_temporal.atomic import write_json_atomic

    write_json_atomic(Path(out_dir) / "prompt_spec.json", spec)
    return out, spec


def truth_evidence(scene: SyntheticScene) -> Evidence:
    """The scene's truth as :class:`Evidence` (10 m grid): change classes, dates, dated events,
    severity and flood peak extras, acquisitions as clear observations (by their planned cloud
    cover)."""
    t = scene.truth
    g = scene.grid
    attrs = {"crs": g.crs, "epsg": g.epsg, "transform": tuple(g.transform)[:6], "nodata": 255,
             "class_names": dict(CHANGE_CLASSES)}
    coords = coords_for(g.transform, g.shape)
    cls = xr.DataArray(t.change_class, dims=("y", "x"), coords=coords, attrs=attrs)
    days = (t.change_date - np.datetime64("1970-01-01", "D")).astype("float64")
    days[np.isnat(t.change_date)] = np.nan
    date = xr.DataArray(days, dims=("y", "x"), coords=coords, attrs={k: attrs[k] for k in ("crs", "epsg", "transform")})
    extra: dict[int, dict[str, Any]] = {}
    if "severity_area_ha" in t.stats:
        extra[CHANGE_CODES["burn"]] = {"severity_ha": dict(t.stats["severity_area_ha"]),
                                       "severity_scheme": "dNBR, Key & Benson (2006) / USGS FIREMON"}
    if "flood_peak_date" in t.events:
        extra[CHANGE_CODES["flood"]] = {"peak_date": t.events["flood_peak_date"],
                                        "peak_extent_ha": round(float((t.change_class == CHANGE_CODES["flood"]).sum()
                                                                      * PIXEL_HA), 2),
                                        "recession_date": t.events["flood_recession_date"]}
    for code in np.unique(t.change_class):
        d = days[(t.change_class == code) & np.isfinite(days)]
        if 0 < code < 255 and d.size:
            u, k = np.unique(d.astype(np.int64), return_counts=True)
            events = date_events(u, k, PIXEL_HA)
            if events:
                extra.setdefault(int(code), {})["events"] = events
    acqs = sorted((a for v in scene.acquisitions.values() for a in v), key=lambda a: a.datetime)
    n = int(t.change_class.size)
    clear = {str(a.date): int(round(n * (1 - a.cloud_cover_target))) for a in acqs}
    ev = build_evidence(cls, date_raster=date, confidence=1.0, clear_counts=clear, extra=extra,
                        analysis="truth", evidence_extra={"period": [scene.options.start, scene.options.end],
                                                          "source": "synthetic truth"})
    return ev


def revisit_days(scene: SyntheticScene) -> int:
    """The longest revisit of the scene's sensors (days): the date tolerance of the benchmarks."""
    o = scene.options
    r = []
    if "sentinel-2-l2a" in o.sensors:
        r.append(o.s2_revisit_days)
    if "landsat-c2-l2" in o.sensors:
        r.append(o.landsat_revisit_days)
    if not r:
        raise SyntheticSceneError("the scene has no sensor")
    return int(max(r))


def days_between(a: str, b: str) -> int:
    """|a - b| in days (ISO dates)."""
    return abs((dt.date.fromisoformat(a[:10]) - dt.date.fromisoformat(b[:10])).days)
