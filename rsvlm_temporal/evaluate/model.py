"""The temporal CLIP on real labelled data, through the model path: ``rsvlm eval``'s
``taizhou_kappa`` and ``levir_f1`` (the synthetic metrics: :mod:`rsvlm_temporal.train.evaluation`).

- taizhou_kappa: Kappa of the learned mask (probability > 0.5) on the labelled pixels of the real
  Landsat 7 ETM+ Taizhou pair (2000-03-17, 2003-02-06; DN -> approximate top-of-atmosphere
  reflectance, :func:`etm_toa_reflectance`), read as one 2-date Landsat series (``window=None``:
  the two dates lie in different calendar years). Far outside the training distribution (one-year,
  dense, synthetic series); reported as it is, nothing tuned on it;
- levir_f1: F1 of the change class of the learned mask on the 11 LEVIR-CD sample tiles (0.5 m
  Google Earth RGB, every pixel labelled; by default scored on every 2nd pixel of each axis, a
  regular quarter sample, pooled counts; the model reads each pixel on its own), through the
  RGB path: red / green / blue (sRGB linearised, :func:`srgb_to_linear`) and every other model
  band masked, two nominal dates one year apart (the real ones are not published per tile);
- both null with a reason (``reasons``) where the shared data is absent; ``real`` holds the details
  (OA, F1, counts, seconds, the conventions used).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rsvlm_temporal.errors import ParameterError
from rsvlm_temporal.evaluate.metrics import ConfusionCounts, confusion_counts
from rsvlm_temporal.evaluate.real import default_data_dir

__all__ = ["etm_toa_reflectance", "levir_model_score", "real_data_scores", "solar_elevation", "srgb_to_linear",
           "taizhou_model_score"]

SHARED_ENV = "RSVLM_SHARED_DATA"
#: Landsat 7 ETM+ L1 calibration (Chander, Markham & Helder 2009, Remote Sens. Environ. 113,
#: 893-903; high gain, QCAL 1-255): band -> (LMIN, LMAX) in W m-2 sr-1 um-1 for acquisitions
#: before / from 2000-07-01, and the exo-atmospheric solar irradiance ESUN (W m-2 um-1). Bands
#: are named as the model reads a Landsat date (ETM+ B4 -> nir08, as OLI B5 in ``load_cube``).
ETM_LMIN_LMAX: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "blue": ((-6.2, 194.3), (-6.2, 191.6)), "green": ((-6.0, 202.4), (-6.4, 196.5)),
    "red": ((-4.5, 158.6), (-5.0, 152.9)), "nir08": ((-4.5, 157.5), (-5.1, 157.4)),
    "swir16": ((-1.0, 31.76), (-1.0, 31.06)), "swir22": ((-0.35, 10.932), (-0.35, 10.80)),
}
ETM_ESUN: dict[str, float] = {"blue": 1997.0, "green": 1812.0, "red": 1533.0, "nir08": 1039.0,
                              "swir16": 230.8, "swir22": 84.90}
#: Landsat 7's descending node crosses the equator at 10:00 mean local time; about 10:15 at 32 N
LANDSAT7_LOCAL_SOLAR_HOUR = 10.25
LEVIR_NOMINAL_DATES = ("2019-06-01", "2020-06-01")


# ---------------------------------------------------------------------------------------------
# real data through the model path (Taizhou: Landsat series path; LEVIR-CD: RGB path)


def solar_elevation(date: dt.date, lat: float, local_solar_hour: float) -> float:
    """Approximate solar elevation (degrees) at ``local_solar_hour`` (0-24, local solar time) of
    ``date`` at latitude ``lat`` (degrees north). Cooper's declination, no equation of time:
    about 1-2 degrees, enough for a reflectance approximation."""
    doy = date.timetuple().tm_yday
    decl = np.radians(23.44) * np.sin(np.radians(360.0 / 365.0 * (284 + doy)))
    hour = np.radians(15.0 * (local_solar_hour - 12.0))
    phi = np.radians(lat)
    s = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour)
    return float(np.degrees(np.arcsin(np.clip(s, -1.0, 1.0))))


def etm_toa_reflectance(dn: np.ndarray, bands: Sequence[str], date: dt.date, sun_elevation: float
                        ) -> np.ndarray:
    """Landsat 7 ETM+ L1 digital numbers (band, y, x; 1-255, 0 = fill) -> top-of-atmosphere
    reflectance 0-1 (float32, NaN at fill): radiance from the high-gain LMIN/LMAX of
    :data:`ETM_LMIN_LMAX` (the scene's MTL with its gain states is not available), then
    pi L d^2 / (ESUN sin(sun elevation)). Not surface reflectance: no atmospheric correction."""
    if sun_elevation <= 0:
        raise ParameterError(f"sun elevation {sun_elevation} deg: expected > 0 for a daytime scene")
    unknown = [b for b in bands if b not in ETM_ESUN]
    if unknown:
        raise ParameterError(f"ETM+ bands {unknown} unknown; expected some of {list(ETM_ESUN)}")
    doy = date.timetuple().tm_yday
    d = 1.0 - 0.01672 * np.cos(np.radians(0.9856 * (doy - 4)))  # Earth-Sun distance, AU
    late = date >= dt.date(2000, 7, 1)
    q = np.asarray(dn, np.float64)
    out = np.empty(q.shape, np.float32)
    for i, b in enumerate(bands):
        lmin, lmax = ETM_LMIN_LMAX[b][int(late)]
        rad = (lmax - lmin) / 254.0 * (q[i] - 1.0) + lmin
        rho = np.pi * rad * d * d / (ETM_ESUN[b] * np.sin(np.radians(sun_elevation)))
        out[i] = np.where(q[i] > 0, rho, np.nan)
    return out


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """8-bit sRGB (0-255) -> linear 0-1 (IEC 61966-2-1), the RGB path's stand-in for reflectance."""
    c = np.asarray(v, np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _r(v: float) -> float | None:
    """``v`` rounded to 4 decimals; None where it is undefined (NaN: e.g. F1 of a tile with no
    change and no prediction)."""
    return None if not np.isfinite(v) else round(float(v), 4)


def _scores(c: ConfusionCounts) -> dict[str, Any]:
    """OA, Cohen's Kappa, F1 / precision / recall of the change class (None where undefined),
    and the counts."""
    return {"overall_accuracy": _r(c.overall_accuracy), "kappa": _r(c.kappa), "f1": _r(c.f1),
            "precision": _r(c.precision), "recall": _r(c.recall), "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn}


def _separation(prob: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Threshold-free view of the probability: its mean on changed / unchanged pixels and the ROC
    AUC (Mann-Whitney, ties averaged; None where a class is empty); nothing picks a threshold."""
    from scipy.stats import rankdata

    p, t = np.asarray(prob, np.float64).ravel(), np.asarray(truth, bool).ravel()
    n1, n0 = int(t.sum()), int((~t).sum())
    auc = (rankdata(p)[t].sum() - n1 * (n1 + 1) / 2) / (n1 * n0) if n1 and n0 else None
    return {"mean_probability_changed": round(float(p[t].mean()), 4) if n1 else None,
            "mean_probability_unchanged": round(float(p[~t].mean()), 4) if n0 else None,
            "auc": round(float(auc), 4) if auc is not None else None}


def _series_cube(values: np.ndarray, dates: Sequence[str], bands: Sequence[str], sensor: str | None,
                 attrs: dict[str, Any], ys: np.ndarray, xs: np.ndarray) -> Any:
    import xarray as xr

    coords: dict[str, Any] = {"time": np.array(dates, "datetime64[ns]"), "band": list(bands), "y": ys, "x": xs}
    if sensor:
        coords["sensor"] = ("time", [sensor] * len(dates))
    return xr.DataArray(values, dims=("time", "band", "y", "x"), coords=coords, attrs=attrs)


def taizhou_model_score(model: Any, data_dir: str | Path) -> dict[str, Any]:
    """The learned mask on the real Taizhou pair: OA / Kappa / F1 on the labelled pixels (4,227
    changed, 17,163 unchanged; the rest unscored). Read with rasterio's ENVI driver; DN -> TOA
    reflectance (:func:`etm_toa_reflectance`, sun elevation at the scene centre at 10:15 local
    solar time); one 2-date Landsat series through :func:`~rsvlm_temporal.model.inference.run_model`
    (``window=None``), mask = probability > 0.5. Nothing is tuned on the labels."""
    from pyproj import Transformer

    from rsvlm_temporal.evaluate.taizhou import load_taizhou
    from rsvlm_temporal.model.inference import run_model

    t0 = time.time()
    bands = ("blue", "green", "red", "nir08", "swir16", "swir22")  # ETM+ 1, 2, 3, 4, 5, 7
    dates = ("2000-03-17", "2003-02-06")  # from the scene ids in the ENVI band names
    before, after, ch, nc = load_taizhou(data_dir)
    if before.sizes["band"] != len(bands):
        raise ParameterError(f"the Taizhou rasters have {before.sizes['band']} bands; expected the 6 ETM+ bands 1-5, 7")
    h, w = before.shape[1:]
    t = before.attrs["transform"]
    cx, cy = t[0] * w / 2 + t[1] * h / 2 + t[2], t[3] * w / 2 + t[4] * h / 2 + t[5]
    _, lat = Transformer.from_crs(before.attrs["crs"], "EPSG:4326", always_xy=True).transform(cx, cy)
    vals, sun = [], []
    for img, day in zip((before, after), dates):
        date = dt.date.fromisoformat(day)
        sun.append(solar_elevation(date, lat, LANDSAT7_LOCAL_SOLAR_HOUR))
        vals.append(etm_toa_reflectance(np.asarray(img.values), bands, date, sun[-1]))
    changed, unchanged = np.asarray(ch.values), np.asarray(nc.values)
    cube = _series_cube(np.stack(vals), dates, bands, "landsat-c2-l2",
                        {k: before.attrs[k] for k in ("crs", "epsg", "transform", "resolution")},
                        before.y.values, before.x.values)
    out = run_model(cube, model=model, window=None, scene=False)
    pred = np.asarray(out.change_mask.values) == 1
    lab = changed | unchanged
    c = confusion_counts(pred[lab], changed[lab])
    prob = np.asarray(out.change_probability.values)[lab]
    return {**_scores(c), **_separation(prob, changed[lab]), "predicted_changed_fraction_all_pixels": round(float(pred.mean()), 4),
            "sun_elevation_deg": [round(v, 1) for v in sun], "dates": list(dates),
            "input": "ETM+ L1 DN -> TOA reflectance (high-gain LMIN/LMAX, ESUN, d, sun elevation; "
                     "no atmospheric correction); ETM+ B4 as nir08; sensor landsat-c2-l2; window=None",
            "seconds": round(time.time() - t0, 1)}


def levir_model_score(model: Any, data_dir: str | Path, stride: int = 1) -> dict[str, Any]:
    """The learned mask on the LEVIR-CD sample tiles through the RGB path: per tile A (before) and
    B (after) as a 2-date series of red / green / blue (linearised sRGB, :func:`srgb_to_linear`;
    every other model band masked; sensor unknown = Sentinel-2 code) on the nominal dates
    :data:`LEVIR_NOMINAL_DATES`; F1 / precision / recall of the change class from the counts
    pooled over the tiles. ``stride``: score every ``stride``-th pixel of each axis (1 = all)."""
    if stride < 1:
        raise ParameterError(f"LEVIR-CD stride {stride}: expected an integer >= 1 (1 = every pixel)")
    from rsvlm_temporal.evaluate.levir import levir_tiles, load_levir_tile
    from rsvlm_temporal.model.inference import run_model

    t0 = time.time()
    names = levir_tiles(data_dir)
    xs, labels = [], []
    for name in names:
        a, b, label = load_levir_tile(data_dir, name)
        labels.append(label[::stride, ::stride])
        xs.append(np.stack([srgb_to_linear(np.asarray(img.values)[:, ::stride, ::stride]) for img in (a, b)]))
    # the tiles side by side along x: one cube, one run (the model reads each pixel on its own)
    x, label = np.concatenate(xs, axis=3), np.concatenate(labels, axis=1)
    h, w = label.shape
    cube = _series_cube(x, LEVIR_NOMINAL_DATES, ("red", "green", "blue"), None,
                        {"resolution": (0.5 * stride, 0.5 * stride)}, np.arange(h, dtype=float),
                        np.arange(w, dtype=float))
    out = run_model(cube, model=model, window=None, scene=False)
    prob = np.asarray(out.change_probability.values)
    pred = np.asarray(out.change_mask.values) == 1
    total, per_tile, x0 = confusion_counts(pred, label), {}, 0
    for name, lab in zip(names, labels):
        per_tile[name] = _r(confusion_counts(pred[:, x0:x0 + lab.shape[1]], lab).f1)
        x0 += lab.shape[1]
    return {**_scores(total), **_separation(prob, label), "tiles": len(names), "f1_per_tile": per_tile, "stride": stride,
            "dates": list(LEVIR_NOMINAL_DATES),
            "input": "sRGB 8-bit -> linear 0-1 as red/green/blue reflectance; other bands masked; window=None",
            "seconds": round(time.time() - t0, 1)}


def real_data_scores(model: Any, shared_data: str | Path | None = None, levir_stride: int = 1
                     ) -> dict[str, Any]:
    """``{"taizhou_kappa", "levir_f1", "reasons", "real"}``: the two real-data scores of ``model``
    (None with a reason where the data is absent), and their details. ``levir_stride``: see
    :func:`levir_model_score` (1 = every pixel, the ``rsvlm eval`` default)."""
    data = Path(shared_data) if shared_data else default_data_dir()
    res: dict[str, Any] = {"taizhou_kappa": None, "levir_f1": None, "reasons": {}, "real": {}}
    for key, sub, fn, metric in (("taizhou_kappa", "landsat_taizhou_cd", taizhou_model_score, "kappa"),
                                 ("levir_f1", "levir-cd_samples", levir_model_score, "f1")):
        if not (data / sub).is_dir():
            res["reasons"][key] = f"data absent: {data / sub} not found (set ${SHARED_ENV})"
            continue
        r = fn(model, data / sub, **({"stride": levir_stride} if key == "levir_f1" else {}))
        res[key] = r[metric]
        res["real"][key.split("_")[0]] = r
    return res
