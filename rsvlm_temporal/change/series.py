"""Per-pixel change over a time series: what changed, when, and how strongly.

The kernel runs on one spatial block with the whole time axis (numpy, vectorised over pixels):

1. Spectral indices per clear observation (NDVI, NBR, MNDWI, NDBI).
2. A seasonal baseline per observation: the median of the monthly composites of the same
   month +-1 in the previous year. Comparing like seasons keeps crop cycles and phenology out
   of the change (a field that is bare every winter is not "vegetation loss" each winter).
3. Per test (vegetation drop, NBR drop, new water, built-up gain, vegetation gain) the first
   date of a persistent deviation: one that holds for ``persistence`` consecutive clear
   observations (clouds skipped), so a single cloudy or noisy date is never a change.
4. The class of the earliest persistent change, from the tests and what replaced the surface:
   the endmember (burned, bare soil, built-up) whose fraction grew most by linear unmixing.
5. Burn severity (dNBR, Key & Benson classes) for burned and vegetated pixels, flood onset and
   recession dates, permanent water, a per-pixel confidence.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..classes import BURN_SEVERITY_BOUNDS, CHANGE_CODES

#: output layers of the kernel, in order (all float32 rasters; dates in days since 1970-01-01)
LAYERS = (
    "change_class", "change_date", "confidence", "burn_severity", "dnbr", "flood_onset",
    "flood_recession", "permanent_water", "vegetated_before", "clear_count",
)


@dataclass(frozen=True)
class SeriesParams:
    """Thresholds of the time-series change tests (index units, unitless; days)."""

    persistence: int = 3  #: consecutive clear observations a change must hold
    flood_persistence: int = 2  #: floods are short: fewer observations suffice
    gain_persistence: int = 9  #: regrowth is slow and lasting; shorter gains are phenology shifts
    ndvi_drop: float = 0.15  #: NDVI below its seasonal baseline by more than this
    ndvi_gain: float = 0.15
    nbr_drop: float = 0.10  #: dNBR lower bound of "low severity" (Key & Benson 2006)
    ndbi_gain: float = 0.08
    water_mndwi: float = 0.0  #: MNDWI > 0 is open water (Xu 2006)
    permanent_water_fraction: float = 0.75  #: water in this share of clear observations
    vegetated_ndvi: float = 0.3  #: NDVI baseline above this counts as vegetated
    baseline_months: int = 1  #: +- months around the same month of the previous year
    bands: tuple[str, ...] = field(default=("blue", "green", "red", "nir", "swir16", "swir22"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: endmembers of the linear unmixing of pre/post spectra (rows of the spectral library)
ENDMEMBERS = ("forest", "bare_soil", "built_up", "burned", "water_clear")


def endmember_matrix(band_names: tuple[str, ...]) -> np.ndarray:
    """(n_endmembers, n_bands) reflectance of :data:`ENDMEMBERS` at the bands' centre wavelengths
    (published library spectra, see :mod:`rsvlm_temporal.synth.spectra`)."""
    from ..synth.spectra import signature_matrix, MATERIALS

    full = signature_matrix("sentinel-2-l2a", list(band_names))
    return np.stack([full[MATERIALS.index(m)] for m in ENDMEMBERS]).astype(np.float32)


def unmix(spectra: np.ndarray, endmembers: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Fractions (E, P) of spectra (B, P) by least squares with a sum-to-one row (weight
    ``weight``), the linear mixing model of Adams, Smith & Johnson (1986)."""
    a = np.vstack([endmembers.T, weight * np.ones((1, endmembers.shape[0]))])  # (B+1, E)
    rhs = np.vstack([spectra, weight * np.ones((1, spectra.shape[1]))])
    return np.linalg.lstsq(a, np.nan_to_num(rhs), rcond=None)[0]


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a + b
        return np.where(s != 0, (a - b) / s, np.nan).astype(np.float32)


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)


def _first_persistent(flag: np.ndarray, valid: np.ndarray, n: int, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First valid time whose flag holds for ``n`` consecutive valid observations.

    flag, valid: (T, P) bool. Returns (index (P,) int, -1 where none; date (P,) float days, NaN).
    """
    T, P = flag.shape
    run = np.zeros(P, np.int32)
    runs = np.zeros((T, P), np.int32)
    for t in range(T - 1, -1, -1):
        v = valid[t]
        run = np.where(v, np.where(flag[t], run + 1, 0), run)
        runs[t] = np.where(v, run, 0)
    hit = (runs >= n) & valid & flag
    any_hit = hit.any(axis=0)
    idx = np.where(any_hit, np.argmax(hit, axis=0), -1)
    date = np.where(any_hit, days[np.clip(idx, 0, T - 1)], np.nan).astype(np.float32)
    return idx, date


def _post_median(values: np.ndarray, valid: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Median of the first ``n`` valid observations from index ``idx`` on, per pixel.

    values: (T, P) or (T, B, P); idx: (P,) with -1 = none (-> NaN).
    """
    T = valid.shape[0]
    order = np.cumsum(valid, axis=0)  # rank of each valid obs (1-based)
    start_rank = np.where(idx >= 0, order[np.clip(idx, 0, T - 1), np.arange(valid.shape[1])], 0)
    sel = valid & (order >= start_rank) & (order < start_rank + n) & (idx >= 0)
    if values.ndim == 3:
        sel = sel[:, None, :]
    return _nanmedian(np.where(sel, values, np.nan), axis=0)


def _pre_median(values: np.ndarray, valid: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Median of the last ``n`` valid observations before index ``idx``, per pixel (NaN none)."""
    T = valid.shape[0]
    order = np.cumsum(valid, axis=0)
    start_rank = np.where(idx >= 0, order[np.clip(idx, 0, T - 1), np.arange(valid.shape[1])], 0)
    sel = valid & (order < start_rank) & (order >= start_rank - n) & (idx >= 0)
    return _nanmedian(np.where(sel[:, None, :], values, np.nan), axis=0)


def _severity(dnbr: np.ndarray) -> np.ndarray:
    out = np.zeros(dnbr.shape, np.float32)
    for code, lower in sorted(BURN_SEVERITY_BOUNDS.items()):
        out = np.where(dnbr >= lower, code, out)
    return np.where(np.isfinite(dnbr), out, 0).astype(np.float32)


def series_kernel(refl: np.ndarray, days: np.ndarray, months: np.ndarray, params: SeriesParams,
                  band_names: tuple[str, ...]) -> np.ndarray:
    """Change layers of one block.

    refl: (T, B, Y, X) float32 reflectance, NaN where not clear; days: (T,) days since
    1970-01-01; months: (T,) month index (year*12 + month-1). Returns (len(LAYERS), Y, X) float32.
    """
    T, B, Y, X = refl.shape
    P = Y * X
    r = refl.reshape(T, B, P)
    bi = {b: i for i, b in enumerate(band_names)}
    valid = np.isfinite(r).all(axis=1)
    nir, red, green = r[:, bi["nir"]], r[:, bi["red"]], r[:, bi["green"]]
    sw1, sw2 = r[:, bi["swir16"]], r[:, bi["swir22"]]
    idx = {
        "ndvi": _nd(nir, red), "nbr": _nd(nir, sw2), "mndwi": _nd(green, sw1), "ndbi": _nd(sw1, nir),
    }

    # monthly composites (median of clear obs) -> same-season baseline from the previous year
    umonths = np.unique(months)
    comp = {k: np.full((len(umonths), P), np.nan, np.float32) for k in idx}
    for j, m in enumerate(umonths):
        sel = months == m
        for k, v in idx.items():
            comp[k][j] = _nanmedian(v[sel], axis=0)
    pos = {m: j for j, m in enumerate(umonths)}
    base = {k: np.full((T, P), np.nan, np.float32) for k in idx}
    w = params.baseline_months
    for t in range(T):
        prev = [pos[m] for m in range(months[t] - 12 - w, months[t] - 12 + w + 1) if m in pos]
        if prev:
            for k in idx:
                base[k][t] = _nanmedian(comp[k][prev], axis=0)
    has_base = np.isfinite(base["ndvi"]) & valid
    d = {k: idx[k] - base[k] for k in idx}

    water = idx["mndwi"] > params.water_mndwi
    clear_count = valid.sum(axis=0)
    water_frac = np.where(clear_count > 0, (water & valid).sum(axis=0) / np.maximum(clear_count, 1), 0)
    permanent = water_frac >= params.permanent_water_fraction

    with np.errstate(invalid="ignore"):
        tests = {
            "flood": water & (base["mndwi"] <= params.water_mndwi),
            "burn": d["nbr"] < -params.nbr_drop,
            "built": (d["ndbi"] > params.ndbi_gain) & (d["ndvi"] < -params.ndvi_drop / 2),
            "loss": d["ndvi"] < -params.ndvi_drop,
            "gain": (d["ndvi"] > params.ndvi_gain) & (idx["ndvi"] > params.vegetated_ndvi),
        }
    first: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k, f in tests.items():
        n = {"flood": params.flood_persistence, "gain": params.gain_persistence}.get(k, params.persistence)
        first[k] = _first_persistent(f & has_base, has_base, n, days.astype(np.float32))

    # what replaced the surface at the vegetation / NBR break: the endmember whose fraction
    # grew most between the spectra before and after (linear unmixing)
    drop_idx = np.full(P, -1)
    for k in ("burn", "loss", "built"):
        i = first[k][0]
        drop_idx = np.where((i >= 0) & ((drop_idx < 0) | (i < drop_idx)), i, drop_idx)
    em = endmember_matrix(band_names)
    post = _post_median(r, valid, drop_idx, params.persistence)  # (B, P)
    pre = _pre_median(r, valid, drop_idx, 2 * params.persistence)
    gain = unmix(post, em) - unmix(pre, em)
    cand_em = [ENDMEMBERS.index(m) for m in ("bare_soil", "built_up", "burned")]
    post_state = np.array(["bare_soil", "built_up", "burned"])[np.argmax(gain[cand_em], axis=0)]

    base_ndvi0 = _nanmedian(np.where(has_base, base["ndvi"], np.nan), axis=0)
    vegetated = base_ndvi0 >= params.vegetated_ndvi

    # class of the earliest persistent change; ties resolved flood > burn > built > loss > gain
    cls = np.zeros(P, np.float32)
    date = np.full(P, np.nan, np.float32)
    big = np.float32(1e9)
    when = {k: np.where(np.isfinite(first[k][1]), first[k][1], big) for k in first}
    land = ~permanent  # permanent water: tiny reflectances make land indices pure noise
    burn_ok = (when["burn"] < big) & (post_state == "burned") & vegetated & land
    built_ok = (np.minimum(when["built"], when["loss"]) < big) & (post_state == "built_up") & land
    loss_ok = (when["loss"] < big) & ~burn_ok & ~built_ok & land
    cand = [
        ("flood", (when["flood"] < big) & ~permanent, when["flood"]),
        ("burn", burn_ok, when["burn"]),
        ("built_up_gain", built_ok, np.minimum(when["built"], when["loss"])),
        ("vegetation_loss", loss_ok, np.minimum(when["loss"], when["burn"])),
        ("vegetation_gain", (when["gain"] < big) & land, when["gain"]),
    ]
    best = np.full(P, big)
    for name, ok, w_ in cand:
        take = ok & (w_ < best)
        cls = np.where(take, CHANGE_CODES[name], cls)
        date = np.where(take, w_, date)
        best = np.where(take, w_, best)

    # burn severity: dNBR = baseline NBR - post NBR at the NBR break (vegetated pixels only)
    post_nbr = _post_median(idx["nbr"], valid, first["burn"][0], params.persistence)
    base_nbr = _post_median(base["nbr"], valid, first["burn"][0], params.persistence)
    dnbr = np.where(cls == CHANGE_CODES["burn"], base_nbr - post_nbr, np.nan).astype(np.float32)
    severity = np.where(cls == CHANGE_CODES["burn"], _severity(dnbr),
                        np.where(vegetated, 2.0, 0.0)).astype(np.float32)  # 2 unburned, 0 not assessed

    # flood recession: first persistent return to dry land after the onset
    fi = first["flood"][0]
    after_onset = np.arange(T)[:, None] > fi[None, :]
    dry = ~water & after_onset & (fi >= 0)[None]
    _, recession = _first_persistent(dry & valid, valid, params.flood_persistence, days.astype(np.float32))
    is_flood = cls == CHANGE_CODES["flood"]

    # confidence: how far past its threshold the deciding index went, averaged over the run
    margin = np.clip(np.abs(np.nan_to_num(_post_median(d["ndvi"], valid, np.where(np.isfinite(date), drop_idx, -1),
                                                         params.persistence))) / (2 * params.ndvi_drop), 0, 1)
    conf = np.where(cls > 0, 0.5 + 0.5 * np.maximum(margin, is_flood.astype(np.float32)), 0).astype(np.float32)

    out = np.stack([
        cls, date, conf, severity, dnbr,
        np.where(is_flood, first["flood"][1], np.nan), np.where(is_flood, recession, np.nan),
        permanent.astype(np.float32), vegetated.astype(np.float32), clear_count.astype(np.float32),
    ]).astype(np.float32)
    out[:, clear_count == 0] = np.nan
    return out.reshape(len(LAYERS), Y, X)
