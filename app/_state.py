"""Cached library calls of the dashboard: sources -> items -> frame store -> analysis.

Only caching and plumbing: the work is done by ``rsvlm_temporal`` (catalog, viewer, pipeline).
The frame store and the analysis are ``st.cache_resource`` entries keyed by the source, so
moving the slider, switching a view or asking a question never re-reads or re-analyses.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import streamlit as st

from rsvlm_temporal import viewer
from rsvlm_temporal.errors import CatalogError, EmptySearchError, InsufficientDataError

#: data sources of the sidebar
SOURCES: dict[str, str] = {"demo": "Offline demo", "local": "Local STAC catalog", "stac": "STAC API search"}
#: the demo preset the dashboard opens on ($RSVLM_DEMO_PRESET; default "showcase") and scene
#: option overrides as JSON ($RSVLM_DEMO_OPTIONS, e.g. '{"size": 48}'; the tests use tiny scenes)
PRESET_ENV, OPTIONS_ENV = "RSVLM_DEMO_PRESET", "RSVLM_DEMO_OPTIONS"
#: seconds per STAC request and retries, kept short for an interactive page
STAC_TIMEOUT_S = 20.0
STAC_RETRIES = 1


@dataclass(frozen=True)
class Source:
    """What to load: the demo or a local catalog (``where`` a path), or a STAC API search
    (``where`` a profile name or URL, with AOI bbox, period, collections and max cloud)."""

    kind: str
    where: str
    bbox: tuple[float, float, float, float] | None = None
    start: str | None = None
    end: str | None = None
    collections: tuple[str, ...] = field(default_factory=tuple)
    max_cloud: float | None = None

    @property
    def key(self) -> str:
        """A stable text key of the source (cache key, run folder name)."""
        return json.dumps([self.kind, self.where, self.bbox, self.start, self.end, list(self.collections),
                           self.max_cloud], default=str)


@st.cache_resource(show_spinner="Preparing the offline demo (first run only)…")
def _demo_root(preset: str, options: str, cache: str) -> Path:
    from rsvlm_temporal.synth.writer import demo_catalog

    return Path(demo_catalog(preset=preset, **json.loads(options or "{}"))).parent


def demo_root() -> Path:
    """Folder of the demo catalog (generated once, cached on disk) of ``$RSVLM_DEMO_PRESET``."""
    return _demo_root(os.environ.get(PRESET_ENV, "showcase"), os.environ.get(OPTIONS_ENV, ""),
                      os.environ.get("RSVLM_CACHE", ""))


def demo_scenarios() -> list[str]:
    """Scenario names of the demo, wildfire first."""
    names = sorted(p.parent.name for p in demo_root().glob("*/catalog.json"))
    return sorted(names, key=lambda n: (n != "wildfire", n))


@st.cache_resource(show_spinner="Reading the catalog…", max_entries=8)
def _items(key: str, kind: str, where: str, bbox: tuple[float, float, float, float] | None,
           start: str | None, end: str | None, collections: tuple[str, ...],
           max_cloud: float | None) -> tuple[list[Any], str]:
    from rsvlm_temporal.io.catalog import load_items, search

    if kind in ("demo", "local"):
        items = load_items(where)
        if not items:
            raise EmptySearchError(f"the catalog {where} holds no item")
        title = where
        try:
            cat = json.loads(Path(where).read_text()) if Path(where).is_file() else {}
            title = cat.get("title") or cat.get("id") or where
        except (OSError, ValueError):
            pass
        if kind == "demo":
            title = f"Demo · {Path(where).parent.name.replace('_', ' ')} · {title}"
        return items, str(title)
    if bbox is None or start is None or end is None:
        raise CatalogError("a STAC search needs an AOI and a period")
    items = search(bbox, start, end, collections=list(collections), max_cloud=max_cloud, source=where,
                   timeout=STAC_TIMEOUT_S, retries=STAC_RETRIES)
    return items, f"{where} · {len(items)} items · {start} – {end}"


def items_for(src: Source) -> tuple[list[Any], str]:
    """The items of ``src`` and a title (cached per source)."""
    return _items(src.key, src.kind, src.where, src.bbox, src.start, src.end, src.collections, src.max_cloud)


#: frame stores kept at once (each holds a few hundred MB at most for the showcase scenes)
MAX_STORES = 2


@st.cache_resource(show_spinner=False)
def _stores() -> dict[str, viewer.FrameStore]:
    """The process-wide registry of frame stores (built outside a cached function, so that the
    progress bar is a real one and never a cached replay)."""
    return {}


def frame_store(src: Source, items: Sequence[Any],
                progress: Callable[[int, int], None] | None = None) -> viewer.FrameStore:
    """Every frame of the source rendered once (kept per source; ``progress(done, total)``)."""
    reg = _stores()
    if src.key not in reg:
        store = viewer.FrameStore(viewer.player_cube(items), progress=progress)
        while len(reg) >= MAX_STORES:
            reg.pop(next(iter(reg)))
        reg[src.key] = store
    return reg[src.key]


def run_dir(src: Source, start: str | None, end: str | None) -> Path:
    """Output folder of an analysis: ``<cache>/app-runs/<hash of source and period>``."""
    from rsvlm_temporal.synth.writer import default_cache_dir

    digest = hashlib.sha1(json.dumps([src.key, start, end]).encode()).hexdigest()[:12]
    return default_cache_dir() / "app-runs" / digest


@st.cache_resource(show_spinner=False, max_entries=4)
def _analysis(key: str, start: str | None, end: str | None, out: str, _items: Sequence[Any]) -> tuple[Any, bool]:
    if not _items:
        raise InsufficientDataError("no item to analyse")
    return viewer.analyse_cached(_items, out, start, end)


def analysis_done(src: Source, items: Sequence[Any], start: str | None, end: str | None) -> Any:
    """The outputs of an analysis already run (this process or on disk), else None: no work."""
    key = json.dumps([src.key, start, end])
    if key in st.session_state.setdefault("_done_runs", set()):
        return _analysis(src.key, start, end, str(run_dir(src, start, end)), items)[0]
    done = viewer.load_run(run_dir(src, start, end), viewer.request_digest(items, start, end))
    if done is not None:
        st.session_state["_done_runs"].add(key)
    return done


def analysis_for(src: Source, items: Sequence[Any], start: str | None, end: str | None,
                 out: Path) -> tuple[Any, bool]:
    """(outputs, fresh): the change analysis of ``src`` over ``start``..``end`` in a status box."""
    with st.status("Running the change analysis…", expanded=True) as box:
        box.write(f"{len(items)} acquisitions → lazy cube → series engine → COG / GeoJSON / evidence")
        outputs, fresh = _analysis(src.key, start, end, str(out), items)
        n = sum(1 for c in outputs.evidence.classes if c.area_ha > 0 and c.name != "no_change")
        box.write(f"{outputs.mode} analysis: {n} change class(es) found; {len(outputs.files)} files")
        box.update(label="Change analysis done", state="complete", expanded=False)
    st.session_state.setdefault("_done_runs", set()).add(json.dumps([src.key, start, end]))
    return outputs, fresh
