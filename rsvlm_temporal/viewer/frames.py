"""Frames of the series player: true colour, false colour or an index per date, rendered once
from the cube into a compact cache (uint8 stretched bands, float16 indices, clear masks).

The cube is read once, in batches of dates (never whole); after that a frame, a view switch
or a pixel series costs no read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from rsvlm_temporal.errors import InsufficientDataError, ParameterError, unknown_name
from rsvlm_temporal.timeutil import iso_date
from rsvlm_temporal.viewer.render import MASKED_RGB, colorbar, ramp, scale01

#: bands the player reads (the analysis bands)
PLAYER_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
#: the longest side of the player's grid (px); larger AOIs are shown at a coarser pixel
MAX_PLAYER_SIDE = 1024


@dataclass(frozen=True)
class View:
    """One way to show a frame: a band composite (``bands`` as R, G, B) or an index with a
    colour ramp from ``vmin`` to ``vmax``."""

    key: str
    label: str
    kind: str  # "rgb" | "index"
    bands: tuple[str, ...] = ()
    index: str | None = None
    vmin: float = 0.0
    vmax: float = 1.0
    ramp: str = "viridis"


#: the player's views, in menu order
VIEWS: dict[str, View] = {v.key: v for v in (
    View("true_colour", "True colour (red, green, blue)", "rgb", ("red", "green", "blue")),
    View("false_colour", "False colour (NIR, red, green)", "rgb", ("nir", "red", "green")),
    View("swir", "SWIR false colour (SWIR 1.6, NIR, red)", "rgb", ("swir16", "nir", "red")),
    View("ndvi", "NDVI (vegetation)", "index", index="ndvi", vmin=-0.2, vmax=0.9, ramp="vegetation"),
    View("nbr", "NBR (burn ratio)", "index", index="nbr", vmin=-0.6, vmax=0.9, ramp="burn"),
    View("mndwi", "MNDWI (water)", "index", index="mndwi", vmin=-0.8, vmax=0.8, ramp="water"),
)}
#: normalised-difference indices the cache holds: name -> (a, b) of (a - b) / (a + b)
INDEX_BANDS: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"), "nbr": ("nir", "swir22"), "mndwi": ("green", "swir16"),
}


@dataclass(frozen=True)
class FrameInfo:
    """One date of the player: position, ISO date, sensor, item id, clear share of the AOI (0-1)."""

    index: int
    date: str
    sensor: str
    item_id: str
    clear_fraction: float

    @property
    def sensor_label(self) -> str:
        """Human name of the sensor."""
        return {"sentinel-2-l2a": "Sentinel-2 L2A", "landsat-c2-l2": "Landsat C2 L2"}.get(self.sensor, self.sensor)

    def caption(self) -> str:
        """``2022-06-19 · Sentinel-2 L2A · 87% clear``."""
        return f"{self.date} · {self.sensor_label} · {self.clear_fraction:.0%} clear"


def player_resolution(items: Sequence[Any], max_side: int = MAX_PLAYER_SIDE) -> float:
    """Pixel size (m) of the player: 10 m when any item is Sentinel-2, else 30 m."""
    ids = {str(getattr(it, "collection_id", None) or (it.get("collection") if isinstance(it, dict) else ""))
           for it in items}
    return 10.0 if any(i.startswith("sentinel-2") for i in ids) else 30.0


def player_cube(items: Sequence[Any], resolution: float | None = None,
                bounds_latlon: tuple[float, float, float, float] | None = None,
                max_side: int = MAX_PLAYER_SIDE) -> xr.DataArray:
    """The lazy cube the player shows: :data:`PLAYER_BANDS` at the finest pixel of the items
    (:func:`player_resolution`), coarsened until its longest side is <= ``max_side`` px."""
    from rsvlm_temporal.io.cube import load_cube

    res = float(resolution or player_resolution(items))
    cube = load_cube(items, bands=PLAYER_BANDS, resolution=res, bounds_latlon=bounds_latlon, chunksize=512)
    side = max(cube.sizes["y"], cube.sizes["x"])
    if side > max_side:
        res *= math.ceil(side / max_side)
        cube = load_cube(items, bands=PLAYER_BANDS, resolution=res, bounds_latlon=bounds_latlon, chunksize=512)
    return cube


def _stretch(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band 1st / 99th percentiles of the clear reflectance of ``sample`` (t, band, y, x)."""
    lo = np.zeros(sample.shape[1], np.float32)
    hi = np.full(sample.shape[1], 0.3, np.float32)
    for b in range(sample.shape[1]):
        v = sample[:, b][np.isfinite(sample[:, b])]
        if v.size:
            lo[b], hi[b] = np.percentile(v, [1, 99])
            hi[b] = max(hi[b], lo[b] + 1e-3)
    return lo, hi


class FrameStore:
    """All frames of a cube, rendered once: stretched uint8 bands, float16 indices and the clear
    mask per date, so that showing a frame or a pixel's series reads nothing.

    ``progress(done, total)`` is called after each batch of ``batch`` dates.
    """

    def __init__(self, cube: xr.DataArray, batch: int = 16,
                 progress: Callable[[int, int], None] | None = None) -> None:
        missing = [b for b in PLAYER_BANDS if b not in cube.band.values.tolist()]
        if missing:
            raise ParameterError(f"the player needs bands {list(PLAYER_BANDS)}; the cube lacks {missing}")
        n = cube.sizes["time"]
        if n == 0:
            raise InsufficientDataError("the cube has no date to show")
        self.bands: tuple[str, ...] = tuple(cube.band.values.tolist())
        self.times = cube.time.values
        self.attrs = dict(cube.attrs)
        self.shape: tuple[int, int] = (cube.sizes["y"], cube.sizes["x"])
        pick = np.unique(np.linspace(0, n - 1, min(n, 12)).round().astype(int))
        self.lo, self.hi = _stretch(np.asarray(cube.isel(time=pick).values, np.float32))
        nb = len(self.bands)
        self._bytes = np.zeros((n, nb) + self.shape, np.uint8)
        self._clear = np.zeros((n,) + self.shape, bool)
        self._index = {k: np.full((n,) + self.shape, np.nan, np.float16) for k in INDEX_BANDS}
        pos = {b: i for i, b in enumerate(self.bands)}
        for t0 in range(0, n, batch):
            block = np.asarray(cube.isel(time=slice(t0, t0 + batch)).values, np.float32)
            ok = np.all(np.isfinite(block), axis=1)
            self._clear[t0:t0 + batch] = ok
            scaled = (block - self.lo[None, :, None, None]) / (self.hi - self.lo)[None, :, None, None]
            self._bytes[t0:t0 + batch] = (np.clip(np.nan_to_num(scaled), 0, 1) * 255 + 0.5).astype(np.uint8)
            with np.errstate(all="ignore"):
                for k, (a, b) in INDEX_BANDS.items():
                    va, vb = block[:, pos[a]], block[:, pos[b]]
                    self._index[k][t0:t0 + batch] = ((va - vb) / (va + vb)).astype(np.float16)
            if progress is not None:
                progress(min(t0 + batch, n), n)
        sensors = cube.sensor.values.tolist() if "sensor" in cube.coords else [""] * n
        ids = cube.id.values.tolist() if "id" in cube.coords else [""] * n
        frac = self._clear.reshape(n, -1).mean(axis=1)
        #: results derived from the frames (e.g. AOI series), kept with them
        self.memo: dict[str, Any] = {}
        self.infos: list[FrameInfo] = [
            FrameInfo(i, iso_date(self.times[i])[:10], str(sensors[i]), str(ids[i]), float(frac[i])) for i in range(n)
        ]

    def __len__(self) -> int:
        return len(self.infos)

    @property
    def nbytes(self) -> int:
        """Memory the cache holds (bytes)."""
        return self._bytes.nbytes + self._clear.nbytes + sum(a.nbytes for a in self._index.values())

    def visible(self, min_clear: float = 0.0) -> list[int]:
        """Positions of the frames whose clear fraction is >= ``min_clear`` (0-1)."""
        return [f.index for f in self.infos if f.clear_fraction >= min_clear]

    def clear_mask(self, i: int) -> np.ndarray:
        """(y, x) True where frame ``i`` is clear."""
        return self._clear[i]

    def index_values(self, name: str) -> np.ndarray:
        """(time, y, x) float16 values of index ``name`` (NaN where masked)."""
        if name not in self._index:
            raise unknown_name("index", name, self._index)
        return self._index[name]

    def frame(self, i: int, view: str = "true_colour", dim_masked: bool = True) -> np.ndarray:
        """Frame ``i`` in ``view`` as uint8 RGB (y, x, 3); masked pixels light grey."""
        if view not in VIEWS:
            raise unknown_name("view", view, VIEWS)
        if not 0 <= i < len(self.infos):
            raise ParameterError(f"frame {i} is out of range 0..{len(self.infos) - 1}")
        v = VIEWS[view]
        if v.kind == "rgb":
            idx = [self.bands.index(b) for b in v.bands]
            img = np.moveaxis(self._bytes[i, idx], 0, -1).copy()
            if dim_masked:
                img[~self._clear[i]] = MASKED_RGB
            return img
        return ramp(scale01(self._index[str(v.index)][i].astype(np.float32), v.vmin, v.vmax), v.ramp)

    def colorbar(self, view: str, width: int = 360) -> np.ndarray | None:
        """The colour bar of an index view (uint8 RGB), None for band composites."""
        v = VIEWS[view]
        return None if v.kind != "index" else colorbar(v.ramp, v.vmin, v.vmax, v.label, width)

    def median_frame(self, view: str = "true_colour") -> np.ndarray:
        """Per-pixel median of the clear frames in a band-composite ``view`` (uint8 RGB)."""
        v = VIEWS[view]
        idx = [self.bands.index(b) for b in v.bands]
        data = self._bytes[:, idx].astype(np.float32)
        data[np.broadcast_to(~self._clear[:, None], data.shape)] = np.nan
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(data, axis=0)
        return np.moveaxis(np.nan_to_num(med, nan=MASKED_RGB[0]), 0, -1).round().astype(np.uint8)
