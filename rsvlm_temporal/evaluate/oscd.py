"""The OSCD Sentinel-2 change pairs (Daudt et al., IGARSS 2018) as a user's own catalog, and their
evaluation through the user's path (``rsvlm analyze``: :func:`rsvlm_temporal.pipeline.run_analysis`).

Data (``../shared/data/oscd_s2/<city>/``, SOURCES.md section 8; CC BY-NC-SA labels: evaluation
only, never copied into the package): ``imgs_1_rect/`` and ``imgs_2_rect/`` with one ``B??.tif``
per band (Sentinel-2 L1C DN = TOA reflectance x 10000, uint16, all bands on one 10 m grid, no
georeferencing), ``<city>.geojson`` (the lon/lat bbox, WGS 84), ``dates.txt`` and ``cm/cm.png``
(255 = urban change, every pixel labelled).

:func:`write_city_as_stac` places each city in its UTM zone (WGS 84 / UTM, EPSG:326zz or 327zz
from the bbox centre) at 10 m with the upper-left corner at the projected bbox's north-west
corner (the bbox gives the place, not a surveyed registration: the grid is right to about a
pixel), and writes one uint16 COG per band plus a static STAC catalog whose items look like a
user's own: ``platform`` sentinel-2a, ``eo:bands`` common names, ``raster:bands`` scale 1e-4,
no quality band.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from rsvlm_temporal.atomic import write_json_atomic
from rsvlm_temporal.change.thresholds import DEFAULT_THRESHOLD
from rsvlm_temporal.errors import InsufficientDataError, RasterReadError
from rsvlm_temporal.outputs.cog import write_array_cog

__all__ = ["OSCD_BANDS", "city_grid", "oscd_cities", "read_city_band", "read_city_label",
           "write_city_as_stac"]

COLLECTION_ID = "oscd-s2-l1c"
#: OSCD band file -> (common name, centre wavelength um); B10 (cirrus, 1.375 um) is not a
#: surface band the loader names, and is not written
OSCD_BANDS: dict[str, tuple[str, float]] = {
    "B01": ("coastal", 0.443), "B02": ("blue", 0.490), "B03": ("green", 0.560),
    "B04": ("red", 0.665), "B05": ("rededge1", 0.705), "B06": ("rededge2", 0.740),
    "B07": ("rededge3", 0.783), "B08": ("nir", 0.842), "B8A": ("nir08", 0.865),
    "B09": ("nir09", 0.945), "B11": ("swir16", 1.610), "B12": ("swir22", 2.190),
}
PIXEL_M = 10.0


def oscd_cities(data_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the city folders of ``data_dir`` that hold both images, the label and dates."""
    d = Path(data_dir)
    if not d.is_dir():
        raise RasterReadError(f"{d} not found; expected the OSCD folder (../shared/data/oscd_s2)")
    names = sorted(p.name for p in d.iterdir() if (p / "imgs_1_rect").is_dir()
                   and (p / "imgs_2_rect").is_dir() and (p / "cm" / "cm.png").is_file()
                   and (p / "dates.txt").is_file())
    if not names:
        raise InsufficientDataError(f"no OSCD city (imgs_1_rect, imgs_2_rect, cm/cm.png, dates.txt) in {d}")
    return names


def read_city_band(city_dir: Path, which: int, band: str) -> np.ndarray:
    """The uint16 DN of band file ``band`` (e.g. ``B04``) of image ``which`` (1 or 2)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    path = Path(city_dir) / f"imgs_{which}_rect" / f"{band}.tif"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.read(1).astype(np.uint16)
    except (OSError, rasterio.errors.RasterioError) as exc:
        raise RasterReadError(f"cannot read {path}: {exc}") from exc


def read_city_label(city_dir: Path) -> np.ndarray:
    """Boolean urban-change label (y, x) of a city (``cm/cm.png`` > 127)."""
    from PIL import Image

    path = Path(city_dir) / "cm" / "cm.png"
    try:
        with Image.open(path) as im:
            a = np.array(im.convert("L"))
    except OSError as exc:
        raise RasterReadError(f"cannot read {path}: {exc}") from exc
    return a > 127


def _dates(city_dir: Path) -> tuple[dt.date, dt.date]:
    text = (Path(city_dir) / "dates.txt").read_text()
    found = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            found[k.strip()] = dt.datetime.strptime(v.strip(), "%Y%m%d").date()
    try:
        return found["date_1"], found["date_2"]
    except KeyError as exc:
        raise RasterReadError(f"{city_dir}/dates.txt lacks {exc}; expected date_1 and date_2") from exc


def city_grid(city_dir: Path, shape: tuple[int, int]) -> tuple[str, tuple[float, ...], list[float]]:
    """``(crs, transform, lon/lat bbox)`` of a city: its UTM zone from the bbox centre, 10 m
    pixels, the upper-left corner at the north-west corner of the bbox projected to UTM."""
    from pyproj import Transformer

    name = Path(city_dir).name
    gj = json.loads((Path(city_dir) / f"{name}.geojson").read_text())
    ring = np.asarray(gj["features"][0]["geometry"]["coordinates"][0], dtype=np.float64)
    lon0, lat0, lon1, lat1 = ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max()
    zone = int(math.floor(((lon0 + lon1) / 2 + 180) / 6)) + 1
    epsg = (32600 if (lat0 + lat1) / 2 >= 0 else 32700) + zone
    tr = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    xs, ys = tr.transform(ring[:, 0], ring[:, 1])
    x0 = math.floor(float(np.min(xs)) / PIXEL_M) * PIXEL_M
    y0 = math.ceil(float(np.max(ys)) / PIXEL_M) * PIXEL_M
    transform = (PIXEL_M, 0.0, x0, 0.0, -PIXEL_M, y0)
    return f"EPSG:{epsg}", transform, [float(lon0), float(lat0), float(lon1), float(lat1)]


def write_city_as_stac(city_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Write one OSCD city as COGs (one uint16 DN COG per band, UTM 10 m) and a static STAC
    catalog of two items (the two dates) like a user's own; returns the collection's path.
    Written atomically; the source folder is only read."""
    import pystac
    from pystac.extensions.eo import Band, EOExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension

    from rsvlm_temporal.evaluate.taizhou import _lonlat_footprint, add_grid_extensions

    src, out = Path(city_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = src.name
    dates = _dates(src)
    first = read_city_band(src, 1, "B04")
    crs, transform, _ = city_grid(src, first.shape)
    h, w = first.shape
    bbox, geom = _lonlat_footprint(crs, transform, (h, w))
    items = []
    for which, date in ((1, dates[0]), (2, dates[1])):
        item_id = f"S2A_OSCD_{name}_{date:%Y%m%d}"
        item = pystac.Item(
            id=item_id, geometry=geom, bbox=bbox,
            datetime=dt.datetime(date.year, date.month, date.day, 10, 30, tzinfo=dt.timezone.utc),
            properties={"platform": "sentinel-2a", "constellation": "sentinel-2", "instruments": ["msi"],
                        "description": f"OSCD {name} image {which} (Sentinel-2 L1C DN, 10 m; placed in "
                                       "UTM from the city's bbox)"},
            collection=COLLECTION_ID,
        )
        add_grid_extensions(item, crs, (h, w), transform)
        for band, (common, wl) in OSCD_BANDS.items():
            data = read_city_band(src, which, band)
            if data.shape != (h, w):
                raise RasterReadError(f"{src}/imgs_{which}_rect/{band}.tif is {data.shape}; expected {(h, w)}")
            fn = f"{item_id}_{band}.tif"
            write_array_cog(out / item_id / fn, data[None], Affine(*transform), crs, 0, descriptions=[common])
            asset = pystac.Asset(href=str(out / item_id / fn), media_type=pystac.MediaType.COG,
                                 roles=["data"], title=f"{band} ({common})")
            item.add_asset(common, asset)
            EOExtension.ext(asset).bands = [Band.create(name=band, common_name=common, center_wavelength=wl)]
            RasterExtension.ext(asset).bands = [RasterBand.create(
                data_type=DataType.UINT16, scale=1e-4, offset=0.0, nodata=0, spatial_resolution=PIXEL_M)]
        items.append(item)
    extent = pystac.Extent(pystac.SpatialExtent([bbox]),
                           pystac.TemporalExtent([[items[0].datetime, items[-1].datetime]]))
    coll = pystac.Collection(id=COLLECTION_ID, description=f"OSCD {name} pair (evaluation only, "
                             "CC BY-NC-SA 4.0 labels; modified Copernicus Sentinel data)",
                             extent=extent, license="CC-BY-NC-SA-4.0", title=f"OSCD {name}")
    coll.add_items(items)
    coll.normalize_hrefs(str(out))
    coll.make_all_asset_hrefs_relative()
    coll.catalog_type = pystac.CatalogType.SELF_CONTAINED
    for obj in [coll, *items]:
        href = obj.get_self_href()
        assert href is not None
        write_json_atomic(href, obj.to_dict(include_self_link=False, transform_hrefs=True))
    return Path(coll.get_self_href() or out / "collection.json")


def evaluate_city(city_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  method: str = "irmad", threshold: Any = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """One OSCD city through the user's path: STAC, ``run_analysis``, then the counts of its
    change mask and of its built-up-gain class against the urban-change label (every pixel).
    ``threshold``: the change magnitude's threshold rule (None: ``run_analysis``'s own default).
    Returns counts, metrics and the % flagged."""
    import rasterio

    from rsvlm_temporal.classes import CHANGE_CODES
    from rsvlm_temporal.evaluate.metrics import confusion_counts
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.pipeline import run_analysis

    src, out = Path(city_dir), Path(out_dir)
    catalog = write_city_as_stac(src, out / "stac")
    kw: dict[str, Any] = {"magnitude_method": method, "model": None}  # the spectral engine's scores
    if threshold is not None:
        kw["magnitude_threshold"] = threshold
    run = run_analysis(load_items(catalog), out / "analysis", **kw)
    label = read_city_label(src)
    with rasterio.open(run.files["change_mask"]) as r:
        mask = r.read(1)
    if mask.shape != label.shape:
        raise RasterReadError(f"{src.name}: change mask {mask.shape} differs from the label {label.shape}")
    valid = mask != 255
    change = confusion_counts(mask == 1, label, valid)
    built = None
    if "change_class" in run.files:
        with rasterio.open(run.files["change_class"]) as r:
            cls = r.read(1)
        built = confusion_counts(cls == CHANGE_CODES["built_up_gain"], label, valid)
    kinds = sorted({n.kind for n in run.evidence.quality.notes})
    return {"set": f"oscd/{src.name}", "change": change, "built_up": built,
            "flagged_pct": 100.0 * float((mask == 1).sum()) / max(int(valid.sum()), 1),
            "true_pct": 100.0 * float(label[valid].sum()) / max(int(valid.sum()), 1),
            "notes": kinds, "mode": run.mode, "out": str(out)}
