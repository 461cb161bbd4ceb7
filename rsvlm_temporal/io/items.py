"""Normalise STAC items (any of Earth Search v0/v1, Planetary Computer, USGS LandsatLook, or
our synthetic catalogs) into what the cube loader needs: sensor, band -> asset, CRS, native
grid and the scale/offset that turns DN into surface reflectance 0-1.

Reads metadata only; no pixel is touched here. An item that declares no grid (no complete
``proj:epsg`` / ``proj:code`` + ``proj:transform`` + ``proj:shape``, item or asset level) gets
the grid of its first requested band's file header (:func:`header_grid`: one open, no pixel;
a small ranged HTTP read for a remote COG, under the reader's GDAL timeouts), not its lon/lat
``bbox``, which reprojected would grow the cube's grid.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

from affine import Affine
from pyproj import Transformer

from rsvlm_temporal.errors import ItemError, UnknownBandError
from rsvlm_temporal.io.sensors import SensorSpec, detect_sensor, normalise_platform

#: the quality band travels as this pseudo-asset key through stackstac
QUALITY_KEY = "_quality"
#: Sentinel-2 processing baseline 04.00 took effect on this date (ESA); used when an item does
#: not state its baseline.
S2_BASELINE_04_DATE = dt.datetime(2022, 1, 25, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class BandAsset:
    """One band of one item: where to read it and how to scale its DN to reflectance 0-1."""

    band: str
    href: str
    scale: float
    offset: float
    nodata: float | None
    epsg: int | None
    transform: tuple[float, ...] | None
    shape: tuple[int, int] | None


@dataclass(frozen=True)
class NormalisedItem:
    """A STAC item reduced to what the loader needs."""

    id: str
    datetime: dt.datetime
    sensor: SensorSpec
    platform: str
    epsg: int | None
    bbox: tuple[float, float, float, float] | None  # lon/lat, EPSG:4326
    cloud_cover: float | None
    bands: Mapping[str, BandAsset]
    quality: BandAsset | None

    def grid(self, band: str | None = None) -> tuple[int, Affine, tuple[int, int]] | None:
        """(epsg, transform, shape) of a band's native grid, or None if the item does not say."""
        asset = self.bands[band] if band else next(iter(self.bands.values()))
        if asset.epsg is None or asset.transform is None or asset.shape is None:
            return None
        return asset.epsg, Affine(*asset.transform[:6]), asset.shape

    def bounds(self, band: str | None = None) -> tuple[float, float, float, float] | None:
        """Native bounds (minx, miny, maxx, maxy) in the item's CRS, from proj:transform + proj:shape."""
        g = self.grid(band)
        if g is None:
            return None
        _, t, (h, w) = g
        xs = (t.c, t.c + t.a * w)
        ys = (t.f, t.f + t.e * h)
        return (min(xs), min(ys), max(xs), max(ys))


def as_dict(item: Any) -> dict[str, Any]:
    """A STAC item (pystac.Item or dict) as a plain dict, with absolute asset hrefs."""
    if isinstance(item, Mapping):
        return dict(item)
    if hasattr(item, "to_dict"):
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        for key, asset in item.assets.items():
            d["assets"][key]["href"] = asset.get_absolute_href() or asset.href
        return d
    raise ItemError(f"expected a STAC item (pystac.Item or dict), got {type(item).__name__}")


def parse_epsg(value: Any) -> int | None:
    """EPSG code from ``proj:epsg`` (32633) or ``proj:code`` ("EPSG:32633"); None if absent."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.upper().startswith("EPSG:"):
        text = text.split(":", 1)[1]
    try:
        return int(text)
    except ValueError:
        raise ItemError(f"unsupported projection code {value!r}; expected 'EPSG:<number>'") from None


def _proj(obj: Mapping[str, Any], fallback: Mapping[str, Any]) -> tuple[int | None, Any, Any]:
    def get(key: str) -> Any:
        return obj.get(key, fallback.get(key))

    epsg = parse_epsg(obj.get("proj:epsg", obj.get("proj:code")))
    if epsg is None:
        epsg = parse_epsg(fallback.get("proj:epsg", fallback.get("proj:code")))
    return epsg, get("proj:transform"), get("proj:shape")


def _parse_datetime(item: Mapping[str, Any]) -> dt.datetime:
    props = item.get("properties", {})
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise ItemError(f"item {item.get('id')!r} has no datetime; expected properties.datetime")
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _baseline(props: Mapping[str, Any]) -> str | None:
    for key in ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline"):
        if props.get(key):
            return str(props[key])
    return None


def _default_offset(sensor: SensorSpec, props: Mapping[str, Any], when: dt.datetime) -> float:
    """Reflectance offset when the asset has no raster:bands: the product convention.

    Sentinel-2 L2A from processing baseline 04.00: reflectance = (DN - 1000) / 10000, unless the
    item says the offset was already applied to the DN.
    """
    rule = sensor.baseline_offset
    if not rule:
        return sensor.offset
    if props.get(rule["applied_flag"]) is True:
        return sensor.offset
    baseline = _baseline(props)
    if baseline is not None:
        newer = tuple(int(p) for p in baseline.split(".")[:2]) >= tuple(
            int(p) for p in rule["from_baseline"].split(".")[:2]
        )
    else:
        newer = when >= S2_BASELINE_04_DATE
    return sensor.offset + (rule["offset_dn"] * sensor.scale if newer else 0.0)


def _href(asset: Mapping[str, Any], item_id: str, key: str) -> str:
    href = asset.get("href")
    if not href:
        raise ItemError(f"item {item_id!r}: asset {key!r} has no href")
    parsed = urlparse(href)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else href
        if not os.path.exists(path):
            raise ItemError(
                f"item {item_id!r}: asset {key!r} points at {path!r}, which does not exist; "
                "fix the catalog hrefs or regenerate the files"
            )
        if not os.path.isfile(path):  # a FIFO or a device would block the read forever
            raise ItemError(
                f"item {item_id!r}: asset {key!r} points at {path!r}, which is not a regular file "
                "(a folder, FIFO, device or socket); expected a GeoTIFF file"
            )
        return os.path.abspath(path)
    return href


def _band_asset(item: Mapping[str, Any], key: str, band: str, scale: float, offset: float,
                nodata: float | None) -> BandAsset:
    asset = item["assets"][key]
    props = item.get("properties", {})
    epsg, transform, shape = _proj(asset, props)
    rb = (asset.get("raster:bands") or [{}])[0]
    return BandAsset(
        band=band,
        href=_href(asset, item.get("id", "?"), key),
        scale=float(rb.get("scale", scale)),
        offset=float(rb.get("offset", offset if "scale" not in rb else 0.0)),
        nodata=rb.get("nodata", nodata),
        epsg=epsg,
        transform=tuple(float(v) for v in transform[:6]) if transform else None,
        shape=(int(shape[0]), int(shape[1])) if shape else None,
    )


def _find_asset(item: Mapping[str, Any], candidates: Sequence[str]) -> str | None:
    assets = item.get("assets", {})
    return next((k for k in candidates if k in assets), None)


#: grids read from file headers: (href, mtime_ns, size) for a local file (a regenerated file is
#: read again), the href for a remote one -> (epsg, transform (6 floats), shape (rows, cols))
_HEADER_GRIDS: dict[tuple[str, int, int], tuple[int, tuple[float, ...], tuple[int, int]]] = {}
#: entries kept in :data:`_HEADER_GRIDS` (the oldest go first)
HEADER_CACHE_SIZE = 8192


def _cache_key(href: str) -> tuple[str, int, int]:
    parsed = urlparse(href)
    if parsed.scheme in ("", "file"):
        st = os.stat(parsed.path if parsed.scheme == "file" else href)
        return href, st.st_mtime_ns, st.st_size
    return href, -1, -1


def header_grid(href: str, item_id: str = "?", key: str = "?") -> tuple[int, tuple[float, ...], tuple[int, int]]:
    """(EPSG code, affine transform (6 floats, metres of that CRS), shape (rows, cols)) of a
    raster from its header: one ``rasterio.open`` under the reader's GDAL environment (HTTP
    timeouts and retries of :data:`rsvlm_temporal.io.reader.HTTP_OPTIONS`), no pixel read;
    cached per href. :class:`ItemError` naming the item and asset when the header cannot be read
    or carries no EPSG-coded CRS."""
    import rasterio

    from rsvlm_temporal.io.reader import gdal_env

    try:
        cache_key = _cache_key(href)
    except OSError:
        cache_key = (href, -1, -1)
    hit = _HEADER_GRIDS.get(cache_key)
    if hit is not None:
        return hit
    fix = ("add proj:code (e.g. \"EPSG:32633\") + proj:transform + proj:shape to the item or its "
           "assets, or fix the file")
    try:
        with gdal_env().open, rasterio.open(href) as ds:
            crs, transform, shape = ds.crs, ds.transform, (int(ds.height), int(ds.width))
    except Exception as exc:  # noqa: BLE001 - rasterio/GDAL raise many types; name the asset either way
        raise ItemError(
            f"item {item_id!r} declares no grid (no proj:* CRS + transform + shape), and the header of asset {key!r} "
            f"({href}) cannot be read to take it from the file: {exc}; {fix}") from None
    epsg = crs.to_epsg() if crs is not None else None
    if epsg is None:
        what = "has no CRS" if crs is None else f"has a CRS without an EPSG code ({crs.to_string()[:80]})"
        raise ItemError(f"item {item_id!r} declares no grid (no proj:* CRS + transform + shape), and the file of asset "
                        f"{key!r} ({href}) {what}; {fix}")
    grid = (int(epsg), tuple(float(v) for v in tuple(transform)[:6]), shape)
    while len(_HEADER_GRIDS) >= HEADER_CACHE_SIZE:
        _HEADER_GRIDS.pop(next(iter(_HEADER_GRIDS)))
    _HEADER_GRIDS[cache_key] = grid
    return grid


def _has_grid(asset: BandAsset) -> bool:
    return asset.epsg is not None and asset.transform is not None and asset.shape is not None


def _scaled_grid(transform: tuple[float, ...], shape: tuple[int, int],
                 factor: float) -> tuple[tuple[float, ...], tuple[int, int]]:
    """The same footprint with pixels ``factor`` times larger (a 20 m band beside a 10 m one)."""
    a, b, c, d_, e, f = transform
    rows = max(1, math.ceil(round(shape[0] / factor, 6)))
    cols = max(1, math.ceil(round(shape[1] / factor, 6)))
    return (a * factor, b * factor, c, d_ * factor, e * factor, f), (rows, cols)


def _from_header(item_id: str, sensor: SensorSpec, keys: Mapping[str, str], out: dict[str, BandAsset],
                 quality: BandAsset | None) -> tuple[int, dict[str, BandAsset], BandAsset | None,
                                                     tuple[float, float, float, float]]:
    """The grid of an item that declares none, from the header of its first requested band:
    that band gets the file's grid exactly; the other bands its footprint at their nominal pixel
    size (sensor table; e.g. 20 m for Sentinel-2 SWIR), the quality band its footprint. Returns
    (epsg, bands, quality, the footprint as a lon/lat bbox)."""
    first = next(iter(out))
    epsg, transform, shape = header_grid(out[first].href, item_id, keys[first])
    nominal = sensor.band(first).resolution

    def with_grid(asset: BandAsset, factor: float) -> BandAsset:
        t, s = (transform, shape) if factor == 1 else _scaled_grid(transform, shape, factor)
        return BandAsset(band=asset.band, href=asset.href, scale=asset.scale, offset=asset.offset,
                         nodata=asset.nodata, epsg=epsg, transform=t, shape=s)

    bands = {b: with_grid(a, 1.0 if b == first else sensor.band(b).resolution / nominal)
             for b, a in out.items()}
    qual = with_grid(quality, 1.0) if quality is not None else None
    t = Affine(*transform)
    xs, ys = (t.c, t.c + t.a * shape[1]), (t.f, t.f + t.e * shape[0])
    lonlat = Transformer.from_crs(epsg, 4326, always_xy=True).transform_bounds(
        min(xs), min(ys), max(xs), max(ys), densify_pts=21)
    return epsg, bands, qual, tuple(float(v) for v in lonlat)  # type: ignore[return-value]


def normalise_item(item: Any, bands: Sequence[str]) -> NormalisedItem:
    """Normalise one STAC item for the given common band names.

    An item that declares no grid takes it from the header of its first band's file
    (:func:`_from_header`), its bbox then the file's footprint.

    Raises :class:`UnknownBandError` when a band is not defined for the item's sensor or the
    item carries no asset for it, and :class:`ItemError` for a missing datetime or href, or a
    header that cannot be read where the item declares no grid.
    """
    d = as_dict(item)
    item_id = d.get("id", "?")
    sensor = detect_sensor(d)
    props = d.get("properties", {})
    when = _parse_datetime(d)
    platform = normalise_platform(props.get("platform"))
    default_offset = _default_offset(sensor, props, when)

    out: dict[str, BandAsset] = {}
    keys: dict[str, str] = {}
    for name in bands:
        spec = sensor.band(name)
        if spec.platforms and platform and platform not in spec.platforms:
            raise UnknownBandError(
                f"band {name!r} is not measured by {platform} (item {item_id!r}); "
                f"it exists only on {list(spec.platforms)}"
            )
        key = _find_asset(d, spec.assets)
        if key is None:
            raise UnknownBandError(
                f"item {item_id!r} ({sensor.id}) has no asset for band {name!r}; looked for "
                f"{list(spec.assets)}, item has {sorted(d.get('assets', {}))}"
            )
        keys[name] = key
        out[name] = _band_asset(d, key, name, sensor.scale, default_offset, sensor.nodata)

    qkey = _find_asset(d, sensor.quality["assets"])
    quality = _band_asset(d, qkey, QUALITY_KEY, 1.0, 0.0, None) if qkey else None
    raw_bbox = d.get("bbox")
    if raw_bbox and len(raw_bbox) == 6:  # 3-D: minx, miny, minz, maxx, maxy, maxz
        raw_bbox = [raw_bbox[0], raw_bbox[1], raw_bbox[3], raw_bbox[4]]
    bbox = tuple(float(v) for v in raw_bbox[:4]) if raw_bbox and len(raw_bbox) >= 4 else None
    if out and not any(_has_grid(a) for a in [*out.values(), *([quality] if quality else [])]):
        # no complete proj:* grid (CRS + transform + shape) on any asset or the item: the grid of
        # the first band's file, not the (reprojected, hence larger) lon/lat bbox
        epsg, out, quality, bbox = _from_header(item_id, sensor, keys, out, quality)
    else:
        epsg = parse_epsg(props.get("proj:epsg", props.get("proj:code")))
        if epsg is None:
            epsg = next((a.epsg for a in out.values() if a.epsg is not None), None)
    return NormalisedItem(
        id=item_id,
        datetime=when,
        sensor=sensor,
        platform=platform,
        epsg=epsg,
        bbox=bbox,  # type: ignore[arg-type]
        cloud_cover=props.get("eo:cloud_cover"),
        bands=out,
        quality=quality,
    )


def stackstac_dict(item: NormalisedItem) -> dict[str, Any]:
    """An item dict in the form stackstac 0.5.1 reads: ``proj:epsg`` (not ``proj:code``),
    assets keyed by common band name (plus the quality band), raw hrefs, a bbox."""
    assets: dict[str, Any] = {}
    for asset in list(item.bands.values()) + ([item.quality] if item.quality else []):
        a: dict[str, Any] = {"href": asset.href, "type": "image/tiff; application=geotiff"}
        if asset.epsg is not None:
            a["proj:epsg"] = asset.epsg
        if asset.transform is not None and asset.shape is not None:
            a["proj:transform"] = list(asset.transform)
            a["proj:shape"] = list(asset.shape)
        assets[asset.band] = a
    props: dict[str, Any] = {"datetime": item.datetime.isoformat()}
    if item.epsg is not None:
        props["proj:epsg"] = item.epsg
    out = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item.id,
        "properties": props,
        "assets": assets,
        "geometry": None,
        "links": [],
    }
    out["bbox"] = list(item.bbox) if item.bbox else None
    return copy.deepcopy(out)


def normalise_items(items: Iterable[Any], bands: Sequence[str]) -> list[NormalisedItem]:
    """Normalise many items (see :func:`normalise_item`), sorted by datetime."""
    out = [normalise_item(it, bands) for it in items]
    if not out:
        raise ItemError("no items to load; run a search that returns at least one item")
    return sorted(out, key=lambda i: (i.datetime, i.id))
