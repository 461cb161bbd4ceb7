"""Sensor tables (kept as data in ``config/sensors.json``) and sensor detection for STAC items."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from rsvlm_temporal.errors import ItemError, UnknownBandError


@dataclass(frozen=True)
class BandSpec:
    """One harmonised band: common name, candidate asset keys, resolution (m), wavelength (um)."""

    name: str
    assets: tuple[str, ...]
    resolution: float
    wavelength: float
    platforms: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SensorSpec:
    """A sensor/product family: how to find its bands, scale them and read its quality band."""

    id: str
    title: str
    collections: tuple[str, ...]
    platforms: tuple[str, ...]
    nodata: int
    scale: float
    offset: float
    bands: Mapping[str, BandSpec]
    quality: Mapping[str, Any]
    baseline_offset: Mapping[str, Any] | None = field(default=None)

    def band(self, name: str) -> BandSpec:
        """The :class:`BandSpec` for a common band name, or :class:`UnknownBandError`."""
        try:
            return self.bands[name]
        except KeyError:
            raise UnknownBandError(
                f"unknown band {name!r} for {self.id}; expected one of {sorted(self.bands)}"
            ) from None


@lru_cache(maxsize=1)
def sensor_table() -> dict[str, SensorSpec]:
    """All sensor specs from the packaged table, by id (``sentinel-2-l2a``, ``landsat-c2-l2``)."""
    raw = json.loads(resources.files("rsvlm_temporal").joinpath("config/sensors.json").read_text())
    out: dict[str, SensorSpec] = {}
    for sid, spec in raw.items():
        if sid.startswith("_"):
            continue
        bands = {
            name: BandSpec(
                name=name,
                assets=tuple(b["assets"]),
                resolution=float(b["resolution"]),
                wavelength=float(b["wavelength"]),
                platforms=tuple(b["platforms"]) if "platforms" in b else None,
            )
            for name, b in spec["bands"].items()
        }
        out[sid] = SensorSpec(
            id=sid,
            title=spec["title"],
            collections=tuple(spec["collections"]),
            platforms=tuple(spec["platforms"]),
            nodata=int(spec["nodata"]),
            scale=float(spec["scale"]),
            offset=float(spec["offset"]),
            bands=bands,
            quality=spec["quality"],
            baseline_offset=spec.get("baseline_offset"),
        )
    return out


def normalise_platform(platform: str | None) -> str:
    """``LANDSAT_8`` / ``Sentinel-2A`` -> ``landsat-8`` / ``sentinel-2a``."""
    return (platform or "").strip().lower().replace("_", "-").replace(" ", "-")


def detect_sensor(item: Mapping[str, Any]) -> SensorSpec:
    """The sensor of a STAC item (a dict), from its collection id, else its platform.

    Raises :class:`ItemError` when neither matches a known sensor.
    """
    table = sensor_table()
    collection = item.get("collection") or ""
    props = item.get("properties", {})
    platform = normalise_platform(props.get("platform"))
    for spec in table.values():
        if collection in spec.collections:
            return spec
    for spec in table.values():
        if platform in spec.platforms:
            return spec
    raise ItemError(
        f"item {item.get('id')!r}: cannot tell the sensor from collection {collection!r} / "
        f"platform {props.get('platform')!r}; expected a collection in "
        f"{sorted(c for s in table.values() for c in s.collections)} or a Landsat / Sentinel-2 platform"
    )
