"""Normalise STAC items (any of Earth Search v0/v1, Planetary Computer, USGS LandsatLook, or
our synthetic catalogs) into what the cube loader needs: sensor, band -> asset, CRS, native
grid and the scale/offset that turns DN into surface reflectance 0-1.

Reads metadata only; no pixel is touched here.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

from affine import Affine

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


def normalise_item(item: Any, bands: Sequence[str]) -> NormalisedItem:
    """Normalise one STAC item for the given common band names.

    Raises :class:`UnknownBandError` when a band is not defined for the item's sensor or the
    item carries no asset for it, and :class:`ItemError` for a missing datetime or href.
    """
    d = as_dict(item)
    item_id = d.get("id", "?")
    sensor = detect_sensor(d)
    props = d.get("properties", {})
    when = _parse_datetime(d)
    platform = normalise_platform(props.get("platform"))
    default_offset = _default_offset(sensor, props, when)

    out: dict[str, BandAsset] = {}
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
        out[name] = _band_asset(d, key, name, sensor.scale, default_offset, sensor.nodata)

    qkey = _find_asset(d, sensor.quality["assets"])
    quality = _band_asset(d, qkey, QUALITY_KEY, 1.0, 0.0, None) if qkey else None
    epsg = parse_epsg(props.get("proj:epsg", props.get("proj:code")))
    if epsg is None:
        epsg = next((a.epsg for a in out.values() if a.epsg is not None), None)
    bbox = d.get("bbox")
    return NormalisedItem(
        id=item_id,
        datetime=when,
        sensor=sensor,
        platform=platform,
        epsg=epsg,
        bbox=tuple(float(v) for v in bbox[:4]) if bbox and len(bbox) >= 4 else None,  # type: ignore[arg-type]
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
