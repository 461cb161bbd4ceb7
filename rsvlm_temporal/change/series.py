"""Per-pixel change over a time series: what changed, when, and how strongly.

The kernel runs on one spatial block with the whole time axis (numpy, vectorised over pixels):

1. Spectral indices per clear observation (NDVI, NBR, MNDWI, NDBI).
2. A seasonal baseline per observation: the previous year's clear observations within
   +-``baseline_window_days`` of the same day of year, as an envelope (lowest, median, highest).
   Comparing like seasons keeps crop cycles and phenology out of the change (a field that is
   bare every winter is not "vegetation loss" each winter), and asking a change to leave the
   whole envelope tolerates a crop sown or harvested a couple of weeks earlier than last year.
   A vegetation loss must also fall below the lowest same-season NDVI of every previous year
   (up to ``baseline_years``): a crop's trough recurs each year, and one year's few clear views
   may have missed it.
3. Per test (vegetation drop, NBR drop, new water, built-up gain, vegetation gain) the first
   date of a persistent deviation: one that holds for ``persistence`` consecutive clear
   observations (clouds skipped), so a single cloudy or noisy date is never a change.
4. The class of the earliest persistent change, from the tests and what replaced the surface:
   the endmember (burned, bare soil, built-up) whose fraction grew most by linear unmixing.
   A flood is new water on a dry baseline: besides the same season of the previous year, the
   pixel showed open water in at most ``max_prior_water_share`` of its clear views of the
   ``dry_baseline_days`` before (a shore or mixed pixel that one sensor sees as water and another
   as land is intermittent water, not a flood whenever the baseline window holds only the latter).
5. Burn severity (dNBR, Key & Benson classes) for burned and vegetated pixels, flood onset and
   recession dates, permanent water, a per-pixel confidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rsvlm_temporal.change.spectra import MATERIALS, signature_matrix
from rsvlm_temporal.change.unmixing import fcls
from rsvlm_temporal.classes import BURN_SEVERITY_BOUNDS, CHANGE_CODES
from rsvlm_temporal.compute.nanstats import nan_envelope, nanmedian

#: output layers of the kernel, in order (all float32 rasters; dates in days since 1970-01-01)
LAYERS = (
    "change_class", "change_date", "confidence", "burn_severity", "dnbr", "flood_onset",
    "flood_recession", "permanent_water", "vegetated_before", "clear_count",
)


@dataclass(frozen=True)
class SeriesParams:
    """Thresholds of the time-series change tests (index units, unitless; days)."""

    persistence: int = 3  #: consecutive clear observations a change must hold
    flood_persistence: int = 1  #: floods last days to weeks: one clear date of new water suffices
    recession_persistence: int = 2  #: clear dry observations in a row that end a flood
    gain_persistence: int = 9  #: regrowth is slow and lasting; shorter gains are phenology shifts
    ndvi_drop: float = 0.15  #: NDVI below its seasonal baseline by more than this
    ndvi_gain: float = 0.15
    nbr_drop: float = 0.10  #: dNBR lower bound of "low severity" (Key & Benson 2006)
    nir_drop: float = 0.08  #: a fire lowers NIR reflectance by at least this share
    ndbi_gain: float = 0.08
    water_index: float = 0.0  #: (MNDWI + NDWI) / 2 above this is open water
    min_fraction_gain: float = 0.1  #: unmixed fraction a replacing surface must gain at a break
    min_built_gain: float = 0.4  #: built-up fraction gained by the end of the series for "built-up gain"
    max_unmixing_rms: float = 0.015  #: reflectance misfit above which a spectrum is not trusted to name a surface
    spectral_departure: float = 0.02  #: reflectance (RMS over bands) outside the baseline's range
    spectral_departure_onset: float = 0.006  #: the same, for dating the start of a detected change
    permanent_water_fraction: float = 0.75  #: water in this share of clear observations
    vegetated_ndvi: float = 0.3  #: NDVI baseline above this counts as vegetated
    baseline_window_days: int = 24  #: +- days around the same day of the previous year (phenology shifts)
    #: previous years whose same-season lowest NDVI a vegetation loss must fall below (a crop's
    #: trough repeats every year: one year's few clear views may miss it, the years together do not)
    baseline_years: int = 3
    dry_baseline_days: int = 365  #: a flood is new water on land dry over this many days before it
    #: open water in more than this share of the clear views of ``dry_baseline_days`` before: the
    #: pixel is intermittent water (a shore, a pond, a mixed pixel), never a dry baseline for a flood
    max_prior_water_share: float = 0.05
    bands: tuple[str, ...] = field(default=("blue", "green", "red", "nir", "swir16", "swir22"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: endmembers of the linear unmixing of pre/post spectra (rows of the spectral library)
ENDMEMBERS = ("forest", "dry_vegetation", "bare_soil", "built_up", "burned", "water_clear")
#: what may replace vegetation at a break (the rest of a clearing or harvest is bare soil or slash)
REPLACING = ("bare_soil", "dry_vegetation", "built_up", "burned")


def endmember_matrix(band_names: tuple[str, ...]) -> np.ndarray:
    """(n_endmembers, n_bands) reflectance of :data:`ENDMEMBERS` at the bands' centre wavelengths
    (published library spectra, see :mod:`rsvlm_temporal.change.spectra`)."""
    full = signature_matrix("sentinel-2-l2a", list(band_names))
    return np.stack([full[MATERIALS.index(m)] for m in ENDMEMBERS]).astype(np.float32)


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a + b
        return np.where(s != 0, (a - b) / s, np.nan).astype(np.float32)


def _first_persistent(flag: np.ndarray, valid: np.ndarray, n: int, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First valid time whose flag holds for ``n`` consecutive valid observations.

    flag, valid: (T, P) bool. Returns (index (P,) int, -1 where none; date (P,) float days, NaN).
    """
    T, P = flag.shape
    run = np.zeros(P, np.int32)
    runs = np.zeros((T, P), np.int32)
    for t in range(T - 1, -1, -1):
        v = valid[t]
        run = np.where(v, (run + 1) * flag[t], run)  # a valid obs extends the run or ends it
        np.multiply(run, v, out=runs[t])
    # a run of n >= 1 starts at a valid flagged observation
    hit = runs >= n if n >= 1 else (runs >= n) & valid & flag
    any_hit = hit.any(axis=0)
    idx = np.where(any_hit, np.argmax(hit, axis=0), -1)
    date = np.where(any_hit, days[np.clip(idx, 0, T - 1)], np.nan).astype(np.float32)
    return idx, date


def _run_start(elevated: np.ndarray, valid: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Start of the run of valid ``elevated`` observations that ends at index ``idx`` (per pixel;
    invalid observations are skipped, -1 stays -1). elevated, valid: (T, P) bool; idx: (P,)."""
    T, P = valid.shape
    t = np.arange(T)[:, None]
    calm = np.where(valid & ~elevated, t, -1)
    last_calm = np.maximum.accumulate(calm, axis=0)  # last calm valid obs at or before t
    nxt = np.where(valid, t, T)
    next_valid = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]  # first valid obs at or after t
    i = np.clip(idx, 0, T - 1)
    cols = np.arange(P)
    k = last_calm[i, cols]
    start = np.where(k < i, next_valid[np.clip(k + 1, 0, T - 1), cols], i)
    start = np.where(k == i, i, start)  # the detection itself is calm: date it there
    return np.where(idx >= 0, np.minimum(start, i), -1)


def _post_median(values: np.ndarray, valid: np.ndarray, idx: np.ndarray, n: int,
                 order: np.ndarray | None = None) -> np.ndarray:
    """Median of the first ``n`` valid observations from index ``idx`` on, per pixel.

    values: (T, P) or (T, B, P); idx: (P,) with -1 = none (-> NaN); order: ``cumsum(valid,
    axis=0)`` when the caller has it (the rank of each valid observation, 1-based).
    """
    T = valid.shape[0]
    if order is None:
        order = np.cumsum(valid, axis=0)  # rank of each valid obs (1-based)
    start_rank = np.where(idx >= 0, order[np.clip(idx, 0, T - 1), np.arange(valid.shape[1])], 0)
    sel = valid & (order >= start_rank) & (order < start_rank + n) & (idx >= 0)
    return _median_of_selected(values, sel, order - start_rank, n)


def _median_of_selected(values: np.ndarray, sel: np.ndarray, slot: np.ndarray, n: int) -> np.ndarray:
    """NaN-median over axis 0 of ``values`` (T, P) or (T, B, P) where ``sel`` (T, P), at most
    ``n`` per pixel: the selected values are first moved to their ``slot`` (T, P: 0..n-1) of an
    (n, ...) array, so the median sorts n values, not T (the same values: the same median)."""
    out = np.full((n,) + values.shape[1:], np.nan, np.result_type(values.dtype, np.float32))
    ti, pi = np.nonzero(sel)
    if values.ndim == 3:
        out[slot[ti, pi], :, pi] = values[ti, :, pi]
    else:
        out[slot[ti, pi], pi] = values[ti, pi]
    return nanmedian(out, axis=0)


def _last_median(values: np.ndarray, valid: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Median of the last ``n`` valid observations of the series (B, P), for pixels with idx >= 0."""
    order = np.cumsum(valid[::-1], axis=0)[::-1]  # rank from the end (1 = last valid)
    sel = valid & (order <= n) & (idx >= 0)
    return _median_of_selected(values, sel, order - 1, n)


def _seasonal_envelope(v: np.ndarray, valid: np.ndarray, days: np.ndarray, window: int,
                       lag: int = 365) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lowest, median and highest clear value of ``v`` (T, ...) among the observations ``lag``
    +- ``window`` days before each observation (each (T, ...), NaN where there is none).
    valid: (T, P) with P the last axis of ``v``; all series of ``v`` share one sort per date."""
    T = v.shape[0]
    x = np.where(valid.reshape(valid.shape[:1] + (1,) * (v.ndim - 2) + valid.shape[1:]), v, np.nan)
    lo, mid, hi = (np.full(v.shape, np.nan, np.float32) for _ in range(3))
    starts = np.searchsorted(days, days - lag - window, side="left")
    stops = np.searchsorted(days, days - lag + window, side="right")
    for t in range(T):
        if stops[t] > starts[t]:
            lo[t], mid[t], hi[t] = nan_envelope(x[starts[t]:stops[t]], axis=0)
    return lo, mid, hi


def _multi_year_low(v: np.ndarray, valid: np.ndarray, days: np.ndarray, window: int, years: int,
                    first: np.ndarray) -> np.ndarray:
    """Lowest clear value of ``v`` (T, P) within +- ``window`` days of the same date in each of the
    previous ``years`` years (``first``: the previous year's lowest, already computed), NaN none."""
    low = first.copy()
    for k in range(2, years + 1):
        lo_k = _seasonal_envelope(v, valid, days, window, lag=365 * k)[0]
        low = np.where(np.isfinite(lo_k), np.fmin(low, lo_k), low)
    return low


def _prior_share(flag: np.ndarray, valid: np.ndarray, days: np.ndarray, span: int) -> np.ndarray:
    """Share (0-1) of the clear observations of the ``span`` days before each date (that date
    excluded) with ``flag`` (T, P); NaN where there is none."""
    z = np.zeros((1,) + valid.shape[1:])
    n_valid = np.concatenate([z, np.cumsum(valid, axis=0)])
    n_flag = np.concatenate([z, np.cumsum(flag & valid, axis=0)])
    lo = np.searchsorted(days, days - span, side="left")
    hi = np.searchsorted(days, days, side="left")  # observations strictly before each date
    count = n_valid[hi] - n_valid[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (n_flag[hi] - n_flag[lo]) / np.maximum(count, 1), np.nan)


def _fcls_at(spectra: np.ndarray, em: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fcls` of the pixels ``cols`` of ``spectra`` (B, P); NaN fractions and residual
    elsewhere (what fcls gives a NaN spectrum): the unmixing runs only where a break was found."""
    frac = np.full((em.shape[0], spectra.shape[1]), np.nan)
    rms = np.full(spectra.shape[1], np.nan)
    if cols.size:
        frac[:, cols], rms[cols] = fcls(spectra[:, cols], em)
    return frac, rms


def _severity(dnbr: np.ndarray) -> np.ndarray:
    out = np.zeros(dnbr.shape, np.float32)
    for code, lower in sorted(BURN_SEVERITY_BOUNDS.items()):
        out = np.where(dnbr >= lower, code, out)
    return np.where(np.isfinite(dnbr), out, 0).astype(np.float32)


def series_kernel(refl: np.ndarray, days: np.ndarray, params: SeriesParams,
                  band_names: tuple[str, ...], fine_bands: tuple[str, ...] | None = None) -> np.ndarray:
    """Change layers of one block.

    refl: (T, B, Y, X) float32 reflectance, NaN where not clear; days: (T,) days since
    1970-01-01, sorted; fine_bands: the bands sampled at the analysis resolution (default all),
    on which the spectral departure is measured, so that a coarser band straddling a change next
    door (Sentinel-2's 20 m SWIR in a 10 m cube) does not date one here. Returns
    (len(LAYERS), Y, X) float32.
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
        "ndwi": _nd(green, nir), "nir": nir,
    }
    # open water: the mean of MNDWI (Xu 2006) and NDWI (McFeeters 1996) above 0. Both are > 0 on
    # open water; a shore pixel whose 20 m SWIR band straddles dry land keeps the 10 m NDWI evidence
    idx["water"] = 0.5 * (idx["mndwi"] + idx["ndwi"])

    # same-season baseline: the previous year's clear observations within +-window days of the
    # same day of year, as an envelope (lowest, median, highest) of each series the tests use
    keys = ("ndvi", "nbr", "ndbi", "nir", "water")
    stacked = np.concatenate([np.stack([idx[k] for k in keys], axis=1), r], axis=1)  # (T, K + B, P)
    s_lo, s_mid, s_hi = _seasonal_envelope(stacked, valid, days, params.baseline_window_days)
    lo, mid, hi = ({k: e[:, i] for i, k in enumerate(keys)} for e in (s_lo, s_mid, s_hi))
    has_base = np.isfinite(mid["ndvi"]) & valid
    # distance (reflectance, RMS over bands) of each spectrum outside the baseline's per-band range
    b_lo, base_spectra, b_hi = (e[:, len(keys):] for e in (s_lo, s_mid, s_hi))  # (T, B, P)
    fine = [bi[b] for b in (fine_bands or band_names)]
    excess = np.maximum(np.maximum(b_lo[:, fine] - r[:, fine], r[:, fine] - b_hi[:, fine]), 0)
    outside = np.square(excess).sum(axis=1)
    departure = np.sqrt(outside / len(fine))

    water = idx["water"] > params.water_index
    clear_count = valid.sum(axis=0)
    water_frac = np.where(clear_count > 0, (water & valid).sum(axis=0) / np.maximum(clear_count, 1), 0)
    permanent = water_frac >= params.permanent_water_fraction
    prior_water = _prior_share(water, valid, days, params.dry_baseline_days)
    ndvi_low = _multi_year_low(idx["ndvi"], valid, days, params.baseline_window_days,
                               params.baseline_years, lo["ndvi"])

    # a change leaves the whole envelope: a crop sown or harvested a few days earlier than last
    # year stays inside it, a clearing or a fire does not
    with np.errstate(invalid="ignore"):
        tests = {
            "flood": water & (hi["water"] <= params.water_index) & (prior_water <= params.max_prior_water_share),
            # dNBR against the usual pre-fire NBR, with the NIR drop of lost foliage: a SWIR rise
            # alone is no fire (e.g. a 20 m SWIR pixel straddling a clearing next door)
            "burn": (idx["nbr"] < mid["nbr"] - params.nbr_drop) & (idx["nir"] < (1 - params.nir_drop) * mid["nir"]),
            "built": (idx["ndbi"] > hi["ndbi"] + params.ndbi_gain) & (idx["ndvi"] < lo["ndvi"] - params.ndvi_drop / 2),
            "loss": idx["ndvi"] < ndvi_low - params.ndvi_drop,
            "gain": (idx["ndvi"] > hi["ndvi"] + params.ndvi_gain) & (idx["ndvi"] > params.vegetated_ndvi),
            # any surface change, for the date and for changes no index isolates (fallow -> built)
            "spectral": departure > params.spectral_departure,
        }
    first: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k, f in tests.items():
        n = {"flood": params.flood_persistence, "gain": params.gain_persistence}.get(k, params.persistence)
        first[k] = _first_persistent(f & has_base, has_base, n, days.astype(np.float32))
    # construction starts small (a site cleared, a first slab) and grows for months: its date is
    # the start of the run of clear observations off the baseline that leads into the detection
    # (hysteresis: detect at the test's threshold, date at a lower one). Fires, clearings and
    # floods are abrupt and dated by their own test.
    elevated = departure > params.spectral_departure_onset
    onset = {}
    for k in ("built", "loss", "spectral"):
        start = _run_start(elevated, has_base, first[k][0])
        onset[k] = np.where(start >= 0, days[np.clip(start, 0, T - 1)], np.inf)

    # what replaced the surface at the vegetation / NBR break: fully constrained unmixing of the
    # spectra before and after it; the fraction each surface gained
    drop_idx = np.full(P, -1)
    for k in ("burn", "loss", "built"):
        i = first[k][0]
        drop_idx = np.where((i >= 0) & ((drop_idx < 0) | (i < drop_idx)), i, drop_idx)
    drop_idx = np.where(drop_idx < 0, first["spectral"][0], drop_idx)  # no index moved: any change
    em = endmember_matrix(band_names)
    # before: the same season of the previous year (a change that began unseen months earlier,
    # e.g. a site built on a bare winter field, is not part of "before")
    cols = np.arange(P)
    pre = np.where(drop_idx >= 0, base_spectra[np.clip(drop_idx, 0, T - 1), :, cols].T, np.nan)  # (B, P)
    rank = np.cumsum(valid, axis=0)  # shared by every _post_median below
    post = _post_median(r, valid, drop_idx, params.persistence, rank)
    broke = np.flatnonzero(drop_idx >= 0)  # elsewhere pre, post and late are NaN: so is fcls
    f_pre = _fcls_at(pre, em, broke)[0]
    gain = _fcls_at(post, em, broke)[0] - f_pre
    # what stands there at the end of the series (a building site becomes built-up over months)
    f_late, late_rms = _fcls_at(_last_median(r, valid, drop_idx, params.persistence), em, broke)
    late = f_late - f_pre
    g = {m: np.nan_to_num(gain[ENDMEMBERS.index(m)]) for m in ENDMEMBERS}
    g_late = {m: np.nan_to_num(late[ENDMEMBERS.index(m)]) for m in ENDMEMBERS}

    base_ndvi0 = nanmedian(np.where(has_base, mid["ndvi"], np.nan), axis=0)
    vegetated = base_ndvi0 >= params.vegetated_ndvi

    # class of the earliest persistent change; ties resolved flood > burn > built > loss > gain
    cls = np.zeros(P, np.float32)
    date = np.full(P, np.nan, np.float32)
    big = np.float32(1e9)
    when = {k: np.where(np.isfinite(first[k][1]), first[k][1], big) for k in first}
    land = ~permanent  # permanent water: tiny reflectances make land indices pure noise
    need = params.min_fraction_gain
    burn_ok = (when["burn"] < big) & (g["burned"] >= need) & vegetated & land
    built_gain = g_late["built_up"]
    built_when = np.minimum(np.minimum(onset["built"], when["loss"]), onset["spectral"]).astype(np.float32)
    built_ok = ((built_when < big) & (built_gain >= params.min_built_gain) & (np.nan_to_num(late_rms, nan=1.0) <= params.max_unmixing_rms) &
                (built_gain >= np.maximum(g_late["bare_soil"], g_late["dry_vegetation"])) & land & ~burn_ok)
    loss_ok = (when["loss"] < big) & ~burn_ok & ~built_ok & land
    # an NBR break dates a vegetation loss only when it is part of the same event: inside the run
    # of observations off the baseline that leads into the loss (a crop that senesced early two
    # years before a flood killed it is not the date of that loss)
    burn_leads = (when["burn"] <= when["loss"]) & (when["burn"] >= onset["loss"])
    loss_when = np.where(burn_leads, when["burn"], when["loss"])
    cand = [
        ("flood", (when["flood"] < big) & ~permanent, when["flood"]),
        ("burn", burn_ok, when["burn"]),
        ("built_up_gain", built_ok, built_when),
        ("vegetation_loss", loss_ok, loss_when),
        ("vegetation_gain", (when["gain"] < big) & land, when["gain"]),
    ]
    best = np.full(P, big)
    for name, ok, w_ in cand:
        take = ok & (w_ < best)
        cls = np.where(take, CHANGE_CODES[name], cls)
        date = np.where(take, w_, date)
        best = np.where(take, w_, best)

    # burn severity: dNBR = baseline NBR - post NBR at the NBR break (vegetated pixels only)
    post_nbr = _post_median(idx["nbr"], valid, first["burn"][0], params.persistence, rank)
    base_nbr = _post_median(mid["nbr"], valid, first["burn"][0], params.persistence, rank)
    dnbr = np.where(cls == CHANGE_CODES["burn"], base_nbr - post_nbr, np.nan).astype(np.float32)
    severity = np.where(cls == CHANGE_CODES["burn"], _severity(dnbr),
                        np.where(vegetated, 2.0, 0.0)).astype(np.float32)  # 2 unburned, 0 not assessed

    # flood recession: first persistent return to dry land after the onset
    fi = first["flood"][0]
    after_onset = np.arange(T)[:, None] > fi[None, :]
    dry = ~water & after_onset & (fi >= 0)[None]
    _, recession = _first_persistent(dry & valid, valid, params.recession_persistence, days.astype(np.float32))
    is_flood = cls == CHANGE_CODES["flood"]

    # confidence: how far past its threshold the deciding index went, averaged over the run
    margin = np.clip(np.abs(np.nan_to_num(_post_median(idx["ndvi"] - mid["ndvi"], valid, np.where(np.isfinite(date), drop_idx, -1),
                                                         params.persistence, rank))) / (2 * params.ndvi_drop), 0, 1)
    conf = np.where(cls > 0, 0.5 + 0.5 * np.maximum(margin, is_flood.astype(np.float32)), 0).astype(np.float32)

    out = np.stack([
        cls, date, conf, severity, dnbr,
        np.where(is_flood, first["flood"][1], np.nan), np.where(is_flood, recession, np.nan),
        permanent.astype(np.float32), vegetated.astype(np.float32), clear_count.astype(np.float32),
    ]).astype(np.float32)
    out[:, clear_count == 0] = np.nan
    return out.reshape(len(LAYERS), Y, X)
