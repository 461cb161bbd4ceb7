"""Write synthetic scenes as Sentinel-2 L2A / Landsat C2 L2 look-alike COGs + a static STAC catalog.

Encodings are the real ones:

- Sentinel-2 L2A (ESA): uint16 DN = reflectance * 10000 + BOA_ADD_OFFSET_DN, where the offset is
  +1000 DN for processing baseline >= 04.00 (acquisitions from 2022-01-25) and 0 before; STAC
  ``raster:bands`` carry scale 0.0001 and offset -0.1 (>= 04.00) or 0, and
  ``earthsearch:boa_offset_applied`` is false (the DN still hold the offset). DN 0 is nodata.
  SCL (uint8, 20 m): 0 nodata, 3 cloud shadow, 4 vegetation, 5 not vegetated, 6 water,
  8 / 9 cloud medium / high probability, 10 thin cirrus.
- Landsat C2 L2 (USGS): uint16 DN = (reflectance + 0.2) / 0.0000275, nodata 0; QA_PIXEL (uint16)
  bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 6 clear, 7 water, bits 8-9 /
  10-11 / 12-13 / 14-15 cloud / shadow / snow / cirrus confidence (clear land 21824, water 21952
  for Landsat 8/9; 5440 / 5504 for Landsat 7, which has no cirrus band). Fill pixels are 1.

Layout of a scene folder (all hrefs relative, self-contained)::

    catalog.json
    sentinel-2-l2a/collection.json
    sentinel-2-l2a/<item id>/<item id>.json, B02.tif ... B12.tif, SCL.tif
    landsat-c2-l2/collection.json
    landsat-c2-l2/<item id>/<item id>.json, <product id>_SR_B2.TIF ... _QA_PIXEL.TIF
    truth/truth.json, change_class.tif, change_date.tif, ... (10 m grid)

Every file is written atomically; ``truth/truth.json`` is written last.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pystac
from affine import Affine
from pystac.stac_io import DefaultStacIO
from scipy import ndimage

from rsvlm_temporal.atomic import write_json_atomic
from rsvlm_temporal.change import spectra
from rsvlm_temporal.classes import BURN_SEVERITY_CLASSES, CHANGE_CLASSES, NODATA_CLASS
from rsvlm_temporal.errors import SyntheticSceneError
from rsvlm_temporal.io import masks
from rsvlm_temporal.io.sensors import sensor_table
from rsvlm_temporal.outputs.cog import write_array_cog
from rsvlm_temporal.synth.scenarios import (
    _SCENARIO_CODE,
    _SENSOR_CODE,
    LANDSAT,
    S2,
    SCENARIO_NAMES,
    SENSOR_BANDS,
    Acquisition,
    Atmosphere,
    GridSpec,
    SceneOptions,
    SceneTruth,
    SyntheticScene,
    _rng,
    make_scene,
)

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
_EPOCH = np.datetime64("1970-01-01", "D")

# --------------------------------------------------------------------------------------------
# Product tables (as data)
# --------------------------------------------------------------------------------------------

#: Sentinel-2 assets: common name -> (file stem, title, description, full width half max um)
S2_ASSETS: dict[str, tuple[str, str, str, float]] = {
    "blue": ("B02", "Blue (band 2) - 10m", "Blue (band 2)", 0.098),
    "green": ("B03", "Green (band 3) - 10m", "Green (band 3)", 0.045),
    "red": ("B04", "Red (band 4) - 10m", "Red (band 4)", 0.038),
    "nir": ("B08", "NIR 1 (band 8) - 10m", "NIR 1 (band 8)", 0.145),
    "rededge1": ("B05", "Red edge 1 (band 5) - 20m", "Red edge 1 (band 5)", 0.019),
    "rededge2": ("B06", "Red edge 2 (band 6) - 20m", "Red edge 2 (band 6)", 0.018),
    "rededge3": ("B07", "Red edge 3 (band 7) - 20m", "Red edge 3 (band 7)", 0.028),
    "nir08": ("B8A", "NIR 2 (band 8A) - 20m", "NIR 2 (band 8A)", 0.033),
    "swir16": ("B11", "SWIR 1 (band 11) - 20m", "SWIR 1 (band 11)", 0.143),
    "swir22": ("B12", "SWIR 2 (band 12) - 20m", "SWIR 2 (band 12)", 0.242),
}
S2_SCL_RESOLUTION = 20
#: Landsat assets: common name -> instrument -> (file band, eo name, title, description, centre, fwhm)
LANDSAT_ASSETS: dict[str, dict[str, tuple[str, str, str, str, float, float]]] = {
    "blue": {"oli": ("SR_B2", "OLI_B2", "Blue Band", "Visible blue", 0.48, 0.06),
             "etm": ("SR_B1", "ETM_B1", "Blue Band", "Visible blue", 0.48, 0.07)},
    "green": {"oli": ("SR_B3", "OLI_B3", "Green Band", "Visible green", 0.56, 0.06),
              "etm": ("SR_B2", "ETM_B2", "Green Band", "Visible green", 0.56, 0.08)},
    "red": {"oli": ("SR_B4", "OLI_B4", "Red Band", "Visible red", 0.65, 0.04),
            "etm": ("SR_B3", "ETM_B3", "Red Band", "Visible red", 0.66, 0.06)},
    "nir08": {"oli": ("SR_B5", "OLI_B5", "Near Infrared Band 0.8", "Near infrared", 0.87, 0.03),
              "etm": ("SR_B4", "ETM_B4", "Near Infrared Band 0.8", "Near infrared", 0.84, 0.13)},
    "swir16": {"oli": ("SR_B6", "OLI_B6", "Short-wave Infrared Band 1.6", "Short-wave infrared", 1.61, 0.09),
               "etm": ("SR_B5", "ETM_B5", "Short-wave Infrared Band 1.6", "Short-wave infrared", 1.65, 0.2)},
    "swir22": {"oli": ("SR_B7", "OLI_B7", "Short-wave Infrared Band 2.2", "Short-wave infrared", 2.2, 0.19),
               "etm": ("SR_B7", "ETM_B7", "Short-wave Infrared Band 2.2", "Short-wave infrared", 2.22, 0.26)},
}
#: USGS QA_PIXEL bit fields (STAC classification:bitfields), from config/qa_pixel.json
QA_PIXEL_BITFIELDS: list[dict[str, Any]] = json.loads(
    resources.files("rsvlm_temporal").joinpath("config", "qa_pixel.json").read_text())["bitfields"]
#: Sentinel-2 SCL codes used by the generator (ESA legend)
SCL = {"nodata": 0, "shadow": 3, "vegetation": 4, "not_vegetated": 5, "water": 6,
       "cloud_medium": 8, "cloud_high": 9, "cirrus": 10}
#: NDVI above which a clear 20 m pixel is SCL "vegetation"; water fraction above which it is "water"
SCL_VEGETATION_NDVI = 0.35
WATER_FRACTION = 0.5

EXT = {
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "proj_v2": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "proj_v1": "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "mgrs": "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "grid": "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "landsat": "https://stac-extensions.github.io/landsat/v2.0.0/schema.json",
    "classification": "https://stac-extensions.github.io/classification/v1.0.0/schema.json",
}

# --------------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------------


def s2_boa_offset_dn(baseline: str) -> int:
    """DN added to Sentinel-2 L2A reflectance*10000: 1000 for processing baseline >= 04.00, else 0."""
    return 1000 if tuple(int(p) for p in baseline.split(".")) >= (4, 0) else 0


def scale_offset(collection: str, acq: Acquisition) -> tuple[float, float]:
    """(scale, offset) with reflectance = DN * scale + offset, as written in ``raster:bands``."""
    if collection == S2:
        return 0.0001, -0.0001 * s2_boa_offset_dn(acq.processing_baseline or "02.14")
    return 2.75e-05, -0.2


def encode_reflectance(refl: np.ndarray, scale: float, offset: float,
                       nodata: np.ndarray | None = None) -> np.ndarray:
    """Reflectance (0-1) -> uint16 DN = round((refl - offset) / scale), clipped to 1..65535; 0 = nodata."""
    dn = np.clip(np.rint((np.asarray(refl, np.float64) - offset) / scale), 1, 65535).astype(np.uint16)
    if nodata is not None:
        dn[nodata] = 0
    return dn


def decode_dn(dn: np.ndarray, scale: float, offset: float, nodata: int = 0) -> np.ndarray:
    """uint16 DN -> float32 reflectance = DN * scale + offset (float64 arithmetic), NaN at ``nodata``."""
    dn = np.asarray(dn)
    out = (dn.astype(np.float64) * scale + offset).astype(np.float32)
    out[dn == nodata] = np.nan
    return out


def _block(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape[-2:]
    return a.reshape(a.shape[:-2] + (h // k, k, w // k, k))


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of the last two axes (area-weighted aggregation 10 m -> 10k m)."""
    return a if k == 1 else _block(np.asarray(a, np.float64), k).mean(axis=(-1, -3))


def block_any(a: np.ndarray, k: int) -> np.ndarray:
    """True where any pixel of a k x k block is True (conservative mask aggregation)."""
    return a if k == 1 else _block(np.asarray(a, bool), k).any(axis=(-1, -3))


def upsample(a: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour replication of the last two axes by k."""
    return a if k == 1 else np.repeat(np.repeat(a, k, axis=-2), k, axis=-1)


def qa_pixel_values(platform: str, fill: np.ndarray, cloud: np.ndarray, dilated: np.ndarray,
                    cirrus: np.ndarray, shadow: np.ndarray, water: np.ndarray) -> np.ndarray:
    """USGS C2 QA_PIXEL (uint16) from boolean masks; cirrus is ignored for Landsat 7 (no cirrus band)."""
    oli = platform != "landsat-7"
    qa = np.full(cloud.shape, (1 << 8) | (1 << 10) | (1 << 12) | ((1 << 14) if oli else 0), np.uint32)
    clear = ~(cloud | dilated)
    qa[clear] |= 1 << 6
    qa[dilated] |= 1 << 1
    qa[cloud] |= (1 << 3) | (3 << 8)
    if oli:
        qa[cirrus] |= (1 << 2) | (3 << 14)
    qa[shadow & ~cloud] |= (1 << 4) | (3 << 10)
    qa[water & ~cloud & ~dilated] |= 1 << 7
    qa[fill] = 1
    return qa.astype(np.uint16)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class SensorSeries:
    """What was written for one collection, in acquisition order.

    Arrays (None unless ``keep_arrays``) lie on the sensor's finest grid (``transform``,
    ``shape``, ``resolution`` metres: Sentinel-2 10 m with 20 m bands / SCL replicated 2x2,
    Landsat 30 m): ``reflectance`` (time, band, y, x) float32 decoded from the written DN (NaN at
    nodata); ``quality`` (time, y, x) the raw SCL (uint8) / QA_PIXEL (uint16); ``flags``
    (time, y, x) uint8 :mod:`rsvlm_temporal.io.masks` flags that the quality band encodes.
    ``truth_flags`` (time, y, x) uint8 are the drawn clouds / shadows / cirrus / nodata on the 10 m
    truth grid; ``cloud_cover`` (time,) is ``eo:cloud_cover`` (percent of valid pixels).
    """

    collection: str
    bands: tuple[str, ...]
    transform: Affine
    shape: tuple[int, int]
    resolution: float
    times: np.ndarray
    item_ids: list[str]
    platforms: list[str]
    item_paths: list[Path]
    cloud_cover: np.ndarray
    truth_flags: np.ndarray
    reflectance: np.ndarray | None = None
    quality: np.ndarray | None = None
    flags: np.ndarray | None = None
    scale_offset: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class SceneOutput:
    """A written scene: paths, the in-memory scene (truth, dynamics) and per-sensor series."""

    scene: SyntheticScene
    out_dir: Path
    catalog_path: Path
    truth_path: Path
    series: dict[str, SensorSeries]

    @property
    def truth(self) -> SceneTruth:
        """The scene truth (rasters on the 10 m grid, events, captions, QA)."""
        return self.scene.truth

    @property
    def grid(self) -> GridSpec:
        """The 10 m truth grid (epsg, transform, shape)."""
        return self.scene.grid


# --------------------------------------------------------------------------------------------
# Rasters
# --------------------------------------------------------------------------------------------








@dataclass
class _Rendered:
    dn: dict[str, np.ndarray]  # band -> DN at native resolution
    quality: np.ndarray  # native quality raster
    flags: np.ndarray  # masks flags at native quality resolution
    cloud_cover: float
    props: dict[str, Any]  # extra product properties (percentages)


def _observe(scene: SyntheticScene, acq: Acquisition, atm: Atmosphere) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Noisy, cloudy reflectance per band at its native resolution, and the clean 10 m fractions."""
    coll = acq.collection
    bands = SENSOR_BANDS[coll]
    table = sensor_table()[coll]
    fr = scene.fractions(acq.day)
    surf = spectra.mix(fr, spectra.signature_matrix(coll, bands))
    cloud_s, cirrus_s = spectra.cloud_spectra(coll, bands)
    rng = _rng(scene.options.seed, _SCENARIO_CODE[scene.name], _SENSOR_CODE[coll], acq.index, 13)
    out: dict[str, np.ndarray] = {}
    for i, b in enumerate(bands):
        k = int(round(table.band(b).resolution / 10))
        s = block_mean(surf[i], k)
        a = block_mean(atm.opacity, k)
        ac = block_mean(atm.cirrus_opacity, k)
        sh = block_mean(atm.shadow.astype(np.float64), k)
        x = s * (1 - (1 - spectra.SHADOW_TRANSMITTANCE) * sh)
        x = (1 - a) * x + a * cloud_s[i]
        x = (1 - ac) * x + ac * cirrus_s[i]
        out[b] = x + rng.normal(0.0, scene.options.noise_sigma, size=x.shape)
    return out, fr


@lru_cache(maxsize=None)
def _lut(collection: str) -> np.ndarray:
    return masks.lookup_table(sensor_table()[collection].quality)


def _render(scene: SyntheticScene, acq: Acquisition, atm: Atmosphere) -> _Rendered:
    coll = acq.collection
    refl, fr = _observe(scene, acq, atm)
    table = sensor_table()[coll]
    scale, offset = scale_offset(coll, acq)
    k_q = S2_SCL_RESOLUTION // 10 if coll == S2 else 3
    nod = block_any(atm.nodata, k_q)
    dn = {}
    for b, x in refl.items():
        k = int(round(table.band(b).resolution / 10))
        dn[b] = encode_reflectance(x, scale, offset, block_any(atm.nodata, k))
    cloud = block_any(atm.cloud, k_q) & ~nod
    cirrus = block_any(atm.cirrus, k_q) & ~cloud & ~nod
    shadow = block_any(atm.shadow, k_q) & ~cloud & ~nod
    m = spectra.MATERIAL_CODES
    water = block_mean(fr[m["water_clear"]] + fr[m["water_turbid"]], k_q) >= WATER_FRACTION
    valid = ~nod
    nvalid = max(int(valid.sum()), 1)
    if coll == S2:
        sig = spectra.signature_matrix(S2, ("red", "nir"))
        rn = block_mean(spectra.mix(fr, sig), k_q)
        ndvi = spectra.normalized_difference(rn[1], rn[0])
        scl = np.where(water, SCL["water"], np.where(ndvi >= SCL_VEGETATION_NDVI, SCL["vegetation"], SCL["not_vegetated"]))
        high = block_mean(atm.opacity, k_q) >= 0.8
        shadow = shadow & ~cirrus
        scl = np.where(shadow, SCL["shadow"], scl)
        scl = np.where(cirrus, SCL["cirrus"], scl)
        scl = np.where(cloud, np.where(high, SCL["cloud_high"], SCL["cloud_medium"]), scl)
        scl = np.where(nod, SCL["nodata"], scl).astype(np.uint8)
        flags = masks.decode(scl, _lut(coll))
        pct = {code: 100.0 * float(((scl == code) & valid).sum()) / nvalid for code in SCL.values()}
        cc = pct[8] + pct[9] + pct[10]
        props = {
            "s2:nodata_pixel_percentage": round(100.0 * float(nod.mean()), 6),
            "s2:saturated_defective_pixel_percentage": 0,
            "s2:dark_features_percentage": 0,
            "s2:cloud_shadow_percentage": round(pct[3], 6),
            "s2:vegetation_percentage": round(pct[4], 6),
            "s2:not_vegetated_percentage": round(pct[5], 6),
            "s2:water_percentage": round(pct[6], 6),
            "s2:unclassified_percentage": 0,
            "s2:medium_proba_clouds_percentage": round(pct[8], 6),
            "s2:high_proba_clouds_percentage": round(pct[9], 6),
            "s2:thin_cirrus_percentage": round(pct[10], 6),
            "s2:snow_ice_percentage": 0,
        }
        quality = scl
    else:
        dilated = ndimage.binary_dilation(cloud, structure=np.ones((3, 3), bool)) & ~cloud & ~nod
        if acq.platform == "landsat-7":
            cirrus = np.zeros_like(cirrus)  # ETM+ has no cirrus band: cirrus stays unflagged
        qa = qa_pixel_values(acq.platform, nod, cloud, dilated, cirrus, shadow, water)
        flags = masks.decode(qa, _lut(coll))
        cc = 100.0 * float(((cloud | cirrus) & valid).sum()) / nvalid
        props = {"landsat:cloud_cover_land": round(cc, 2)}
        quality = qa
    return _Rendered(dn=dn, quality=quality, flags=flags, cloud_cover=round(cc, 6), props=props)


# --------------------------------------------------------------------------------------------
# STAC items
# --------------------------------------------------------------------------------------------


def _iso_z(dt: Any) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _proj(crs: str, epsg: int, version: str) -> dict[str, Any]:
    return {"proj:code": crs} if version == "v2" else {"proj:epsg": epsg}


def _s2_item(scene: SyntheticScene, acq: Acquisition, r: _Rendered, item_dir: Path, proj: str) -> dict[str, Any]:
    grid = scene.grid
    zone, band, square = scene.params["mgrs"]
    table = sensor_table()[S2]
    scale, offset = scale_offset(S2, acq)
    b = acq.processing_baseline or "02.14"
    stamp = acq.datetime.strftime("%Y%m%dT%H%M%S")
    created = acq.datetime + timedelta(hours=6)
    lon = scene.config["center_lonlat"][0]
    orbit = 1 + int(((lon + 180.0) / 360.0) * 143) % 143
    props: dict[str, Any] = {
        "created": _iso_z(created),
        "platform": acq.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": r.cloud_cover,
        **_proj(grid.crs, grid.epsg, proj),
        "mgrs:utm_zone": zone,
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "grid:code": f"MGRS-{zone}{band}{square}",
        **r.props,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": b,
        "s2:product_uri": f"S2{acq.platform[-1].upper()}_MSIL2A_{stamp}_N{b.replace('.', '')}_R{orbit:03d}_"
                          f"T{zone}{band}{square}_{created.strftime('%Y%m%dT%H%M%S')}.SAFE",
        "datetime": _iso_z(acq.datetime),
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": False,
        "rsvlm:synthetic": True,
        "rsvlm:scenario": scene.name,
        "updated": _iso_z(created),
    }
    assets: dict[str, Any] = {}
    for cn in SENSOR_BANDS[S2]:
        stem, title, desc, fwhm = S2_ASSETS[cn]
        res = int(table.band(cn).resolution)
        tr, shape = grid.at(res)
        assets[cn] = {
            "href": str(item_dir / f"{stem}.tif"), "type": COG_TYPE, "title": title,
            "eo:bands": [{"name": cn, "common_name": "rededge" if cn.startswith("rededge") else cn,
                          "description": desc, "center_wavelength": table.band(cn).wavelength,
                          "full_width_half_max": fwhm}],
            "gsd": res, "proj:shape": list(shape), "proj:transform": list(tr)[:6],
            **({"proj:code": grid.crs} if proj == "v2" else {}),
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                              "spatial_resolution": res, "scale": scale, "offset": round(offset, 6)}],
            "roles": ["data", "reflectance"],
        }
    tr, shape = grid.at(S2_SCL_RESOLUTION)
    assets["scl"] = {
        "href": str(item_dir / "SCL.tif"), "type": COG_TYPE, "title": "Scene classification map (SCL)",
        "proj:shape": list(shape), "proj:transform": list(tr)[:6],
        **({"proj:code": grid.crs} if proj == "v2" else {}),
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": S2_SCL_RESOLUTION}],
        "roles": ["data", "reflectance"],
    }
    exts = [EXT["eo"], EXT["raster"], EXT["proj_v2" if proj == "v2" else "proj_v1"], EXT["mgrs"], EXT["grid"]]
    return _item_dict(acq.item_id, S2, scene, props, assets, exts)


def _landsat_product_id(acq: Acquisition) -> str:
    code, level, pr, ymd, *_ = acq.item_id.split("_")
    processed = (acq.datetime + timedelta(days=9)).strftime("%Y%m%d")
    return f"{code}_{level}_{pr}_{ymd}_{processed}_02_T1"


def _landsat_item(scene: SyntheticScene, acq: Acquisition, r: _Rendered, item_dir: Path, proj: str) -> dict[str, Any]:
    grid = scene.grid
    path, row = scene.params["wrs_path_row"]
    tr, shape = grid.at(30)
    inst = "etm" if acq.platform == "landsat-7" else "oli"
    product = _landsat_product_id(acq)
    created = acq.datetime + timedelta(days=9)
    sensor_letter = {"landsat-7": "E7", "landsat-8": "C8", "landsat-9": "C9"}[acq.platform]
    props: dict[str, Any] = {
        "platform": acq.platform,
        "instruments": ["etm+"] if inst == "etm" else ["oli", "tirs"],
        "created": _iso_z(created),
        "gsd": 30,
        "description": "Landsat Collection 2 Level-2",
        "eo:cloud_cover": r.cloud_cover,
        **_proj(grid.crs, grid.epsg, proj),
        "proj:shape": list(shape),
        "proj:transform": list(tr)[:6],
        **r.props,
        "landsat:wrs_type": "2",
        "landsat:wrs_path": f"{path:03d}",
        "landsat:wrs_row": f"{row:03d}",
        "landsat:collection_category": "T1",
        "landsat:collection_number": "02",
        "landsat:correction": "L2SP",
        "landsat:scene_id": f"L{sensor_letter}{path:03d}{row:03d}{acq.datetime.strftime('%Y%j')}LGN00",
        "grid:code": f"WRS2-{path:03d}{row:03d}",
        "datetime": _iso_z(acq.datetime),
        "rsvlm:synthetic": True,
        "rsvlm:scenario": scene.name,
        "updated": _iso_z(created),
    }
    scale, offset = scale_offset(LANDSAT, acq)
    assets: dict[str, Any] = {}
    for cn in SENSOR_BANDS[LANDSAT]:
        fband, ename, title, desc, centre, fwhm = LANDSAT_ASSETS[cn][inst]
        assets[cn] = {
            "href": str(item_dir / f"{product}_{fband}.TIF"), "type": COG_TYPE, "title": title,
            "description": f"Collection 2 Level-2 {title} ({fband}) Surface Reflectance",
            "eo:bands": [{"name": ename, "common_name": cn, "description": desc,
                          "center_wavelength": centre, "full_width_half_max": fwhm}],
            "proj:shape": list(shape), "proj:transform": list(tr)[:6],
            **({"proj:code": grid.crs} if proj == "v2" else {}),
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "spatial_resolution": 30,
                              "scale": scale, "offset": offset}],
            "roles": ["data", "reflectance"],
        }
    assets["qa_pixel"] = {
        "href": str(item_dir / f"{product}_QA_PIXEL.TIF"), "type": COG_TYPE,
        "title": "Pixel Quality Assessment Band",
        "description": "Collection 2 Level-1 Pixel Quality Assessment Band (QA_PIXEL)",
        "classification:bitfields": QA_PIXEL_BITFIELDS,
        "proj:shape": list(shape), "proj:transform": list(tr)[:6],
        **({"proj:code": grid.crs} if proj == "v2" else {}),
        "raster:bands": [{"nodata": 1, "data_type": "uint16", "spatial_resolution": 30, "unit": "bit index"}],
        "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
    }
    exts = [EXT["eo"], EXT["raster"], EXT["proj_v2" if proj == "v2" else "proj_v1"], EXT["landsat"],
            EXT["grid"], EXT["classification"]]
    return _item_dict(acq.item_id, LANDSAT, scene, props, assets, exts)


def _item_dict(item_id: str, coll: str, scene: SyntheticScene, props: dict, assets: dict, exts: list) -> dict:
    return {
        "type": "Feature", "stac_version": pystac.get_stac_version(), "stac_extensions": exts,
        "id": item_id, "collection": coll,
        "geometry": {"type": "Polygon", "coordinates": [scene.grid.footprint_lonlat()]},
        "bbox": scene.grid.bbox_lonlat(), "properties": props, "links": [], "assets": assets,
    }


# --------------------------------------------------------------------------------------------
# Scene files
# --------------------------------------------------------------------------------------------


@dataclass
class _SceneFiles:
    items: dict[str, list[dict[str, Any]]]
    series: dict[str, SensorSeries]
    truth: dict[str, Any]  # truth.json content


def _date_raster(a: np.ndarray) -> np.ndarray:
    """datetime64[D] with NaT -> int32 days since 1970-01-01, -1 where NaT."""
    out = np.full(a.shape, -1, np.int32)
    ok = ~np.isnat(a)
    out[ok] = (a[ok] - _EPOCH).astype(np.int64)
    return out


def _write_sensor(scene: SyntheticScene, coll: str, scene_dir: Path, keep: bool, proj: str,
                  atomic: bool = True) -> tuple[list[dict], SensorSeries]:
    acqs = scene.acquisitions[coll]
    bands = SENSOR_BANDS[coll]
    table = sensor_table()[coll]
    finest = min(table.band(b).resolution for b in bands)
    k_f = int(round(finest / 10))
    tr_f, shape_f = scene.grid.at(finest)
    T = len(acqs)
    n = scene.grid.shape[0]
    truth_flags = np.zeros((T, n, n), np.uint8)
    refl = np.full((T, len(bands)) + shape_f, np.nan, np.float32) if keep else None
    qual = np.zeros((T,) + shape_f, np.uint8 if coll == S2 else np.uint16) if keep else None
    flg = np.zeros((T,) + shape_f, np.uint8) if keep else None
    items, ids, plats, paths, cc, so = [], [], [], [], [], []
    for t, acq in enumerate(acqs):
        atm = scene.atmosphere(acq)
        truth_flags[t] = atm.flags()
        r = _render(scene, acq, atm)
        item_dir = scene_dir / coll / acq.item_id
        scale, offset = scale_offset(coll, acq)
        if coll == S2:
            for b in bands:
                res = int(table.band(b).resolution)
                tr, _ = scene.grid.at(res)
                write_array_cog(item_dir / f"{S2_ASSETS[b][0]}.tif", r.dn[b], tr, scene.grid.crs, 0, "average",
                          atomic=atomic)
            tr, _ = scene.grid.at(S2_SCL_RESOLUTION)
            write_array_cog(item_dir / "SCL.tif", r.quality, tr, scene.grid.crs, 0, "nearest", atomic=atomic)
            item = _s2_item(scene, acq, r, item_dir, proj)
        else:
            tr, _ = scene.grid.at(30)
            product = _landsat_product_id(acq)
            inst = "etm" if acq.platform == "landsat-7" else "oli"
            for b in bands:
                write_array_cog(item_dir / f"{product}_{LANDSAT_ASSETS[b][inst][0]}.TIF", r.dn[b], tr,
                          scene.grid.crs, 0, "average", atomic=atomic)
            write_array_cog(item_dir / f"{product}_QA_PIXEL.TIF", r.quality, tr, scene.grid.crs, 1, "nearest",
                      atomic=atomic)
            item = _landsat_item(scene, acq, r, item_dir, proj)
        items.append(item)
        ids.append(acq.item_id)
        plats.append(acq.platform)
        paths.append(item_dir / f"{acq.item_id}.json")
        cc.append(r.cloud_cover)
        so.append((scale, offset))
        if keep:
            for i, b in enumerate(bands):
                k = int(round(table.band(b).resolution / finest))
                refl[t, i] = upsample(decode_dn(r.dn[b], scale, offset), k)
            kq = (S2_SCL_RESOLUTION // 10 if coll == S2 else 3) // k_f
            qual[t] = upsample(r.quality, kq)
            flg[t] = upsample(r.flags, kq)
    times = np.array([np.datetime64(a.datetime.replace(tzinfo=None), "ns") for a in acqs], "datetime64[ns]")
    series = SensorSeries(
        collection=coll, bands=bands, transform=tr_f, shape=shape_f, resolution=float(finest),
        times=times, item_ids=ids, platforms=plats, item_paths=paths, cloud_cover=np.array(cc),
        truth_flags=truth_flags, reflectance=refl, quality=qual, flags=flg, scale_offset=so,
    )
    return items, series


def _truth_rasters(scene: SyntheticScene, truth_dir: Path, series: Mapping[str, SensorSeries]) -> dict[str, str]:
    t = scene.truth
    grid = scene.grid
    crs, tr = grid.crs, grid.transform
    files: dict[str, str] = {}
    cn = json.dumps({str(k): v for k, v in CHANGE_CLASSES.items()})
    write_array_cog(truth_dir / "change_class.tif", t.change_class, tr, crs, NODATA_CLASS,
              tags={"class_names": cn, "description": "change class (classes.CHANGE_CLASSES)"}, predictor=1)
    files["change_class"] = "change_class.tif"
    write_array_cog(truth_dir / "change_date.tif", _date_raster(t.change_date), tr, crs, -1,
              tags={"units": "days since 1970-01-01", "description": "first date of the change"})
    files["change_date"] = "change_date.tif"
    if t.burn_severity is not None:
        sn = json.dumps({str(k): v for k, v in BURN_SEVERITY_CLASSES.items()})
        write_array_cog(truth_dir / "burn_severity.tif", t.burn_severity, tr, crs, NODATA_CLASS,
                  tags={"class_names": sn, "description": "burn severity from noise-free dNBR"})
        files["burn_severity"] = "burn_severity.tif"
        write_array_cog(truth_dir / "dnbr.tif", t.dnbr.astype(np.float32), tr, crs, float("nan"),
                  tags={"description": "noise-free dNBR (NBR pre - NBR post) on the fire date"})
        files["dnbr"] = "dnbr.tif"
    if t.permanent_water is not None:
        write_array_cog(truth_dir / "permanent_water.tif", t.permanent_water.astype(np.uint8), tr, crs, NODATA_CLASS,
                  tags={"description": "1 = permanent water (river)"})
        files["permanent_water"] = "permanent_water.tif"
    for name in ("flood_peak_date", "flood_recession_date"):
        a = getattr(t, name)
        if a is not None:
            write_array_cog(truth_dir / f"{name}.tif", _date_raster(a), tr, crs, -1,
                      tags={"units": "days since 1970-01-01"})
            files[name] = f"{name}.tif"
    mn = json.dumps({str(i): m for i, m in enumerate(spectra.MATERIALS)})
    s, e = _day_of(scene.options.start), _day_of(scene.options.end)
    for name, day in (("landcover_start", s), ("landcover_end", e)):
        write_array_cog(truth_dir / f"{name}.tif", scene.dominant_material(day), tr, crs, NODATA_CLASS,
                  tags={"class_names": mn, "date": str(_EPOCH + np.timedelta64(day, "D")),
                        "description": "dominant endmember (spectra.MATERIALS)"})
        files[name] = f"{name}.tif"
    fn = json.dumps({k: int(v) for k, v in masks.FLAGS.items()})
    for coll, ser in series.items():
        name = f"quality_{coll}"
        write_array_cog(truth_dir / f"{name}.tif", ser.truth_flags, tr, crs, None, descriptions=ser.item_ids,
                  tags={"flags": fn, "description": "drawn cloud/shadow/cirrus/nodata per acquisition "
                                                    "(rsvlm_temporal.io.masks flags), band i = item i"})
        files[name] = f"{name}.tif"
    return files


def _day_of(iso: str) -> int:
    return int((np.datetime64(iso, "D") - _EPOCH).astype(int))


def _truth_json(scene: SyntheticScene, files: Mapping[str, str], series: Mapping[str, SensorSeries]) -> dict[str, Any]:
    t = scene.truth
    acq_rows: dict[str, list[dict[str, Any]]] = {}
    for coll, ser in series.items():
        rows = []
        for i, acq in enumerate(scene.acquisitions[coll]):
            f = ser.truth_flags[i]
            rows.append({
                "id": acq.item_id, "datetime": _iso_z(acq.datetime), "platform": acq.platform,
                "cloud_cover": float(ser.cloud_cover[i]),
                "cloud_fraction": round(float((f & masks.CLOUD).astype(bool).mean()), 6),
                "shadow_fraction": round(float((f & masks.SHADOW).astype(bool).mean()), 6),
                "cirrus_fraction": round(float((f & masks.CIRRUS).astype(bool).mean()), 6),
                "nodata_fraction": round(float((f & masks.NODATA).astype(bool).mean()), 6),
                "clear": bool(f.max() == 0),
                "processing_baseline": acq.processing_baseline,
                "item": f"../{coll}/{acq.item_id}/{acq.item_id}.json",
            })
        acq_rows[coll] = rows
    sensor_grids = {}
    for coll, ser in series.items():
        table = sensor_table()[coll]
        res = sorted({int(table.band(b).resolution) for b in ser.bands} |
                     ({S2_SCL_RESOLUTION} if coll == S2 else {30}))
        sensor_grids[coll] = {str(r): {"transform": list(scene.grid.at(r)[0])[:6], "shape": list(scene.grid.at(r)[1])}
                              for r in res}
        sensor_grids[coll]["bands"] = {b: int(table.band(b).resolution) for b in ser.bands}
    return {
        "format": "rsvlm-temporal synthetic truth v1",
        "scenario": scene.name,
        "title": scene.config["title"],
        "place": scene.config["place"],
        "seed": scene.options.seed,
        "options": scene.options.as_dict(),
        "grid": scene.grid.as_dict(),
        "sensor_grids": sensor_grids,
        "classes": {
            "change_class": {str(k): v for k, v in CHANGE_CLASSES.items()},
            "burn_severity": {str(k): v for k, v in BURN_SEVERITY_CLASSES.items()},
            "landcover": {str(i): m for i, m in enumerate(spectra.MATERIALS)},
            "quality_flags": {k: int(v) for k, v in masks.FLAGS.items()},
        },
        "nodata": {"change_class": NODATA_CLASS, "burn_severity": NODATA_CLASS, "dates": -1},
        "date_encoding": "int32 days since 1970-01-01 (UTC), -1 = none",
        "events": t.events,
        "stats": t.stats,
        "shadow_offset_px": list(scene.shadow_offset_px),
        "cloud_cover_definition": "eo:cloud_cover = percent of valid pixels of the quality band flagged "
                                  "cloud or cirrus (SCL 8/9/10; QA_PIXEL bits 3/2)",
        "rasters": dict(files),
        "acquisitions": acq_rows,
        "captions": t.captions,
        "qa": t.qa,
    }


def _write_scene_files(scene: SyntheticScene, scene_dir: Path, keep: bool, proj: str,
                       atomic: bool = True) -> _SceneFiles:
    items: dict[str, list[dict[str, Any]]] = {}
    series: dict[str, SensorSeries] = {}
    for coll in scene.acquisitions:
        items[coll], series[coll] = _write_sensor(scene, coll, scene_dir, keep, proj, atomic)
    files = _truth_rasters(scene, scene_dir / "truth", series)
    return _SceneFiles(items=items, series=series, truth=_truth_json(scene, files, series))


# --------------------------------------------------------------------------------------------
# STAC catalog
# --------------------------------------------------------------------------------------------


class AtomicStacIO(DefaultStacIO):
    """pystac IO that writes every JSON file atomically and compactly (one line)."""

    def write_text_to_href(self, href: str, txt: str) -> None:  # noqa: D102
        from rsvlm_temporal.atomic import write_text_atomic

        write_text_atomic(href, txt)

    def json_dumps(self, json_dict: dict[str, Any], *args: Any, **kwargs: Any) -> str:  # noqa: D102
        return json.dumps(json_dict, separators=(",", ":"))


_COLLECTION_TEXT = {
    S2: ("Sentinel-2 Level-2A (synthetic)",
         "Synthetic Sentinel-2 MSI L2A surface reflectance COGs with the ESA encoding "
         "(BOA_ADD_OFFSET from baseline 04.00) and SCL, generated by rsvlm-temporal."),
    LANDSAT: ("Landsat Collection 2 Level-2 (synthetic)",
              "Synthetic Landsat C2 L2 surface reflectance COGs with the USGS encoding and QA_PIXEL, "
              "generated by rsvlm-temporal."),
}


def _collection(coll: str, items: Sequence[pystac.Item]) -> pystac.Collection:
    bboxes = np.array([it.bbox for it in items])
    times = sorted(it.datetime for it in items)
    title, desc = _COLLECTION_TEXT[coll]
    plats = sorted({it.properties["platform"] for it in items})
    col = pystac.Collection(
        id=coll, title=title, description=desc, license="other",
        extent=pystac.Extent(
            pystac.SpatialExtent([[float(bboxes[:, 0].min()), float(bboxes[:, 1].min()),
                                   float(bboxes[:, 2].max()), float(bboxes[:, 3].max())]]),
            pystac.TemporalExtent([[times[0], times[-1]]]),
        ),
        summaries=pystac.Summaries({"platform": plats,
                                    "constellation": ["sentinel-2"] if coll == S2 else ["landsat"]}),
    )
    for it in items:
        col.add_item(it)
    return col


def _scene_catalog(name: str, title: str, items: Mapping[str, list[dict[str, Any]]]) -> pystac.Catalog:
    cat = pystac.Catalog(id=name, title=title,
                         description=f"Synthetic {name} scene with truth in ./truth/truth.json (rsvlm-temporal)")
    for coll, dicts in items.items():
        if dicts:
            cat.add_child(_collection(coll, [pystac.Item.from_dict(d, migrate=False, preserve_dict=False) for d in dicts]))
    return cat


def _save(cat: pystac.Catalog, root_dir: Path) -> Path:
    cat.normalize_hrefs(str(root_dir).rstrip("/") + "/")  # a folder, even with dots in its name
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED, stac_io=AtomicStacIO())
    return root_dir / "catalog.json"


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def write_scene(out_dir: str | os.PathLike[str], scenario: str | SyntheticScene, *,
                keep_arrays: bool = True, proj_extension: str = "v2", **options: Any) -> SceneOutput:
    """Generate ``scenario`` (a name of ``SCENARIO_NAMES`` or a built scene) and write it to ``out_dir``.

    Writes the COGs, a self-contained static STAC catalog (``out_dir/catalog.json``, one collection
    per sensor) and the truth (``out_dir/truth/``, 10 m grid, ``truth.json`` last). Options: see
    :class:`~rsvlm_temporal.synth.scenarios.SceneOptions` (size in 10 m pixels, start, end, sensors,
    cloud_prob, seed, s2_revisit_days, ...). ``proj_extension`` "v2" writes ``proj:code`` (default),
    "v1" writes ``proj:epsg`` like older Earth Search items. ``keep_arrays`` keeps the decoded
    reflectance / quality arrays in the returned :class:`SceneOutput` (set it False for large
    scenes). Files of an earlier scene in ``out_dir`` are not removed: use an empty folder.
    """
    if proj_extension not in ("v1", "v2"):
        raise ValueError(f"proj_extension={proj_extension!r}: expected 'v1' or 'v2'")
    scene = scenario if isinstance(scenario, SyntheticScene) else make_scene(scenario, **options)
    out = Path(out_dir).absolute()  # relative asset hrefs are made against an absolute root
    files = _write_scene_files(scene, out, keep_arrays, proj_extension)
    cat = _scene_catalog(scene.name, scene.config["title"], files.items)
    catalog_path = _save(cat, out)
    truth_path = write_json_atomic(out / "truth" / "truth.json", files.truth)
    return SceneOutput(scene=scene, out_dir=out, catalog_path=catalog_path, truth_path=truth_path,
                       series=files.series)


#: the packaged demo: all five scenarios, seeded (bump DEMO_VERSION when any of this changes)
DEMO_VERSION = "demo-v1"
DEMO_OPTIONS: dict[str, Any] = {
    "size": 48, "start": "2018-01-01", "end": "2024-12-31", "sensors": "both", "seed": 2024,
    "s2_revisit_days": 10, "landsat_revisit_days": 16, "landsat_dual_revisit_days": 16,
    "cloud_prob": 0.4,
}
#: the analysis grid (metres) of ``rsvlm demo`` and ``rsvlm ask --demo``: both sensors on the
#: Sentinel-2 10 m grid (Landsat resampled). A merged catalog otherwise takes the coarsest
#: sensor's 30 m grid, on which a hard class map of these 480 m scenes is off the truth's area
#: by -8 % (urban growth) to +11 % (deforestation): boundary pixels count whole or not at all
#: (benchmarks/RESULTS.md, language stage: the area errors)
DEMO_RESOLUTION_M = 10.0
#: the dashboard's showcase demo: 252 px (2.5 km at 10 m; 84 px at 30 m Landsat), five years,
#: clouds on some dates, two scenarios (a readable scene that generates in about half a minute)
SHOWCASE_OPTIONS: dict[str, Any] = {
    "size": 252, "start": "2019-01-01", "end": "2023-12-31", "sensors": "both", "seed": 2024,
    "s2_revisit_days": 15, "landsat_revisit_days": 16, "landsat_dual_revisit_days": 16,
    "cloud_prob": 0.35,
}
#: named demo presets: scene options and scenarios; "small" (the default, the tests' scenes) and
#: "showcase" (the dashboard's). Each preset has its own cache folder.
DEMO_PRESETS: dict[str, dict[str, Any]] = {
    "small": {"options": DEMO_OPTIONS, "scenarios": tuple(SCENARIO_NAMES)},
    "showcase": {"options": SHOWCASE_OPTIONS, "scenarios": ("wildfire", "flood")},
}
_MARKER = ".complete.json"


def default_cache_dir() -> Path:
    """``$RSVLM_CACHE`` if set, else ``~/.cache/rsvlm-temporal``."""
    env = os.environ.get("RSVLM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rsvlm-temporal"


def _demo_worker(args: tuple[str, str, dict[str, Any]]) -> tuple[str, str, dict[str, list[dict[str, Any]]]]:
    name, scene_dir, opts = args
    scene = make_scene(name, **opts)
    files = _write_scene_files(scene, Path(scene_dir), False, "v2", atomic=False)
    write_json_atomic(Path(scene_dir) / "truth" / "truth.json", files.truth)
    return name, scene.config["title"], files.items


def demo_catalog(cache_dir: str | os.PathLike[str] | None = None, *, workers: int | None = None,
                 preset: str = "small", **options: Any) -> Path:
    """Path of the packaged demo's root ``catalog.json``, generated on first use.

    The demo (all of ``SCENARIO_NAMES`` with ``DEMO_OPTIONS``) lives in ``<cache>/demo-v1`` where
    ``<cache>`` is ``cache_dir``, else ``$RSVLM_CACHE``, else ``~/.cache/rsvlm-temporal``.
    Keyword ``options`` override ``DEMO_OPTIONS`` (e.g. ``size=120``) and select their own folder
    ``demo-v1-<hash>``. Each scenario is a child catalog ``<scenario>/catalog.json`` with its
    truth in ``<scenario>/truth/``. The demo is built in a temporary folder and renamed into
    place with a marker file written last, so an interrupted build is never reused; later calls
    return at once. ``workers`` processes generate scenarios in parallel (default: 2 when the
    calling process runs a single thread, else 1). ``preset`` names an entry of
    :data:`DEMO_PRESETS` (its options and scenarios): "small" (``demo-v1``) or "showcase"
    (``demo-v1-showcase``, 252 px scenes for the dashboard).
    """
    if preset not in DEMO_PRESETS:
        raise SyntheticSceneError(f"unknown demo preset {preset!r}; expected one of {sorted(DEMO_PRESETS)}")
    preset_opts = DEMO_PRESETS[preset]["options"]
    scenarios = tuple(DEMO_PRESETS[preset]["scenarios"])
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    opts = {**preset_opts, **options}
    SceneOptions.make(**opts)  # validate before doing any work
    name = DEMO_VERSION if preset == "small" else f"{DEMO_VERSION}-{preset}"
    if opts != preset_opts:
        digest = hashlib.sha1(json.dumps(opts, sort_keys=True, default=str).encode()).hexdigest()[:8]
        name = f"{name}-{digest}"
    demo = base / name
    spec = {"version": DEMO_VERSION, "options": opts, "scenarios": list(scenarios)}
    if _demo_ok(demo, spec):
        return demo / "catalog.json"
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{DEMO_VERSION}-tmp-", dir=base))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
    try:
        t0 = time.time()
        jobs = [(scen, str(tmp / scen), dict(opts)) for scen in scenarios]
        if workers is None:  # forking a multi-threaded process (a web app, dask) can deadlock
            workers = min(2, os.cpu_count() or 1) if threading.active_count() == 1 else 1
        n_workers = max(1, min(workers, len(jobs)))
        if n_workers == 1:
            results = [_demo_worker(j) for j in jobs]
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as ex:
                results = list(ex.map(_demo_worker, jobs))
        root = pystac.Catalog(
            id="rsvlm-temporal-demo", title="rsvlm-temporal synthetic demo",
            description="Synthetic Sentinel-2 L2A / Landsat C2 L2 scenes with known truth: "
                        + ", ".join(scenarios) + ". Truth of each scene in <scenario>/truth/truth.json.",
        )
        for scen, title, items in results:
            root.add_child(_scene_catalog(scen, title, items))
        _save(root, tmp)
        write_json_atomic(tmp / _MARKER, {**spec, "seconds": round(time.time() - t0, 1)})
        if demo.exists():
            if _demo_ok(demo, spec):  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
                return demo / "catalog.json"
            shutil.rmtree(demo)  # stale or half-written
        try:
            os.replace(tmp, demo)
        except OSError:
            if not _demo_ok(demo, spec):  # not a concurrent build that finished first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return demo / "catalog.json"


def _demo_ok(demo: Path, spec: Mapping[str, Any]) -> bool:
    marker = demo / _MARKER
    if not marker.is_file() or not (demo / "catalog.json").is_file():
        return False
    try:
        got = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return all(got.get(k) == json.loads(json.dumps(v)) for k, v in spec.items())


def iter_demo_scenes(catalog_path: str | os.PathLike[str]) -> Iterable[tuple[str, Path]]:
    """(scenario name, scene folder) for each child catalog of a demo root catalog."""
    root = Path(catalog_path).parent
    for name in SCENARIO_NAMES:
        if (root / name / "catalog.json").is_file():
            yield name, root / name
