"""The product's entry point: :func:`run_model` on a cube -> :class:`ModelOutputs`.

Runs per dask chunk (all dates, all bands, a block of pixels), with the model loaded once per
worker process (cached by name and weights). torch is imported only inside the block function
and the model code, never at ``import rsvlm_temporal.model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr

from rsvlm_temporal.errors import InsufficientDataError, ParameterError
from rsvlm_temporal.model.inputs import day_numbers, sensor_codes, to_model_bands

N_FIXED = 4  # probability, date (days since 1970), label index, label score
#: torch intra-op threads of one model task: dask already runs one task per core, and torch's own
#: threads on top oversubscribe the cores (2-core machine: 3x the CPU time per chunk with 2
#: threads; benchmarks/model_speedup.py)
TASK_TORCH_THREADS = 1


@dataclass
class ModelOutputs:
    """Model outputs on the cube's grid (georeferenced (y, x) DataArrays like the other layers).

    change_mask: uint8 0/1 (learned); change_probability: float32 0-1; change_date:
    datetime64[ns] (NaT where no change); labels: uint8 change-class codes (``class_names`` attr)
    from zero-shot prompts; label_score: float32 0-1; pixel_embedding: (embed, y, x) float32
    (lazy); embedding: the scene's change embedding [E] (numpy, for the language stage);
    scene_label / scene_scores: zero-shot label of the whole AOI and its class scores;
    class_names / class_embeddings: the zero-shot classes and their prompt embeddings [K, E].
    """

    change_mask: xr.DataArray
    change_probability: xr.DataArray
    change_date: xr.DataArray
    labels: xr.DataArray
    label_score: xr.DataArray
    pixel_embedding: xr.DataArray
    embedding: np.ndarray
    scene_label: str
    scene_scores: dict[str, float]
    model: str
    pretrained: str | None
    class_names: tuple[str, ...] = ()
    class_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=4)
def cached_model(name: str, pretrained: str | None) -> Any:
    """The model ``name`` with weights ``pretrained``, loaded once per process."""
    from rsvlm_temporal.model.factory import create_model

    return create_model(name, pretrained=pretrained)


@lru_cache(maxsize=8)
def _class_embeddings(name: str, pretrained: str | None) -> tuple[tuple[str, ...], np.ndarray]:
    return prompt_embeddings(cached_model(name, pretrained))


def year_windows(days: np.ndarray) -> tuple[tuple[int, int], ...]:
    """(start, stop) index ranges of ``days`` (sorted, days since 1970-01-01) per calendar year
    (UTC), the windows the model reads: it was trained on one-year series (January-December,
    ``train.data.SCENE_KW``), so a longer series is read one calendar year at a time."""
    years = np.asarray(days).astype(np.int64).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
    edges = np.flatnonzero(np.diff(years)) + 1
    bounds = np.concatenate([[0], edges, [len(days)]])
    return tuple((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))


def _block(values: np.ndarray, *, spec: tuple[str, str | None], model: Any, bands: list[str], days: np.ndarray,
           sensors: np.ndarray, reference: float | None, class_emb: np.ndarray,
           windows: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(time, band, y, x) block -> (N_FIXED + E, y, x) float32: per pixel, the outputs of the
    window (``windows``: index ranges of the time axis) with the highest change probability;
    a pixel needs 2 clear dates in a window for it to count (probability 0 otherwise)."""
    import torch

    from rsvlm_temporal.model.heads import zero_shot_labels

    m = model if model is not None else cached_model(*spec)
    x = to_model_bands(np.asarray(values, np.float32), bands)
    h, w = x.shape[2:]
    prob = np.zeros((h, w), np.float32)
    date = np.full((h, w), np.nan, np.float32)
    emb = None
    threads = torch.get_num_threads()  # this thread's setting (OpenMP: per thread), restored below
    torch.set_num_threads(TASK_TORCH_THREADS)
    try:
        for a, b in windows:
            if b - a < 2:
                continue
            xs, ds = x[a:b], days[a:b]
            with torch.inference_mode():
                out = m(torch.from_numpy(xs), torch.from_numpy(sensors[a:b]), torch.from_numpy(ds),
                        reference=float(ds.min()) if reference is None else reference)
            p = torch.sigmoid(out["mask_logit"]).numpy()
            p = np.where(out["valid"].sum(0).numpy() >= 2, p, 0.0).astype(np.float32)
            e = out["embedding"].numpy()
            d = np.where(p > 0.5, ds[out["date_logit"].argmax(0).numpy()], np.nan)
            if emb is None:
                emb = e.copy()
            take = p > prob
            prob = np.where(take, p, prob)
            date = np.where(take, d, date)
            emb[take] = e[take]
    finally:
        torch.set_num_threads(threads)
    if emb is None:  # no window with 2 dates: nothing the model can read
        emb = np.zeros((h, w, int(m.cfg["embed_dim"])), np.float32)
    lab, score = zero_shot_labels(emb, class_emb, prob)
    fixed = np.stack([prob, date, lab.astype(np.float32), score])
    return np.concatenate([fixed, emb.transpose(2, 0, 1)]).astype(np.float32)


def _layer(a: Any, cube: xr.DataArray, name: str, **attrs: Any) -> xr.DataArray:
    base = {k: cube.attrs[k] for k in ("crs", "epsg", "transform", "resolution") if k in cube.attrs}
    return xr.DataArray(a, dims=("y", "x"), coords={"y": cube.y, "x": cube.x}, name=name, attrs={**base, **attrs})


def run_model(cube: xr.DataArray, model: Any = None, pretrained: str | None = "default",
              name: str = "temporal-tiny", threshold: float = 0.5, window: str | None = "year",
              scene: bool = True) -> ModelOutputs:
    """Run the temporal CLIP on a cube (``io.cube.load_cube`` layout: time, band, y, x; reflectance
    0-1, NaN masked). ``model``: a model object (threaded / local schedulers), or None to load
    ``name`` / ``pretrained`` once per worker. ``window``: "year" reads the series one calendar
    year at a time (:func:`year_windows`; per pixel the year of highest change probability), None
    the whole series at once. Lazy per-pixel layers; with ``scene`` the scene embedding and scene
    label are computed (one streaming pass, :func:`with_scene`), else left empty for the caller
    to compute from the layers once written (``outputs.model_layers``)."""
    import dask.array as da

    if cube.sizes.get("time", 0) < 2:
        raise InsufficientDataError(f"the model needs at least 2 dates; the cube has {cube.sizes.get('time', 0)}")
    if window not in ("year", None):
        raise ParameterError(f"model window {window!r} unknown; expected 'year' or None (the whole series)")
    spec = (name, pretrained)
    if model is not None:
        spec = (getattr(model, "name", name), getattr(model, "pretrained", None))
    m = model if model is not None else cached_model(*spec)
    classes, cemb = _class_embeddings(*spec) if model is None else prompt_embeddings(m)
    e = int(m.cfg["embed_dim"])
    data = cube.data if isinstance(cube.data, da.Array) else da.from_array(np.asarray(cube.data), chunks=(-1, -1, 256, 256))
    data = data.rechunk({0: -1, 1: -1})
    days = day_numbers(cube.time.values)
    if np.any(np.diff(days) < 0):
        raise ParameterError("the cube's time axis is not sorted; sort it (cube.sortby('time')) first")
    windows = year_windows(days) if window == "year" else ((0, len(days)),)
    if max(b - a for a, b in windows) < 2:
        raise InsufficientDataError("the model needs 2 dates within one calendar year; every year of the "
                                    "cube has at most one")
    sensors = sensor_codes(list(cube.sensor.values) if "sensor" in cube.coords else None, len(days))
    out = da.map_blocks(_block, data, spec=spec, model=model, bands=[str(b) for b in cube.band.values], days=days,
                        sensors=sensors, reference=float(days.min()) if window is None else None,
                        class_emb=cemb, windows=windows, dtype=np.float32,
                        drop_axis=[0, 1], new_axis=[0], chunks=((N_FIXED + e,),) + data.chunks[2:])
    prob = out[0]
    from rsvlm_temporal.classes import CHANGE_CLASSES, CHANGE_CODES
    from rsvlm_temporal.timeutil import days_to_datetime

    code_lut = np.array([CHANGE_CODES[c] for c in classes], np.uint8)
    pix = out[N_FIXED:]
    date = da.map_blocks(days_to_datetime, out[1], dtype="datetime64[ns]")
    labels = da.map_blocks(lambda a: code_lut[np.nan_to_num(a).astype(np.int64)], out[2], dtype=np.uint8)
    names = {int(k): v for k, v in CHANGE_CLASSES.items()}
    pix_da = xr.DataArray(pix, dims=("embed", "y", "x"), coords={"y": cube.y, "x": cube.x},
                          attrs={k: cube.attrs[k] for k in ("crs", "epsg", "transform") if k in cube.attrs})
    mo = ModelOutputs(
        change_mask=_layer((prob > threshold).astype(np.uint8), cube, "model_change_mask", nodata=255,
                           class_names={0: "no_change", 1: "change"}),
        change_probability=_layer(prob, cube, "model_change_probability"),
        change_date=_layer(date, cube, "model_change_date"),
        labels=_layer(labels, cube, "model_labels", class_names=names, nodata=255),
        label_score=_layer(out[3], cube, "model_label_score"),
        pixel_embedding=pix_da, embedding=np.zeros(e, np.float32), scene_label="", scene_scores={},
        model=spec[0], pretrained=getattr(m, "pretrained", spec[1]), class_names=tuple(classes),
        class_embeddings=cemb)
    return with_scene(mo) if scene else mo


def with_scene(mo: ModelOutputs, pixel_embedding: Any = None, probability: Any = None) -> ModelOutputs:
    """``mo`` with its scene change embedding (pixel embeddings weighted by change probability
    + 0.02, normalised), zero-shot scene label and class scores, computed in one streaming pass
    over ``pixel_embedding`` (E, y, x) and ``probability`` (y, x): by default ``mo``'s own lazy
    layers (the model runs once more), or the same layers read back from a stack file."""
    import dataclasses

    pix = mo.pixel_embedding.data if pixel_embedding is None else pixel_embedding
    prob = mo.change_probability.data if probability is None else probability
    scene = np.asarray((pix * (prob + 0.02)[None]).sum(axis=(1, 2)).compute(), np.float64)
    scene = scene / max(np.linalg.norm(scene), 1e-12)
    sims = mo.class_embeddings @ scene
    z = np.exp(100 * (sims - sims.max()))
    scores = {c: float(v) for c, v in zip(mo.class_names, z / z.sum())}
    return dataclasses.replace(mo, embedding=scene.astype(np.float32), scene_label=max(scores, key=scores.get),
                               scene_scores=scores)


def prompt_embeddings(m: Any) -> tuple[tuple[str, ...], np.ndarray]:
    """(zero-shot class names, their prompt embeddings [K, E], normalised) of a model object (not cached)."""
    import torch

    from rsvlm_temporal.model.factory import prompts
    from rsvlm_temporal.model.text import encode_texts

    p = prompts()
    with torch.no_grad():
        e = [m.encode_text(encode_texts(p["prompts"][c])).mean(0) for c in p["classes"]]
        return tuple(p["classes"]), torch.nn.functional.normalize(torch.stack(e), dim=-1).numpy()


def search_series(cube: xr.DataArray, query: str, model: Any = None, name: str = "temporal-tiny",
                  pretrained: str | None = "default", top: int = 5, max_pixels: int = 262_144
                  ) -> tuple[xr.DataArray, list[tuple[str, float]]]:
    """Text search over a series: (region score (y, x) for ``query``, dates ranked best first as
    (ISO date, score 0-1)). Runs in memory: for AOIs up to ``max_pixels`` pixels."""
    import torch

    from rsvlm_temporal.model.heads import text_search
    from rsvlm_temporal.model.text import encode_texts

    if cube.sizes["y"] * cube.sizes["x"] > max_pixels:
        raise ParameterError(f"search_series runs in memory: {cube.sizes['y']}x{cube.sizes['x']} px is over "
                             f"max_pixels={max_pixels}; clip the AOI first")
    m = model if model is not None else cached_model(name, pretrained)
    days = day_numbers(cube.time.values)
    sensors = sensor_codes(list(cube.sensor.values) if "sensor" in cube.coords else None, len(days))
    x = to_model_bands(np.asarray(cube.values, np.float32), [str(b) for b in cube.band.values])
    with torch.no_grad():
        out = m(torch.from_numpy(x), torch.from_numpy(sensors), torch.from_numpy(days))
        q = m.encode_text(encode_texts([query]))[0].numpy()
    prob = torch.sigmoid(out["mask_logit"]).numpy()
    dprob = torch.softmax(out["date_logit"], 0).nan_to_num(0.0).numpy()
    region, dscore = text_search(q, out["embedding"].numpy(), dprob, prob, top=top)
    order = np.argsort(dscore)[::-1]
    dates = [(str(np.datetime64(cube.time.values[i], "D")), float(dscore[i])) for i in order if dscore[i] > 0]
    return _layer(region, cube, "model_search_score", query=query), dates
