"""Issue 19: no grid is built past its bound. An item declaring a 2e6 x 2e6 px grid, a
continental AOI, a 1 cm resolution: each is refused from metadata (no stackstac graph, no pixel)
with the size and the way to raise the limit; so is a whole-world AOI (not as disjoint)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasters import item_dict, write_cog

from rsvlm_temporal.errors import AOIError, LimitError
from rsvlm_temporal.io import cube as cube_mod
from rsvlm_temporal.io.cube import check_grid, grid_estimate, load_cube

X0, Y0 = 500000.0, 5000000.0  # EPSG:32633, about 15.0 E, 45.1 N


def _item(tmp_path: Path, shape: tuple[int, int] = (16, 16)) -> dict:
    t = Affine(10, 0, X0, 0, -10, Y0)
    path = write_cog(tmp_path / "b.tif", np.full((16, 16), 1000, np.uint16), t, 32633)
    assets = {b: {"href": str(path), "proj:shape": list(shape), "proj:transform": list(t)[:6],
                  "raster:bands": [{"scale": 1e-4, "offset": 0.0, "nodata": 0}]}
              for b in ("blue", "green", "red", "nir", "swir16", "swir22")}
    return item_dict("S2A_limits", "2021-06-01T10:00:00Z", "sentinel-2-l2a", "sentinel-2a", 32633, assets,
                     bbox=[15.0, 45.1, 15.002, 45.1015])


def test_an_item_declaring_a_huge_grid_is_refused_before_the_cube(tmp_path: Path) -> None:
    item = _item(tmp_path, shape=(2_000_000, 2_000_000))
    est = grid_estimate([item])
    assert (est.height, est.width) == (2_000_000, 2_000_000)
    with pytest.raises(LimitError, match=r"4,000,000,000,000 px, over the limit of 100,000,000 px.*--max-pixels"):
        load_cube([item])


def test_a_continental_aoi_and_a_centimetre_resolution_are_refused(tmp_path: Path) -> None:
    item = _item(tmp_path)
    with pytest.raises(LimitError, match="over the limit"):
        load_cube([item], bounds_latlon=(10.0, 40.0, 20.0, 50.0))  # ~800 x 1100 km at 10 m
    with pytest.raises(LimitError, match=r"at 0\.01 m.*over the limit"):
        load_cube([item], resolution=0.01, bounds=(X0, Y0 - 160, X0 + 160, Y0))  # 16,000 px a side
    # the same AOI at the native 10 m is fine; at 1 cm it is 16 000 px a side
    assert load_cube([item], bounds=(X0, Y0 - 160, X0 + 160, Y0)).shape[2:] == (16, 16)
    est = grid_estimate([item], resolution=0.01, bounds=(X0, Y0 - 160, X0 + 160, Y0))
    assert (est.height, est.width) == (16_000, 16_000)
    check_grid(grid_estimate([item], resolution=5, bounds=(X0, Y0 - 160, X0 + 160, Y0)))  # 32 px: fine


def test_the_limit_is_the_one_set_for_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    item = _item(tmp_path)
    monkeypatch.setattr(cube_mod, "MAX_GRID_PIXELS", cube_mod.MAX_GRID_PIXELS)  # restored after
    cube_mod.set_grid_limit(100)
    with pytest.raises(LimitError, match="256 px, over the limit of 100 px"):
        load_cube([item])
    cube_mod.set_grid_limit(256)
    assert load_cube([item]).shape[2:] == (16, 16)


def test_a_whole_world_aoi_is_refused_as_too_large_not_as_disjoint(tmp_path: Path) -> None:
    # it does overlap the item: the refusal asks for a smaller AOI (it used to say "do not overlap")
    with pytest.raises((AOIError, LimitError), match="too wide|pass a smaller AOI") as info:
        load_cube([_item(tmp_path)], bounds_latlon=(-180.0, -90.0, 180.0, 90.0))
    assert "overlap" not in str(info.value)
