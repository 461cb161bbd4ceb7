"""Change classes from two dates: what replaced what, from the spectral physics of the two period
composites (index trajectories and the fully constrained unmixing of both dates).

Called by :func:`rsvlm_temporal.change.analysis.analyze` when the data are too short for the
per-pixel series engine. Input: the before / after composites (band, y, x) in surface (or top
of atmosphere) reflectance 0-1 with the analysis bands (blue, green, red, nir, swir16, swir22),
the significant-change mask of the magnitude, and the two dates. Output: a class raster in the
codes of ``classes.CHANGE_CLASSES``, the dNBR and its burn severity (Key & Benson 2006), and the
change mask of real change (every class but no change and seasonal difference).

The rules, per pixel (``b`` before, ``a`` after; fractions from :func:`unmixing.fcls` over
``series.ENDMEMBERS``; thresholds are physical constants set before any evaluation):

* water_gain / water_loss: open water (MNDWI > 0.2 and NDVI < 0.1, Xu 2006) in one date only.
* burn: vegetated before (NDVI_b >= 0.3), dNBR = NBR_b - NBR_a >= 0.27 (moderate-low severity and
  up, Key & Benson 2006), char after (burned fraction >= 0.4 and above bare soil), darker after.
* built_up_gain: built-up fraction up by >= 0.25 to >= 0.5, above the bare soil + dry
  vegetation fraction after (a flat man-made spectrum, not a soil one), NDVI_a < 0.35, NDBI up.
* vegetation_loss / vegetation_gain: dNDVI <= -0.2 / >= 0.2 (or the vegetation fraction down /
  up by >= 0.3).
* seasonal: when the two dates lie in different seasons (day of year more than
  :data:`SEASON_DAYS` apart), a vegetation-only difference (loss or gain with no water, burn or
  built-up change) is the difference of the seasons, not change, when the scene shows a
  phenology at all: at least :data:`PHENOLOGY_SHARE` of its vegetated pixels (NDVI >= 0.3 in
  either date, a strided sample) changed NDVI by >= 0.2 (phenology moves a landscape's
  vegetation broadly; a clearing in a scene without one stays vegetation loss). An untyped
  significant magnitude across seasons is seasonal too. A ``season_mismatch`` note says so.
* other_change: a significant magnitude (the magnitude mask) that none of the rules explains,
  when the dates share a season, or when they do not but the scene shows no phenology (the
  test above): a landscape that does not move with the seasons gives no seasonal reading of
  its magnitude. Across seasons in a scene that shows a phenology, such a pixel is read as
  seasonal: the magnitude alone cannot tell the season from a change there, so only typed
  change counts.

Isolated real-change pixels (fewer than 3 of the 3 x 3 window, itself included, real change)
drop to no change: a change is at least a patch, not a single mixed pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from rsvlm_temporal.change.series import ENDMEMBERS, endmember_matrix
from rsvlm_temporal.change.unmixing import fcls
from rsvlm_temporal.classes import BURN_SEVERITY_BOUNDS, CHANGE_CODES, NODATA_CLASS
from rsvlm_temporal.errors import UnknownBandError
from rsvlm_temporal.grid import georef_attrs
from rsvlm_temporal.quality import QualityNote

__all__ = ["BITEMPORAL_BANDS", "SEASON_DAYS", "BitemporalClasses", "bitemporal_classes",
           "classify_pair", "is_reflectance", "phenology_share", "season_gap_days"]

#: bands the rules read
BITEMPORAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
#: two dates whose days of year differ by more than this lie in different seasons (days)
SEASON_DAYS = 45
#: open water: MNDWI above / NDVI below (Xu 2006)
WATER_MNDWI, WATER_NDVI = 0.2, 0.1
#: burn: vegetated before, dNBR of moderate-low severity (Key & Benson 2006), char after
BURN_NDVI_BEFORE, BURN_DNBR, BURN_FRACTION = 0.3, 0.27, 0.4
#: built-up gain: fraction gain, fraction after, NDVI after below
BUILT_GAIN, BUILT_AFTER, BUILT_NDVI = 0.25, 0.5, 0.35
#: vegetation loss / gain: |dNDVI| or |d vegetation fraction|
VEG_DNDVI, VEG_DFRACTION = 0.2, 0.3
#: share of a scene's vegetated pixels whose NDVI changes by >= VEG_DNDVI that makes it a
#: scene with a seasonal (phenological) difference
PHENOLOGY_SHARE = 0.25
#: real-change pixels of the 3 x 3 window (itself included) a patch needs
PATCH_MIN = 3

_REAL = ("burn", "flood", "vegetation_loss", "vegetation_gain", "built_up_gain", "water_gain",
         "water_loss", "other_change")


@dataclass
class BitemporalClasses:
    """Lazy result of :func:`bitemporal_classes`: (y, x) rasters on the composites' grid.

    ``change_class`` uint8 (``classes.CHANGE_CLASSES``, 255 no data); ``burn_severity`` uint8
    (``classes.BURN_SEVERITY_CLASSES``, 0 outside burns, 255 no data); ``dnbr`` float32 (NaN no
    data); ``change_mask`` uint8 (1 real change, 0 none or seasonal, 255 no data)."""

    change_class: xr.DataArray
    burn_severity: xr.DataArray
    dnbr: xr.DataArray
    change_mask: xr.DataArray
    notes: list[QualityNote] = field(default_factory=list)
    season_gap_days: int = 0


def season_gap_days(t0: np.datetime64, t1: np.datetime64) -> int:
    """Days between the days of year of ``t0`` and ``t1`` (circular, 0-183)."""
    d0, d1 = pd.Timestamp(t0).dayofyear, pd.Timestamp(t1).dayofyear
    g = abs(int(d1) - int(d0)) % 365
    return int(min(g, 365 - g))


def is_reflectance(img: xr.DataArray, step: int = 8) -> bool:
    """Whether ``img`` (band, y, x) holds reflectance 0-1 (not raw DN): the median of a strided
    sample (every ``step`` px) of its finite values is below 1.5. Reads about 1/step^2 of it."""
    sample = img.data[:, ::step, ::step]
    vals = np.asarray(sample.compute() if isinstance(sample, da.Array) else sample, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    return bool(vals.size) and float(np.median(vals)) < 1.5


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a + b
        return np.where(s != 0, (a - b) / s, np.nan)


def _count3(x: np.ndarray) -> np.ndarray:
    """Sum of each 3 x 3 window (zero padding) of a 2-D array."""
    p = np.pad(x.astype(np.int16), 1)
    h, w = x.shape
    return sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3))


def phenology_share(before: xr.DataArray, after: xr.DataArray, step: int = 4) -> float:
    """Share (0-1) of the pixels vegetated (NDVI >= 0.3) in either date whose NDVI changes by
    at least ``VEG_DNDVI``, from a strided sample (every ``step`` px) of the composites; 0 when
    fewer than 10 sampled pixels are vegetated."""
    def sample(img: xr.DataArray, band: str) -> np.ndarray:
        d = img.sel(band=band).data[::step, ::step]
        return np.asarray(d.compute() if isinstance(d, da.Array) else d, dtype=np.float64)

    ndb = _nd(sample(before, "nir"), sample(before, "red"))
    nda = _nd(sample(after, "nir"), sample(after, "red"))
    with np.errstate(invalid="ignore"):
        veg = np.isfinite(ndb) & np.isfinite(nda) & ((ndb >= 0.3) | (nda >= 0.3))
        if veg.sum() < 10:
            return 0.0
        return float((np.abs(nda - ndb)[veg] >= VEG_DNDVI).mean())


def classify_pair(before: np.ndarray, after: np.ndarray, changed: np.ndarray, bands: tuple[str, ...],
                  seasons_differ: bool, phenology: bool | None = None) -> np.ndarray:
    """The class rules on numpy arrays: ``before``/``after`` (B, y, x) reflectance 0-1 (NaN
    invalid), ``changed`` (y, x) bool magnitude mask; ``seasons_differ``: the dates lie in
    different seasons; ``phenology``: the scene shows a seasonal vegetation difference (default:
    ``seasons_differ``); the seasonal class needs both. Returns (3, y, x) float32: class code, burn severity code, dNBR
    (255 / 255 / NaN where invalid)."""
    phenology = seasons_differ if phenology is None else phenology
    bi = {b: i for i, b in enumerate(bands)}
    B, h, w = before.shape
    valid = np.isfinite(before).all(0) & np.isfinite(after).all(0)

    def band(img: np.ndarray, name: str) -> np.ndarray:
        return img[bi[name]].astype(np.float64)

    ndvi_b, ndvi_a = _nd(band(before, "nir"), band(before, "red")), _nd(band(after, "nir"), band(after, "red"))
    nbr_b, nbr_a = _nd(band(before, "nir"), band(before, "swir22")), _nd(band(after, "nir"), band(after, "swir22"))
    mndwi_b = _nd(band(before, "green"), band(before, "swir16"))
    mndwi_a = _nd(band(after, "green"), band(after, "swir16"))
    ndbi_b = _nd(band(before, "swir16"), band(before, "nir"))
    ndbi_a = _nd(band(after, "swir16"), band(after, "nir"))
    em = endmember_matrix(bands)
    fb, _ = fcls(before.reshape(B, -1), em)
    fa, _ = fcls(after.reshape(B, -1), em)
    fb, fa = fb.reshape(len(ENDMEMBERS), h, w), fa.reshape(len(ENDMEMBERS), h, w)
    m = {name: i for i, name in enumerate(ENDMEMBERS)}
    veg_b, veg_a = fb[m["forest"]], fa[m["forest"]]
    dnbr = nbr_b - nbr_a
    dndvi = ndvi_a - ndvi_b
    with np.errstate(invalid="ignore"):
        water_b = (mndwi_b > WATER_MNDWI) & (ndvi_b < WATER_NDVI)
        water_a = (mndwi_a > WATER_MNDWI) & (ndvi_a < WATER_NDVI)
        darker = after.mean(0) < before.mean(0)
        burn = ((ndvi_b >= BURN_NDVI_BEFORE) & (dnbr >= BURN_DNBR) & (fa[m["burned"]] >= BURN_FRACTION)
                & (fa[m["burned"]] > fa[m["bare_soil"]]) & darker & ~water_a)
        built = ((fa[m["built_up"]] - fb[m["built_up"]] >= BUILT_GAIN) & (fa[m["built_up"]] >= BUILT_AFTER)
                 & (fa[m["built_up"]] > fa[m["bare_soil"]] + fa[m["dry_vegetation"]])
                 & (ndvi_a < BUILT_NDVI) & (ndbi_a > ndbi_b) & ~water_a & ~water_b)
        veg_loss = (dndvi <= -VEG_DNDVI) | (veg_a - veg_b <= -VEG_DFRACTION)
        veg_gain = (dndvi >= VEG_DNDVI) | (veg_a - veg_b >= VEG_DFRACTION)
    c = CHANGE_CODES
    cls = np.zeros((h, w), np.uint8)
    seasonal = np.zeros((h, w), bool)
    if seasons_differ and phenology:
        seasonal = changed | veg_loss | veg_gain
        veg_loss, veg_gain = veg_loss & False, veg_gain & False
    else:
        cls[changed] = c["other_change"]
    cls[seasonal] = c["seasonal"]
    cls[veg_gain] = c["vegetation_gain"]
    cls[veg_loss] = c["vegetation_loss"]
    cls[built] = c["built_up_gain"]
    cls[burn] = c["burn"]
    cls[water_b & ~water_a] = c["water_loss"]
    cls[water_a & ~water_b] = c["water_gain"]
    real = (cls != 0) & (cls != c["seasonal"])
    isolated = real & (_count3(real) < PATCH_MIN)
    cls[isolated] = np.where(seasonal[isolated], c["seasonal"], 0)
    sev = np.zeros((h, w), np.uint8)
    codes = sorted(BURN_SEVERITY_BOUNDS, key=lambda k: BURN_SEVERITY_BOUNDS[k])
    is_burn = cls == c["burn"]
    for code in codes:
        sev[is_burn & (dnbr >= BURN_SEVERITY_BOUNDS[code])] = code
    out = np.stack([cls.astype(np.float32), sev.astype(np.float32), dnbr.astype(np.float32)])
    out[0][~valid] = NODATA_CLASS
    out[1][~valid] = NODATA_CLASS
    out[2][~valid] = np.nan
    return out


def _kernel(z: np.ndarray, changed: np.ndarray, nb: int, bands: tuple[str, ...],
            seasons_differ: bool, phenology: bool) -> np.ndarray:
    return classify_pair(z[:nb], z[nb:], np.asarray(changed)[0] == 1, bands, seasons_differ, phenology)


def bitemporal_classes(before: xr.DataArray, after: xr.DataArray, changed: xr.DataArray,
                       dates: tuple[np.datetime64, np.datetime64]) -> BitemporalClasses:
    """Classes of the change between two period composites (lazy, chunked like ``before``).

    ``before``/``after``: (band, y, x) reflectance 0-1 with :data:`BITEMPORAL_BANDS` (NaN
    invalid), any projected CRS; ``changed``: (y, x) bool significant-change mask of the
    magnitude (False where invalid); ``dates``: the two composites' central dates (their day of
    year decides whether the seasons differ; then whether the scene shows a phenology is read
    from a strided sample, :func:`phenology_share`). Raises :class:`UnknownBandError` naming missing
    bands. The notes: ``season_mismatch`` when the seasons differ.
    """
    present = [str(b) for b in before.band.values]
    missing = [b for b in BITEMPORAL_BANDS if b not in present]
    if missing:
        raise UnknownBandError(f"the bitemporal classes need bands {list(BITEMPORAL_BANDS)}; the "
                               f"composites lack {missing} (they have {present})")
    bands = BITEMPORAL_BANDS
    b = before.sel(band=list(bands))
    a = after.sel(band=list(bands))
    gap = season_gap_days(*dates)
    differ = gap > SEASON_DAYS
    notes: list[QualityNote] = []
    d0, d1 = (str(np.datetime64(t, "D")) for t in dates)
    share = phenology_share(b, a) if differ else 0.0
    phenology = share >= PHENOLOGY_SHARE
    if differ:
        notes.append(QualityNote(
            "season_mismatch",
            f"the two dates ({d0}, {d1}) lie in different seasons ({gap} days apart in the year, "
            f"more than {SEASON_DAYS}); {100 * share:.0f}% of the vegetated area changed NDVI by >= "
            f"{VEG_DNDVI}, " + (
                "so vegetation differences are read as the seasonal / phenological difference "
                "(class 'seasonal'), not as vegetation loss or gain; compare dates of the same "
                "season to assess vegetation change" if phenology else
                f"under {100 * PHENOLOGY_SHARE:.0f}%: no seasonal difference of the landscape, so "
                "vegetation loss / gain is kept, and a significant change the class rules do not "
                "type is other change"),
            dates=(d0, d1)))
    z = da.concatenate([da.asarray(b.data), da.asarray(a.data)], axis=0).rechunk({0: -1})
    m = da.asarray(xr.where(changed, 1, 0).astype(np.uint8).data)
    m = m.rechunk(z.chunks[1:])
    depth = {0: 0, 1: 1, 2: 1}
    zo = da.overlap.overlap(z, depth=depth, boundary="none")
    mo = da.overlap.overlap(m[None], depth=depth, boundary="none")
    out = da.map_blocks(_kernel, zo, mo, dtype=np.float32, chunks=((3,),) + zo.chunks[1:],
                        nb=len(bands), bands=bands, seasons_differ=differ,
                        phenology=phenology,
                        meta=np.empty((0, 0, 0), np.float32))
    out = da.overlap.trim_internal(out, depth, boundary="none")
    coords = {"y": before.y, "x": before.x}
    attrs = georef_attrs(before)

    def layer(i: int, dtype: type) -> xr.DataArray:
        x = out[i]
        return xr.DataArray(x.astype(dtype) if dtype is not np.float32 else x, dims=("y", "x"),
                            coords=coords, attrs=dict(attrs))

    cls, sev, dnbr = layer(0, np.uint8), layer(1, np.uint8), layer(2, np.float32)
    real = xr.zeros_like(cls, dtype=bool)
    for name in _REAL:
        real = real | (cls == CHANGE_CODES[name])
    mask = xr.where(cls == NODATA_CLASS, NODATA_CLASS, real.astype(np.uint8)).astype(np.uint8)
    mask.attrs.update(attrs)
    return BitemporalClasses(cls, sev, dnbr, mask, notes, gap)
