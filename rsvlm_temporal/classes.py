"""Class codes shared by the change engine, the synthetic truth and the exports.

Kept as data: the same tables name the classes in COG metadata, GeoJSON and evidence.
"""

from __future__ import annotations

NODATA_CLASS = 255

#: change classes of the combined change-class raster (uint8)
CHANGE_CLASSES: dict[int, str] = {
    0: "no_change",
    1: "burn",
    2: "flood",
    3: "vegetation_loss",
    4: "vegetation_gain",
    5: "built_up_gain",
}
CHANGE_CODES: dict[str, int] = {v: k for k, v in CHANGE_CLASSES.items()}

#: burn severity classes from dNBR, USGS FIREMON / Key & Benson (2006), Landscape Assessment,
#: thresholds on dNBR x 1000. Code 0: not assessed (not vegetated before the fire, or masked).
BURN_SEVERITY_CLASSES: dict[int, str] = {
    0: "not_assessed",
    1: "enhanced_regrowth",
    2: "unburned",
    3: "low",
    4: "moderate_low",
    5: "moderate_high",
    6: "high",
}
#: lower dNBR bound (dNBR, not x1000) of each severity class; enhanced regrowth below -0.1
#: (Key & Benson split it at -0.25 into high/low regrowth; merged here as one class).
BURN_SEVERITY_BOUNDS: dict[int, float] = {
    1: float("-inf"),
    2: -0.100,
    3: 0.100,
    4: 0.270,
    5: 0.440,
    6: 0.660,
}
