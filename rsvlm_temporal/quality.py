"""Typed quality notes: why a result may rest on insufficient data.

Made by the stages that find the gap (the change analysis, the loader), carried by the evidence
(``evidence.json``, schema version 2), read by the language stage and the dashboard by ``kind``,
never by parsing the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from rsvlm_temporal.errors import unknown_name

#: the kinds of quality note, each with what it means; a note's ``kind`` is one of these
NOTE_KINDS: dict[str, str] = {
    "period_moved": "a whole before/after period has no clear observation; the period was moved "
                    "to the nearest clear dates (``dates``: the first and last date without one)",
    "no_seasonal_baseline": "clear acquisitions with no clear same-season observation a year "
                            "earlier: changes then are missed or dated late (``dates``: first, last)",
    "no_magnitude": "no pixel is clear in both periods: the change magnitude is no data",
    "partial_coverage": "part of the AOI (``fraction``) has no clear observation in the before or "
                        "the after period: magnitude and mask are no data there",
    "unseen_pixels": "part of the AOI (``fraction``) has no clear observation within the period "
                     "(``dates``: its start and end): the change class is no data there",
    "bitemporal_only": "too few dates over too short a time for the series engine: only the "
                       "change magnitude between two periods",
    "no_valid_pixel": "no valid pixel in the AOI (everything is nodata or masked)",
    "season_mismatch": "the two dates of a bitemporal analysis lie in different seasons "
                       "(``dates``: the two dates): vegetation differences are read as seasonal",
    "irmad_not_converged": "the iterative change magnitude (IR-MAD / ISFA) stopped before "
                           "converging; the last well-posed iteration is used",
    "no_spectral_classes": "the bitemporal pair is not reflectance 0-1 (raw DN) or lacks the "
                           "bands the class rules need: change mask only, no change classes",
    "model_disagreement": "the temporal CLIP's learned change mask and the spectral change differ over "
                          "part of the AOI (``fraction``: the share of the valid area where exactly one "
                          "calls it changed); see the model agreement layer",
    "unclassified": "a free-text note (given as text, or read from a schema version 1 file)",
}


@dataclass(frozen=True)
class QualityNote:
    """Why a result may rest on insufficient data, typed so that the language stage and the
    dashboard read it without parsing text: ``kind`` (one of :data:`NOTE_KINDS`), the ISO
    ``dates`` it concerns, the ``fraction`` of the AOI (0-1) it concerns, and the human ``text``."""

    kind: str
    text: str
    dates: tuple[str, ...] = ()
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in NOTE_KINDS:
            raise unknown_name("quality note kind", self.kind, NOTE_KINDS)
        object.__setattr__(self, "dates", tuple(str(d) for d in self.dates))

    @classmethod
    def of(cls, note: "QualityNote | str") -> "QualityNote":
        """``note`` itself, or a free-text reason as an ``unclassified`` note."""
        return note if isinstance(note, QualityNote) else cls("unclassified", str(note))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "QualityNote":
        """Rebuild a note from its JSON form."""
        return cls(str(d["kind"]), str(d["text"]), tuple(d.get("dates") or ()), d.get("fraction"))
