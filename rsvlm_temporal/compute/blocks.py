"""Block plumbing shared by the evidence and the exports: dask views of georeferenced rasters,
per-block validity and 8-connected labels, and the union-find that merges patches cut by block
borders. Top-level functions, picklable for dask.distributed.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import dask.array as dsa
import numpy as np
import xarray as xr
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from rsvlm_temporal.classes import NODATA_CLASS
from rsvlm_temporal.compute.cluster import release_memory
from rsvlm_temporal.errors import GridError

#: 8-connectivity structuring element (diagonal neighbours belong to the same patch)
STRUCTURE_8 = np.ones((3, 3), dtype=bool)
DEFAULT_CHUNK = 512
def as_dask(da: xr.DataArray, chunks: Any = None) -> dsa.Array:
    """The dask array behind ``da`` (a numpy-backed one is wrapped, 512 x 512 chunks by default),
    rechunked to ``chunks`` when given. Never computes anything."""
    data = da.data
    if not isinstance(data, dsa.Array):
        data = dsa.from_array(np.asarray(data), chunks=DEFAULT_CHUNK if chunks is None else chunks)
    if chunks is not None and data.chunks != chunks:
        data = data.rechunk(chunks)
    return data


def class_names_of(da: xr.DataArray, class_names: Mapping[Any, str] | None) -> dict[int, str]:
    """``class_names`` (or the raster's ``class_names`` attr) as ``{int code: name}``."""
    names = class_names if class_names is not None else da.attrs.get("class_names")
    if not names:
        raise GridError(
            "no class names: pass class_names={code: name} or set the raster's 'class_names' attr "
            "(e.g. rsvlm_temporal.classes.CHANGE_CLASSES)"
        )
    return {int(k): str(v) for k, v in dict(names).items()}


def nodata_of(da: xr.DataArray) -> Any:
    """The class raster's nodata: its ``nodata`` attr, else ``classes.NODATA_CLASS`` (255) for
    integer rasters, else None."""
    if da.attrs.get("nodata") is not None:
        return da.attrs["nodata"]
    return NODATA_CLASS if np.issubdtype(da.dtype, np.integer) else None


def date_block_to_days(block: np.ndarray, nodata: Any = None) -> np.ndarray:
    """A block of a date raster as float64 days since 1970-01-01, NaN where there is no date.

    datetime64 rasters: NaT is missing. Numeric rasters are read as days since 1970-01-01,
    with NaN and ``nodata`` missing.
    """
    if np.issubdtype(block.dtype, np.datetime64):
        days = block.astype("datetime64[D]").astype("int64").astype("float64")
        days[np.isnat(block)] = np.nan
        return days
    days = block.astype("float64")
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        days[block == nodata] = np.nan
    return days


def block_valid(cls_block: np.ndarray, valid_block: np.ndarray | None, nodata: Any) -> np.ndarray:
    """Valid pixels of a block: not ``nodata`` (not NaN) and, if given, True in the valid mask."""
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        valid = ~np.isnan(cls_block) if np.issubdtype(cls_block.dtype, np.floating) else (
            np.ones(cls_block.shape, dtype=bool))
    else:
        valid = cls_block != nodata
    if valid_block is not None:
        valid &= valid_block.astype(bool)
    return valid


def label_block(
    cls_block: np.ndarray, valid: np.ndarray, codes: Sequence[int]
) -> tuple[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """8-connected patches of each class in one block.

    Returns ``(per_class, strips, edge_class, edge_size)``: ``per_class`` lists
    ``(class index, label image, pixel count per label (index 0 unused), edge id per label)``
    for the classes present; an edge id (1..E, 0 = interior) numbers the labels touching the
    block's border across all classes; ``strips`` holds the edge ids along the ``top``,
    ``bottom``, ``left`` and ``right`` borders (0 = no edge patch); ``edge_class`` and
    ``edge_size`` give class index and pixel count of edge ids 1..E (index 0 = id 1).
    """
    h, w = cls_block.shape
    strips = {k: np.zeros(n, dtype=np.int64) for k, n in (("top", w), ("bottom", w), ("left", h), ("right", h))}
    per_class: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    edge_class: list[np.ndarray] = []
    edge_size: list[np.ndarray] = []
    next_id = 1
    for k, code in enumerate(codes):
        m = (cls_block == code) & valid
        if not m.any():
            continue
        lab, n = ndimage.label(m, structure=STRUCTURE_8)
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        border = border[border > 0]
        edge_id = np.zeros(n + 1, dtype=np.int64)
        edge_id[border] = np.arange(next_id, next_id + border.size)
        next_id += border.size
        strips["top"] += edge_id[lab[0]]
        strips["bottom"] += edge_id[lab[-1]]
        strips["left"] += edge_id[lab[:, 0]]
        strips["right"] += edge_id[lab[:, -1]]
        edge_class.append(np.full(border.size, k, dtype=np.int64))
        edge_size.append(sizes[border].astype(np.int64))
        per_class.append((k, lab, sizes, edge_id))
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
    return per_class, strips, cat(edge_class), cat(edge_size)


def block_offsets(arr: dsa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets (pixels) of the blocks of a 2-D dask array."""
    return (np.concatenate([[0], np.cumsum(arr.chunks[0])[:-1]]).astype(int),
            np.concatenate([[0], np.cumsum(arr.chunks[1])[:-1]]).astype(int))


def merge_edge_patches(
    strips: Sequence[Sequence[Mapping[str, np.ndarray]]], edge_class: Sequence[Sequence[np.ndarray]]
) -> tuple[list[list[int]], np.ndarray, int]:
    """Merge block-edge patches that touch across block borders (8-connectivity).

    ``strips[r][c]`` / ``edge_class[r][c]`` come from :func:`label_block` for block row ``r``,
    column ``c``. Global edge ids are ``base[r][c] + local id - 1``. Pairs of touching pixels
    across every block border (diagonals included, and the single diagonal pairs across block
    corners) of the same class are joined; returns ``(base, component per global id, count)``.
    """
    nr, nc = len(strips), len(strips[0])
    base: list[list[int]] = [[0] * nc for _ in range(nr)]
    total = 0
    for r in range(nr):
        for c in range(nc):
            base[r][c] = total
            total += len(edge_class[r][c])
    if total == 0:
        return base, np.zeros(0, dtype=np.int64), 0
    cls_of = np.concatenate([np.asarray(edge_class[r][c]) for r in range(nr) for c in range(nc)])

    def gid(r: int, c: int, side: str) -> np.ndarray:
        s = np.asarray(strips[r][c][side])
        return np.where(s > 0, s + base[r][c] - 1, -1)

    a_parts: list[np.ndarray] = []
    b_parts: list[np.ndarray] = []

    def add(a: np.ndarray, b: np.ndarray) -> None:
        a_parts.append(a)
        b_parts.append(b)

    for r in range(nr):
        for c in range(nc):
            if c + 1 < nc:  # vertical border with the right neighbour
                a, b = gid(r, c, "right"), gid(r, c + 1, "left")
                add(a, b), add(a[:-1], b[1:]), add(a[1:], b[:-1])
            if r + 1 < nr:  # horizontal border with the neighbour below
                a, b = gid(r, c, "bottom"), gid(r + 1, c, "top")
                add(a, b), add(a[:-1], b[1:]), add(a[1:], b[:-1])
            if r + 1 < nr and c + 1 < nc:  # corner: bottom-right pixel / top-left pixel
                add(gid(r, c, "bottom")[-1:], gid(r + 1, c + 1, "top")[:1])
            if r + 1 < nr and c > 0:  # corner: bottom-left pixel / top-right pixel
                add(gid(r, c, "bottom")[:1], gid(r + 1, c - 1, "top")[-1:])
    a = np.concatenate(a_parts) if a_parts else np.zeros(0, dtype=np.int64)
    b = np.concatenate(b_parts) if b_parts else np.zeros(0, dtype=np.int64)
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep], b[keep]
    keep = cls_of[a] == cls_of[b]
    a, b = a[keep], b[keep]
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(total, total))
    n, comp = connected_components(graph, directed=False)
    return base, comp.astype(np.int64), int(n)


def is_dask(a: Any) -> bool:
    """Whether ``a`` is a dask collection (without importing dask)."""
    return type(a).__module__.startswith("dask")


def fsum(x: np.ndarray, axis: tuple[int, ...], keepdims: bool = False) -> np.ndarray:
    """Exact (correctly rounded, ``math.fsum``) sums of ``x`` over ``axis``: the result does not
    depend on the order of the summed values. A dask reduction's chunk/combine/aggregate."""
    axis = tuple(a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
    keep = [a for a in range(x.ndim) if a not in axis]
    moved = np.transpose(x, axis + tuple(keep)).reshape(-1, int(np.prod([x.shape[a] for a in keep])))
    out = np.array([math.fsum(col) for col in moved.T.tolist()], dtype=np.float64)
    out = out.reshape([x.shape[a] for a in keep])
    if keepdims:
        out = np.expand_dims(out, axis)
    return out


def reduce_blocks(
    arr: Any, fn: Callable[..., np.ndarray], size: int, *args: Any,
    combine: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Combine ``fn(block, *args)`` (a length-``size`` vector) over every block of ``arr``.

    ``combine``: per element ``"sum"``, ``"min"`` or ``"max"`` (default all ``"sum"``). For a dask
    array the per-block vectors are combined by a dask tree reduction, so one compute returns
    ``size`` numbers; the images are never gathered. Sums are exact at every node of the tree
    (:func:`fsum`) and the tree is fixed by the chunks, so the result is the same on every
    scheduler whatever order the blocks finish in. A numpy array is one block.
    """
    ops = combine or ("sum",) * size
    if not is_dask(arr):
        return np.asarray(fn(np.asarray(arr), *args), dtype=np.float64)
    import dask
    import dask.array as da

    nd = arr.ndim

    def per_block(b: np.ndarray) -> np.ndarray:
        return np.asarray(fn(b, *args), dtype=np.float64).reshape((1,) * nd + (size,))

    parts = arr.map_blocks(
        per_block, new_axis=nd, dtype=np.float64,
        chunks=tuple((1,) * len(c) for c in arr.chunks) + ((size,),),
        meta=np.empty((0,) * (nd + 1), dtype=np.float64),
    )
    axes = tuple(range(nd))
    sums = da.reduction(parts, fsum, fsum, axis=axes, combine=fsum, dtype=np.float64,
                        concatenate=True, meta=np.empty((0,), dtype=np.float64))
    if all(o == "sum" for o in ops):
        out = np.asarray(sums.compute())
    else:
        reds = {"min": parts.min(axis=axes), "max": parts.max(axis=axes), "sum": sums}
        done = dask.compute(*[reds[o][i] for i, o in enumerate(ops)])
        out = np.array([float(v) for v in done])
    release_memory()  # the pass's freed block buffers, back to the OS before the next one
    return out
