"""Text search and few-shot classes over a finished run, from the temporal CLIP's layers that
run wrote (``model_layers.tif``: change probability, learned date, pixel change embeddings in
the joint text-image space; :mod:`outputs.model_layers`). The model does not run again: a query
is one MiniLM sentence through the text projection, a few-shot class is the mean embedding of
3-5 marked pixels; both are scored lazily, chunk by chunk, over the run's grid.

* :func:`search_run`: "burned forest", "when did it look flooded?" -> a region score per pixel
  (cosine of the query to the pixel's change embedding x its change probability, -1..1), the
  matching area, the dates of change ranked by how much of that area changed then, and where in
  the AOI (3x3 cell) it lies. A pixel matches where the query is nearer its embedding than every
  zero-shot class prompt the query does not paraphrase (open vocabulary: "new buildings" does not
  match a burn however weak the burn prompt's rivals), and the model calls it changed (unchanged
  for a query nearest the no-change prompt).
* :func:`few_shot_run`: {class: [(lon, lat), ...]} -> a class raster (nearest prototype) and
  its areas in hectares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import dask
import dask.array as da
import numpy as np
import xarray as xr

from rsvlm_temporal.compute.store import open_stack_array
from rsvlm_temporal.errors import ParameterError
from rsvlm_temporal.evidence.schema import CELL_NAMES
from rsvlm_temporal.grid import pixel_area_m2
from rsvlm_temporal.outputs.model_layers import MODEL_FILES
from rsvlm_temporal.timeutil import days_to_iso

__all__ = ["FewShotResult", "SearchResult", "few_shot_run", "model_stack", "search_run"]

#: a class prompt whose joint-space cosine to the query reaches this is a paraphrase of it (not a rival)
SAME_MEANING = 0.7


@dataclass
class SearchResult:
    """``score``: region score (y, x) float32, -1..1 (georeferenced like the run's layers);
    ``dates``: (ISO date, share 0-1 of the matching area that changed then), best first;
    ``where``: the 3x3 cell holding most of the matching area; ``matched_ha``: its area."""

    query: str
    score: xr.DataArray
    dates: list[tuple[str, float]] = field(default_factory=list)
    where: str | None = None
    matched_ha: float = 0.0

    def describe(self) -> str:
        """One sentence for people: how many hectares match the query, where (3x3 cell) and when
        (dates with their share of the matching area), or that nothing matches and the zero-shot
        class nearest the query (the CLI's ``rsvlm find`` and the dashboard's search)."""
        if not self.matched_ha:
            return (f"Nothing in this run matches \u201c{self.query}\u201d "
                    f"(nearest class: {self.score.attrs.get('nearest_class')}).")
        when = ", ".join(f"{d} ({100 * s:.0f}%)" for d, s in self.dates) or "no learned date"
        return (f"{self.matched_ha:g} ha match \u201c{self.query}\u201d, mostly in the {self.where}; "
                f"changed on {when}.")


@dataclass
class FewShotResult:
    """``labels``: (y, x) uint8 index into ``names`` (255 nodata); ``areas_ha`` per class;
    ``similarity``: cosine of each pixel to its winning prototype (y, x) float32."""

    labels: xr.DataArray
    similarity: xr.DataArray
    names: tuple[str, ...]
    areas_ha: dict[str, float]


def model_stack(run_dir: str | Path) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """(probability (y, x), learned change date (y, x) days since 1970-01-01, embedding (E, y, x))
    of a run folder, lazy; :class:`ParameterError` when the run holds no model layers."""
    path = Path(run_dir) / MODEL_FILES["model_stack"]
    if not path.is_file():
        raise ParameterError(f"{run_dir} holds no model layers ({path.name}): run `rsvlm analyze` there "
                             "without --no-model first")
    arr = open_stack_array(path)
    names = [str(v) for v in arr.layer.values]
    emb = [n for n in names if n.startswith("embedding_")]
    if not emb or "probability" not in names:
        raise ParameterError(f"{path} is not a model stack of this version (layers {names[:6]}...); re-run the analysis")
    return arr.sel(layer="probability"), arr.sel(layer="date"), arr.sel(layer=emb)


def _model(name: str | None, pretrained: str | None):  # noqa: ANN202 - a torch module
    from rsvlm_temporal.model.factory import DEFAULT_MODEL
    from rsvlm_temporal.model.inference import cached_model

    return cached_model(name or DEFAULT_MODEL, pretrained)


def search_run(run_dir: str | Path, query: str, model: str | None = None, pretrained: str | None = "default",
               top: int = 5) -> SearchResult:
    """Text search over a run (see the module docstring). ``top``: dates returned."""
    import torch

    from rsvlm_temporal.model.inference import prompt_embeddings
    from rsvlm_temporal.model.text import encode_texts

    if not query or not query.strip():
        raise ParameterError("the search query is empty; describe what to find, e.g. 'burned forest'")
    prob, date, emb = model_stack(run_dir)
    m = _model(model, pretrained)
    with torch.no_grad():
        q = m.encode_text(encode_texts([query.strip()]))[0].numpy().astype(np.float32)
    classes, cemb = prompt_embeddings(m)
    # the query competes with the zero-shot class prompts it does not paraphrase: a pixel matches
    # where the query is nearer its change embedding than every such prompt (open vocabulary)
    text_cos = cemb @ q
    rivals = cemb[text_cos < SAME_MEANING]
    about = classes[int(np.argmax(text_cos))]
    cos = (emb.data * q[:, None, None]).sum(0)
    p = da.nan_to_num(prob.data)
    region = cos * p if about != "no_change" else cos * (1 - p)
    georef = {k: prob.attrs[k] for k in ("crs", "epsg", "transform", "resolution")}
    score = xr.DataArray(region, dims=("y", "x"), coords={"y": prob.y, "x": prob.x}, name="search_score",
                         attrs={**georef, "query": query, "nearest_class": about})
    match = cos > 0
    if len(rivals):
        match = match & (cos >= da.tensordot(rivals, emb.data, axes=(1, 0)).max(0))
    match = match & ((p > 0.5) if about != "no_change" else (p <= 0.5))
    h, w = region.shape
    rows = da.broadcast_to(((3 * da.arange(h)) // h)[:, None], (h, w), chunks=region.chunks)
    cols = da.broadcast_to(((3 * da.arange(w)) // w)[None, :], (h, w), chunks=region.chunks)
    cell = da.where(match, 3 * rows + cols, 9).ravel()
    dated = match & da.isfinite(date.data)
    last = float(da.nanmax(da.where(dated, date.data, -1)).compute())  # latest matched date (days)
    # matched pixels per learned date (index = days since 1970 + 1; 0: undated), never the raster
    days = (da.where(dated, date.data, -1) + 1).astype(np.int64).ravel()
    cells, n_match, per_day = dask.compute(da.bincount(cell.astype(np.int64), minlength=10), match.sum(),
                                           da.bincount(days, minlength=max(int(last), 0) + 2))
    if not n_match:
        return SearchResult(query, score)
    order = [i for i in np.argsort(per_day[1:], kind="stable")[::-1][:top] if per_day[1 + i]]
    ranked = [(days_to_iso(int(i)), round(float(per_day[1 + i]) / int(n_match), 4)) for i in order]
    pix_ha = pixel_area_m2(prob) / 10_000
    return SearchResult(query, score, ranked, CELL_NAMES[int(np.argmax(cells[:9]))], round(float(n_match) * pix_ha, 4))


def _rowcol(prob: xr.DataArray, points: Sequence[tuple[float, float]], crs: str) -> list[tuple[int, int]]:
    from pyproj import Transformer
    from rasterio.transform import Affine, rowcol

    h, w = prob.shape
    if crs == "pixel":  # (row, col) of the run's grid
        rc = [(int(r), int(c)) for r, c in points]
        bad = [p for p in rc if not (0 <= p[0] < h and 0 <= p[1] < w)]
        if bad:
            raise ParameterError(f"marked pixels {bad} fall outside the run's grid of {h}x{w} pixels")
        return rc
    t = Affine(*prob.attrs["transform"][:6])
    xy = Transformer.from_crs(crs, prob.attrs["crs"], always_xy=True)
    out = []
    for x, y in points:
        px, py = xy.transform(float(x), float(y))
        r, c = rowcol(t, px, py)
        if not (0 <= r < h and 0 <= c < w):
            raise ParameterError(f"the marked point ({x}, {y}) ({crs}) lies outside the run's grid of {h}x{w} pixels")
        out.append((int(r), int(c)))
    return out


def _nearest(emb: np.ndarray, protos: np.ndarray) -> np.ndarray:
    """(E, y, x) block -> (2, y, x): winning prototype index, its cosine."""
    e = emb / np.maximum(np.linalg.norm(emb, axis=0, keepdims=True), 1e-12)
    sims = np.tensordot(protos, e, axes=(1, 0))  # (K, y, x)
    i = np.argmax(sims, 0)
    ok = np.isfinite(emb).all(0) & (np.abs(emb).sum(0) > 0)
    return np.stack([np.where(ok, i, 255), np.where(ok, np.take_along_axis(sims, i[None], 0)[0], np.nan)]).astype(np.float32)


def few_shot_run(run_dir: str | Path, marked: Mapping[str, Sequence[tuple[float, float]]],
                 crs: str = "EPSG:4326") -> FewShotResult:
    """Few-shot classes over a run: ``marked`` = {class name: [(x, y), ...]} (3-5 points per class,
    at least two classes; coordinates in ``crs``, default lon/lat degrees WGS 84; ``"pixel"``:
    (row, col) of the run's grid)."""
    if len(marked) < 2:
        raise ParameterError(f"few-shot needs marked points of at least two classes; got {sorted(marked)}")
    for name, pts in marked.items():
        if not 1 <= len(pts) <= 20:
            raise ParameterError(f"class {name!r}: {len(pts)} marked points; expected 3-5 (1-20 accepted)")
    prob, _, emb = model_stack(run_dir)
    names = tuple(marked)
    protos = []
    for name in names:
        rc = _rowcol(prob, marked[name], crs)
        vec = np.stack([np.asarray(emb.data[:, r, c].compute(), np.float64) for r, c in rc]).mean(0)
        protos.append(vec / max(np.linalg.norm(vec), 1e-12))
    p = np.stack(protos).astype(np.float32)
    out = da.map_blocks(_nearest, emb.data.rechunk({0: -1}), p, dtype=np.float32,
                        chunks=((2,),) + emb.data.chunks[1:])
    georef = {k: prob.attrs[k] for k in ("crs", "epsg", "transform", "resolution")}
    coords = {"y": prob.y, "x": prob.x}
    labels = xr.DataArray(out[0].astype(np.uint8), dims=("y", "x"), coords=coords, name="few_shot",
                          attrs={**georef, "class_names": dict(enumerate(names)), "nodata": 255})
    sim = xr.DataArray(out[1], dims=("y", "x"), coords=coords, name="few_shot_similarity", attrs=georef)
    counts = np.bincount(np.asarray(labels.data.ravel().compute()), minlength=256)
    pix_ha = pixel_area_m2(prob) / 10_000
    return FewShotResult(labels, sim, names, {n: round(float(counts[i]) * pix_ha, 4) for i, n in enumerate(names)})
