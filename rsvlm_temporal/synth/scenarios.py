"""Synthetic change scenarios with known truth, on a small projected (UTM) grid.

A :class:`SyntheticScene` holds a static landscape (cover fractions at 10 m), the dynamics of one
scenario (wildfire, flood, deforestation, urban growth or seasonal crops), the acquisition plan of
Sentinel-2 and Landsat with their clouds and shadows, and the truth: change class, per-pixel change
dates, burn severity, flood dates, captions and question-answer pairs.

Everything is deterministic in ``seed``: each random stream is drawn from
``SeedSequence([seed, scenario code, stream, ...])``, so one acquisition's clouds do not depend on
how many other acquisitions were drawn.

Units: reflectance 0-1, distances in metres on the scene's UTM grid (``EPSG:326zz``/``327zz``),
areas in hectares, dates as ``numpy.datetime64[D]`` (UTC days); a day number is days since
1970-01-01.
"""

from __future__ import annotations

import calendar
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any, Mapping, Sequence

import numpy as np
from affine import Affine
from pyproj import Transformer
from scipy import ndimage

from rsvlm_temporal.change import spectra
from rsvlm_temporal.classes import BURN_SEVERITY_BOUNDS, BURN_SEVERITY_CLASSES, CHANGE_CLASSES, CHANGE_CODES
from rsvlm_temporal.errors import SyntheticSceneError
from rsvlm_temporal.io import masks

S2 = "sentinel-2-l2a"
LANDSAT = "landsat-c2-l2"
#: short sensor names accepted by ``sensors=`` -> collection ids
SENSOR_ALIASES: dict[str, tuple[str, ...]] = {
    "s2": (S2,), "sentinel-2": (S2,), S2: (S2,),
    "landsat": (LANDSAT,), LANDSAT: (LANDSAT,),
    "both": (S2, LANDSAT), "all": (S2, LANDSAT),
}
#: bands written per collection (common names of config/sensors.json), finest first
SENSOR_BANDS: dict[str, tuple[str, ...]] = {
    S2: ("blue", "green", "red", "nir", "rededge1", "rededge2", "rededge3", "nir08", "swir16", "swir22"),
    LANDSAT: ("blue", "green", "red", "nir08", "swir16", "swir22"),
}
_SENSOR_CODE = {S2: 1, LANDSAT: 2}
PIXEL_SIZE = 10.0  # metres, the truth grid
PIXEL_HA = PIXEL_SIZE * PIXEL_SIZE / 10_000.0

#: abstract land covers of the landscape (axis 0 of cover arrays); phenology maps them to
#: the spectral endmembers of :mod:`spectra` (see ``SyntheticScene.fractions``)
COVERS: tuple[str, ...] = (
    "forest", "grass", "crop", "dry", "soil", "built_up", "water_clear", "water_turbid", "burned",
)
_C = {c: i for i, c in enumerate(COVERS)}

# --------------------------------------------------------------------------------------------
# Configuration as data
# --------------------------------------------------------------------------------------------



def _from_json(value: Any, key: str = "") -> Any:
    """JSON -> the generator's types: lists of numbers as tuples, the keys of the per-severity
    tables as integer class codes."""
    if isinstance(value, dict):
        ints = key in ("severity_shares", "severity_dnbr")
        return {(int(k) if ints else k): _from_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


def _load_scenarios() -> dict[str, Any]:
    raw = json.loads(resources.files("rsvlm_temporal").joinpath("config", "scenarios.json").read_text())
    for name, sc in raw["scenarios"].items():
        missing = [k for k in ("title", "place", "center_lonlat", "phenology_peak_doy", "event_doy") if k not in sc]
        if missing:
            raise SyntheticSceneError(f"config/scenarios.json: scenario {name!r} lacks {missing}")
        shares = sc.get("severity_shares")
        if shares and abs(sum(shares.values()) - 1.0) > 1e-9:
            raise SyntheticSceneError(f"config/scenarios.json: {name} severity_shares sum to "
                                      f"{sum(shares.values())}; expected 1")
    return {k: _from_json(v, k) for k, v in raw.items() if not k.startswith("_")}


_CONFIG = _load_scenarios()
#: amplitude of the seasonal green <-> dry swing (fraction of the cover that dries in the off season)
PHENOLOGY_AMPLITUDE: dict[str, float] = _CONFIG["phenology_amplitude"]
#: crop calendars: day of year of peak greenness and the width (days, 1 sigma) of the green-up
CROP_TYPES: dict[str, dict[str, float]] = _CONFIG["crop_types"]
#: the five scenarios (config/scenarios.json)
SCENARIOS: dict[str, dict[str, Any]] = _CONFIG["scenarios"]
SCENARIO_NAMES: tuple[str, ...] = tuple(SCENARIOS)
_SCENARIO_CODE = {n: i + 1 for i, n in enumerate(SCENARIO_NAMES)}

#: platform history used by the acquisition plan (first operational day)
S2B_FROM = "2017-03-07"
LANDSAT8_FROM = "2013-04-11"
SLC_OFF_FROM = "2003-05-31"
#: Sentinel-2 processing baselines by acquisition date (first day). Baseline >= 04.00 carries the
#: BOA_ADD_OFFSET of -1000 DN (ESA, from 2022-01-25). Earlier baselines simplified to 02.14.
S2_BASELINES: tuple[tuple[str, str], ...] = (
    ("1970-01-01", "02.14"),
    ("2022-01-25", "04.00"),
    ("2022-12-13", "05.09"),
    ("2023-12-13", "05.10"),
)
#: cloud shadows are the cloud mask displaced by this offset (metres north, metres east):
#: morning sun in the south-east (north) / north-east (south) casts shadows north-west / south-west.
SHADOW_OFFSET_M: dict[str, tuple[float, float]] = {"north": (120.0, -90.0), "south": (-120.0, -90.0)}
#: thin cirrus brightening (opacity) range, thick cloud minimum opacity
CIRRUS_OPACITY = (0.08, 0.22)
CLOUD_MIN_OPACITY = 0.6

_EPOCH = np.datetime64("1970-01-01", "D")


def _day(d: str | np.datetime64) -> int:
    return int((np.datetime64(d, "D") - _EPOCH).astype(int))


def _date(day: int | float) -> np.datetime64:
    return _EPOCH + np.timedelta64(int(day), "D")


def _iso(day: int | float) -> str:
    return str(_date(day))


# --------------------------------------------------------------------------------------------
# Options, grid, acquisitions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneOptions:
    """Generator options.

    size: AOI side in 10 m pixels (multiple of 6 so the 10/20/30/60 m grids align);
    start/end: ISO dates of the series (inclusive); sensors: "s2", "landsat" or "both";
    cloud_prob: probability that an acquisition is cloudy; seed: random seed;
    s2_revisit_days: Sentinel-2 revisit; landsat_revisit_days: Landsat revisit (one satellite);
    landsat_dual_revisit_days: revisit once Landsat 9 flies (from ``landsat9_from``);
    noise_sigma: per-date per-pixel reflectance noise (1 sigma); edge_prob: probability of a
    swath edge (nodata) cutting the AOI; cirrus_prob: probability of thin cirrus on a cloudy date;
    center_lonlat: AOI centre override (lon, lat); shadow_offset_m: (north, east) metres override.
    """

    size: int = 120
    start: str = "2018-01-01"
    end: str = "2024-12-31"
    sensors: tuple[str, ...] = (S2, LANDSAT)
    cloud_prob: float = 0.4
    seed: int = 0
    s2_revisit_days: int = 5
    landsat_revisit_days: int = 16
    landsat_dual_revisit_days: int = 8
    landsat9_from: str = "2022-01-01"
    noise_sigma: float = 0.005
    edge_prob: float = 0.05
    cirrus_prob: float = 0.25
    center_lonlat: tuple[float, float] | None = None
    shadow_offset_m: tuple[float, float] | None = None

    @classmethod
    def make(cls, **kwargs: Any) -> "SceneOptions":
        """Validated options from keyword arguments (unknown keys raise)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise SyntheticSceneError(f"unknown option(s) {unknown}; expected some of {sorted(known)}")
        if "sensors" in kwargs:
            kwargs["sensors"] = normalise_sensors(kwargs["sensors"])
        for k in ("start", "end", "landsat9_from"):
            if k in kwargs:
                kwargs[k] = str(np.datetime64(str(kwargs[k])[:10], "D"))
        if kwargs.get("center_lonlat") is not None:
            kwargs["center_lonlat"] = tuple(float(v) for v in kwargs["center_lonlat"])
        if kwargs.get("shadow_offset_m") is not None:
            kwargs["shadow_offset_m"] = tuple(float(v) for v in kwargs["shadow_offset_m"])
        opts = cls(**kwargs)
        opts.validate()
        return opts

    def validate(self) -> None:
        """Raise :class:`SyntheticSceneError` on impossible options."""
        if self.size < 24 or self.size % 6:
            raise SyntheticSceneError(
                f"size={self.size}: expected a multiple of 6 pixels (10 m) of at least 24, "
                "so that the 10/20/30/60 m grids align"
            )
        span = _day(self.end) - _day(self.start)
        if span < 300:
            raise SyntheticSceneError(
                f"period {self.start}..{self.end} is {span} days; expected at least 300 days so an "
                "event has clear observations before and after"
            )
        for name in ("s2_revisit_days", "landsat_revisit_days", "landsat_dual_revisit_days"):
            if int(getattr(self, name)) < 1:
                raise SyntheticSceneError(f"{name}={getattr(self, name)}: expected >= 1 day")
        if not 0.0 <= self.cloud_prob <= 1.0:
            raise SyntheticSceneError(f"cloud_prob={self.cloud_prob}: expected a probability 0..1")
        if not self.sensors:
            raise SyntheticSceneError("sensors is empty; expected 's2', 'landsat' or 'both'")

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable options."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def normalise_sensors(sensors: str | Sequence[str]) -> tuple[str, ...]:
    """"s2" / "landsat" / "both" / collection ids -> ordered collection ids."""
    items = [sensors] if isinstance(sensors, str) else list(sensors)
    out: list[str] = []
    for s in items:
        key = str(s).strip().lower()
        if key not in SENSOR_ALIASES:
            raise SyntheticSceneError(
                f"unknown sensor {s!r}; expected 's2', 'landsat', 'both' or one of {[S2, LANDSAT]}"
            )
        for c in SENSOR_ALIASES[key]:
            if c not in out:
                out.append(c)
    return tuple(c for c in (S2, LANDSAT) if c in out)


@dataclass(frozen=True)
class GridSpec:
    """The scene grid: a north-up UTM grid of ``shape`` pixels of 10 m from ``transform``."""

    epsg: int
    transform: Affine
    shape: tuple[int, int]
    resolution: float = PIXEL_SIZE

    @property
    def crs(self) -> str:
        """"EPSG:326zz" / "EPSG:327zz"."""
        return f"EPSG:{self.epsg}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in metres."""
        h, w = self.shape
        left, top = self.transform.c, self.transform.f
        return (left, top - h * self.resolution, left + w * self.resolution, top)

    def at(self, resolution: float) -> tuple[Affine, tuple[int, int]]:
        """(transform, shape) of the same extent at another resolution (metres, multiple of 10)."""
        k = int(round(resolution / self.resolution))
        h, w = self.shape
        t = self.transform
        return Affine(t.a * k, t.b, t.c, t.d, t.e * k, t.f), (h // k, w // k)

    def footprint_lonlat(self) -> list[list[float]]:
        """Closed ring of the AOI corners in WGS84 (lon, lat)."""
        left, bottom, right, top = self.bounds
        tr = Transformer.from_crs(self.epsg, 4326, always_xy=True)
        ring = [(left, top), (left, bottom), (right, bottom), (right, top), (left, top)]
        return [list(map(float, tr.transform(x, y))) for x, y in ring]

    def bbox_lonlat(self) -> list[float]:
        """[west, south, east, north] in WGS84 degrees."""
        left, bottom, right, top = self.bounds
        tr = Transformer.from_crs(self.epsg, 4326, always_xy=True)
        return [float(v) for v in tr.transform_bounds(left, bottom, right, top, densify_pts=21)]

    def as_dict(self) -> dict[str, Any]:
        """JSON form: crs, epsg, transform (a, b, c, d, e, f), shape, resolution, bounds."""
        return {
            "crs": self.crs, "epsg": self.epsg, "transform": list(self.transform)[:6],
            "shape": list(self.shape), "resolution": self.resolution, "bounds": list(self.bounds),
            "bbox_lonlat": self.bbox_lonlat(),
        }


def make_grid(center_lonlat: tuple[float, float], size: int) -> GridSpec:
    """A UTM grid of ``size`` x ``size`` 10 m pixels centred near ``center_lonlat``.

    The zone follows the longitude (WGS84 / UTM north 326zz, south 327zz); the origin is snapped
    to a multiple of 60 m so the 10, 20, 30 and 60 m grids share their corners.
    """
    lon, lat = center_lonlat
    if not (-180 <= lon <= 180 and -80 <= lat <= 84):
        raise SyntheticSceneError(f"center_lonlat={center_lonlat}: expected lon -180..180, lat -80..84 (UTM)")
    zone = int((lon + 180) // 6) % 60 + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    half = size * PIXEL_SIZE / 2
    left = math.floor((x - half) / 60.0) * 60.0
    top = math.floor((y + half) / 60.0) * 60.0
    return GridSpec(epsg=epsg, transform=Affine(PIXEL_SIZE, 0.0, left, 0.0, -PIXEL_SIZE, top), shape=(size, size))


@dataclass(frozen=True)
class Acquisition:
    """One planned acquisition of one sensor (the future STAC item)."""

    collection: str
    index: int
    datetime: datetime  # UTC
    platform: str
    item_id: str
    cloud_cover_target: float  # 0 = clear date
    cirrus: bool
    edge: bool
    forced_clear: bool
    processing_baseline: str | None = None

    @property
    def date(self) -> np.datetime64:
        """Acquisition day (datetime64[D], UTC)."""
        return np.datetime64(self.datetime.date(), "D")

    @property
    def day(self) -> int:
        """Days since 1970-01-01."""
        return _day(self.date)


@dataclass
class Atmosphere:
    """Clouds, shadows and nodata of one acquisition on the 10 m truth grid.

    opacity: thick cloud opacity 0-1; cirrus_opacity: thin cirrus opacity 0-1; cloud / shadow /
    cirrus / nodata: boolean masks (shadow excludes cloud; cirrus excludes cloud).
    """

    opacity: np.ndarray
    cirrus_opacity: np.ndarray
    cloud: np.ndarray
    shadow: np.ndarray
    cirrus: np.ndarray
    nodata: np.ndarray

    def flags(self) -> np.ndarray:
        """uint8 quality flags of :mod:`rsvlm_temporal.io.masks` (NODATA, CLOUD, SHADOW, CIRRUS)."""
        f = np.zeros(self.cloud.shape, np.uint8)
        f[self.cloud] |= masks.CLOUD
        f[self.shadow] |= masks.SHADOW
        f[self.cirrus] |= masks.CIRRUS
        f[self.nodata] = masks.NODATA
        return f


@dataclass
class SceneTruth:
    """Truth rasters on the 10 m grid and scenario-level facts.

    change_class: uint8 codes of ``classes.CHANGE_CLASSES``; change_date: datetime64[D], NaT where
    no change (for floods the day the pixel is inundated); burn_severity: uint8 codes of
    ``classes.BURN_SEVERITY_CLASSES`` from the noise-free dNBR (wildfire only); dnbr: float32;
    permanent_water: bool (flood); flood_peak_date / flood_recession_date: datetime64[D] per pixel
    (flood); events: scenario-level dates (ISO strings) and parameters.
    """

    change_class: np.ndarray
    change_date: np.ndarray
    burn_severity: np.ndarray | None = None
    dnbr: np.ndarray | None = None
    permanent_water: np.ndarray | None = None
    flood_peak_date: np.ndarray | None = None
    flood_recession_date: np.ndarray | None = None
    events: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    captions: list[str] = field(default_factory=list)
    qa: list[dict[str, Any]] = field(default_factory=list)

    def rasters(self) -> dict[str, np.ndarray]:
        """The per-pixel truth arrays that exist for this scenario, by name."""
        names = ("change_class", "change_date", "burn_severity", "dnbr", "permanent_water",
                 "flood_peak_date", "flood_recession_date")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


# --------------------------------------------------------------------------------------------
# Random fields and shapes
# --------------------------------------------------------------------------------------------


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in key]))


def _smooth(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian random field, mean 0, std 1."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (f - f.mean()) / (f.std() + 1e-12)


def _ranks(a: np.ndarray) -> np.ndarray:
    """Values -> uniform ranks 0..1 (same shape)."""
    flat = a.ravel()
    r = np.empty(flat.size)
    r[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    return (r / max(flat.size - 1, 1)).reshape(a.shape)


def _parcels(rng: np.random.Generator, shape: tuple[int, int], min_px: int, max_px: int) -> np.ndarray:
    """Field ids (int32) from a recursive guillotine split of the grid (rectangular parcels)."""
    ids = np.zeros(shape, np.int32)
    stack = [(0, shape[0], 0, shape[1])]
    nxt = 0
    while stack:
        r0, r1, c0, c1 = stack.pop()
        h, w = r1 - r0, c1 - c0
        if max(h, w) <= max_px or (h < 2 * min_px and w < 2 * min_px):
            ids[r0:r1, c0:c1] = nxt
            nxt += 1
            continue
        if (h >= w and h >= 2 * min_px) or w < 2 * min_px:
            cut = int(rng.integers(r0 + min_px, r1 - min_px + 1))
            stack += [(r0, cut, c0, c1), (cut, r1, c0, c1)]
        else:
            cut = int(rng.integers(c0 + min_px, c1 - min_px + 1))
            stack += [(r0, r1, c0, cut), (r0, r1, cut, c1)]
    return ids


def _blob(rng: np.random.Generator, n: int, centre: tuple[float, float], fraction: float,
          roughness: float = 0.35, exclude: np.ndarray | None = None) -> np.ndarray:
    """An irregular connected blob of about ``fraction`` of the grid around ``centre`` (row, col)."""
    yy, xx = np.mgrid[0:n, 0:n]
    aspect = rng.uniform(0.7, 1.4)
    ang = rng.uniform(0, np.pi)
    dy, dx = yy - centre[0], xx - centre[1]
    u = (dx * np.cos(ang) + dy * np.sin(ang)) * aspect
    v = (-dx * np.sin(ang) + dy * np.cos(ang)) / aspect
    d = np.hypot(u, v) / n + roughness * _smooth(rng, (n, n), n / 10) * 0.15
    if exclude is not None:
        d = np.where(exclude, np.inf, d)
    thr = np.quantile(d[np.isfinite(d)], min(fraction, 0.95))
    blob = d <= thr
    lab, nlab = ndimage.label(blob)
    if nlab > 1:  # keep the component that holds most of the area
        sizes = ndimage.sum(blob, lab, index=np.arange(1, nlab + 1))
        blob = lab == (1 + int(np.argmax(sizes)))
    return blob


_SECTORS = {
    "north-west": (1 / 6, 1 / 6), "north": (1 / 6, 1 / 2), "north-east": (1 / 6, 5 / 6),
    "west": (1 / 2, 1 / 6), "east": (1 / 2, 5 / 6),
    "south-west": (5 / 6, 1 / 6), "south": (5 / 6, 1 / 2), "south-east": (5 / 6, 5 / 6),
}


def location_name(mask: np.ndarray) -> str:
    """Where a mask lies in the AOI: "north-east", "south", "centre", ... (north up)."""
    if not mask.any():
        return "nowhere"
    h, w = mask.shape
    r, c = ndimage.center_of_mass(mask)
    ns = "north" if r < h / 3 else ("south" if r >= 2 * h / 3 else "")
    ew = "west" if c < w / 3 else ("east" if c >= 2 * w / 3 else "")
    if ns and ew:
        return f"{ns}-{ew}"
    return ns or ew or "centre"


# --------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------


@dataclass
class SyntheticScene:
    """A scenario on its grid: landscape, dynamics, acquisition plan and truth (all in memory).

    ``covers_at(day)`` -> cover fractions; ``fractions(day)`` -> endmember fractions;
    ``surface(day, collection)`` -> noise-free, cloud-free reflectance (bands, y, x) at 10 m;
    ``atmosphere(acq)`` -> clouds/shadows/nodata of one acquisition at 10 m.
    """

    name: str
    options: SceneOptions
    grid: GridSpec
    config: dict[str, Any]
    base: np.ndarray  # (n_covers, y, x) float32 cover fractions before any event
    crop_field: np.ndarray  # (y, x) int32 field id (-1 where no crop)
    crop_peak: np.ndarray  # (n_fields,) day of year
    crop_width: np.ndarray  # (n_fields,) days
    crop_jitter: np.ndarray  # (n_fields, n_years) days
    params: dict[str, Any]
    truth: SceneTruth
    acquisitions: dict[str, list[Acquisition]] = field(default_factory=dict)
    shadow_offset_px: tuple[int, int] = (0, 0)  # (rows, cols) on the 10 m grid

    # ---------------------------------------------------------------- landscape in time
    @property
    def hemisphere(self) -> str:
        """"north" or "south" (from the EPSG code)."""
        return "north" if self.grid.epsg < 32700 else "south"

    def covers_at(self, day: int, events: bool = True) -> np.ndarray:
        """Cover fractions (n_covers, y, x) on ``day`` (days since 1970-01-01); ``events=False``
        gives the counterfactual landscape without the scenario's change."""
        c = self.base.astype(np.float64, copy=True)
        if events:
            _DYNAMICS[self.name](self, int(day), c)
        return c

    def fractions(self, day: int, events: bool = True) -> np.ndarray:
        """Endmember fractions (n_materials, y, x) of :data:`spectra.MATERIALS` on ``day``,
        with the seasonal phenology applied (linear in the covers)."""
        c = self.covers_at(day, events)
        date = _date(day).astype(datetime)
        doy = date.timetuple().tm_yday
        s = 0.5 * (1 + math.cos(2 * math.pi * (doy - self.config["phenology_peak_doy"]) / 365.25))
        amp_f = PHENOLOGY_AMPLITUDE["forest"] * self.config.get("phenology_scale", 1.0)
        amp_g = PHENOLOGY_AMPLITUDE["grass"] * self.config.get("phenology_scale", 1.0)
        forest_dry = c[_C["forest"]] * amp_f * (1 - s)
        grass_dry = c[_C["grass"]] * amp_g * (1 - s)
        g, d = self._crop_state(doy, date.year)
        crop = c[_C["crop"]]
        m = spectra.MATERIAL_CODES
        out = np.zeros((len(spectra.MATERIALS),) + c.shape[1:])
        out[m["forest"]] = c[_C["forest"]] - forest_dry
        out[m["crop"]] = c[_C["grass"]] - grass_dry + crop * g
        out[m["dry_vegetation"]] = c[_C["dry"]] + forest_dry + grass_dry + crop * d
        out[m["bare_soil"]] = c[_C["soil"]] + crop * (1 - g - d)
        out[m["built_up"]] = c[_C["built_up"]]
        out[m["water_clear"]] = c[_C["water_clear"]]
        out[m["water_turbid"]] = c[_C["water_turbid"]]
        out[m["burned"]] = c[_C["burned"]]
        return out

    def _crop_state(self, doy: int, year: int) -> tuple[np.ndarray, np.ndarray]:
        """Green and dry fractions (y, x) of the crop cover on a day of year."""
        if self.crop_peak.size == 0:
            z = np.zeros(self.grid.shape)
            return z, z
        yi = int(np.clip(year - int(self.options.start[:4]), 0, self.crop_jitter.shape[1] - 1))
        peak = self.crop_peak + self.crop_jitter[:, yi]
        delta = (doy - peak + 182.625) % 365.25 - 182.625
        w = self.crop_width
        green = np.where(delta <= 0, 0.95 * np.exp(-0.5 * (delta / w) ** 2),
                         0.95 * np.exp(-0.5 * (delta / (0.7 * w)) ** 2))
        dry = np.where((delta > 0) & (delta < 2.2 * w), (0.95 - green) * 0.8, 0.0)
        fid = np.clip(self.crop_field, 0, None)
        has = self.crop_field >= 0
        return np.where(has, green[fid], 0.0), np.where(has, dry[fid], 0.0)

    def surface(self, day: int, collection: str = S2, bands: Sequence[str] | None = None,
                events: bool = True) -> np.ndarray:
        """Noise-free, cloud-free surface reflectance (n_bands, y, x), float64, on the 10 m grid."""
        bands = tuple(bands or SENSOR_BANDS[collection])
        return spectra.mix(self.fractions(day, events), spectra.signature_matrix(collection, bands))

    def index(self, day: int, name: str, collection: str = S2, events: bool = True) -> np.ndarray:
        """Noise-free spectral index ("ndvi", "nbr", "mndwi", "ndbi") on the 10 m grid."""
        bands = SENSOR_BANDS[collection]
        return spectra.index_of(self.surface(day, collection, bands, events), bands, name)

    def dominant_material(self, day: int) -> np.ndarray:
        """uint8 code (index into :data:`spectra.MATERIALS`) of the largest endmember fraction."""
        return np.argmax(self.fractions(day), axis=0).astype(np.uint8)

    # ---------------------------------------------------------------- clouds
    def atmosphere(self, acq: Acquisition) -> Atmosphere:
        """Clouds, cirrus, shadows and nodata of ``acq`` on the 10 m grid (deterministic)."""
        n = self.grid.shape[0]
        rng = _rng(self.options.seed, _SCENARIO_CODE[self.name], _SENSOR_CODE[acq.collection], acq.index, 11)
        dy, dx = self.shadow_offset_px
        pad = max(abs(dy), abs(dx)) + 2
        big = n + 2 * pad
        opacity = np.zeros((n, n))
        cloud = np.zeros((n, n), bool)
        shadow = np.zeros((n, n), bool)
        cirrus_op = np.zeros((n, n))
        cirrus = np.zeros((n, n), bool)
        nodata = np.zeros((n, n), bool)
        if acq.cloud_cover_target > 0:
            f = _smooth(rng, (big, big), max(2.0, n / 8))
            thr = np.quantile(f, 1 - acq.cloud_cover_target)
            cloud_big = f > thr
            op_big = np.where(cloud_big, np.clip(CLOUD_MIN_OPACITY + 1.2 * (f - thr), CLOUD_MIN_OPACITY, 1.0), 0.0)
            sl = (slice(pad, pad + n), slice(pad, pad + n))
            cloud = cloud_big[sl]
            opacity = op_big[sl]
            # shadow at p where there is a cloud at p - offset
            shadow = cloud_big[pad - dy: pad - dy + n, pad - dx: pad - dx + n] & ~cloud
            if acq.cirrus:
                g = _smooth(rng, (n, n), max(2.0, n / 6))
                cov = rng.uniform(0.2, 0.6)
                thin = g > np.quantile(g, 1 - cov)
                level = rng.uniform(*CIRRUS_OPACITY)
                cirrus_op = np.where(thin, level * np.clip(0.6 + 0.4 * (g - g.min()) / (np.ptp(g) + 1e-12), 0, 1), 0.0)
                cirrus = thin & ~cloud
        if acq.edge:
            nodata = self._edge_nodata(rng)
        if acq.platform == "landsat-7" and acq.date >= np.datetime64(SLC_OFF_FROM):
            nodata |= self._slc_off(rng)
        return Atmosphere(opacity=opacity.astype(np.float32), cirrus_opacity=cirrus_op.astype(np.float32),
                          cloud=cloud, shadow=shadow, cirrus=cirrus, nodata=nodata)

    def _edge_nodata(self, rng: np.random.Generator) -> np.ndarray:
        """A straight swath edge, stair-stepped on the 60 m grid so every band agrees."""
        m = self.grid.shape[0] // 6
        yy, xx = np.mgrid[0:m, 0:m] + 0.5
        ang = rng.uniform(0, 2 * np.pi)
        proj = xx * np.cos(ang) + yy * np.sin(ang)
        thr = np.quantile(proj, rng.uniform(0.55, 0.9))
        return np.kron(proj > thr, np.ones((6, 6), bool))

    def _slc_off(self, rng: np.random.Generator) -> np.ndarray:
        """Landsat 7 scan-line-corrector-off gaps, on the 30 m grid."""
        m = self.grid.shape[0] // 3
        yy, xx = np.mgrid[0:m, 0:m]
        phase = rng.integers(0, 12)
        gaps = ((yy + (xx * 0.25).astype(int) + phase) % 12) < 2
        return np.kron(gaps, np.ones((3, 3), bool))

    # ---------------------------------------------------------------- summaries
    def acquisition_days(self) -> list[int]:
        """Sorted acquisition days of all sensors."""
        return sorted({a.day for acqs in self.acquisitions.values() for a in acqs})


# --------------------------------------------------------------------------------------------
# Dynamics (in place on a cover array)
# --------------------------------------------------------------------------------------------


def _dyn_wildfire(scene: SyntheticScene, day: int, c: np.ndarray) -> None:
    p = scene.params
    t0 = p["fire_day"]
    if day < t0:
        return
    f = p["burn_fraction"]  # (y, x) fraction of the pixel burned
    rg = scene.config["regrowth"]
    dt = day - t0
    regrown = f * rg["max_fraction"] * (1 - np.exp(-max(0, dt - rg["delay_days"]) / rg["tau_days"]))
    exposed = f - regrown
    char = exposed * math.exp(-dt / rg["char_tau_days"])
    c *= 1 - f
    c[_C["burned"]] += char
    c[_C["soil"]] += exposed - char
    c[_C["grass"]] += regrown


def _dyn_flood(scene: SyntheticScene, day: int, c: np.ndarray) -> None:
    p = scene.params
    if day < p["onset_day"] or day >= p["end_day"] + scene.config["mud_days"]:
        return
    t_in, t_out = p["t_in"], p["t_out"]
    wet = (t_in <= day) & (day < t_out)
    mud_age = day - t_out
    mud = np.where((mud_age >= 0) & (mud_age < scene.config["mud_days"]),
                   0.6 * (1 - mud_age / scene.config["mud_days"]), 0.0)
    mud = np.where(np.isfinite(t_in), mud, 0.0)
    c *= 1 - mud
    c[_C["soil"]] += mud
    c[:, wet] = 0.0
    c[_C["water_turbid"], wet] = 1.0


def _dyn_deforestation(scene: SyntheticScene, day: int, c: np.ndarray) -> None:
    cut = scene.params["cut_day"]  # (y, x) float, inf where never
    hit = cut <= day
    if not hit.any():
        return
    age = (day - cut[hit])
    slash = 0.55 * np.exp(-age / 60.0)
    grass = 0.25 * (1 - np.exp(-np.maximum(0, age - 120) / 300.0))
    c[:, hit] = 0.0
    c[_C["dry"], hit] = slash
    c[_C["grass"], hit] = grass
    c[_C["soil"], hit] = 1 - slash - grass


def _dyn_urban(scene: SyntheticScene, day: int, c: np.ndarray) -> None:
    start = scene.params["build_day"]
    hit = start <= day
    if not hit.any():
        return
    prog = np.clip((day - start[hit]) / scene.config["build_days"], 0, 1)
    built = 0.3 + 0.55 * prog
    grass = 0.15 * prog
    c[:, hit] = 0.0
    c[_C["built_up"], hit] = built
    c[_C["grass"], hit] = grass
    c[_C["soil"], hit] = 1 - built - grass


def _dyn_none(scene: SyntheticScene, day: int, c: np.ndarray) -> None:
    return None


_DYNAMICS = {
    "wildfire": _dyn_wildfire, "flood": _dyn_flood, "deforestation": _dyn_deforestation,
    "urban_growth": _dyn_urban, "seasonal_crops": _dyn_none,
}


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def _event_window(opts: SceneOptions) -> tuple[int, int]:
    """Days where events may happen: away from both ends (30% of the span, at most 2 years)."""
    s, e = _day(opts.start), _day(opts.end)
    margin = min(730, int(0.3 * (e - s)))
    return s + margin, e - margin


def _pick_days(rng: np.random.Generator, window: tuple[int, int], doy_range: tuple[int, int],
               n: int = 1, min_gap: int = 30) -> list[int]:
    """``n`` distinct days inside ``window`` with a day of year in ``doy_range`` (relaxed if none)."""
    days = np.arange(window[0], window[1] + 1)
    doys = np.array([_date(d).astype(datetime).timetuple().tm_yday for d in days])
    ok = days[(doys >= doy_range[0]) & (doys <= doy_range[1])]
    pool = ok if ok.size >= n else days
    chosen: list[int] = []
    for _ in range(200 * n):
        if len(chosen) == n:
            break
        d = int(rng.choice(pool))
        if all(abs(d - x) >= min_gap for x in chosen):
            chosen.append(d)
    while len(chosen) < n:  # too little room for the gap: take spread-out days
        chosen.append(int(pool[(len(chosen) * pool.size) // n]))
    return sorted(chosen)


def _empty_covers(n: int) -> np.ndarray:
    return np.zeros((len(COVERS), n, n))


def _woodland(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """Forest canopy cover lo..hi with dry vegetation and soil in the gaps."""
    c = _empty_covers(n)
    forest = lo + (hi - lo) * _ranks(_smooth(rng, (n, n), n / 12))
    c[_C["forest"]] = forest
    c[_C["dry"]] = (1 - forest) * 0.5
    c[_C["soil"]] = (1 - forest) * 0.5
    return c


def _set(c: np.ndarray, where: np.ndarray, **fracs: float) -> None:
    c[:, where] = 0.0
    for k, v in fracs.items():
        c[_C[k], where] = v


class _Crops:
    """Builds crop fields: field ids and per-field calendars."""

    def __init__(self, rng: np.random.Generator, n_years: int):
        self.rng = rng
        self.n_years = n_years
        self.peak: list[float] = []
        self.width: list[float] = []
        self.types: list[str] = []

    def add(self, crop_type: str) -> int:
        t = CROP_TYPES[crop_type]
        self.peak.append(t["peak_doy"] + self.rng.uniform(-10, 10))
        self.width.append(t["width"] * self.rng.uniform(0.85, 1.15))
        self.types.append(crop_type)
        return len(self.peak) - 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = len(self.peak)
        jitter = self.rng.uniform(-8, 8, size=(k, max(self.n_years, 1)))
        return np.array(self.peak, float), np.array(self.width, float), jitter


def _farmland(rng: np.random.Generator, n: int, crops: _Crops,
              mix: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cover array, crop field ids (-1 off crops) and parcel ids for cropland / grassland / fallow."""
    c = _empty_covers(n)
    fields = _parcels(rng, (n, n), max(3, n // 16), max(6, n // 4))
    crop_field = np.full((n, n), -1, np.int32)
    kinds = list(mix)
    probs = np.array([mix[k] for k in kinds], float)
    probs /= probs.sum()
    for fid in np.unique(fields):
        px = fields == fid
        kind = kinds[int(rng.choice(len(kinds), p=probs))]
        if kind in CROP_TYPES:
            crop_field[px] = crops.add(kind)
            _set(c, px, crop=1.0)
        elif kind == "grass":
            _set(c, px, grass=0.85, soil=0.1, dry=0.05)
        elif kind == "fallow":
            _set(c, px, soil=0.8, dry=0.2)
    return c, crop_field, fields


def _n_years(opts: SceneOptions) -> int:
    return int(opts.end[:4]) - int(opts.start[:4]) + 1


def _build_wildfire(rng: np.random.Generator, n: int, opts: SceneOptions, cfg: dict) -> dict:
    c = _woodland(rng, n, 0.82, 0.98)
    sectors = list(_SECTORS)
    sector = sectors[int(rng.integers(len(sectors)))]
    cy, cx = _SECTORS[sector]
    # reservoir in the opposite corner: not vegetated -> severity "not assessed"
    oy, ox = 1 - cy, 1 - cx
    lake = _blob(rng, n, (oy * n, ox * n), 0.03, roughness=0.2)
    _set(c, lake, water_clear=1.0)
    fire_day = _pick_days(rng, _event_window(opts), cfg["event_doy"])[0]
    frac = rng.uniform(*cfg["burned_fraction"])
    perim = _blob(rng, n, (cy * n, cx * n), frac, exclude=lake)
    return {"covers": c, "fire_day": fire_day, "perimeter": perim, "sector": sector, "lake": lake}


def _finish_wildfire(scene: SyntheticScene, rng: np.random.Generator, built: dict) -> None:
    cfg = scene.config
    n = scene.grid.shape[0]
    t0 = built["fire_day"]
    scene.params["fire_day"] = t0
    perim = built["perimeter"]
    # severity target field: high in the core of the perimeter, patchy
    core = ndimage.distance_transform_edt(perim)
    intensity = _ranks(core / (core.max() + 1e-9) + 0.6 * _smooth(rng, (n, n), n / 14))
    islands = _ranks(_smooth(rng, (n, n), n / 30)) > 1 - cfg["severity_shares"][2]
    target_class = np.zeros((n, n), np.uint8)
    burnable = perim & ~islands
    shares = {k: v for k, v in cfg["severity_shares"].items() if k != 2}
    tot = sum(shares.values())
    vals = intensity[burnable]
    qs = np.cumsum([0.0] + [shares[k] / tot for k in sorted(shares)])
    edges = np.quantile(vals, qs) if vals.size else np.zeros(len(qs))
    cls_b = np.searchsorted(edges[1:-1], vals, side="right")
    target_class[burnable] = np.array(sorted(shares), np.uint8)[cls_b]
    target_class[perim & islands] = 2
    # solve the burned fraction f so that the noise-free dNBR hits a value inside the class
    bands = ("nir08", "swir22")
    pre = scene.surface(t0, S2, bands, events=False)
    burned = spectra.signature_matrix(S2, bands)[spectra.MATERIAL_CODES["burned"]]
    N, S = pre
    nbr_pre = (N - S) / (N + S)
    lo = np.zeros((n, n))
    hi = np.zeros((n, n))
    for k, (a, b) in cfg["severity_dnbr"].items():
        lo[target_class == k], hi[target_class == k] = a, b
    target = lo + (hi - lo) * rng.uniform(size=(n, n))
    y = nbr_pre - target
    a_, b_ = N - S, (burned[0] - burned[1]) - (N - S)
    c_, d_ = N + S, (burned[0] + burned[1]) - (N + S)
    f = np.clip((y * c_ - a_) / (b_ - y * d_), 0.0, 1.0)
    f = np.where(target_class >= 3, f, 0.0)
    scene.params["burn_fraction"] = f
    # truth from the noise-free spectra just before / after the fire (same day, same phenology)
    post = scene.surface(t0, S2, bands)
    nbr_post = spectra.normalized_difference(post[0], post[1])
    dnbr = nbr_pre - nbr_post
    ndvi_pre = scene.index(t0, "ndvi", events=False)
    sev = np.zeros((n, n), np.uint8)
    for code, bound in sorted(BURN_SEVERITY_BOUNDS.items()):
        sev[dnbr >= bound] = code
    sev[ndvi_pre < 0.2] = 0  # not vegetated before the fire: not assessed
    burnt = sev >= 3
    t = scene.truth
    t.burn_severity = sev
    t.dnbr = dnbr.astype(np.float32)
    t.change_class[burnt] = CHANGE_CODES["burn"]
    t.change_date[burnt] = _date(t0)
    t.events.update({
        "fire_date": _iso(t0),
        "key_dates": [_iso(t0)],
        "severity_index": "dNBR = NBR(pre) - NBR(post), NBR = (nir08 - swir22) / (nir08 + swir22) at "
                          "Sentinel-2 band centres, noise-free spectra at 10 m on the fire date",
        "regrowth": dict(scene.config["regrowth"]),
    })


def _build_flood(rng: np.random.Generator, n: int, opts: SceneOptions, cfg: dict) -> dict:
    yy, xx = np.mgrid[0:n, 0:n]
    vertical = bool(rng.integers(2))
    along, across = (yy, xx) if vertical else (xx, yy)
    phase = rng.uniform(0, 2 * np.pi)
    centre = n * (0.5 + 0.12 * np.sin(2 * np.pi * along / (0.9 * n) + phase))
    width = max(3.0, 0.06 * n)
    river = np.abs(across - centre) < width / 2
    dist = ndimage.distance_transform_edt(~river)
    elev = dist / n + 0.12 * _smooth(rng, (n, n), n / 10)
    return {"river": river, "dist": dist, "elev": elev, "vertical": vertical, "width": width}


def _finish_flood(scene: SyntheticScene, rng: np.random.Generator, built: dict) -> None:
    cfg = scene.config
    n = scene.grid.shape[0]
    river, elev = built["river"], built["elev"]
    land = ~river
    q = rng.uniform(*cfg["flooded_fraction"])
    level = np.quantile(elev[land], q)
    low = (elev < level) | river
    lab, _ = ndimage.label(low)
    connected = np.isin(lab, np.unique(lab[river]))
    flooded = connected & land
    onset = _pick_days(rng, _event_window(scene.options), cfg["event_doy"])[0]
    rise = int(rng.integers(cfg["rise_days"][0], cfg["rise_days"][1] + 1))
    plateau = int(rng.integers(cfg["plateau_days"][0], cfg["plateau_days"][1] + 1))
    recession = int(rng.integers(cfg["recession_days"][0], cfg["recession_days"][1] + 1))
    peak = onset + rise
    # keep the peak observable: the water stays at its maximum for longer than the shortest revisit
    opts = scene.options
    revisits = ([opts.s2_revisit_days] if S2 in opts.sensors else []) + (
        [opts.landsat_dual_revisit_days if peak >= _day(opts.landsat9_from) else opts.landsat_revisit_days]
        if LANDSAT in opts.sensors else [])
    plateau = max(plateau, min(revisits) + 1)
    end = peak + plateau + recession
    r = np.clip(elev / level, 0, 1)
    t_in = np.where(flooded, onset + np.floor(r * rise), np.inf)
    t_out = np.where(flooded, peak + plateau + np.ceil((1 - r) * recession), -np.inf)
    t_out = np.minimum(t_out, end)
    scene.params.update({"onset_day": onset, "peak_day": peak, "end_day": end, "t_in": t_in, "t_out": t_out})
    t = scene.truth
    t.permanent_water = river.copy()
    t.change_class[flooded] = CHANGE_CODES["flood"]
    t.change_date[flooded] = _EPOCH + t_in[flooded].astype("int64").astype("timedelta64[D]")
    t.flood_peak_date = np.full((n, n), np.datetime64("NaT"), "datetime64[D]")
    t.flood_peak_date[flooded] = _date(peak)
    t.flood_recession_date = np.full((n, n), np.datetime64("NaT"), "datetime64[D]")
    t.flood_recession_date[flooded] = _EPOCH + t_out[flooded].astype("int64").astype("timedelta64[D]")
    t.events.update({
        "flood_onset_date": _iso(onset), "flood_peak_date": _iso(peak),
        "flood_recession_date": _iso(end), "key_dates": [_iso(onset), _iso(peak), _iso(end)],
        "rise_days": rise, "plateau_days": plateau, "recession_days": recession,
        "river_orientation": "north-south" if built["vertical"] else "west-east",
    })


def _landscape_flood(rng: np.random.Generator, n: int, built: dict, crops: _Crops) -> tuple[np.ndarray, np.ndarray]:
    c, crop_field, _ = _farmland(rng, n, crops, {"grass": 0.45, "maize": 0.25, "winter_cereal": 0.2, "fallow": 0.1})
    dist, river, elev = built["dist"], built["river"], built["elev"]
    riparian = (dist > 0) & (dist <= max(2, n // 30))
    _set(c, riparian, forest=0.85, grass=0.15)
    crop_field[riparian] = -1
    # a village on the highest ground
    hi = _blob(rng, n, np.unravel_index(np.argmax(ndimage.gaussian_filter(elev, n / 12)), elev.shape), 0.04, 0.2)
    hi &= ~river & ~riparian
    _set(c, hi, built_up=0.7, grass=0.3)
    crop_field[hi] = -1
    _set(c, river, water_clear=0.6, water_turbid=0.4)
    crop_field[river] = -1
    return c, crop_field


def _build_deforestation(rng: np.random.Generator, n: int, opts: SceneOptions, cfg: dict) -> dict:
    c = _woodland(rng, n, 0.85, 0.98)
    road_row = int(rng.integers(int(0.35 * n), int(0.65 * n)))
    road = np.zeros((n, n), bool)
    road[road_row: road_row + 2, :] = True
    _set(c, road, soil=0.7, grass=0.3)
    k = int(rng.integers(cfg["n_events"][0], cfg["n_events"][1] + 1))
    days = _pick_days(rng, _event_window(opts), cfg["event_doy"], n=k, min_gap=45)
    total = rng.uniform(*cfg["cleared_fraction"])
    cut = np.full((n, n), np.inf)
    yy, xx = np.mgrid[0:n, 0:n]
    noise = _smooth(rng, (n, n), max(1.5, n / 24))
    per = total * n * n / k
    for d in days:
        for _ in range(50):
            north = bool(rng.integers(2))
            depth = int(np.clip(rng.uniform(0.2, 0.45) * n, 4, road_row if north else n - road_row - 2))
            width = int(np.clip(per / max(depth, 1), 4, 0.6 * n))
            x0 = int(rng.integers(0, max(1, n - width)))
            r0, r1 = (road_row - depth, road_row) if north else (road_row + 2, road_row + 2 + depth)
            # jagged rectangle: distance outside the box plus noise
            dx = np.maximum(np.maximum(x0 - xx, xx - (x0 + width - 1)), 0)
            dy = np.maximum(np.maximum(r0 - yy, yy - (r1 - 1)), 0)
            inside = (np.hypot(dx, dy) + 1.2 * noise) < 0.8
            inside &= ~road & ~np.isfinite(cut)
            if inside.sum() >= 0.5 * per:
                cut[inside] = d
                break
    if not np.isfinite(cut).any():  # tiny grids: fall back to one block beside the road
        cut[road_row + 2: road_row + 2 + max(3, n // 5), : max(3, n // 3)] = days[0]
    return {"covers": c, "cut_day": cut, "days": days, "road": road}


def _build_urban(rng: np.random.Generator, n: int, opts: SceneOptions, cfg: dict, crops: _Crops) -> dict:
    c, crop_field, _ = _farmland(rng, n, crops, {"winter_cereal": 0.3, "maize": 0.25, "sunflower": 0.15,
                                              "grass": 0.15, "fallow": 0.15})
    corner = [(0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1)][int(rng.integers(4))]
    yy, xx = np.mgrid[0:n, 0:n]
    dist = np.hypot(yy - corner[0], xx - corner[1]) / n + 0.05 * _smooth(rng, (n, n), n / 12)
    town = dist < np.quantile(dist, 0.12)
    _set(c, town, built_up=0.75, grass=0.25)
    crop_field[town] = -1
    k = int(rng.integers(cfg["n_events"][0], cfg["n_events"][1] + 1))
    days = _pick_days(rng, _event_window(opts), cfg["event_doy"], n=k, min_gap=60)
    total = rng.uniform(*cfg["new_fraction"])
    ang = np.arctan2(yy - corner[0], xx - corner[1])
    build = np.full((n, n), np.inf)
    r_lo = np.quantile(dist, 0.12)
    free = ~town
    inward = math.atan2(n / 2 - corner[0], n / 2 - corner[1])  # from the town towards the AOI centre
    for d in days:
        a0 = inward + rng.uniform(-np.pi / 4, np.pi / 4)
        half = rng.uniform(0.35, 0.8)
        sector = np.abs(np.angle(np.exp(1j * (ang - a0)))) < half
        cand = free & sector & (dist >= r_lo)
        if not cand.any():
            continue
        want = int(total * n * n / k)
        order = np.argsort(dist[cand], kind="stable")[:want]
        idx = np.flatnonzero(cand)[order]
        sel = np.zeros(n * n, bool)
        sel[idx] = True
        sel = sel.reshape(n, n)
        build[sel] = d
        free &= ~sel
    if not np.isfinite(build).any():  # cannot happen with a sector pointing inwards; keep a guard
        build[(dist >= r_lo) & (dist < np.quantile(dist, 0.3))] = days[0]
    return {"covers": c, "crop_field": crop_field, "build_day": build, "days": days, "town": town}


def _build_crops(rng: np.random.Generator, n: int, opts: SceneOptions, cfg: dict, crops: _Crops) -> dict:
    c, crop_field, fields = _farmland(rng, n, crops, {"winter_cereal": 0.35, "maize": 0.2, "soybean": 0.2,
                                                      "sunflower": 0.1, "grass": 0.15})
    # hedgerows on some parcel boundaries
    edge = np.zeros((n, n), bool)
    edge[:, 1:] |= fields[:, 1:] != fields[:, :-1]
    edge[1:, :] |= fields[1:, :] != fields[:-1, :]
    hedge = edge & (_ranks(_smooth(rng, (n, n), n / 10)) > 0.6)
    _set(c, hedge, forest=0.7, grass=0.3)
    crop_field[hedge] = -1
    farm = _blob(rng, n, (rng.uniform(0.2, 0.8) * n, rng.uniform(0.2, 0.8) * n), 0.012, 0.1)
    _set(c, farm, built_up=0.6, soil=0.2, grass=0.2)
    crop_field[farm] = -1
    pond = _blob(rng, n, (rng.uniform(0.2, 0.8) * n, rng.uniform(0.2, 0.8) * n), 0.008, 0.1) & ~farm
    _set(c, pond, water_clear=1.0)
    crop_field[pond] = -1
    return {"covers": c, "crop_field": crop_field}


# --------------------------------------------------------------------------------------------
# Acquisition plan
# --------------------------------------------------------------------------------------------


def _mgrs_id(lon: float, lat: float, epsg: int, x: float, y: float) -> tuple[int, str, str]:
    zone = epsg % 100
    band = "CDEFGHJKLMNPQRSTUVWX"[min(int((lat + 80) // 8), 19)]
    e = int(x // 100_000)
    col = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3][max(0, min(e - 1, 7))]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    row = rows[(int(y // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return zone, band, col + row


def _s2_baseline(date: np.datetime64) -> str:
    out = S2_BASELINES[0][1]
    for first, b in S2_BASELINES:
        if date >= np.datetime64(first):
            out = b
    return out


def _plan(scene: SyntheticScene, key_days: Sequence[int]) -> None:
    """Acquisition dates, platforms, ids and cloudiness for every requested sensor."""
    opts = scene.options
    lon, lat = scene.config["center_lonlat"]
    s, e = _day(opts.start), _day(opts.end)
    x = scene.grid.transform.c + scene.grid.shape[1] * PIXEL_SIZE / 2
    y = scene.grid.transform.f - scene.grid.shape[0] * PIXEL_SIZE / 2
    zone, band, square = _mgrs_id(lon, lat, scene.grid.epsg, x, y)
    path = int(((-lon - 64.6) / (360 / 233)) % 233) + 1  # approximate WRS-2 path/row
    row = int(round(60 - lat / 1.45))
    plan: dict[str, list[tuple[int, str]]] = {}
    prng = _rng(opts.seed, _SCENARIO_CODE[scene.name], 3)
    if S2 in opts.sensors:
        step = int(opts.s2_revisit_days)
        d = s + int(prng.integers(step))
        days = []
        k = 0
        while d <= e:
            two_b = _date(d) >= np.datetime64(S2B_FROM)
            days.append((d, "sentinel-2b" if (two_b and k % 2) else "sentinel-2a"))
            d += step
            k += 1
        plan[S2] = days
    if LANDSAT in opts.sensors:
        dual_from = _day(opts.landsat9_from)
        d = s + int(prng.integers(int(opts.landsat_revisit_days)))
        days = []
        k = 0
        while d <= e:
            if _date(d) < np.datetime64(LANDSAT8_FROM):
                plat = "landsat-7"
            elif d >= dual_from:
                plat = "landsat-9" if k % 2 else "landsat-8"
                k += 1
            else:
                plat = "landsat-8"
            days.append((d, plat))
            d += int(opts.landsat_dual_revisit_days if d >= dual_from else opts.landsat_revisit_days)
        plan[LANDSAT] = days
    for coll, days in plan.items():
        only_days = np.array([d for d, _ in days])
        forced: set[int] = set()
        for kd in key_days:  # the last look before and the first look on/after each key date
            after = np.flatnonzero(only_days >= kd)
            before = np.flatnonzero(only_days < kd)
            if after.size:
                forced.add(int(after[0]))
            if before.size:
                forced.add(int(before[-1]))
        acqs = []
        for i, (d, plat) in enumerate(days):
            rng = _rng(opts.seed, _SCENARIO_CODE[scene.name], _SENSOR_CODE[coll], i, 5)
            cloudy = rng.uniform() < opts.cloud_prob
            cover = float(np.clip(rng.beta(0.9, 1.1), 0.03, 1.0)) if cloudy else 0.0
            cirrus = bool(cloudy and rng.uniform() < opts.cirrus_prob and plat != "landsat-7")
            edge = bool(rng.uniform() < opts.edge_prob)
            jitter = float(rng.uniform(-120, 120))
            if i in forced:
                cover, cirrus, edge = 0.0, False, False
            date = _date(d).astype(datetime)
            if coll == S2:
                hours = 10.5 - lon / 15.0
                t = datetime(date.year, date.month, date.day, tzinfo=timezone.utc) + timedelta(hours=hours, seconds=jitter)
                ymd = date.strftime("%Y%m%d")
                item_id = f"S2{plat[-1].upper()}_{zone}{band}{square}_{ymd}_0_L2A"
                baseline = _s2_baseline(_date(d))
            else:
                hours = 10.1 - lon / 15.0
                t = datetime(date.year, date.month, date.day, tzinfo=timezone.utc) + timedelta(hours=hours, seconds=jitter)
                code = {"landsat-7": "LE07", "landsat-8": "LC08", "landsat-9": "LC09"}[plat]
                item_id = f"{code}_L2SP_{path:03d}{row:03d}_{date.strftime('%Y%m%d')}_02_T1"
                baseline = None
            acqs.append(Acquisition(
                collection=coll, index=i, datetime=t, platform=plat, item_id=item_id,
                cloud_cover_target=cover, cirrus=cirrus, edge=edge, forced_clear=i in forced,
                processing_baseline=baseline,
            ))
        scene.acquisitions[coll] = acqs
    scene.params["wrs_path_row"] = (path, row)
    scene.params["mgrs"] = (zone, band, square)


# --------------------------------------------------------------------------------------------
# Captions and question-answer pairs
# --------------------------------------------------------------------------------------------


def _month(day: int) -> str:
    d = _date(day).astype(datetime)
    return f"{calendar.month_name[d.month]} {d.year}"


def _qa(question: str, answer: str, kind: str, value: Any = None) -> dict[str, Any]:
    return {"question": question, "answer": answer, "type": kind, "value": answer if value is None else value}


def _describe(scene: SyntheticScene) -> None:
    t = scene.truth
    n = scene.grid.shape[0]
    aoi_ha = n * n * PIXEL_HA
    changed = t.change_class > 0
    ha = float(changed.sum() * PIXEL_HA)
    pct = float(100.0 * changed.mean())
    loc = location_name(changed)
    start_y, end_y = int(scene.options.start[:4]), int(scene.options.end[:4])
    areas = {CHANGE_CLASSES[k]: round(float((t.change_class == k).sum() * PIXEL_HA), 2)
             for k in CHANGE_CLASSES if k and (t.change_class == k).any()}
    t.stats = {"aoi_ha": round(aoi_ha, 2), "changed_ha": round(ha, 2), "changed_pct": round(float(pct), 2),
               "location": loc, "class_area_ha": areas}
    A, P = f"{ha:.1f} ha", f"{pct:.1f}%"
    caps: list[str]
    qa: list[dict[str, Any]]
    name = scene.name
    if name == "wildfire":
        t0 = scene.params["fire_day"]
        date, month, year = _iso(t0), _month(t0), _date(t0).astype(datetime).year
        sev_ha = {BURN_SEVERITY_CLASSES[k]: round(float((t.burn_severity == k).sum() * PIXEL_HA), 2)
                  for k in (3, 4, 5, 6)}
        t.stats["severity_area_ha"] = sev_ha
        top = max(sev_ha, key=sev_ha.get)
        top_txt = top.replace("_", "-")
        high = sev_ha["high"]
        caps = [
            f"A wildfire burned about {A} ({P} of the area) in the {loc} on {date}.",
            f"Burn scar of {A} in the {loc} of the scene, left by a fire in {month}; "
            f"{top_txt} severity dominates and the vegetation regrows only slowly in the following years.",
            f"Forest in the {loc} burned in {month}: {P} of the area ({A}), {high:.1f} ha of it at high severity.",
            f"On {date} a fire swept through {A} of woodland in the {loc}; the rest of the area is unburned forest.",
        ]
        qa = [
            _qa("When did the fire happen?", date, "date"),
            _qa("In which month did the fire happen?", month, "month"),
            _qa("How much area burned?", A, "area_ha", round(ha, 1)),
            _qa("What percentage of the area burned?", P, "percent", round(pct, 1)),
            _qa("Where is the burn scar?", loc, "location"),
            _qa(f"What changed here since {year - 1}?",
                f"A wildfire burned {A} in the {loc} on {date}; the vegetation is regrowing slowly.", "text"),
            _qa("Which burn severity class covers the largest burned area?", top_txt, "class", top),
            _qa("How much area burned at high severity?", f"{high:.1f} ha", "area_ha", round(high, 1)),
            _qa("Did the vegetation recover to its pre-fire state within a year?", "no", "yes_no", False),
            _qa("What was the land cover of the burned area before the fire?", "forest", "class", "forest"),
            _qa("Is there a flood in this area?", "no", "yes_no", False),
        ]
    elif name == "flood":
        ev = t.events
        onset, peak, end = scene.params["onset_day"], scene.params["peak_day"], scene.params["end_day"]
        dur = end - onset
        orient = ev["river_orientation"]
        caps = [
            f"The river flooded about {A} of its floodplain ({P} of the area), starting on {_iso(onset)}; "
            f"the flood peaked on {_iso(peak)} and had receded by {_iso(end)}.",
            f"Flood in {_month(onset)}: water spread over {A} around the {orient} river and drained away "
            f"within about {dur} days.",
            f"A temporary flood covered {P} of the scene ({A}) along the river, peaking on {_iso(peak)}.",
            f"Between {_iso(onset)} and {_iso(end)} the floodplain was inundated; at the peak {A} of land was "
            "under water besides the permanent river.",
        ]
        qa = [
            _qa("When did the flood start?", _iso(onset), "date"),
            _qa("When did the flood peak?", _iso(peak), "date"),
            _qa("When had the water receded?", _iso(end), "date"),
            _qa("How much land was flooded at the peak?", A, "area_ha", round(ha, 1)),
            _qa("What percentage of the area was flooded?", P, "percent", round(pct, 1)),
            _qa("How long did the flood last?", f"{dur} days", "duration_days", dur),
            _qa("Where is the permanent water?", f"a river crossing the area ({orient})", "text"),
            _qa("Is the flooding permanent?", "no", "yes_no", False),
            _qa(f"What changed here since {_date(onset).astype(datetime).year - 1}?",
                f"A flood inundated {A} of the floodplain from {_iso(onset)} to {_iso(end)}; "
                "the land then returned to its previous cover.", "text"),
            _qa("Did a fire burn here?", "no", "yes_no", False),
        ]
    elif name == "deforestation":
        days = sorted({int(d) for d in scene.params["cut_day"][np.isfinite(scene.params["cut_day"])]})
        per_year: dict[int, float] = {}
        for d in days:
            yv = _date(d).astype(datetime).year
            per_year[yv] = per_year.get(yv, 0.0) + float((scene.params["cut_day"] == d).sum() * PIXEL_HA)
        y_max = max(per_year, key=per_year.get)
        first, last = _iso(days[0]), _iso(days[-1])
        t.stats["loss_ha_per_year"] = {str(k): round(v, 2) for k, v in per_year.items()}
        caps = [
            f"Forest was clear-cut to bare soil in {len(days)} patches between {first} and {last}, "
            f"removing {A} ({P} of the area), mostly in the {loc}.",
            f"Deforestation along the road: {A} of forest lost in {len(days)} clearing events from "
            f"{_month(days[0])} to {_month(days[-1])}.",
            f"{P} of the forest cover in this area was cleared between {first[:4]} and {last[:4]}; "
            "the cleared patches stay bare.",
            f"New clear-cuts appear on {', '.join(_iso(d) for d in days)}, {A} in total.",
        ]
        qa = [
            _qa("When did the first clearing happen?", first, "date"),
            _qa("When was the last clearing?", last, "date"),
            _qa("How many clearing events were there?", str(len(days)), "count", len(days)),
            _qa("How much forest was lost?", A, "area_ha", round(ha, 1)),
            _qa(f"How much forest was lost in {y_max}?", f"{per_year[y_max]:.1f} ha", "area_ha",
                round(per_year[y_max], 1)),
            _qa("What percentage of the area was cleared?", P, "percent", round(pct, 1)),
            _qa("Where is the forest loss?", loc, "location"),
            _qa("What replaced the forest?", "bare soil", "class", "bare_soil"),
            _qa(f"What changed here since {_date(days[0]).astype(datetime).year - 1}?",
                f"{A} of forest was clear-cut to bare soil in {len(days)} events between {first} and {last}.", "text"),
            _qa("Is there a burn scar?", "no", "yes_no", False),
        ]
    elif name == "urban_growth":
        days = sorted({int(d) for d in scene.params["build_day"][np.isfinite(scene.params["build_day"])]})
        first, last = _iso(days[0]), _iso(days[-1])
        caps = [
            f"Built-up area expanded over {A} of cropland and bare soil ({P} of the area) in {len(days)} "
            f"phases between {first} and {last}, in the {loc}.",
            f"Urban growth: {len(days)} new districts were built next to the town from {_month(days[0])} to "
            f"{_month(days[-1])}, {A} in total.",
            f"Fields in the {loc} were converted to buildings between {first[:4]} and {last[:4]}: "
            f"{P} of the scene.",
            f"New construction starts on {', '.join(_iso(d) for d in days)} turn {A} of farmland into built-up land.",
        ]
        qa = [
            _qa("When did the first construction start?", first, "date"),
            _qa("When did the last construction start?", last, "date"),
            _qa("How many phases of urban growth were there?", str(len(days)), "count", len(days)),
            _qa("How much new built-up area is there?", A, "area_ha", round(ha, 1)),
            _qa("What percentage of the area became built-up?", P, "percent", round(pct, 1)),
            _qa("Where did the town grow?", loc, "location"),
            _qa("What was there before the new buildings?", "cropland and bare soil", "class", "cropland"),
            _qa(f"What changed here since {_date(days[0]).astype(datetime).year - 1}?",
                f"{A} of cropland became built-up in {len(days)} phases between {first} and {last}.", "text"),
            _qa("Was there a flood?", "no", "yes_no", False),
        ]
    else:  # seasonal_crops
        peak = int(np.median(scene.crop_peak)) if scene.crop_peak.size else 190
        peak_month = calendar.month_name[(datetime(2001, 1, 1) + timedelta(days=peak - 1)).month]
        caps = [
            f"Cropland with a regular yearly cycle: fields green up in spring and summer and are bare after "
            f"harvest; no persistent change between {scene.options.start} and {scene.options.end}.",
            f"Agricultural parcels with seasonal greenness peaking around {peak_month} every year and no "
            f"land-cover change from {start_y} to {end_y}.",
            "Only the seasonal crop cycle is visible here: green fields, harvest, bare soil, and again.",
        ]
        qa = [
            _qa("Did anything change here?", "no", "yes_no", False),
            _qa(f"What changed here since {start_y + 2}?", "Nothing persistent: only the seasonal crop cycle.", "text"),
            _qa("How much area changed?", "0.0 ha", "area_ha", 0.0),
            _qa("In which month are the fields greenest?", peak_month, "month"),
            _qa("What is the main land cover?", "cropland", "class", "cropland"),
            _qa("Is there a burn scar?", "no", "yes_no", False),
        ]
    t.captions = caps
    t.qa = qa


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def make_scene(scenario: str, **options: Any) -> SyntheticScene:
    """Build one scenario in memory (no files): landscape, events, acquisition plan and truth.

    ``scenario`` is one of :data:`SCENARIO_NAMES`; options are those of :class:`SceneOptions`
    (size in 10 m pixels, start / end ISO dates, sensors, cloud_prob, seed, revisits ...).
    The grid is UTM (EPSG:326zz / 327zz) around the scenario's place.
    """
    if scenario not in SCENARIOS:
        raise SyntheticSceneError(f"unknown scenario {scenario!r}; expected one of {list(SCENARIO_NAMES)}")
    opts = SceneOptions.make(**options)
    cfg = dict(SCENARIOS[scenario])
    if opts.center_lonlat is not None:
        cfg["center_lonlat"] = opts.center_lonlat
    n = opts.size
    grid = make_grid(cfg["center_lonlat"], n)
    code = _SCENARIO_CODE[scenario]
    rng = _rng(opts.seed, code, 1)
    crops = _Crops(_rng(opts.seed, code, 2), _n_years(opts))
    crop_field = np.full((n, n), -1, np.int32)
    if scenario == "wildfire":
        built = _build_wildfire(rng, n, opts, cfg)
    elif scenario == "flood":
        built = _build_flood(rng, n, opts, cfg)
        built["covers"], crop_field = _landscape_flood(rng, n, built, crops)
    elif scenario == "deforestation":
        built = _build_deforestation(rng, n, opts, cfg)
    elif scenario == "urban_growth":
        built = _build_urban(rng, n, opts, cfg, crops)
        crop_field = built["crop_field"]
    else:
        built = _build_crops(rng, n, opts, cfg, crops)
        crop_field = built["crop_field"]
    covers = built["covers"]
    covers /= covers.sum(axis=0, keepdims=True)
    peak, width, jitter = crops.arrays()
    truth = SceneTruth(
        change_class=np.zeros((n, n), np.uint8),
        change_date=np.full((n, n), np.datetime64("NaT"), "datetime64[D]"),
    )
    hemi = "north" if grid.epsg < 32700 else "south"
    north_m, east_m = opts.shadow_offset_m or SHADOW_OFFSET_M[hemi]
    scene = SyntheticScene(
        name=scenario, options=opts, grid=grid, config=cfg, base=covers.astype(np.float32),
        crop_field=crop_field, crop_peak=peak, crop_width=width, crop_jitter=jitter,
        params={}, truth=truth,
        shadow_offset_px=(int(round(-north_m / PIXEL_SIZE)), int(round(east_m / PIXEL_SIZE))),
    )
    # events -> truth
    if scenario == "wildfire":
        _finish_wildfire(scene, rng, built)
    elif scenario == "flood":
        _finish_flood(scene, rng, built)
    elif scenario == "deforestation":
        scene.params["cut_day"] = built["cut_day"]
        hit = np.isfinite(built["cut_day"])
        truth.change_class[hit] = CHANGE_CODES["vegetation_loss"]
        truth.change_date[hit] = _EPOCH + built["cut_day"][hit].astype("int64").astype("timedelta64[D]")
        days = sorted({int(d) for d in built["cut_day"][hit]})
        truth.events.update({"clearing_dates": [_iso(d) for d in days], "key_dates": [_iso(d) for d in days]})
    elif scenario == "urban_growth":
        scene.params["build_day"] = built["build_day"]
        hit = np.isfinite(built["build_day"])
        truth.change_class[hit] = CHANGE_CODES["built_up_gain"]
        truth.change_date[hit] = _EPOCH + built["build_day"][hit].astype("int64").astype("timedelta64[D]")
        days = sorted({int(d) for d in built["build_day"][hit]})
        truth.events.update({"construction_dates": [_iso(d) for d in days], "key_dates": [_iso(d) for d in days],
                             "build_days": cfg["build_days"]})
    else:
        truth.events.update({"key_dates": []})
    key_days = [_day(d) for d in truth.events.get("key_dates", [])]
    _plan(scene, key_days)
    truth.events["observations"] = _observation_windows(scene, key_days)
    _describe(scene)
    return scene


def _observation_windows(scene: SyntheticScene, key_days: Sequence[int]) -> dict[str, Any]:
    """For each key date: the last acquisition before and the first on/after it, per sensor."""
    out: dict[str, Any] = {}
    for kd in key_days:
        row: dict[str, Any] = {}
        for coll, acqs in scene.acquisitions.items():
            before = [a for a in acqs if a.day < kd]
            after = [a for a in acqs if a.day >= kd]
            row[coll] = {"last_before": str(before[-1].date) if before else None,
                         "first_after": str(after[0].date) if after else None}
        out[_iso(kd)] = row
    return out
