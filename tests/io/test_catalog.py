"""STAC search against a local STAC API serving real Earth Search responses, and local catalogs."""

from __future__ import annotations

import json
import socket
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pystac
import pytest
from stac_server import PAGE1, PAGE2, StacServer

from rsvlm_temporal.errors import AOIError, CatalogError, EmptySearchError
from rsvlm_temporal.io import catalog

S2_ID = "S2A_13TDE_20231008_0_L2A"  # 18:02:55 UTC
LANDSAT_ID = "LC08_L2SP_033032_20231008_02_T1"  # 17:37:26 UTC
COLORADO = (-105.11, 40.16, -105.09, 40.17)  # around the recorded search point
DAY = "2023-10-08"
SITE2 = "planetary-computer/site2-2020_jun_jul-35MNM.geojson"
IN_35MNM = (27.3, -7.9, 27.5, -7.7)  # inside MGRS tile 35MNM


@pytest.fixture
def server(shared_data: Path) -> Iterator[StacServer]:
    with StacServer(shared_data / "stac", hang_s=5.0) as srv:
        yield srv


def _searches(server: StacServer, mode: str) -> list[dict]:
    return [body for method, path, body in server.requests if path == f"/{mode}/search"]


def test_resolve_collections() -> None:
    assert catalog.resolve_collections(["s2", "Landsat", "sentinel-2"]) == (
        "sentinel-2-l2a",
        "landsat-c2-l2",
        "sentinel-2-l2a",
    )
    assert catalog.resolve_collections("sentinel-2-c1-l2a") == ("sentinel-2-c1-l2a",)
    assert catalog.resolve_collections(None) == ()


def test_retries_500_twice_then_returns_real_items(server: StacServer) -> None:
    items = catalog.search(
        COLORADO, DAY, DAY, collections=["s2", "landsat"], source=server.url("flaky"), backoff=0.05
    )
    assert [item.id for item in items] == [LANDSAT_ID, S2_ID]  # sorted by datetime
    assert items[1].properties["proj:code"] == "EPSG:32613"  # pystac migrates proj:epsg 32613
    bodies = _searches(server, "flaky")
    assert len(bodies) == 3  # 500, 500, 200
    body = bodies[-1]
    assert body["collections"] == ["sentinel-2-l2a", "landsat-c2-l2"]
    assert body["datetime"] == "2023-10-08T00:00:00Z/2023-10-08T23:59:59.999999Z"
    assert body["intersects"]["type"] == "Polygon"
    assert "filter" not in body


def test_persistent_5xx_reports_status_and_tries(server: StacServer) -> None:
    with pytest.raises(CatalogError, match=r"HTTP 500 after 2 tries: .*try again"):
        catalog.search(COLORADO, DAY, DAY, source=server.url("flaky"), retries=1, backoff=0.0)


def test_collections_and_cloud_filter_are_sent(server: StacServer) -> None:
    items = catalog.search(
        COLORADO, DAY, DAY, collections="s2", max_cloud=10, source=server.url("ok")
    )
    assert [item.id for item in items] == [S2_ID]
    body = _searches(server, "ok")[0]
    assert body["collections"] == ["sentinel-2-l2a"]
    assert body["filter"] == {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10]}
    assert body["filter-lang"] == "cql2-json"


def test_pagination_follows_next_link(server: StacServer, shared_data: Path) -> None:
    pages = [json.loads((shared_data / "stac" / p).read_text()) for p in (PAGE1, PAGE2)]
    expected = [f["id"] for page in pages for f in page["features"]]
    day = "2025-07-31"
    items = catalog.search(
        COLORADO, day, day, collections=None, max_cloud=40, source=server.url("paged")
    )
    assert len(items) == 20
    assert sorted(item.id for item in items) == sorted(expected)
    times = [item.datetime for item in items]
    assert times == sorted(times)
    bodies = _searches(server, "paged")
    assert len(bodies) == 2
    assert bodies[1] == pages[0]["links"][0]["body"]  # the next token of page 1


def test_limit_caps_items_and_requests(server: StacServer) -> None:
    items = catalog.search(
        COLORADO, "2025-07-31", "2025-07-31", collections=None, source=server.url("paged"), limit=5
    )
    assert len(items) == 5
    assert len(_searches(server, "paged")) == 1


def test_hanging_api_times_out(server: StacServer) -> None:
    start = time.monotonic()
    with pytest.raises(CatalogError) as info:
        catalog.search(COLORADO, DAY, DAY, source=server.url("hang"), timeout=1, retries=1)
    elapsed = time.monotonic() - start
    assert elapsed < 4.5  # 2 tries x 1 s, not the server's 5 s
    message = str(info.value)
    assert server.url("hang") in message
    assert "within 1 s after 2 tries" in message
    assert "local catalog" in message
    assert info.value.__cause__ is not None


def test_unreachable_api(shared_data: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CatalogError, match="could not be reached within 2 s after 1 tries"):
        catalog.search(
            COLORADO, DAY, DAY, source=f"http://127.0.0.1:{port}/v1", timeout=2, retries=0
        )


def test_malformed_json(server: StacServer) -> None:
    with pytest.raises(CatalogError, match="malformed response") as info:
        catalog.search(COLORADO, DAY, DAY, source=server.url("malformed"))
    assert server.url("malformed") in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_http_400_shows_status_and_body(server: StacServer) -> None:
    with pytest.raises(CatalogError, match=r"HTTP 400: .*unknown collection 'nope'"):
        catalog.search(COLORADO, DAY, DAY, source=server.url("badrequest"))


def test_empty_search_repeats_query(server: StacServer) -> None:
    with pytest.raises(EmptySearchError) as info:
        catalog.search(COLORADO, DAY, "2023-10-09", collections="landsat", max_cloud=20,
                       source=server.url("empty"))
    message = str(info.value)
    for part in ("(-105.11, 40.16, -105.09, 40.17)", "2023-10-08T00:00:00", "2023-10-09T23:59:59",
                 "['landsat-c2-l2']", "max_cloud=20"):
        assert part in message


def test_planetary_computer_profile_signs_or_warns(server: StacServer, monkeypatch) -> None:
    monkeypatch.setitem(catalog.PROFILES["planetary-computer"], "url", server.url("ok"))
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # not installed
    with pytest.warns(UserWarning, match="unsigned"):
        items = catalog.search(COLORADO, DAY, DAY, collections="s2", source="planetary-computer")
    assert [item.id for item in items] == [S2_ID]

    signed: list[str] = []
    fake = types.ModuleType("planetary_computer")
    fake.sign_inplace = lambda page: signed.extend(  # type: ignore[attr-defined]
        f["id"] for f in page["features"]
    )
    monkeypatch.setitem(sys.modules, "planetary_computer", fake)
    catalog.search(COLORADO, DAY, DAY, collections="s2", source="planetary-computer")
    assert signed == [S2_ID]  # the modifier sees every page of items


def test_bad_inputs() -> None:
    with pytest.raises(CatalogError, match="neither a profile"):
        catalog.search(COLORADO, DAY, DAY, source="no-such-source")
    with pytest.raises(CatalogError, match="cannot read date '2023-13-01'"):
        catalog.search(COLORADO, "2023-13-01", DAY, source="earth-search")
    with pytest.raises(CatalogError, match="is after end"):
        catalog.search(COLORADO, "2023-10-09", DAY, source="earth-search")
    with pytest.raises(CatalogError, match="max_cloud must lie in"):
        catalog.search(COLORADO, DAY, DAY, max_cloud=120)
    with pytest.raises(CatalogError, match="limit must be a positive"):
        catalog.search(COLORADO, DAY, DAY, limit=0)
    with pytest.raises(AOIError, match="inverted"):
        catalog.search((10, 0, 5, 1), DAY, DAY)


@pytest.fixture
def static_catalog(shared_data: Path, tmp_path: Path) -> Path:
    """A self-contained pystac collection of the 13 real PC items of tile 35MNM, one local asset."""
    features = json.loads((shared_data / "stac" / SITE2).read_text())["features"]
    collection = pystac.Collection(
        id="sentinel-2-l2a",
        description="PC sentinel-2-l2a items of MGRS tile 35MNM, June-July 2020",
        extent=pystac.Extent(
            pystac.SpatialExtent([[26.99, -8.24, 28.0, -7.23]]),
            pystac.TemporalExtent([[None, None]]),
        ),
    )
    for feature in features:
        item = pystac.Item.from_dict(feature)
        item.clear_links()
        collection.add_item(item)
    (tmp_path / "cog.tif").write_bytes(b"")
    first = next(collection.get_items(features[0]["id"]))
    first.add_asset("local", pystac.Asset(href=str(tmp_path / "cog.tif")))
    collection.normalize_hrefs(str(tmp_path / "stac"))
    collection.make_all_asset_hrefs_relative()
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    return tmp_path / "stac" / "collection.json"


def test_local_catalog_filters_dates_and_clouds(static_catalog: Path, tmp_path: Path) -> None:
    expected = [  # 2020-06-11..06-21 (end day inclusive) with eo:cloud_cover <= 5 %
        "S2A_MSIL2A_20200611T080611_R078_T35MNM_20200826T230619",
        "S2B_MSIL2A_20200616T080609_R078_T35MNM_20201027T073925",
        "S2A_MSIL2A_20200621T080611_R078_T35MNM_20200823T125142",
    ]
    for source in (static_catalog, static_catalog.parent, str(static_catalog)):
        items = catalog.search(IN_35MNM, "2020-06-11", "2020-06-21", max_cloud=5, source=source)
        assert [item.id for item in items] == expected
    # 06-26 has 5.86 % cloud: in with max_cloud=6, and 07-01 (29 %) only without a limit
    ids = [i.id for i in catalog.search(IN_35MNM, "2020-06-22", "2020-07-01", max_cloud=6,
                                        source=static_catalog)]
    assert ids == ["S2B_MSIL2A_20200626T080609_R078_T35MNM_20200824T052748"]
    assert len(catalog.search(IN_35MNM, "2020-06-22", "2020-07-01", source=static_catalog)) == 2

    items = catalog.load_items(static_catalog)
    assert len(items) == 13
    local = next(item for item in items if "local" in item.assets)
    assert local.assets["local"].href == str(tmp_path / "cog.tif")  # relative -> absolute
    assert items[0].properties["proj:code"] == "EPSG:32735"


def test_local_catalog_empty_results(static_catalog: Path) -> None:
    with pytest.raises(EmptySearchError, match=r"bbox=\(0\.0, 0\.0, 1\.0, 1\.0\)"):
        catalog.search((0, 0, 1, 1), "2020-06-01", "2020-07-31", source=static_catalog)
    with pytest.raises(EmptySearchError, match=r"collections=\['landsat-c2-l2'\]"):
        catalog.search(
            IN_35MNM, "2020-06-01", "2020-07-31", collections="landsat", source=static_catalog
        )
    with pytest.raises(EmptySearchError, match="max_cloud=0"):
        catalog.search(IN_35MNM, "2020-06-01", "2020-07-31", max_cloud=0, source=static_catalog)


def test_local_item_files(shared_data: Path, tmp_path: Path) -> None:
    site2 = shared_data / "stac" / SITE2
    items = catalog.search(IN_35MNM, "2020-07-20", "2020-07-31", source=site2)
    assert [item.datetime.day for item in items] == [21, 26, 31]
    # a plain JSON array of PC Landsat items, asked for by alias
    landsat = catalog.search(
        (140, -40, 160, -20), "2024-04-17", "2024-04-17", collections="landsat",
        source=shared_data / "stac" / "planetary-computer" / "landsat-c2-l2-pc.json",
    )
    assert landsat and all(item.collection_id == "landsat-c2-l2" for item in landsat)
    # items_to_dicts -> FeatureCollection file -> load_items round trip
    out = tmp_path / "found.geojson"
    features = catalog.items_to_dicts(items)
    out.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    again = catalog.load_items(out)
    assert [item.id for item in again] == [item.id for item in items]
    assert again[0].assets["B04"].href == items[0].assets["B04"].href
    # a single Item file
    single = shared_data / "stac" / "planetary-computer"
    one = catalog.load_items(single / "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json")
    assert [item.id for item in one] == ["S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531"]


def test_local_errors(tmp_path: Path) -> None:
    broken = tmp_path / "items.json"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"malformed JSON in local STAC source .*items\.json"):
        catalog.load_items(broken)
    not_items = tmp_path / "bad.json"
    not_items.write_text('[{"type": "Feature", "id": "x"}]', encoding="utf-8")
    with pytest.raises(CatalogError, match="does not hold valid STAC items"):
        catalog.load_items(not_items)
    with pytest.raises(CatalogError, match="not found"):
        catalog.load_items(tmp_path)
