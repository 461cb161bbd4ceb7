"""Find STAC items over an AOI and a date range: a STAC API (pystac-client) or a local catalog.

`search` returns `pystac.Item`s sorted by acquisition datetime. Dates are UTC; an end given as
a date ("YYYY-MM-DD") includes that whole day. Cloud cover is `eo:cloud_cover` in percent.
"""

from __future__ import annotations

import importlib
import json
import math
import time as _time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pystac
from pystac.errors import DuplicateObjectKeyError, RequiredPropertyMissing
from pystac.utils import make_absolute_href
from pystac_client import Client
from pystac_client.errors import ClientTypeError
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from pystac_client.warnings import DoesNotConformTo
from shapely.geometry import box, shape
from urllib3 import Retry

from rsvlm_temporal.errors import CatalogError, DeadlineError, EmptySearchError, LimitError, RsvlmError
from rsvlm_temporal.io.aoi import AOI, AOIInput, parse_aoi

DateLike = str | date | datetime

#: Built-in STAC API profiles. "signing" names a module whose `sign_inplace` signs asset hrefs.
PROFILES: dict[str, dict[str, Any]] = {
    "earth-search": {
        "url": "https://earth-search.aws.element84.com/v1",
        "collections": ("sentinel-2-l2a", "landsat-c2-l2"),
        "signing": None,
    },
    "planetary-computer": {
        "url": "https://planetarycomputer.microsoft.com/api/stac/v1",
        "collections": ("sentinel-2-l2a", "landsat-c2-l2"),
        "signing": "planetary_computer",
    },
}

#: Friendly sensor names -> STAC collection ids (other names pass through unchanged).
COLLECTION_ALIASES: dict[str, str] = {
    "sentinel-2": "sentinel-2-l2a",
    "s2": "sentinel-2-l2a",
    "landsat": "landsat-c2-l2",
}

#: at most this many pages of one search (100 items each); a longer chain is refused
MAX_PAGES = 1000
#: largest accepted HTTP response body (bytes) of one STAC request
MAX_RESPONSE_BYTES = 64 * 2**20
_RETRY_STATUS = (500, 502, 503, 504)
_PAGE_SIZE = 100
_LOCAL_NAMES = ("catalog.json", "collection.json")
_MALFORMED = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    pystac.STACError,
    pystac.STACTypeError,
    RequiredPropertyMissing,
    DuplicateObjectKeyError,
)


@dataclass(frozen=True)
class _Query:
    aoi: AOI | None
    start: datetime
    end: datetime
    collections: tuple[str, ...]
    max_cloud: float | None

    def describe(self) -> str:
        where = f"bbox={self.aoi.bbox} (EPSG:4326)" if self.aoi is not None else "any place"
        return (
            f"{where}, datetime {self.start.isoformat()}/"
            f"{self.end.isoformat()}, collections={list(self.collections) or 'any'}, "
            f"max_cloud={self.max_cloud}"
        )


def resolve_collections(collections: str | Sequence[str] | None) -> tuple[str, ...]:
    """Collection ids for names or aliases ("s2", "sentinel-2", "landsat"); () means any."""
    if collections is None:
        return ()
    names = (collections,) if isinstance(collections, str) else tuple(collections)
    return tuple(COLLECTION_ALIASES.get(n.strip().lower(), n.strip()) for n in names)


def search(
    aoi: AOI | AOIInput,
    start: DateLike,
    end: DateLike,
    collections: str | Sequence[str] | None = ("sentinel-2-l2a",),
    max_cloud: float | None = None,
    source: str | Path = "earth-search",
    limit: int | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> list[pystac.Item]:
    """STAC items intersecting `aoi` (EPSG:4326) acquired in [start, end] (UTC, inclusive).

    source: a profile name (see PROFILES), an http(s) STAC API URL, or a local path (catalog.json,
    collection.json, a folder holding one, an ItemCollection / FeatureCollection, one Item or a
    JSON array of Items). max_cloud: keep items with eo:cloud_cover <= max_cloud percent (items
    without it are dropped). limit: at most this many items, in server / file order, before the
    sort. timeout: seconds per HTTP request; retries: extra tries on connection errors, timeouts
    and HTTP 500/502/503/504, with exponential `backoff` (s).
    Raises CatalogError (unreachable, malformed, HTTP error) or EmptySearchError (no item).
    """
    if max_cloud is not None and not (math.isfinite(max_cloud) and 0 <= max_cloud <= 100):
        raise CatalogError(f"max_cloud must lie in [0, 100] percent; got {max_cloud}")
    if limit is not None and limit < 1:
        raise CatalogError(f"limit must be a positive number of items or None; got {limit}")
    query = _Query(
        aoi=parse_aoi(aoi),
        start=_as_utc(start, end_of_day=False),
        end=_as_utc(end, end_of_day=True),
        collections=resolve_collections(collections),
        max_cloud=max_cloud,
    )
    if query.start > query.end:
        raise CatalogError(f"start {query.start.isoformat()} is after end {query.end.isoformat()}")

    url, modifier = _api_source(source)
    if url is None:
        items = [item for item in load_items(source) if _matches(item, query)][:limit]
    else:
        items = _search_api(url, modifier, query, limit, timeout, retries, backoff)
    if not items:
        raise EmptySearchError(
            f"no STAC item in {source} matched {query.describe()}: widen the dates or the AOI, "
            "raise max_cloud or check the collection ids"
        )
    return sorted(items, key=lambda item: (_interval(item)[0], item.id))


def filter_items(
    items: Iterable[pystac.Item],
    start: DateLike | None = None,
    end: DateLike | None = None,
    collections: str | Sequence[str] | None = None,
    max_cloud: float | None = None,
) -> list[pystac.Item]:
    """The items acquired in [start, end] (UTC, inclusive; None: open), of ``collections``
    (None: any) with eo:cloud_cover <= ``max_cloud`` percent: the filters of :func:`search`
    without an AOI. Raises CatalogError for a bad date, a max_cloud out of [0, 100] or a
    non-numeric eo:cloud_cover."""
    if max_cloud is not None and not (math.isfinite(max_cloud) and 0 <= max_cloud <= 100):
        raise CatalogError(f"max_cloud must lie in [0, 100] percent; got {max_cloud}")
    query = _Query(
        aoi=None,
        start=_as_utc(start if start is not None else "1900-01-01", end_of_day=False),
        end=_as_utc(end if end is not None else "2999-12-31", end_of_day=True),
        collections=resolve_collections(collections),
        max_cloud=max_cloud,
    )
    if query.start > query.end:
        raise CatalogError(f"start {query.start.isoformat()} is after end {query.end.isoformat()}")
    return [item for item in items if _matches(item, query)]


def load_items(path: str | Path) -> list[pystac.Item]:
    """All items of a local static catalog / collection (file or folder), ItemCollection or
    FeatureCollection, single Item, or JSON array of Items; relative asset hrefs made absolute."""
    file = Path(path)
    if file.is_dir():
        found = [file / name for name in _LOCAL_NAMES if (file / name).is_file()]
        file = found[0] if found else file / _LOCAL_NAMES[0]
    if not file.is_file():
        raise CatalogError(f"local STAC source not found: {file}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"malformed JSON in local STAC source {file}: {exc}") from exc
    try:
        with _quiet_migration():
            if isinstance(data, list) or data.get("type") == "FeatureCollection":
                features = data if isinstance(data, list) else data.get("features", [])
                items = [pystac.Item.from_dict(f) for f in features]
            else:
                obj = pystac.read_file(str(file.resolve()))
                if isinstance(obj, pystac.Catalog):
                    items = list(obj.get_items(recursive=True))
                elif isinstance(obj, pystac.Item):
                    items = [obj]
                else:
                    kind = type(obj).__name__
                    raise CatalogError(f"{file} is a STAC {kind}, not a catalog or items")
    except _MALFORMED as exc:
        raise CatalogError(f"{file} does not hold valid STAC items: {exc}") from exc
    except RecursionError:
        raise CatalogError(
            f"{file}: its child/item links form a cycle (a catalog that links to itself or to a "
            "parent); expected a tree of catalogs, collections and items"
        ) from None
    for item in items:
        base = item.get_self_href() or str(file.resolve())
        for asset in item.assets.values():
            asset.href = make_absolute_href(asset.href, base)
    return items


def items_to_dicts(items: Iterable[pystac.Item]) -> list[dict[str, Any]]:
    """STAC item dicts (JSON-serialisable) with hrefs as they are on the items."""
    return [item.to_dict(transform_hrefs=False) for item in items]


def _api_source(source: str | Path) -> tuple[str | None, Callable[[Any], None] | None]:
    """(API URL, item modifier) for a profile name or URL; (None, None) for a local path."""
    text = str(source)
    if text in PROFILES:
        profile = PROFILES[text]
        return profile["url"], _signer(profile["signing"])
    if text.startswith(("http://", "https://")):
        return text, None
    if Path(text).exists():
        return None, None
    raise CatalogError(
        f"STAC source {text!r} is neither a profile ({', '.join(PROFILES)}), an http(s) URL "
        "nor an existing local catalog path"
    )


def _signer(module_name: str | None) -> Callable[[Any], None] | None:
    if module_name is None:
        return None
    try:
        return importlib.import_module(module_name).sign_inplace
    except ImportError:
        warnings.warn(
            f"{module_name} is not installed: asset hrefs are unsigned and reading them may be "
            f"refused (HTTP 403); pip install {module_name.replace('_', '-')}",
            stacklevel=4,
        )
        return None


def _search_api(
    url: str,
    modifier: Callable[[Any], None] | None,
    query: _Query,
    limit: int | None,
    timeout: float,
    retries: int,
    backoff: float,
) -> list[pystac.Item]:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=_RETRY_STATUS,
        allowed_methods=frozenset({"GET", "POST"}),
        raise_on_status=False,  # the last 5xx answer comes back, with its status and body
    )
    stac_io = _BoundedStacApiIO(timeout=timeout, max_retries=retry)
    cloud_filter: dict[str, Any] = {}
    if query.max_cloud is not None:
        cloud_filter = {
            "filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, query.max_cloud]},
            "filter_lang": "cql2-json",
        }
    tries = retries + 1
    try:
        with _quiet_migration():
            # Client.open re-applies its own timeout to stac_io, so it is passed here too.
            client = Client.open(url, stac_io=stac_io, timeout=timeout, modifier=modifier)
            found = client.search(
                collections=list(query.collections) or None,
                intersects=query.aoi.geometry,
                datetime=[query.start, query.end],
                max_items=limit,
                limit=_PAGE_SIZE,
                **cloud_filter,
            )
            return list(found.items())
    except APIError as exc:
        status = getattr(exc, "status_code", None)
        if status is None:
            raise CatalogError(
                f"STAC API {url} could not be reached within {timeout} s after {tries} tries "
                f"({exc}); check the network or pass a local catalog as source "
                "(path to catalog.json or an ItemCollection)"
            ) from exc
        after = f" after {tries} tries" if status in _RETRY_STATUS else ""
        raise CatalogError(
            f"STAC API {url} answered HTTP {status}{after}: {_excerpt(str(exc))}"
        ) from exc
    except RsvlmError:  # the deadline, size and page limits: already a clear message
        raise
    except (DoesNotConformTo, ClientTypeError) as exc:
        raise CatalogError(f"{url} is not a STAC API with item search: {exc}") from exc
    except _MALFORMED as exc:
        raise CatalogError(
            f"STAC API {url} returned a malformed response (expected STAC JSON): {exc}"
        ) from exc


class _BoundedStacApiIO(StacApiIO):
    """StacApiIO whose every request ends: a total deadline per request (``timeout`` seconds
    for the body, whatever the pace at which it trickles in), a body size cap
    (:data:`MAX_RESPONSE_BYTES`), and pagination capped at :data:`MAX_PAGES` pages with cycle
    detection (a next link already followed)."""

    def request(self, href: str, method: str | None = None, headers: dict[str, str] | None = None,
                parameters: dict[str, Any] | None = None) -> str:
        from requests import Request

        method = (method or "GET").upper()
        if method in ("POST", "PUT", "PATCH"):
            request = Request(method=method, url=href, headers=headers, json=parameters)
        else:
            request = Request(method=method, url=href, headers=headers, params=dict(parameters or {}))
        budget = float(self.timeout if isinstance(self.timeout, (int, float)) else 30.0)
        try:
            modified = self._req_modifier(request) if self._req_modifier else None
            prepped = self.session.prepare_request(modified or request)
            send_kwargs = self.session.merge_environment_settings(
                prepped.url, proxies={}, stream=True, verify=True, cert=None)
            send_kwargs["stream"] = True
            resp = self.session.send(prepped, timeout=self.timeout, **send_kwargs)
        except Exception as err:  # noqa: BLE001 - as StacApiIO: reported as APIError
            raise APIError(str(err)) from None
        try:
            declared = int(resp.headers.get("Content-Length") or 0)
            if declared > MAX_RESPONSE_BYTES:
                raise LimitError(
                    f"STAC API {href} announced a {declared / 2**20:.0f} MiB response; the limit is "
                    f"{MAX_RESPONSE_BYTES // 2**20} MiB per request: narrow the search (AOI, dates, "
                    "collections)")
            body = self._read_body(resp, href, budget)
        finally:
            resp.close()
        if not 200 <= resp.status_code < 300:
            resp._content = body  # type: ignore[attr-defined]
            raise APIError.from_response(resp)
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise APIError(str(err)) from None

    @staticmethod
    def _read_body(resp: Any, href: str, budget: float) -> bytes:
        deadline = _time.monotonic() + budget
        parts: list[bytes] = []
        size = 0
        raw = resp.raw
        while True:
            left = deadline - _time.monotonic()
            if left <= 0:
                raise DeadlineError(
                    f"STAC API {href} did not finish its answer within {budget:g} s ({size} bytes "
                    "received): the server is too slow or stalled; retry later or raise "
                    "--http-timeout")
            sock = getattr(getattr(raw, "_connection", None), "sock", None)
            if sock is not None:
                with suppress(OSError):
                    sock.settimeout(max(0.05, min(left, budget)))
            try:
                chunk = raw.read1(65536)
            except Exception as exc:  # noqa: BLE001 - a timeout or reset mid-body
                if _time.monotonic() >= deadline:
                    continue  # reported as the deadline above
                raise CatalogError(f"STAC API {href}: the answer broke off after {size} bytes "
                                   f"({exc}); retry later") from None
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise LimitError(
                    f"STAC API {href} sent more than {MAX_RESPONSE_BYTES // 2**20} MiB in one "
                    "response, the limit per request: narrow the search (AOI, dates, collections)")
            parts.append(chunk)

    def get_pages(self, url: str, method: str | None = None,
                  parameters: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        pages = super().get_pages(url, method=method, parameters=parameters)
        for n, page in enumerate(pages, 1):
            if n > MAX_PAGES:
                raise LimitError(
                    f"STAC API {url} is still paging after {MAX_PAGES} pages (the limit); narrow "
                    "the search (AOI, dates, collections) or pass a limit")
            yield page
            nxt = next((link for link in page.get("links", []) if link.get("rel") == "next"), None)
            if nxt is not None:
                key = json.dumps(nxt, sort_keys=True, default=str)
                if key in seen:
                    raise CatalogError(
                        f"STAC API {url} sent a next-page link it had sent before ({nxt.get('href')}) "
                        f"after {n} pages: its pagination cycles; the server is broken")
                seen.add(key)


@contextmanager
def _quiet_migration() -> Iterator[None]:
    """Silence pystac's storage-extension migration warning, raised for each Earth Search item
    (the item itself is read fine)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not parse bucket/account from href")
        yield


def _excerpt(text: str, size: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size] + "..."


def _as_utc(value: DateLike, end_of_day: bool) -> datetime:
    """A timezone-aware UTC datetime; a bare date maps to 00:00 or, for an end, 23:59:59.999999."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                value = date.fromisoformat(text)
            else:  # Python 3.10 fromisoformat does not read a "Z" suffix
                utc = "+00:00" if text.endswith("Z") else ""
                value = datetime.fromisoformat(text.removesuffix("Z") + utc)
        except ValueError as exc:
            raise CatalogError(
                f"cannot read date {text!r}: expected YYYY-MM-DD or an ISO 8601 datetime"
            ) from exc
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.max if end_of_day else time.min)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _interval(item: pystac.Item) -> tuple[datetime, datetime]:
    """(start, end) acquisition time of an item, UTC."""
    meta = item.common_metadata
    start = item.datetime or meta.start_datetime
    end = item.datetime or meta.end_datetime
    if start is None or end is None:
        raise CatalogError(f"STAC item {item.id} has neither datetime nor start/end_datetime")
    return _as_utc(start, False), _as_utc(end, True)


def _matches(item: pystac.Item, query: _Query) -> bool:
    """Whether a local item passes the query: collection, time overlap, cloud cover, footprint."""
    if query.collections and item.collection_id not in query.collections:
        return False
    start, end = _interval(item)
    if end < query.start or start > query.end:
        return False
    if query.max_cloud is not None:
        cloud = item.properties.get("eo:cloud_cover")
        if cloud is None:
            return False
        if isinstance(cloud, bool) or not isinstance(cloud, (int, float)) or not math.isfinite(cloud):
            raise CatalogError(
                f"STAC item {item.id}: eo:cloud_cover is {cloud!r}, not a number; expected a "
                "percent 0-100 (fix the item, or search without max_cloud)"
            )
        if cloud > query.max_cloud:
            return False
    if query.aoi is None:
        return True
    if item.geometry:
        footprint = shape(item.geometry)
    elif item.bbox:
        half = len(item.bbox) // 2  # 2-D or 3-D bbox
        footprint = box(item.bbox[0], item.bbox[1], item.bbox[half], item.bbox[half + 1])
    else:
        return False
    return footprint.intersects(shape(query.aoi.geometry))
