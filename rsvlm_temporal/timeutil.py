"""Dates: float days since 1970-01-01 (NaN = none) <-> datetime64 (NaT = none), ISO strings,
and the command line's one date parser (:func:`parse_date`)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np

from rsvlm_temporal.errors import PeriodError

_DATE_RE = re.compile(r"(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2}))?)?")


def days_to_datetime(a: np.ndarray) -> np.ndarray:
    """Float days since 1970-01-01 (NaN none) -> datetime64[ns] (NaT none), any shape."""
    out = np.full(a.shape, np.datetime64("NaT"), "datetime64[ns]")
    ok = np.isfinite(a)
    out[ok] = a[ok].astype(np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return out


def datetime_to_days(times: np.ndarray) -> np.ndarray:
    """datetime64 values -> int64 days since 1970-01-01."""
    return np.asarray(times).astype("datetime64[D]").astype(np.int64)


def iso_date(value: Any) -> str:
    """ISO string of a date-like value: ``YYYY-MM-DD``, or ``YYYY-MM-DDThh:mm:ss`` off midnight."""
    s = str(np.datetime_as_string(np.datetime64(value, "s")))
    return s[:10] if s.endswith("T00:00:00") else s


def days_to_iso(days: float) -> str:
    """ISO date of an integer number of days since 1970-01-01."""
    return str(np.datetime64(int(days), "D"))


_DATE_FORMS = "YYYY-MM-DD (or YYYY-MM, YYYY)"


def parse_date(text: Any, what: str = "date", *, end: bool = False) -> dt.date:
    """The one date parser of the command line: ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``.

    A month or a year stands for its first day, or with ``end=True`` for its last day (an end
    of period includes the whole month or year). ``what`` names the input in the message
    (``--from``). Raises :class:`PeriodError` for anything else (``2021-13-01``, ``2024/01/01``,
    an ISO datetime, an empty string)."""
    s = text.strip() if isinstance(text, str) else None
    m = _DATE_RE.fullmatch(s) if s else None
    if m is None:
        raise PeriodError(f"{what} {text!r} is not a date; expected {_DATE_FORMS}")
    year, month, day = int(m["y"]), m["m"], m["d"]
    try:
        if month is None:
            return dt.date(year, 12, 31) if end else dt.date(year, 1, 1)
        if day is None:
            first = dt.date(year, int(month), 1)
            if not end:
                return first
            following = dt.date(year + (first.month == 12), first.month % 12 + 1, 1)
            return following - dt.timedelta(days=1)
        return dt.date(year, int(month), int(day))
    except ValueError as exc:  # month 13, day 31 of a 30-day month, year 0
        raise PeriodError(f"{what} {text!r} is not a date ({exc}); expected {_DATE_FORMS}") from None
