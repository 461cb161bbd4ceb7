"""Exceptions raised by rsvlm_temporal.

Every error names what was wrong and what was expected, so a user can act on it.
All derive from :class:`RsvlmError`, so a CLI can catch one type and print a message
instead of a stack trace.
"""

from __future__ import annotations

from typing import Iterable


class RsvlmError(Exception):
    """Base class of every error raised on purpose by this package."""


class ConfigError(RsvlmError, ValueError):
    """A configuration table shipped with the package (``config/*.json``) is malformed."""


class ParameterError(RsvlmError, ValueError):
    """An argument is out of range or of the wrong kind (a resolution <= 0, a budget <= 0)."""


class UnknownNameError(ParameterError, KeyError):
    """A name that a lookup table does not define (a method, scenario, source); the message
    lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class AOIError(RsvlmError, ValueError):
    """An area of interest is malformed: inverted or out-of-range bbox, bad GeoJSON."""


class CatalogError(RsvlmError):
    """A STAC API or static catalog could not be read (unreachable, malformed, 5xx)."""


class EmptySearchError(CatalogError):
    """A search matched no item; the message repeats the query so it can be widened."""


class ItemError(RsvlmError, ValueError):
    """A STAC item lacks what loading needs (projection info, a band asset, a scale)."""


class UnknownBandError(ItemError, KeyError):
    """A band name that the sensor table does not define or the item does not carry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RasterReadError(RsvlmError, IOError):
    """A raster file is missing, truncated or unreadable."""


class PeriodError(RsvlmError, ValueError):
    """An analysis period is malformed: start after end, or a date that cannot be parsed."""


class InsufficientDataError(RsvlmError, ValueError):
    """Too few clear observations, or inputs that do not overlap, to compute a product."""


class ModelWeightsError(RsvlmError, FileNotFoundError):
    """Pretrained weights are not available locally (there is no network at run time)."""


class GridError(RsvlmError, ValueError):
    """A raster lacks georeferencing, or two rasters are not on the same grid."""


class ClusterError(RsvlmError, ConnectionError):
    """A dask scheduler cannot be reached or a cluster cannot be started."""


class SyntheticSceneError(RsvlmError, ValueError):
    """Options of a synthetic scene are inconsistent (unknown scenario or sensor, bad dates)."""


class LanguageError(RsvlmError, ValueError):
    """A question, caption set or language-model option cannot be used: empty or unsupported
    text, an unknown intent, a model folder without a causal LM, a malformed captions file."""


def unknown_name(what: str, name: object, valid: "Iterable[str]") -> UnknownNameError:
    """The error for a name missing from a lookup table: ``unknown {what} 'x'; expected one of [...]``."""
    return UnknownNameError(f"unknown {what} {name!r}; expected one of {sorted(valid)}")


class OutputError(RsvlmError, OSError):
    """An output path cannot be written as asked: empty, a file where a folder is expected, a
    device or other special file, an unwritable folder, a full disk."""


class BusyError(OutputError):
    """Another run is writing into the same result folder (its lock is held)."""


class LimitError(ParameterError):
    """A run would exceed a resource limit (grid size, memory, workers, response size, pages);
    the message names the limit and how to raise it."""


class DeadlineError(CatalogError):
    """A remote server did not finish answering within the deadline."""
