"""The typed evidence of one analysis: what the language stage, the dashboard and the reports may
state. Plain dataclasses, serialised to ``evidence.json`` (:data:`SCHEMA_VERSION`); files of
older schema versions are read too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rsvlm_temporal.atomic import write_json_atomic
from rsvlm_temporal.errors import UnknownNameError
from rsvlm_temporal.quality import NOTE_KINDS, QualityNote  # noqa: F401  (part of the schema)
from rsvlm_temporal.timeutil import iso_date

#: version 2: quality notes are typed (:class:`QualityNote`); version 1 files (free-text
#: ``insufficient_data`` reasons) are still read
SCHEMA_VERSION = 2
#: names of the 3x3 partition of the AOI, row by row from the north-west
CELL_NAMES: tuple[str, ...] = (
    "north-west", "north", "north-east",
    "west", "centre", "east",
    "south-west", "south", "south-east",
)
#: a class with >= 2 patches is "scattered across the AOI" when no 3x3 cell holds this share
#: (or more) of its area
SCATTER_MAX_CELL_SHARE = 0.5
SCATTERED_PHRASE = "scattered across the AOI"
ABSENT_PHRASE = "absent"


# --------------------------------------------------------------------------------------------
# typed evidence


@dataclass
class AOIInfo:
    """The analysed grid: CRS, bounds (CRS metres and lon/lat degrees), pixel size, valid area."""

    crs: str
    bounds: list[float]  # left, bottom, right, top (CRS metres)
    bounds_lonlat: list[float]  # west, south, east, north (EPSG:4326 degrees)
    pixel_size_m: list[float]  # x, y (metres, positive)
    width: int
    height: int
    total_pixels: int
    valid_pixels: int
    valid_area_ha: float


@dataclass
class ClassEvidence:
    """Evidence of one class. Areas in hectares; centroid in CRS metres and lon/lat degrees.

    ``location`` is the 3x3 cell of the AOI holding the class centroid; ``location_phrase`` is
    ``location``, or ``"scattered across the AOI"`` when the class has >= 2 patches and no cell
    holds >= ``SCATTER_MAX_CELL_SHARE`` of its area, or ``"absent"`` when it has no pixel.
    ``cell_shares`` gives the share (0-1) of the class area in each 3x3 cell.
    """

    name: str
    code: int
    n_pixels: int
    area_ha: float
    percent_of_valid: float
    n_patches: int
    largest_patch_ha: float
    centroid_x: float | None = None
    centroid_y: float | None = None
    centroid_lon: float | None = None
    centroid_lat: float | None = None
    location: str | None = None
    location_phrase: str = ABSENT_PHRASE
    scattered: bool = False
    cell_shares: dict[str, float] = field(default_factory=dict)
    first_date: str | None = None
    last_date: str | None = None
    confidence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClearObservation:
    """Clear (usable) pixels on one acquisition date; ``fraction`` of the AOI's pixels (0-1)."""

    date: str
    clear_count: int
    clear_fraction: float


@dataclass
class DataQuality:
    """Clear observations per date and why the data may be insufficient (``status``)."""

    clear_observations: list[ClearObservation] = field(default_factory=list)
    notes: list[QualityNote] = field(default_factory=list)
    status: str = "ok"  # "ok" | "insufficient_data"

    def notes_of(self, kind: str) -> list[QualityNote]:
        """The notes of one ``kind``."""
        return [n for n in self.notes if n.kind == kind]


@dataclass
class Evidence:
    """Everything the language head and the reports may state about one analysis."""

    aoi: AOIInfo
    classes: list[ClassEvidence]
    quality: DataQuality
    analysis: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of JSON types."""
        return jsonable(dataclasses.asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        """The evidence as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def write_json(self, path: Any) -> Any:
        """Write the evidence as JSON to ``path`` atomically; returns the path."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Evidence":
        """Rebuild an :class:`Evidence` from :meth:`to_dict` output."""
        q = dict(d["quality"])
        q["clear_observations"] = [ClearObservation(**o) for o in q.get("clear_observations", [])]
        if "insufficient_data" in q:  # schema version 1: free-text reasons
            q["notes"] = [QualityNote.of(str(r)) for r in q.pop("insufficient_data") or []]
        else:
            q["notes"] = [QualityNote.from_dict(n) for n in q.get("notes", [])]
        return cls(
            aoi=AOIInfo(**d["aoi"]),
            classes=[ClassEvidence(**c) for c in d["classes"]],
            quality=DataQuality(**q),
            analysis=d.get("analysis", ""),
            extra=dict(d.get("extra", {})),
            schema_version=SCHEMA_VERSION,  # read from any version, held as the current one
        )

    @classmethod
    def from_json(cls, text: str) -> "Evidence":
        """Rebuild an :class:`Evidence` from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def class_by_name(self, name: str) -> ClassEvidence:
        """The :class:`ClassEvidence` named ``name`` (KeyError listing the names otherwise)."""
        for c in self.classes:
            if c.name == name:
                return c
        raise UnknownNameError(f"no class {name!r} in the evidence; classes: {[c.name for c in self.classes]}")


def jsonable(o: Any) -> Any:
    """``o`` with numpy scalars, arrays and dates as JSON types; non-finite floats as None."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return jsonable(o.item())
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, (np.datetime64,)):
        return iso_date(o)
    return o


