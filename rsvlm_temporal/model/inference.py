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

from rsvlm_temporal.errors import InsufficientDataError
from rsvlm_temporal.model.inputs import day_numbers, sensor_codes, to_model_bands

N_FIXED = 4  # probability, date (days since 1970), label index, label score


@dataclass
class ModelOutputs:
    """Model outputs on the cube's grid (georeferenced (y, x) DataArrays like the other layers).

    change_mask: uint8 0/1 (learned); change_probability: float32 0-1; change_date:
    datetime64[ns] (NaT where no change); labels: uint8 change-class codes (``class_names`` attr)
    from zero-shot prompts; label_score: float32 0-1; pixel_embedding: (embed, y, x) float32
    (lazy); embedding: the scene's change embedding [E] (numpy, for the language stage);
    scene_label / scene_scores: zero-shot label of the whole AOI and its class scores.
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
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=4)
def cached_model(name: str, pretrained: str | None) -> Any:
    """The model ``name`` with weights ``pretrained``, loaded once per process."""
    from rsvlm_temporal.model.factory import create_model

    return create_model(name, pretrained=pretrained)


@lru_cache(maxsize=8)
def _class_embeddings(name: str, pretrained: str | None) -> tuple[tuple[str, ...], np.ndarray]:
    return _class_embeddings_for(cached_model(name, pretrained))


def _block(values: np.ndarray, *, spec: tuple[str, str | None], model: Any, bands: list[str], days: np.ndarray,
           sensors: np.ndarray, reference: float, class_emb: np.ndarray) -> np.ndarray:
    """(time, band, y, x) block -> (N_FIXED + E, y, x) float32."""
    import torch

    from rsvlm_temporal.model.heads import zero_shot_labels

    m = model if model is not None else cached_model(*spec)
    x = to_model_bands(np.asarray(values, np.float32), bands)
    with torch.no_grad():
        out = m(torch.from_numpy(x), torch.from_numpy(sensors), torch.from_numpy(days), reference=reference)
    prob = torch.sigmoid(out["mask_logit"]).numpy()
    dl = out["date_logit"]
    any_valid = out["valid"].any(0).numpy()
    di = dl.argmax(0).numpy()
    date = np.where((prob > 0.5) & any_valid, days[di], np.nan)
    emb = out["embedding"].numpy()
    lab, score = zero_shot_labels(emb, class_emb, prob)
    fixed = np.stack([prob, date, lab.astype(np.float32), score])
    return np.concatenate([fixed, emb.transpose(2, 0, 1)]).astype(np.float32)


def _layer(a: Any, cube: xr.DataArray, name: str, **attrs: Any) -> xr.DataArray:
    base = {k: cube.attrs[k] for k in ("crs", "epsg", "transform", "resolution") if k in cube.attrs}
    return xr.DataArray(a, dims=("y", "x"), coords={"y": cube.y, "x": cube.x}, name=name, attrs={**base, **attrs})


def run_model(cube: xr.DataArray, model: Any = None, pretrained: str | None = "default",
              name: str = "temporal-tiny", threshold: float = 0.5) -> ModelOutputs:
    """Run the temporal CLIP on a cube (``io.cube.load_cube`` layout: time, band, y, x; reflectance
    0-1, NaN masked). ``model``: a model object (threaded / local schedulers), or None to load
    ``name`` / ``pretrained`` once per worker. Lazy per-pixel layers; the scene embedding and
    scene label are computed (one streaming pass)."""
    import dask.array as da

    if cube.sizes.get("time", 0) < 2:
        raise InsufficientDataError(f"the model needs at least 2 dates; the cube has {cube.sizes.get('time', 0)}")
    spec = (name, pretrained)
    if model is not None:
        spec = (getattr(model, "name", name), getattr(model, "pretrained", None))
    m = model if model is not None else cached_model(*spec)
    classes, cemb = _class_embeddings(*spec) if model is None else _class_embeddings_for(m)
    e = int(m.cfg["embed_dim"])
    data = cube.data if isinstance(cube.data, da.Array) else da.from_array(np.asarray(cube.data), chunks=(-1, -1, 256, 256))
    data = data.rechunk({0: -1, 1: -1})
    days = day_numbers(cube.time.values)
    sensors = sensor_codes(list(cube.sensor.values) if "sensor" in cube.coords else None, len(days))
    out = da.map_blocks(_block, data, spec=spec, model=model, bands=[str(b) for b in cube.band.values], days=days,
                        sensors=sensors, reference=float(days.min()), class_emb=cemb, dtype=np.float32,
                        drop_axis=[0, 1], new_axis=[0], chunks=((N_FIXED + e,),) + data.chunks[2:])
    prob = out[0]
    from rsvlm_temporal.classes import CHANGE_CLASSES, CHANGE_CODES
    from rsvlm_temporal.timeutil import days_to_datetime

    code_lut = np.array([CHANGE_CODES[c] for c in classes], np.uint8)
    wgt = prob + 0.02
    pix = out[N_FIXED:]
    scene = (pix * wgt[None]).sum(axis=(1, 2))
    scene = np.asarray(scene.compute(), np.float64)
    scene = scene / max(np.linalg.norm(scene), 1e-12)
    sims = cemb @ scene
    z = np.exp(100 * (sims - sims.max()))
    scores = {c: float(v) for c, v in zip(classes, z / z.sum())}
    date = da.map_blocks(days_to_datetime, out[1], dtype="datetime64[ns]")
    labels = da.map_blocks(lambda a: code_lut[np.nan_to_num(a).astype(np.int64)], out[2], dtype=np.uint8)
    names = {int(k): v for k, v in CHANGE_CLASSES.items()}
    pix_da = xr.DataArray(pix, dims=("embed", "y", "x"), coords={"y": cube.y, "x": cube.x},
                          attrs={k: cube.attrs[k] for k in ("crs", "epsg", "transform") if k in cube.attrs})
    return ModelOutputs(
        change_mask=_layer((prob > threshold).astype(np.uint8), cube, "model_change_mask", nodata=255,
                           class_names={0: "no_change", 1: "change"}),
        change_probability=_layer(prob, cube, "model_change_probability"),
        change_date=_layer(date, cube, "model_change_date"),
        labels=_layer(labels, cube, "model_labels", class_names=names, nodata=255),
        label_score=_layer(out[3], cube, "model_label_score"),
        pixel_embedding=pix_da, embedding=scene.astype(np.float32),
        scene_label=max(scores, key=scores.get), scene_scores=scores,
        model=spec[0], pretrained=spec[1])


def _class_embeddings_for(m: Any) -> tuple[tuple[str, ...], np.ndarray]:
    """Class prompt embeddings of a model object (not cached)."""
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

    from rsvlm_temporal.errors import ParameterError
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
