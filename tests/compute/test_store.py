"""The result stack writer: whole tiles only (GDAL's shared block cache can lose a partly written
tile), each once, whatever the blocks; the file holds exactly what was computed."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from rsvlm_temporal.compute.store import TILE, TileAssembler, open_stack, write_stack


def _truth(count: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(yy * w + xx + k * 1e6).astype(np.float32) for k in range(count)])


@pytest.mark.parametrize("chunks", [((50, 40, 47), (33, 64, 40)), ((64, 64, 9), (137,)), ((137,), (17,) * 8 + (1,))])
def test_assembler_writes_whole_tiles_once_in_any_block_order(chunks) -> None:
    h, w, tile, count = 137, 137, 32, 3
    truth = _truth(count, h, w)
    out = np.full_like(truth, np.nan)
    written = np.zeros((h, w), int)
    windows = []

    def write(win, arr):
        r0, c0, hh, ww = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
        windows.append((r0, c0, hh, ww))
        out[:, r0:r0 + hh, c0:c0 + ww] = arr
        written[r0:r0 + hh, c0:c0 + ww] += 1

    asm = TileAssembler(write, (h, w), tile, count)
    ys, xs = np.cumsum((0,) + chunks[0]), np.cumsum((0,) + chunks[1])
    cells = [(i, j) for i in range(len(chunks[0])) for j in range(len(chunks[1]))]
    for i, j in reversed(cells):  # not row-major: any order works
        asm.add(int(ys[i]), int(xs[j]), truth[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]])
    asm.close()
    np.testing.assert_array_equal(out, truth)
    assert (written == 1).all()
    for r0, c0, hh, ww in windows:  # every write starts on a tile edge, ends on one or the raster's
        assert r0 % tile == 0 and c0 % tile == 0
        assert (r0 + hh) % tile == 0 or r0 + hh == h
        assert (c0 + ww) % tile == 0 or c0 + ww == w


def test_assembler_reports_missing_and_overlapping_blocks() -> None:
    asm = TileAssembler(lambda win, arr: None, (64, 64), 32, 1)
    asm.add(0, 0, np.zeros((1, 40, 64), np.float32))
    with pytest.raises(ValueError, match="2 of 4 tiles not complete, e.g. rows 32:64"):
        asm.close()
    with pytest.raises(ValueError, match="overlap"):
        asm.add(30, 0, np.zeros((1, 34, 64), np.float32))
    never = TileAssembler(lambda win, arr: None, (64, 64), 32, 1)
    never.add(0, 0, np.zeros((1, 64, 32), np.float32))  # whole tiles only; the right half never added
    with pytest.raises(ValueError, match="2 of 4 tiles not complete, e.g. rows 0:32, cols 32:64"):
        never.close()
    with pytest.raises(ValueError, match="outside"):
        asm.add(60, 0, np.zeros((1, 10, 64), np.float32))


def test_write_stack_with_chunks_across_tiles_round_trips(tmp_path) -> None:
    h, w, count = TILE + 90, 2 * TILE + 30, 4
    truth = _truth(count, h, w)
    arr = da.from_array(truth, chunks=(count, 100, 150))  # no chunk edge on a tile edge
    t = Affine(10, 0, 500000, 0, -10, 5000000)
    ds = xr.Dataset({f"l{k}": (("y", "x"), arr[k]) for k in range(count)},
                    attrs={"crs": "EPSG:32633", "transform": tuple(t)[:6]})
    path = write_stack(ds, tmp_path / "s.tif")
    with rasterio.open(path) as src:
        assert src.block_shapes[0] == (TILE, TILE)
        np.testing.assert_array_equal(src.read(), truth)
    back = open_stack(path, chunks=128)
    np.testing.assert_array_equal(back["l3"].values, truth[3])
