"""The real Landsat 7 ETM+ Taizhou change-detection pair (Wu, Du & Zhang 2014): reading, evaluation,
and export as COGs + a static STAC catalog.

Data (``../shared/data/landsat_taizhou_cd/``, see SOURCES.md section 2): ``2000TM`` / ``2003TM``
ENVI BSQ uint8 DN, 6 x 400 x 400, ETM+ bands 1,2,3,4,5,7, UTM 51N (EPSG:32651), 30 m, upper-left
corner (203325, 3604935), acquired 2000-03-17 and 2003-02-06 (path 119 / row 38).
Reference: ``change.bmp`` (255 = changed, 4,227 px) and ``unchanged.bmp`` (255 = unchanged,
17,163 px); the other 138,610 px are unlabelled and never scored.

Run ``python -m rsvlm_temporal.evaluate.taizhou`` to print OA / Kappa / F1 of every method.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from rsvlm_temporal.atomic import write_json_atomic
from rsvlm_temporal.errors import ItemError, RasterReadError
from rsvlm_temporal.evaluate.metrics import evaluate_labelled
from rsvlm_temporal.grid import coords_for
from rsvlm_temporal.outputs.cog import write_array_cog

__all__ = [
    "ENVI_DTYPES",
    "COLLECTION_ID",
    "load_taizhou",
    "read_envi",
    "read_envi_header",
    "read_label_bmp",
    "evaluate_taizhou",
    "write_pair_as_stac",
]

COLLECTION_ID = "landsat-taizhou-etm"
BEFORE, AFTER = "2000TM", "2003TM"

# ENVI "data type" codes (ENVI header documentation)
ENVI_DTYPES: dict[int, str] = {
    1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8",
}

# Landsat 7 ETM+ reflective bands: common name, ETM+ band, centre wavelength (um) (USGS)
ETM_BANDS: tuple[tuple[str, str, float], ...] = (
    ("blue", "B1", 0.4825), ("green", "B2", 0.565), ("red", "B3", 0.66),
    ("nir", "B4", 0.825), ("swir16", "B5", 1.65), ("swir22", "B7", 2.22),
)


def read_envi_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse an ENVI ``.hdr`` into a dict (keys lower-case; ``{...}`` values as lists of strings).

    Numeric keys (samples, lines, bands, data type, header offset, byte order) are ints.
    """
    p = Path(path)
    try:
        text = p.read_text(errors="replace")
    except OSError as exc:
        raise RasterReadError(f"cannot read ENVI header {p}: {exc}") from exc
    if not text.lstrip().upper().startswith("ENVI"):
        raise RasterReadError(f"{p} is not an ENVI header (does not start with 'ENVI')")
    out: dict[str, Any] = {}
    for m in re.finditer(r"^\s*([^=\n]+?)\s*=\s*(\{.*?\}|[^\n]*)", text, re.M | re.S):
        key, val = m.group(1).strip().lower(), m.group(2).strip()
        if val.startswith("{"):
            inner = val[1:-1].strip()
            out[key] = [v.strip() for v in inner.split(",")] if key != "description" else inner
            if key == "coordinate system string":
                out[key] = inner
        else:
            out[key] = val
    for key in ("samples", "lines", "bands", "data type", "header offset", "byte order"):
        if key in out:
            out[key] = int(out[key])
    return out


def _find(data_dir: Path, name: str) -> Path:
    for cand in data_dir.iterdir():
        if cand.name.lower() == name.lower():
            return cand
    raise RasterReadError(f"{name} not found in {data_dir}; expected the Taizhou ENVI/BMP files")


def _header_for(raster: Path) -> Path:
    for ext in (".hdr", ".HDR", ".Hdr"):
        cand = raster.with_name(raster.name + ext)
        if cand.exists():
            return cand
    raise RasterReadError(f"no ENVI header ({raster.name}.hdr) beside {raster}")


def _georef(hdr: dict[str, Any]) -> tuple[str, int, tuple[float, ...]]:
    mi = hdr.get("map info")
    if not mi or len(mi) < 7:
        raise ItemError(f"ENVI header has no usable 'map info' ({mi!r}); expected UTM map info")
    proj = mi[0].strip().upper()
    if proj != "UTM":
        raise ItemError(f"ENVI map info projection {mi[0]!r} is not supported; expected UTM")
    refx, refy, east, north, px, py = (float(v) for v in mi[1:7])
    zone, hemi = int(mi[7]), mi[8].strip().lower()
    datum = mi[9].strip().upper() if len(mi) > 9 else ""
    if datum not in ("WGS-84", "WGS84"):
        raise ItemError(f"ENVI map info datum {datum!r} is not supported; expected WGS-84")
    if any("rotation" in v.lower() for v in mi[10:]):
        raise ItemError("rotated ENVI map info is not supported; expected a north-up grid")
    epsg = (32600 if hemi.startswith("n") else 32700) + zone
    # reference pixel (refx, refy) is 1-based, its upper-left corner is (east, north)
    c = east - (refx - 1.0) * px
    f = north + (refy - 1.0) * py
    return f"EPSG:{epsg}", epsg, (px, 0.0, c, 0.0, -py, f)


def _scene_date(hdr: dict[str, Any]) -> dt.date | None:
    names = " ".join(hdr.get("band names", []))
    m = re.search(r"L\d{2}\d{6}_\d{3}(\d{8})", names)
    if not m:
        return None
    return dt.datetime.strptime(m.group(1), "%Y%m%d").date()


def read_envi(path: str | os.PathLike[str], chunks: int | None = None) -> xr.DataArray:
    """Read an ENVI raster (BSQ/BIL/BIP) into a georeferenced DataArray (band, y, x) in file dtype.

    Band coord: common names matched to the ETM+ wavelengths (``blue ... swir22``) when the header
    lists 6 ETM+ wavelengths, else ``b1..bN``. Attrs: ``crs`` (``EPSG:326zz``), ``epsg``,
    ``transform`` (a, b, c, d, e, f in metres), ``resolution`` (xres, yres) m; scalar coord
    ``time`` from the Landsat scene id in the band names when present. ``chunks``: return a
    dask-backed array with (y, x) chunks of that size (memory-mapped file).
    """
    raster = Path(path)
    hdr = read_envi_header(_header_for(raster))
    ns, nl, nb = hdr["samples"], hdr["lines"], hdr["bands"]
    code = hdr.get("data type")
    if code not in ENVI_DTYPES:
        raise ItemError(f"ENVI data type {code} not supported; expected one of {sorted(ENVI_DTYPES)}")
    dtype = np.dtype(ENVI_DTYPES[code]).newbyteorder(">" if hdr.get("byte order", 0) == 1 else "<")
    il = str(hdr.get("interleave", "bsq")).lower()
    offset = hdr.get("header offset", 0)
    need = offset + ns * nl * nb * dtype.itemsize
    size = raster.stat().st_size
    if size < need:
        raise RasterReadError(f"{raster} has {size} bytes; header says {need} (truncated?)")
    shape = {"bsq": (nb, nl, ns), "bil": (nl, nb, ns), "bip": (nl, ns, nb)}.get(il)
    if shape is None:
        raise ItemError(f"ENVI interleave {il!r} not supported; expected bsq, bil or bip")
    mm = np.memmap(raster, dtype=dtype, mode="r", offset=offset, shape=shape)
    arr: Any = {"bsq": mm, "bil": mm.transpose(1, 0, 2), "bip": mm.transpose(2, 0, 1)}[il]
    if chunks:
        import dask.array as da

        arr = da.from_array(arr, chunks=(nb, chunks, chunks))
    else:
        arr = np.array(arr)
    crs, epsg, transform = _georef(hdr)
    from affine import Affine

    yx = coords_for(Affine(*transform), (nl, ns))
    wl = [float(w) for w in hdr.get("wavelength", [])]
    if len(wl) == nb == len(ETM_BANDS) and all(abs(a - b[2]) < 0.02 for a, b in zip(wl, ETM_BANDS)):
        names = [b[0] for b in ETM_BANDS]
    else:
        names = [f"b{i + 1}" for i in range(nb)]
    coords: dict[str, Any] = {"band": names, "y": yx["y"], "x": yx["x"]}
    if len(wl) == nb:
        coords["wavelength"] = ("band", wl)
    date = _scene_date(hdr)
    if date is not None:
        coords["time"] = np.datetime64(date.isoformat(), "ns")
    attrs = {
        "crs": crs, "epsg": epsg, "transform": transform,
        "resolution": (transform[0], -transform[4]),
        "units": "DN", "sensor_type": hdr.get("sensor type", ""), "source": str(raster),
    }
    return xr.DataArray(arr, dims=("band", "y", "x"), coords=coords, attrs=attrs,
                        name=raster.name)


def read_label_bmp(path: str | os.PathLike[str], value: int = 255) -> np.ndarray:
    """Boolean raster, True where the (palettised) BMP's pixel index equals ``value``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            a = np.array(im.convert("L") if im.mode not in ("L", "P") else im)
    except OSError as exc:
        raise RasterReadError(f"cannot read label image {path}: {exc}") from exc
    return a == value


def load_taizhou(
    data_dir: str | os.PathLike[str], chunks: int | None = None
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, xr.DataArray]:
    """``(before, after, change_label, nochange_label)``: the 2000 and 2003 DN images (band, y, x)
    and the boolean reference rasters (y, x), all on the EPSG:32651 30 m grid."""
    d = Path(data_dir)
    before = read_envi(_find(d, BEFORE), chunks=chunks)
    after = read_envi(_find(d, AFTER), chunks=chunks)
    labels = []
    for name, long in (("change.bmp", "changed"), ("unchanged.bmp", "unchanged")):
        a = read_label_bmp(_find(d, name))
        if a.shape != before.shape[1:]:
            raise RasterReadError(f"{name} is {a.shape}; expected {before.shape[1:]}")
        labels.append(xr.DataArray(
            a, dims=("y", "x"), coords={"y": before.y, "x": before.x},
            attrs={k: before.attrs[k] for k in ("crs", "epsg", "transform", "resolution")}
            | {"long_name": f"reference: {long}"}, name=name.split(".")[0],
        ))
    return before, after, labels[0], labels[1]


def evaluate_taizhou(
    data_dir: str | os.PathLike[str],
    method: str = "irmad",
    threshold: Any = "otsu",
    chunks: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """OA, Kappa, F1, precision, recall and counts of ``change_magnitude(method, threshold)`` on the
    labelled Taizhou pixels. Nothing is fitted to the labels. ``kwargs`` go to
    :func:`rsvlm_temporal.change.magnitude.change_magnitude` (``standardise``, ``max_iter``, ...)."""
    from rsvlm_temporal.change.magnitude import change_magnitude

    before, after, ch, nc = load_taizhou(data_dir, chunks=chunks)
    res = change_magnitude(before, after, method=method, threshold=threshold, **kwargs)
    mask, valid = res.mask.values, res.valid.values
    out = evaluate_labelled(mask, ch.values, nc.values, pred_valid=valid)
    out.update(
        method=res.method, threshold_method=res.threshold_method, threshold=res.threshold,
        iterations=res.iterations, converged=res.converged,
        n_change_label=int(ch.values.sum()), n_nochange_label=int(nc.values.sum()),
        changed_fraction_all_pixels=float(mask.sum() / valid.sum()),
    )
    return out


# ---------------------------------------------------------------------------------------------
# export as COGs + static STAC catalog




def add_grid_extensions(item: Any, crs: str, shape: tuple[int, int], transform: tuple[float, ...]) -> None:
    """Stamp a pystac Item with the projection (``proj:code``, ``proj:shape``, ``proj:transform``:
    the grid in ``crs`` metres) and declare the eo and raster extensions its assets use."""
    from pystac.extensions.eo import EOExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterExtension

    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = crs
    proj.shape = [int(shape[0]), int(shape[1])]
    proj.transform = [float(v) for v in transform]
    EOExtension.add_to(item)
    RasterExtension.add_to(item)


def _lonlat_footprint(crs: str, transform: tuple[float, ...], shape: tuple[int, int]
                      ) -> tuple[list[float], dict[str, Any]]:
    from pyproj import Transformer

    a, _, c, _, e, f = transform
    h, w = shape
    x0, x1, y0, y1 = c, c + a * w, f + e * h, f
    n = 20
    xs = np.concatenate([np.linspace(x0, x1, n), np.full(n, x1), np.linspace(x1, x0, n), np.full(n, x0)])
    ys = np.concatenate([np.full(n, y1), np.linspace(y1, y0, n), np.full(n, y0), np.linspace(y0, y1, n)])
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    ring = [[float(lo), float(la)] for lo, la in zip(lon, lat)]
    ring.append(ring[0])
    bbox = [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))]
    return bbox, {"type": "Polygon", "coordinates": [ring]}


def write_pair_as_stac(
    data_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> Path:
    """Write the Taizhou pair as COGs and a self-contained static STAC catalog; return its path.

    Layout under ``out_dir``: ``collection.json`` (a Collection, id ``landsat-taizhou-etm``, raw
    Landsat 7 ETM+ L1 DN: *not* ``landsat-c2-l2`` surface reflectance) and per date
    ``{item_id}/{item_id}.json``, ``{item_id}/{item_id}_{band}.tif`` (one single-band uint8 COG
    per band, EPSG:32651, 30 m, the ENVI transform; one asset per band named by common name, so
    band-per-asset loaders such as stackstac read them) and ``{item_id}/{item_id}_stack.tif``
    (the same 6 bands in one COG, asset ``stack``). Items carry ``datetime`` (date only known:
    00:00 UTC), ``platform`` landsat-7, ``instruments`` [etm+], ``proj:code``, ``proj:shape``,
    ``proj:transform``, lon/lat ``bbox``/``geometry``, and per asset ``eo:bands`` and
    ``raster:bands`` (scale 1, offset 0: values are DN). All files are written atomically.
    """
    import pystac
    from pystac.extensions.eo import Band, EOExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension

    d, out = Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wl = {b[0]: (b[1], b[2]) for b in ETM_BANDS}
    items: list[pystac.Item] = []
    for name in (BEFORE, AFTER):
        img = read_envi(_find(d, name))
        if list(img.band.values) != [b[0] for b in ETM_BANDS]:
            raise ItemError(f"{name}: bands {list(img.band.values)}; expected the 6 ETM+ bands")
        date = img.time.values.astype("datetime64[D]").item() if "time" in img.coords else None
        if date is None:
            raise ItemError(f"{name}: no acquisition date in the ENVI header band names")
        item_id = f"LE07_119038_{date:%Y%m%d}_taizhou"
        crs, transform = img.attrs["crs"], img.attrs["transform"]
        h, w = img.shape[1:]
        bbox, geom = _lonlat_footprint(crs, transform, (h, w))
        item = pystac.Item(
            id=item_id, geometry=geom, bbox=bbox,
            datetime=dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc),
            properties={"platform": "landsat-7", "instruments": ["etm+"],
                        "constellation": "landsat",
                        "description": "Landsat 7 ETM+ L1 DN subset, WRS-2 path 119 row 38 (Taizhou, "
                                       "Wu, Du & Zhang 2014); acquisition date only (time of day "
                                       "unknown)"},
            collection=COLLECTION_ID,
        )
        add_grid_extensions(item, crs, (h, w), transform)
        data = np.asarray(img.values, dtype=np.uint8)
        for i, band in enumerate(img.band.values):
            band = str(band)
            etm, cw = wl[band]
            fn = f"{item_id}_{band}.tif"
            write_array_cog(out / item_id / fn, data[i : i + 1], Affine(*transform), crs, None, descriptions=[band])
            asset = pystac.Asset(href=str(out / item_id / fn), media_type=pystac.MediaType.COG,
                                 roles=["data"], title=f"ETM+ {etm} ({band}) DN")
            item.add_asset(band, asset)
            EOExtension.ext(asset).bands = [Band.create(name=etm, common_name=band,
                                                        center_wavelength=cw)]
            RasterExtension.ext(asset).bands = [RasterBand.create(
                data_type=DataType.UINT8, scale=1.0, offset=0.0, spatial_resolution=30.0)]
        fn = f"{item_id}_stack.tif"
        write_array_cog(out / item_id / fn, data, Affine(*transform), crs, None,
                        descriptions=[str(b) for b in img.band.values])
        asset = pystac.Asset(href=str(out / item_id / fn), media_type=pystac.MediaType.COG,
                             roles=["data"], title="all 6 ETM+ bands (blue..swir22) DN")
        item.add_asset("stack", asset)
        EOExtension.ext(asset).bands = [
            Band.create(name=wl[str(b)][0], common_name=str(b), center_wavelength=wl[str(b)][1])
            for b in img.band.values
        ]
        RasterExtension.ext(asset).bands = [
            RasterBand.create(data_type=DataType.UINT8, scale=1.0, offset=0.0,
                              spatial_resolution=30.0) for _ in img.band.values
        ]
        items.append(item)
    bboxes = np.array([it.bbox for it in items])
    extent = pystac.Extent(
        pystac.SpatialExtent([[float(bboxes[:, 0].min()), float(bboxes[:, 1].min()),
                               float(bboxes[:, 2].max()), float(bboxes[:, 3].max())]]),
        pystac.TemporalExtent([[items[0].datetime, items[-1].datetime]]),
    )
    coll = pystac.Collection(
        id=COLLECTION_ID,
        description="Landsat 7 ETM+ Level-1 DN pair over Taizhou, China (2000-03-17, 2003-02-06), "
                    "400 x 400 px, bands 1-5,7; change-detection benchmark of Wu, Du & Zhang 2014 "
                    "(IEEE TGRS 52(5)). Raw DN, not surface reflectance.",
        extent=extent, license="proprietary", title="Landsat 7 ETM+ Taizhou change pair",
    )
    coll.add_items(items)
    coll.normalize_hrefs(str(out))
    coll.make_all_asset_hrefs_relative()
    coll.catalog_type = pystac.CatalogType.SELF_CONTAINED
    for obj in [coll, *items]:
        href = obj.get_self_href()
        assert href is not None
        write_json_atomic(href, obj.to_dict(include_self_link=False, transform_hrefs=True))
    return Path(coll.get_self_href() or out / "collection.json")


# ---------------------------------------------------------------------------------------------
# command line: python -m rsvlm_temporal.evaluate.taizhou


DEFAULT_RUNS: tuple[tuple[str, Any, dict[str, Any]], ...] = (
    ("irmad", "otsu", {}),
    ("irmad", "mixture", {}),
    ("irmad", "chi2", {}),
    ("mad", "otsu", {}),
    ("isfa", "otsu", {}),
    ("isfa", "mixture", {}),
    ("isfa", "chi2", {}),
    ("sfa", "otsu", {}),
    ("cva", "otsu", {}),
    ("cva", "mixture", {}),
    ("cva-raw", "otsu", {}),
)


def _default_data_dir() -> Path:
    env = os.environ.get("RSVLM_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base / "landsat_taizhou_cd"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=_default_data_dir())
    ap.add_argument("--method", help="one method (default: all of DEFAULT_RUNS)")
    ap.add_argument("--threshold", default="otsu")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    if a.method:
        thr: Any = a.threshold
        try:
            thr = float(thr)
        except ValueError:
            pass
        runs: tuple[tuple[str, Any, dict[str, Any]], ...] = ((a.method, thr, {}),)
    else:
        runs = DEFAULT_RUNS
    rows = []
    for method, thr, kw in runs:
        r = evaluate_taizhou(a.data_dir, method=method, threshold=thr, **kw)
        rows.append(r)
        if not a.json:
            print(f"{r['method']:8s} {r['threshold_method']:8s} thr={r['threshold']:9.3f} "
                  f"it={r['iterations']:3d}  OA={r['overall_accuracy']:.4f} "
                  f"Kappa={r['kappa']:.4f} F1={r['f1']:.4f} P={r['precision']:.4f} "
                  f"R={r['recall']:.4f}  tp={r['tp']} fp={r['fp']} fn={r['fn']} tn={r['tn']}")
    if a.json:
        json.dump(rows, sys.stdout, indent=1, default=float)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def evaluate_taizhou_pipeline(
    data_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], method: str = "irmad",
    threshold: Any = "otsu",
) -> dict[str, Any]:
    """The Taizhou evaluation through the path a user takes: the ENVI pair written as COGs +
    a static STAC catalog, then ``rsvlm analyze`` (:func:`rsvlm_temporal.pipeline.run_analysis`),
    then OA / Kappa / F1 of its change mask on the labelled pixels."""
    import rasterio

    from rsvlm_temporal.evaluate.metrics import evaluate_labelled
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.pipeline import run_analysis

    out = Path(out_dir)
    catalog = write_pair_as_stac(data_dir, out / "stac")
    run = run_analysis(load_items(catalog), out / "analysis", magnitude_method=method,
                       magnitude_threshold=threshold, model=None)
    with rasterio.open(run.files["change_mask"]) as src:
        pred = src.read(1) == 1
    _, _, change, nochange = load_taizhou(data_dir)
    report = evaluate_labelled(pred, change.values, nochange.values)
    report.update(method=method, threshold=str(threshold), mode=run.mode,
                  change_mask=str(run.files["change_mask"]), catalog=str(catalog))
    return report
