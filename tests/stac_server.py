"""A tiny STAC API on 127.0.0.1 serving real recorded Earth Search responses (test helper).

Each mode is a path prefix with its own landing page, /conformance and /search:

- ``ok``: the 2023-10-08 point search (S2 + Landsat items), filtered by the request's collections
- ``paged``: the CQL2 cloud-cover page 1 verbatim, its `next` link pointing back here, then page 2
- ``flaky``: /search answers HTTP 500 twice, then behaves as ``ok``
- ``hang``: /search sleeps `hang_s` seconds (released early by `stop`) before answering
- ``malformed``: /search answers truncated JSON
- ``empty``: /search answers an empty FeatureCollection
- ``badrequest``: /search answers HTTP 400 with a JSON error body
- ``silent``: every request (landing page, /search, any file such as a COG) is accepted and never
  answered until `stop`
- ``trickle``: /search (and any ``.tif`` file, a COG) announces a body and sends it one byte
  every `trickle_s` seconds
- ``cycle``: every /search page links to the same next page (pagination that cycles)
- ``endless``: every /search page links to a new next page (pagination that never ends)
- ``huge``: /search answers `huge_bytes` bytes with their Content-Length; ``hugestream``: the
  same without a Content-Length (the body ends when the connection closes)

Every request is recorded in `requests` as (method, path, JSON body or None).
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

POINT_SEARCH = "earth-search-v1/search_2023-10-08_point_sentinel-2-l2a_landsat-c2-l2.json"
PAGE1 = "earth-search-v1/search_cql2_cloud-cover-lte-40_page1.json"
PAGE2 = "earth-search-v1/search_cql2_cloud-cover-lte-40_page2.json"
MODES = ("ok", "paged", "flaky", "hang", "malformed", "empty", "badrequest", "silent", "trickle", "cycle",
         "endless", "huge", "hugestream")
CONFORMS_TO = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
]


class StacServer:
    """Start with `start()` (or `with StacServer(...) as server:`), URLs from `url(mode)`."""

    def __init__(self, stac_dir: Path, hang_s: float = 5.0, trickle_s: float = 0.5,
                 huge_bytes: int = 2 * 2**20) -> None:
        self.responses = {
            name: json.loads((stac_dir / rel).read_text(encoding="utf-8"))
            for name, rel in (("point", POINT_SEARCH), ("page1", PAGE1), ("page2", PAGE2))
        }
        self.hang_s = hang_s
        self.trickle_s = trickle_s
        self.huge_bytes = huge_bytes
        self.pages_sent = 0  # for modes "cycle" and "endless"
        self.requests: list[tuple[str, str, Any]] = []
        self.failures_left = 2  # for mode "flaky"
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.stac = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, mode: str) -> str:
        """Landing-page URL of a mode (one of MODES)."""
        return f"{self.base}/{mode}"

    def start(self) -> StacServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging handlers, stop serving and join every handler thread."""
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> StacServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- responses ---------------------------------------------------------------------------
    def landing(self, mode: str) -> dict[str, Any]:
        root = self.url(mode)
        return {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": f"local-{mode}",
            "description": f"test STAC API, mode {mode}",
            "conformsTo": CONFORMS_TO,
            "links": [
                {"rel": "self", "type": "application/json", "href": root},
                {"rel": "root", "type": "application/json", "href": root},
                {"rel": "conformance", "type": "application/json", "href": f"{root}/conformance"},
                {"rel": "search", "type": "application/geo+json", "method": "GET",
                 "href": f"{root}/search"},
                {"rel": "search", "type": "application/geo+json", "method": "POST",
                 "href": f"{root}/search"},
            ],
        }

    def search(self, mode: str, body: dict[str, Any]) -> tuple[int, Any]:
        """(HTTP status, JSON-able body or raw bytes) of a /search request."""
        if mode == "flaky":
            with self._lock:
                fail = self.failures_left > 0
                self.failures_left -= int(fail)
            if fail:
                return 500, {"code": "InternalServerError", "description": "try again"}
        if mode == "hang":
            self._release.wait(self.hang_s)
        if mode == "malformed":
            return 200, b'{"type": "FeatureCollection", "features": [{"type": "Feat'
        if mode == "empty":
            return 200, {"type": "FeatureCollection", "features": [], "links": []}
        if mode == "badrequest":
            return 400, {"code": "BadRequest", "description": "unknown collection 'nope'"}
        if mode in ("cycle", "endless"):
            with self._lock:
                self.pages_sent += 1
                n = self.pages_sent
            doc = self._rewrite(self.responses["page1"], mode, None, keep_next=True)
            if mode == "endless":
                for link in doc["links"]:
                    if link["rel"] == "next" and isinstance(link.get("body"), dict):
                        link["body"] = {**link["body"], "next": f"page-{n + 1}"}
            return 200, doc
        if mode == "paged":
            page1_token = self.responses["page1"]["links"][0]["body"]["next"]
            is_page2 = body.get("next") == page1_token
            doc = self.responses["page2" if is_page2 else "page1"]
            return 200, self._rewrite(doc, mode, None, keep_next=not is_page2)
        wanted = body.get("collections")
        return 200, self._rewrite(self.responses["point"], mode, wanted, keep_next=False)

    def _rewrite(
        self, doc: dict[str, Any], mode: str, wanted: list[str] | None, keep_next: bool
    ) -> dict[str, Any]:
        """The recorded page with links pointing here, keeping features of `wanted` collections."""
        doc = copy.deepcopy(doc)
        if wanted:
            doc["features"] = [f for f in doc["features"] if f.get("collection") in wanted]
        links = []
        for link in doc.get("links", []):
            if link["rel"] == "next":
                if not keep_next:
                    continue
                link["href"] = f"{self.url(mode)}/search"
            elif link["rel"] == "root":
                link["href"] = self.url(mode)
            links.append(link)
        doc["links"] = links
        return doc


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._route(None)

    def do_HEAD(self) -> None:  # GDAL asks for a file's size first
        self._route(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._route(json.loads(raw) if raw else {})

    def _route(self, body: dict[str, Any] | None) -> None:
        stac: StacServer = self.server.stac  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0].rstrip("/")
        stac.requests.append((self.command, self.path, body))
        mode, _, rest = path.lstrip("/").partition("/")
        if mode not in MODES:
            self._send(404, {"code": "NotFound", "description": f"no mode {mode!r}"})
        elif mode == "silent":
            stac._release.wait()  # accepted, never answered
        elif rest == "":
            self._send(200, stac.landing(mode))
        elif rest == "conformance":
            self._send(200, {"conformsTo": CONFORMS_TO})
        elif mode == "trickle" and (rest == "search" or rest.endswith(".tif")):
            self._trickle(stac)
        elif rest == "search" and mode in ("huge", "hugestream"):
            self._huge(stac, declared=mode == "huge")
        elif rest == "search":
            self._send(*stac.search(mode, body or {}))
        else:
            self._send(404, {"code": "NotFound", "description": self.path})

    def _trickle(self, stac: StacServer) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100000):
                self.wfile.write(b" ")
                self.wfile.flush()
                if stac._release.wait(stac.trickle_s):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _huge(self, stac: StacServer, declared: bool) -> None:
        block = b" " * 65536
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json")
            if declared:
                self.send_header("Content-Length", str(stac.huge_bytes))
            self.end_headers()
            for _ in range(0, stac.huge_bytes, len(block)):
                self.wfile.write(block)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (hang mode)
            pass
