"""Class overlays, legends, the before/after swipe and date maps, composed server-side as
uint8 RGB from the shared class table (``config/classes.json``): the dashboard's legend and
the PNG quicklooks use the same colours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from rsvlm_temporal.classes import NODATA_CLASS, class_table
from rsvlm_temporal.errors import GridError, ParameterError
from rsvlm_temporal.viewer.render import colorbar, hex_color, ramp, resize_nearest


@dataclass(frozen=True)
class LegendEntry:
    """One legend line: class code, machine name, label, ``#rrggbb`` colour."""

    code: int
    name: str
    label: str
    color: str


def legend(table: str = "change", present: Iterable[int] | None = None,
           hide: Iterable[str] = ()) -> list[LegendEntry]:
    """Legend entries of class table ``table`` in its legend order; only codes in ``present``
    when given, never the names in ``hide``."""
    keep = None if present is None else {int(c) for c in present}
    hidden = set(hide)
    return [LegendEntry(c.code, c.name, c.label, hex_color(c.color)) for c in class_table(table).legend()
            if (keep is None or c.code in keep) and c.name not in hidden]


def class_rgba(codes: np.ndarray, table: str = "change", hide: Iterable[str] = ("no_change",),
               dates: np.ndarray | None = None, until: str | None = None) -> np.ndarray:
    """(y, x) class codes -> (y, x, 4) uint8 RGBA coloured from ``table``; nodata, unknown codes
    and the names in ``hide`` transparent. With ``dates`` (int days since 1970-01-01, -1 none;
    same grid) and ``until`` (ISO date), only the changes dated on or before ``until`` show:
    the overlay follows the player."""
    codes = np.asarray(codes)
    out = np.zeros(codes.shape + (4,), np.uint8)
    hidden = set(hide)
    shown = np.ones(codes.shape, bool)
    if dates is not None and until is not None:
        d = np.asarray(dates)
        if d.shape != codes.shape:
            raise GridError(f"change dates {d.shape} and classes {codes.shape} are not on one grid")
        shown = (d >= 0) & (d <= int(np.datetime64(str(until)[:10], "D").astype(int)))
    for c in class_table(table).classes:
        if c.name in hidden or c.code == NODATA_CLASS:
            continue
        out[(codes == c.code) & shown] = (*c.color, 255)
    return out


def blend(base: np.ndarray, rgba: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """``rgba`` laid over ``base`` (uint8 RGB) with ``opacity`` (0-1) times its alpha; ``rgba``
    is resampled (nearest) to the base's grid when the shapes differ."""
    if not 0 <= opacity <= 1:
        raise ParameterError(f"opacity must lie in [0, 1]; got {opacity}")
    rgba = resize_nearest(rgba, base.shape[:2])
    a = (rgba[..., 3:4].astype(np.float32) / 255) * opacity
    return (base[..., :3] * (1 - a) + rgba[..., :3] * a + 0.5).astype(np.uint8)


def swipe(before: np.ndarray, after: np.ndarray, position: float = 0.5, line: int = 2) -> np.ndarray:
    """Before / after composed side by side at ``position`` (0-1 of the width): ``before`` on the
    left, ``after`` on the right, a white divider between (uint8 RGB)."""
    if before.shape != after.shape:
        raise GridError(f"swipe needs two frames of one shape; got {before.shape} and {after.shape}")
    if not 0 <= position <= 1:
        raise ParameterError(f"swipe position must lie in [0, 1]; got {position}")
    w = before.shape[1]
    cut = int(round(position * w))
    out = after.copy()
    out[:, :cut] = before[:, :cut]
    lo, hi = max(0, cut - line // 2), min(w, cut + (line + 1) // 2)
    out[:, lo:hi] = 255
    return out


def date_map(days: np.ndarray, start: str | None = None, end: str | None = None,
             nodata: int = -1, width: int = 360) -> tuple[np.ndarray, np.ndarray]:
    """A change-date raster (int days since 1970-01-01, ``nodata`` none) as uint8 RGB through
    the time ramp, and its colour bar labelled with dates (``start`` / ``end`` ISO, default the
    data range). Pixels without a date are light grey."""
    d = np.asarray(days).astype(np.float64)
    d[np.asarray(days) == nodata] = np.nan
    ok = np.isfinite(d)
    lo = float(np.datetime64(start, "D").astype(int)) if start else (float(np.nanmin(d)) if ok.any() else 0.0)
    hi = float(np.datetime64(end, "D").astype(int)) if end else (float(np.nanmax(d)) if ok.any() else lo + 1)
    hi = max(hi, lo + 1)
    rgb = ramp((d - lo) / (hi - lo), "time")
    ticks = [(v, str(np.datetime64(int(v), "D"))[:7]) for v in np.linspace(lo, hi, 4)]
    return rgb, colorbar("time", lo, hi, "date of change", width, ticks)


def classes_image(codes: np.ndarray, table: str = "change", hide: Iterable[str] = ()) -> np.ndarray:
    """A class raster as an opaque uint8 RGB map (transparent classes white)."""
    rgba = class_rgba(codes, table, hide)
    white = np.full(codes.shape + (3,), 255, np.uint8)
    return blend(white, rgba, 1.0)
