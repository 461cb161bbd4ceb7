"""Analyses the dashboard has run, kept on disk: a finished run's folder is reused by a later
session (or a restarted server) instead of analysing again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from rsvlm_temporal.atomic import write_json_atomic
from rsvlm_temporal.evidence import Evidence
from rsvlm_temporal.outputs.model_layers import MODEL_FILES
from rsvlm_temporal.outputs.results import RunOutputs

#: marker written last into a finished run folder
RUN_MARKER = "viewer-run.json"
#: the files of a run folder by name (as :func:`rsvlm_temporal.pipeline.run_analysis` writes them)
RUN_FILES = {
    "stack": "layers.tif", "change_class": "change_class.tif", "burn_severity": "burn_severity.tif",
    "change_date": "change_date.tif", "flood_onset": "flood_onset.tif", "flood_recession": "flood_recession.tif",
    "confidence": "confidence.tif", "polygons": "change_polygons.geojson", "quicklook": "change_class.png",
    "change_mask": "change_mask.tif", "change_magnitude": "change_magnitude.tif", "evidence": "evidence.json",
    **MODEL_FILES,
}


def request_digest(items: Sequence[Any], start: Any, end: Any) -> str:
    """A digest of the analysed item ids and period (which run a folder holds)."""
    ids = sorted(str(getattr(it, "id", None) or (it.get("id") if isinstance(it, dict) else it)) for it in items)
    return hashlib.sha1(json.dumps([ids, str(start), str(end)]).encode()).hexdigest()


def load_run(out_dir: str | Path, digest: str | None = None) -> RunOutputs | None:
    """The finished run in ``out_dir`` (evidence and files), None when absent, unfinished or
    (with ``digest``) a run of another request."""
    out = Path(out_dir)
    marker = out / RUN_MARKER
    if not marker.is_file() or not (out / "evidence.json").is_file():
        return None
    try:
        meta = json.loads(marker.read_text())
        ev = Evidence.from_json((out / "evidence.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if digest is not None and meta.get("digest") != digest:
        return None
    files = {k: out / v for k, v in RUN_FILES.items() if (out / v).is_file()}
    return RunOutputs(out, ev, files, str(meta.get("mode", "series")))


def analyse_cached(items: Sequence[Any], out_dir: str | Path, start: Any = None, end: Any = None,
                   **kwargs: Any) -> tuple[RunOutputs, bool]:
    """(outputs, fresh): the finished run of this request in ``out_dir``, else
    :func:`rsvlm_temporal.pipeline.run_analysis` (``kwargs`` passed on) with a marker written last."""
    digest = request_digest(items, start, end)
    done = load_run(out_dir, digest)
    if done is not None:
        return done, False
    from rsvlm_temporal.pipeline import run_analysis  # the pipeline sits after the viewer's stage

    outputs = run_analysis(items, out_dir, start, end, **kwargs)
    # after the swap (atomic.result_folder): into the final folder, where outputs.out_dir is
    write_json_atomic(outputs.out_dir / RUN_MARKER, {"digest": digest, "mode": outputs.mode,
                                                     "start": str(start), "end": str(end)})
    return outputs, True
