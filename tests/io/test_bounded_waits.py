"""Every wait ends: a loopback STAC / COG server that trickles, never answers, cycles or never
ends its pages, or sends a huge answer, and a local asset that is a FIFO; each case ends with a
clear error within its stated time bound."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stac_server import StacServer

from rsvlm_temporal.errors import CatalogError, DeadlineError, ItemError, LimitError, RasterReadError
from rsvlm_temporal.io import catalog, reader

COLORADO = (-105.11, 40.16, -105.09, 40.17)  # around the recorded search point
DAY = "2023-10-08"
SLACK = 2.0  # s: start-up of a request, thread scheduling on a busy 2-core machine


@pytest.fixture
def server(shared_data: Path) -> Iterator[StacServer]:
    with StacServer(shared_data / "stac", trickle_s=0.5, huge_bytes=3 * 2**20) as srv:
        yield srv


def _search(server: StacServer, mode: str, **kwargs: Any) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises((CatalogError, LimitError)) as info:  # DeadlineError is a CatalogError
        catalog.search(COLORADO, DAY, DAY, source=server.url(mode), **kwargs)
    return info.value, time.monotonic() - start


def _searches(server: StacServer, mode: str) -> int:
    return sum(path == f"/{mode}/search" for _, path, _ in server.requests)


def test_a_trickling_server_ends_at_the_total_deadline(server: StacServer) -> None:
    # one byte every 0.5 s never lets a per-read timeout fire; the deadline is per request
    err, elapsed = _search(server, "trickle", timeout=2, retries=2)
    assert isinstance(err, DeadlineError), err
    assert elapsed < 2 + SLACK, elapsed
    assert "did not finish its answer within 2 s" in str(err) and "--http-timeout" in str(err)
    assert _searches(server, "trickle") == 1  # a deadline is not retried


def test_a_server_that_accepts_and_never_answers(server: StacServer) -> None:
    err, elapsed = _search(server, "silent", timeout=1, retries=1, backoff=0.1)
    assert elapsed < 2 * 1 + 0.1 + SLACK, elapsed  # 2 tries x 1 s (+ backoff), not forever
    assert "could not be reached within 1 s after 2 tries" in str(err)


def test_pagination_that_cycles_is_stopped(server: StacServer) -> None:
    err, elapsed = _search(server, "cycle", timeout=5, retries=0)
    assert "pagination cycles" in str(err) and "next-page link it had sent before" in str(err)
    assert _searches(server, "cycle") == 2  # the first page and the repeated one
    assert elapsed < 5, elapsed


def test_pagination_that_never_ends_hits_the_page_cap(server: StacServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "MAX_PAGES", 5)
    err, elapsed = _search(server, "endless", timeout=5, retries=0)
    assert isinstance(err, LimitError), err
    assert "still paging after 5 pages" in str(err)
    assert _searches(server, "endless") <= 6
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("mode", ["huge", "hugestream"])
def test_a_huge_response_is_cut_at_the_size_cap(server: StacServer, monkeypatch: pytest.MonkeyPatch,
                                                mode: str) -> None:
    monkeypatch.setattr(catalog, "MAX_RESPONSE_BYTES", 2**20)  # the server sends 3 MiB
    start = time.monotonic()
    with pytest.raises(LimitError) as info:
        catalog.search(COLORADO, DAY, DAY, source=server.url(mode), timeout=10, retries=0)
    assert time.monotonic() - start < 5
    msg = str(info.value)
    assert ("announced a 3 MiB response" if mode == "huge" else "sent more than 1 MiB") in msg, msg
    assert "narrow the search" in msg


# -- COG reads -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """A tiny synthetic catalog's items (24 px, one year)."""
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.synth import write_scene

    root = tmp_path_factory.mktemp("waits")
    out = write_scene(root / "s", "wildfire", size=24, start="2021-01-01", end="2021-12-31", keep_arrays=False)
    return load_items(out.catalog_path)


def _first_item_cube(items: list[Any]) -> Any:
    from rsvlm_temporal.io.cube import load_cube

    cube = load_cube(items[:2])
    return cube.isel(time=0)


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_a_cog_on_a_server_that_hangs_or_trickles_ends_at_the_deadline(
        mode: str, server: StacServer, scene: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A COG server that accepts and never answers, or sends one byte every 0.5 s (which never
    trips a per-read or low-speed timeout: 1 byte/s over 30 s): GDAL_HTTP_TIMEOUT is the whole
    request's deadline, so the read ends in a RasterReadError after it, not after the 30 s
    default, the trickle's 14 hours or never."""
    for key, value in reader.HTTP_OPTIONS.items():
        monkeypatch.setitem(reader.HTTP_OPTIONS, key, value)  # restored after the test
    reader.set_http_limits(timeout=2, retries=0)
    item = scene[0].clone()
    for asset in item.assets.values():
        asset.href = f"{server.url(mode)}/{Path(asset.href).name}"
    cube = _first_item_cube([item, scene[1]])
    start = time.monotonic()
    with pytest.raises(RasterReadError) as info:
        cube.compute(scheduler="threads")
    elapsed = time.monotonic() - start
    assert 1.5 < elapsed < 2 * 2 + 2 * SLACK, elapsed  # at GDAL's 2 s deadline
    assert server.url(mode) in str(info.value)
    assert any(path.startswith(f"/{mode}/") and path.endswith(".tif") for _, path, _ in server.requests), (
        str(info.value), server.requests)


def test_a_local_asset_that_is_a_fifo_is_refused_at_once(scene: list[Any], tmp_path: Path) -> None:
    from rsvlm_temporal.io.cube import load_cube

    item = scene[0].clone()
    fifo = tmp_path / "B02.tif"
    os.mkfifo(fifo)
    first = next(iter(item.assets))
    item.assets[first].href = str(fifo)
    start = time.monotonic()
    with pytest.raises(ItemError, match="not a regular file"):
        load_cube([item, scene[1]])
    assert time.monotonic() - start < 5


def test_an_asset_replaced_by_a_fifo_after_the_cube_is_built_is_refused(scene: list[Any],
                                                                          tmp_path: Path) -> None:
    import shutil

    item = scene[0].clone()
    key = next(k for k, a in item.assets.items() if a.href.endswith(".tif"))
    copy = tmp_path / "copy.tif"
    shutil.copy(item.assets[key].href, copy)
    item.assets[key].href = str(copy)
    cube = _first_item_cube([item, scene[1]])  # checked: a regular file
    copy.unlink()
    os.mkfifo(copy)  # ... that is a FIFO by the time it is read
    result: dict[str, BaseException] = {}

    def read() -> None:
        try:
            cube.compute(scheduler="threads")
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            result["error"] = exc

    thread = threading.Thread(target=read, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # blocked in open(): release it, then fail
        fd = os.open(copy, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("reading a FIFO asset blocked")
    assert time.monotonic() - start < 5
    assert isinstance(result.get("error"), RasterReadError), result
    assert "not a regular file" in str(result["error"])
