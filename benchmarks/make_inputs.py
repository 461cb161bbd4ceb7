"""Generate the benchmark inputs: Sentinel-2 L2A-like COGs and a static STAC catalog.

``python benchmarks/make_inputs.py --dates 24 --bands 6 --size 1024`` writes, deterministically,
into ``benchmarks/_data/s2l2a-<dates>d-<bands>b-<size>px[-every<N>d]/`` (one date every
``--every`` days, default 5, from 2023-03-01; the analysis benchmark uses 24 dates every 30 days
so that the series spans two years):

- per date and band a uint16 COG (DEFLATE, 512 px internal tiles, overviews as the GDAL COG
  driver makes them) of realistic, noisy surface-reflectance DNs on a 10 m UTM grid
  (EPSG:32633, centred on its central meridian): a land-cover map (vegetation, bare soil, built-up, water) with per-class spectra,
  seasonal vegetation phenology, per-pixel noise and texture, clouds and their shadows, and one
  change (a vegetation patch of about 4% of the area cleared to bare soil from two thirds of
  the series on); DN =
  reflectance * 10000 + 1000 (processing baseline >= 04.00, so ``raster:bands`` scale 0.0001,
  offset -0.1);
- per date a uint8 SCL COG (classes 3 shadow, 4 vegetation, 5 bare/built-up, 6 water, 8/9
  cloud, 10 cirrus) on the same grid (real SCL is 20 m; here it is 10 m so that every reader
  reads the same grid without resampling);
- ``catalog.json`` + ``<id>/<id>.json`` (a self-contained static catalog with relative hrefs)
  and ``items.json`` (a FeatureCollection with absolute hrefs), items like Earth Search v1's
  ``sentinel-2-l2a`` (``proj:code`` on the item, ``proj:shape``/``proj:transform`` and
  ``raster:bands`` on each asset).

Existing inputs with the same parameters are reused (``--force`` regenerates them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# run as a script, benchmarks/ would come first on sys.path and this file would shadow the
# library of the same name (benchmarks/distributed.py vs dask.distributed): use the repo root
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA_DIR  # noqa: E402

EPSG = 32633
RES = 10.0
NORTH = 5300040.0  # top edge (metres), about 47.8 N


def origin(size: int) -> tuple[float, float]:
    """Upper-left corner of a ``size`` px grid centred on the zone's central meridian (easting
    500 km), where a lat/lon AOI maps to UTM with almost no growth (no grid convergence)."""
    return (500000.0 - (size // 2) * RES, NORTH)
BLOCK = 512
#: band order: the cube's default six first
BAND_ORDER = ("blue", "green", "red", "nir", "swir16", "swir22", "rededge1", "rededge2",
              "rededge3", "nir08", "coastal", "nir09")
WAVELENGTH = {"coastal": 0.443, "blue": 0.49, "green": 0.56, "red": 0.665, "rededge1": 0.705,
              "rededge2": 0.74, "rededge3": 0.783, "nir": 0.842, "nir08": 0.865, "nir09": 0.945,
              "swir16": 1.61, "swir22": 2.19}
#: surface reflectance (0-1) per land-cover class and band (typical published signatures)
SPECTRA = {
    #             coast blue  green red   re1   re2   re3   nir   nir08 nir09 sw16  sw22
    "vegetation": (0.03, 0.04, 0.08, 0.04, 0.12, 0.30, 0.38, 0.42, 0.43, 0.40, 0.22, 0.10),
    "soil":       (0.08, 0.10, 0.14, 0.19, 0.22, 0.24, 0.26, 0.27, 0.28, 0.27, 0.33, 0.27),
    "built":      (0.10, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.18, 0.17, 0.20, 0.18),
    "water":      (0.05, 0.06, 0.05, 0.03, 0.02, 0.015, 0.012, 0.01, 0.01, 0.01, 0.005, 0.003),
}
_SPEC_ORDER = ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir",
               "nir08", "nir09", "swir16", "swir22")
SCL_OF_CLASS = {"vegetation": 4, "soil": 5, "built": 5, "water": 6}
START = dt.datetime(2023, 3, 1, 10, 10, 21, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Inputs:
    """A generated input set: its folder, grid and item dicts (absolute hrefs)."""

    root: Path
    dates: int
    bands: tuple[str, ...]
    size: int
    items: list[dict[str, Any]]

    @property
    def epsg(self) -> int:
        return EPSG

    @property
    def resolution(self) -> float:
        return RES

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Grid bounds (minx, miny, maxx, maxy) in EPSG:32633 metres."""
        x0, y0 = origin(self.size)
        return (x0, y0 - self.size * RES, x0 + self.size * RES, y0)

    def band_files(self) -> list[Path]:
        return [Path(it["assets"][b]["href"]) for it in self.items for b in self.bands]

    def quality_files(self) -> list[Path]:
        return [Path(it["assets"]["scl"]["href"]) for it in self.items]

    def items_without_quality(self) -> list[dict[str, Any]]:
        out = []
        for it in self.items:
            d = json.loads(json.dumps(it))
            d["assets"].pop("scl", None)
            out.append(d)
        return out


def folder_for(dates: int, nbands: int, size: int, every: int = 5, block: int = BLOCK) -> Path:
    return DATA_DIR / (f"s2l2a-{dates}d-{nbands}b-{size}px" + (f"-every{every}d" if every != 5 else "")
                       + (f"-tile{block}" if block != BLOCK else ""))


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field in [0, 1] (cubic upsampling of a coarse random grid)."""
    from scipy.ndimage import zoom

    coarse = rng.random((cells + 3, cells + 3), dtype=np.float32)
    fine = zoom(coarse, size / cells, order=3, prefilter=False, grid_mode=True, mode="nearest")
    off = (fine.shape[0] - size) // 2
    fine = fine[off:off + size, off:off + size]
    lo, hi = float(fine.min()), float(fine.max())
    return ((fine - lo) / (hi - lo + 1e-9)).astype(np.float32)


def _landcover(rng: np.random.Generator, size: int) -> np.ndarray:
    """Class index per pixel: 0 vegetation, 1 soil, 2 built-up, 3 water."""
    a = _smooth_field(rng, size, max(4, size // 96))
    b = _smooth_field(rng, size, max(4, size // 48))
    cls = np.zeros((size, size), np.uint8)
    cls[a > 0.55] = 1
    cls[(a > 0.55) & (b > 0.6)] = 2
    cls[a < 0.12] = 3
    return cls


def _write_cog(path: Path, array: np.ndarray, nodata: int, block: int = BLOCK) -> None:
    import rasterio
    import rasterio.shutil
    from affine import Affine
    from rasterio.io import MemoryFile

    x0, y0 = origin(array.shape[1])
    transform = Affine(RES, 0.0, x0, 0.0, -RES, y0)
    profile = dict(driver="GTiff", height=array.shape[0], width=array.shape[1], count=1,
                   dtype=array.dtype, crs=f"EPSG:{EPSG}", transform=transform, nodata=nodata,
                   tiled=True, blockxsize=block, blockysize=block)
    tmp = path.with_name(path.name + ".part")
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(array, 1)
        with mem.open() as src:
            rasterio.shutil.copy(src, tmp, driver="COG", compress="DEFLATE", blocksize=block,
                                 overview_resampling="nearest")
    os.replace(tmp, path)


def _bbox_lonlat(size: int) -> list[float]:
    from pyproj import Transformer

    x0, y0 = origin(size)
    tr = Transformer.from_crs(EPSG, 4326, always_xy=True)
    b = tr.transform_bounds(x0, y0 - size * RES, x0 + size * RES, y0, densify_pts=21)
    return [round(v, 7) for v in b]


def _item(item_id: str, when: dt.datetime, platform: str, size: int, cloud: float,
          hrefs: dict[str, str], bbox: list[float]) -> dict[str, Any]:
    x0, y0 = origin(size)
    transform = [RES, 0.0, x0, 0.0, -RES, y0]
    assets: dict[str, Any] = {}
    for band, href in hrefs.items():
        if band == "scl":
            assets["scl"] = {
                "href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": "Scene classification map (SCL)", "roles": ["data"],
                "proj:shape": [size, size], "proj:transform": transform,
                "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": RES}],
            }
            continue
        assets[band] = {
            "href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": band, "roles": ["data", "reflectance"], "gsd": RES,
            "eo:bands": [{"name": band, "common_name": band, "center_wavelength": WAVELENGTH[band]}],
            "proj:shape": [size, size], "proj:transform": transform,
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                              "spatial_resolution": RES, "scale": 0.0001, "offset": -0.1}],
        }
    x0, y0, x1, y1 = bbox
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": "sentinel-2-l2a",
        "bbox": bbox,
        "geometry": {"type": "Polygon",
                     "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
        "properties": {
            "datetime": when.isoformat().replace("+00:00", "Z"),
            "platform": platform, "constellation": "sentinel-2", "instruments": ["msi"],
            "eo:cloud_cover": round(cloud, 3), "proj:code": f"EPSG:{EPSG}",
            "s2:processing_baseline": "05.09", "s2:product_type": "S2MSI2A",
        },
        "assets": assets,
        "links": [],
    }


def generate(dates: int = 24, nbands: int = 6, size: int = 1024, seed: int = 0,
             force: bool = False, quiet: bool = False, every: int = 5, block: int = BLOCK) -> Inputs:
    """Generate (or reuse) the input set (``every``: days between dates; ``block``: the COGs'
    internal tile size, px); returns its :class:`Inputs`."""
    if not 1 <= nbands <= len(BAND_ORDER):
        raise ValueError(f"bands must be 1..{len(BAND_ORDER)}, got {nbands}")
    if size < 16 or dates < 1:
        raise ValueError(f"expected size >= 16 px and dates >= 1, got size={size}, dates={dates}")
    bands = BAND_ORDER[:nbands]
    if every < 1:
        raise ValueError(f"every must be >= 1 day, got {every}")
    root = folder_for(dates, nbands, size, every, block)
    manifest = root / "items.json"
    params = {"dates": dates, "bands": list(bands), "size": size, "seed": seed, "block": block,
              "every": every, "version": 3}
    if manifest.exists() and not force:
        data = json.loads(manifest.read_text())
        if data.get("rsvlm:params") == params and all(
                Path(a["href"]).exists() for f in data["features"] for a in f["assets"].values()):
            return Inputs(root, dates, bands, size, data["features"])
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cls = _landcover(rng, size)
    texture = (_smooth_field(rng, size, max(4, size // 8)) - 0.5).astype(np.float32)
    patch = _smooth_field(rng, size, max(4, size // 128))
    cleared = (cls == 0) & (patch > np.quantile(patch, 0.9))  # ~4% of the area
    change_from = (2 * dates) // 3
    spec = {k: dict(zip(_SPEC_ORDER, v)) for k, v in SPECTRA.items()}
    names = list(SPECTRA)
    bbox = _bbox_lonlat(size)
    items = []
    for d in range(dates):
        when = START + dt.timedelta(days=every * d)
        cls_d = np.where(cleared, np.uint8(1), cls) if d >= change_from else cls
        platform = "sentinel-2a" if d % 2 == 0 else "sentinel-2b"
        item_id = f"S2{platform[-1].upper()}_33TVN_{when:%Y%m%d}_0_L2A"
        folder = root / item_id
        folder.mkdir(exist_ok=True)
        r = np.random.default_rng([seed, d])
        # phenology: vegetation greenness peaks in July of every year
        green = 0.55 + 0.45 * np.cos(2 * np.pi * (when.timetuple().tm_yday - 196) / 365.25)
        cloud_frac = float(r.choice([0.0, 0.0, 0.05, 0.15, 0.35]))
        cfield = _smooth_field(r, size, max(4, size // 64))
        cloud = cfield > np.quantile(cfield, 1 - cloud_frac) if cloud_frac else np.zeros_like(cls, bool)
        shadow = np.roll(cloud, (size // 40, size // 30), axis=(0, 1)) & ~cloud
        thin = (cfield > np.quantile(cfield, 1 - cloud_frac - 0.03)) & ~cloud if cloud_frac else \
            np.zeros_like(cls, bool)
        scl = np.array([SCL_OF_CLASS[n] for n in names], np.uint8)[cls_d]
        scl[shadow] = 3
        scl[thin] = 10
        cloudy = cloud & (cfield > np.quantile(cfield, 1 - cloud_frac / 2)) if cloud_frac else cloud
        scl[cloud] = 8
        scl[cloudy] = 9
        hrefs: dict[str, str] = {}
        for band in bands:
            table = np.array([spec[n][band] for n in names], np.float32)
            refl = table[cls_d]
            if band in ("nir", "nir08", "rededge2", "rededge3", "rededge1", "nir09"):
                refl = np.where(cls_d == 0, refl * green, refl)
            elif band in ("red", "blue", "swir16", "swir22"):
                refl = np.where(cls_d == 0, refl * (1.6 - 0.6 * green), refl)
            refl = refl * (1.0 + 0.25 * texture) + r.normal(0.0, 0.006, refl.shape).astype(np.float32)
            refl = np.where(cloud, 0.45 + 0.3 * cfield, refl)
            refl = np.where(thin, refl + 0.08, refl)
            refl = np.where(shadow, refl * 0.45, refl)
            dn = np.clip(np.rint(refl * 10000.0 + 1000.0), 1, 65535).astype(np.uint16)
            path = folder / f"{band}.tif"
            _write_cog(path, dn, nodata=0, block=block)
            hrefs[band] = str(path)
        path = folder / "scl.tif"
        _write_cog(path, scl, nodata=0, block=block)
        hrefs["scl"] = str(path)
        items.append(_item(item_id, when, platform, size, 100.0 * float((scl >= 8).mean()),
                           hrefs, bbox))
        if not quiet:
            print(f"  {item_id}: {len(bands)} bands + scl, cloud {100 * cloud_frac:.0f}%", flush=True)
    _write_catalog(root, items, params)
    return Inputs(root, dates, bands, size, items)


def _write_catalog(root: Path, items: list[dict[str, Any]], params: dict[str, Any]) -> None:
    from rsvlm_temporal.atomic import write_json_atomic

    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for it in items:
        rel = json.loads(json.dumps(it))
        for key, a in rel["assets"].items():
            a["href"] = f"./{Path(a['href']).name}"
        rel["links"] = [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ]
        write_json_atomic(root / it["id"] / f"{it['id']}.json", rel)
        links.append({"rel": "item", "href": f"./{it['id']}/{it['id']}.json",
                      "type": "application/geo+json"})
    write_json_atomic(root / "catalog.json", {
        "type": "Catalog", "stac_version": "1.1.0", "id": root.name,
        "description": "rsvlm-temporal benchmark inputs: synthetic Sentinel-2 L2A COGs", "links": links,
    })
    # written last: its presence with these params marks a complete set
    write_json_atomic(root / "items.json", {"type": "FeatureCollection", "rsvlm:params": params,
                                            "features": items})


def main(argv: list[str] | None = None) -> Inputs:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dates", type=int, default=24)
    ap.add_argument("--bands", type=int, default=6, help="number of bands (blue, green, red, nir, "
                    "swir16, swir22 first)")
    ap.add_argument("--size", type=int, default=1024, help="width = height in pixels (10 m)")
    ap.add_argument("--every", type=int, default=5, help="days between dates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block", type=int, default=BLOCK, help="internal COG tile size (px)")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    a = ap.parse_args(argv)
    inputs = generate(a.dates, a.bands, a.size, a.seed, a.force, every=a.every, block=a.block)
    files = inputs.band_files() + inputs.quality_files()
    mb = sum(f.stat().st_size for f in files) / 1e6
    raw = a.dates * a.bands * a.size * a.size * 2 / 1e6
    print(f"{inputs.root}: {len(inputs.items)} items, {len(files)} COGs, {mb:.1f} MB on disk "
          f"(band data {raw:.1f} MB as raw uint16)")
    return inputs


if __name__ == "__main__":
    main()
