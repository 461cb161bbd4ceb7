"""Class codes shared by the change engine, the synthetic truth, the exports and the dashboard.

Kept as data in ``config/classes.json`` (codes, names, labels, colours, legend order), loaded
and validated once at import: the same table names the classes in COG metadata and colour
maps, PNG quicklooks, GeoJSON, the evidence and the dashboard's legend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from rsvlm_temporal.errors import ConfigError

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ClassInfo:
    """One class of a table: raster code, machine name, human label, RGB colour (0-255)."""

    code: int
    name: str
    label: str
    color: RGB
    dnbr_min: float | None = None


@dataclass(frozen=True)
class ClassTable:
    """A class table: its classes by code and the order a legend lists them in."""

    key: str
    title: str
    classes: tuple[ClassInfo, ...]
    legend_order: tuple[str, ...]

    @property
    def names(self) -> dict[int, str]:
        """``{code: name}``."""
        return {c.code: c.name for c in self.classes}

    @property
    def codes(self) -> dict[str, int]:
        """``{name: code}``."""
        return {c.name: c.code for c in self.classes}

    def by_name(self, name: str) -> ClassInfo:
        """The class called ``name`` (:class:`ConfigError` listing the names otherwise)."""
        for c in self.classes:
            if c.name == name:
                return c
        raise ConfigError(f"no class {name!r} in the {self.key} table; classes: {list(self.codes)}")

    def legend(self) -> list[ClassInfo]:
        """The classes in legend order."""
        return [self.by_name(n) for n in self.legend_order]


def _rgb(value: Any, where: str) -> RGB:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in value)):
        raise ConfigError(f"{where}: colour {value!r} is not [r, g, b] with integers 0-255")
    return (value[0], value[1], value[2])


def _table(key: str, raw: dict[str, Any]) -> ClassTable:
    classes = []
    for c in raw["classes"]:
        where = f"config/classes.json table {key!r} class {c.get('name')!r}"
        dnbr = c.get("dnbr_min")
        classes.append(ClassInfo(int(c["code"]), str(c["name"]), str(c["label"]), _rgb(c["color"], where),
                                 None if dnbr is None else float(dnbr)))
    codes = [c.code for c in classes]
    names = [c.name for c in classes]
    if len(set(codes)) != len(codes) or len(set(names)) != len(names):
        raise ConfigError(f"config/classes.json table {key!r} repeats a code or a name: {list(zip(codes, names))}")
    order = tuple(raw.get("legend_order", names))
    if sorted(order) != sorted(names):
        raise ConfigError(f"config/classes.json table {key!r}: legend_order {list(order)} must list "
                          f"each class once: {names}")
    return ClassTable(key, str(raw.get("title", key)), tuple(classes), order)


@lru_cache(maxsize=None)
def _config() -> dict[str, Any]:
    text = resources.files("rsvlm_temporal").joinpath("config", "classes.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=None)
def class_tables() -> dict[str, ClassTable]:
    """Every class table of ``config/classes.json`` by key (``change``, ``burn_severity``,
    ``magnitude``), validated: unique codes and names, legend orders complete, one colour per
    class name across tables."""
    tables = {k: _table(k, v) for k, v in _config()["tables"].items()}
    colours: dict[str, RGB] = {}
    for t in tables.values():
        for c in t.classes:
            if colours.setdefault(c.name, c.color) != c.color:
                raise ConfigError(f"config/classes.json: class {c.name!r} has two colours "
                                  f"{colours[c.name]} and {c.color}; a name has one colour everywhere")
    return tables


def class_table(key: str) -> ClassTable:
    """The class table ``key`` (:class:`ConfigError` listing the keys otherwise)."""
    tables = class_tables()
    if key not in tables:
        raise ConfigError(f"no class table {key!r}; tables: {sorted(tables)}")
    return tables[key]


NODATA_CLASS: int = int(_config()["nodata"])

#: change classes of the combined change-class raster (uint8)
CHANGE_CLASSES: dict[int, str] = class_table("change").names
CHANGE_CODES: dict[str, int] = class_table("change").codes

#: burn severity classes from dNBR, USGS FIREMON / Key & Benson (2006), Landscape Assessment
BURN_SEVERITY_CLASSES: dict[int, str] = class_table("burn_severity").names
#: lower dNBR bound (dNBR, not x1000) of each severity class
BURN_SEVERITY_BOUNDS: dict[int, float] = {
    c.code: c.dnbr_min for c in class_table("burn_severity").classes if c.dnbr_min is not None
}

#: classes of the bi-temporal change mask (unsupervised change magnitude)
MAGNITUDE_CLASSES: dict[int, str] = class_table("magnitude").names
#: classes of the agreement layer: the spectral change against the temporal CLIP's learned mask
MODEL_AGREEMENT_CLASSES: dict[int, str] = class_table("model_agreement").names

#: fixed colours of the named classes of every table (RGB 0-255)
NAME_COLORS: dict[str, RGB] = {c.name: c.color for t in class_tables().values() for c in t.classes}
#: fallback colours by code (code modulo the length), for classes without a named colour
CODE_COLORS: tuple[RGB, ...] = tuple(_rgb(v, "config/classes.json fallback_colors")
                                     for v in _config()["fallback_colors"])


def class_color(code: int, name: str | None = None) -> RGB:
    """The fixed RGB colour of a class: by name (:data:`NAME_COLORS`), else by code."""
    if name is not None and name in NAME_COLORS:
        return NAME_COLORS[name]
    return CODE_COLORS[int(code) % len(CODE_COLORS)]
