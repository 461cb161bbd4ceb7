"""Per-pixel quality flags, decoded from Sentinel-2 SCL classes and Landsat QA_PIXEL bits.

The cube carries one ``mask`` coordinate (time, y, x) of uint8 bit flags. Which flags make a
pixel unusable (masked to NaN in the reflectance) is ``DEFAULT_MASKED``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rsvlm_temporal.errors import ConfigError

NODATA = np.uint8(1)
CLOUD = np.uint8(2)
SHADOW = np.uint8(4)
CIRRUS = np.uint8(8)
SNOW = np.uint8(16)
WATER = np.uint8(32)
SATURATED = np.uint8(64)
DARK = np.uint8(128)

FLAGS: dict[str, np.uint8] = {
    "nodata": NODATA, "cloud": CLOUD, "shadow": SHADOW, "cirrus": CIRRUS,
    "snow": SNOW, "water": WATER, "saturated": SATURATED, "dark": DARK,
}
#: flags masked to NaN by default: nodata, cloud, cloud shadow, cirrus, saturated.
DEFAULT_MASKED = np.uint8(NODATA | CLOUD | SHADOW | CIRRUS | SATURATED)


def flags_from_names(names: list[str] | tuple[str, ...]) -> np.uint8:
    """OR of the flags named (``["cloud", "shadow"]`` -> CLOUD | SHADOW)."""
    out = 0
    for n in names:
        out |= int(FLAGS[n])
    return np.uint8(out)


def lookup_table(quality: Mapping[str, Any]) -> np.ndarray:
    """A 65536-entry uint8 table mapping a raw quality value to flags, for one sensor table entry.

    ``kind == "classes"``: the value is a class code (Sentinel-2 SCL); ``kind == "bits"``: each
    listed bit that is set adds its flags (Landsat QA_PIXEL).
    """
    lut = np.zeros(65536, dtype=np.uint8)
    values = np.arange(65536, dtype=np.uint32)
    if quality["kind"] == "classes":
        for code, names in quality["classes"].items():
            lut[int(code)] = flags_from_names(names)
        # codes outside the legend are not valid observations
        known = np.zeros(65536, dtype=bool)
        known[[int(c) for c in quality["classes"]]] = True
        lut[~known] = NODATA
    elif quality["kind"] == "bits":
        for bit, names in quality["bits"].items():
            lut[(values >> int(bit)) & 1 == 1] |= flags_from_names(names)
    else:
        raise ConfigError(f"unknown quality kind {quality['kind']!r} in the sensor table; expected 'classes' or 'bits'")
    return lut


def decode(raw: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Quality band values (any integer dtype) -> uint8 flags through ``lut``."""
    return lut[raw.astype(np.uint16, copy=False)]
