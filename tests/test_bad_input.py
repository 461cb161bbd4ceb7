"""Bad input fails loudly: a missing band, a period without a clear observation, periods that do
not overlap in space, inverted or empty periods, a single date. Every case is a specific error
naming what was wrong, or explicit no data (255 / NaN) plus an "insufficient data" note in the
result and the evidence; never a silent all-zero mask."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine
from rasters import item_dict, write_cog

from rsvlm_temporal.change.analysis import analyze
from rsvlm_temporal.change.indices import INDICES, compute_indices
from rsvlm_temporal.classes import CHANGE_CLASSES, NODATA_CLASS
from rsvlm_temporal.errors import InsufficientDataError, PeriodError, UnknownBandError
from rsvlm_temporal.evidence.build import build_evidence
from rsvlm_temporal.grid import GridError, extent_of, require_overlap
from rsvlm_temporal.io import masks
from rsvlm_temporal.pipeline import run_analysis, summary_lines

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
VEG = np.array([0.03, 0.06, 0.04, 0.35, 0.18, 0.09], np.float32)  # reflectance 0-1
SOIL = np.array([0.12, 0.16, 0.20, 0.26, 0.32, 0.28], np.float32)
EPSG = 32633
X0, Y0 = 500000.0, 5000000.0
N = 12  # pixels per side of the direct cubes (10 m)


def make_cube(dates, flags=None, size: int = N, bands=BANDS, seed: int = 0,
              change_at: int | None = None) -> xr.DataArray:
    """A dask-backed cube as load_cube gives it: (time, band, y, x) float32 reflectance, NaN where
    ``flags`` (time, y, x) hit the default mask; coords sensor/id/platform/mask; georef attrs.
    Vegetation with 5 % noise, and a block that turns to bare soil from date ``change_at``
    (default: after the first third)."""
    times = pd.DatetimeIndex(dates).values.astype("datetime64[ns]")
    T, B = len(times), len(bands)
    rng = np.random.default_rng(seed)
    sel = [BANDS.index(b) for b in bands]
    refl = np.broadcast_to(VEG[sel][None, :, None, None], (T, B, size, size)).copy()
    refl[T // 3 if change_at is None else change_at:, :, 2:6, size - 6:size - 2] = SOIL[sel][None, :, None, None]
    refl *= 1 + 0.05 * rng.standard_normal(refl.shape)
    flags = np.zeros((T, size, size), np.uint8) if flags is None else flags
    refl = np.where(((flags & masks.DEFAULT_MASKED) != 0)[:, None], np.nan, refl).astype(np.float32)
    return xr.DataArray(
        da.from_array(refl, chunks=(1, B, 8, 8)), dims=("time", "band", "y", "x"),
        coords={
            "time": times, "band": list(bands),
            "y": Y0 - 10 * (np.arange(size) + 0.5), "x": X0 + 10 * (np.arange(size) + 0.5),
            "sensor": ("time", ["sentinel-2-l2a"] * T), "id": ("time", [f"S2_{k}" for k in range(T)]),
            "platform": ("time", ["sentinel-2a"] * T),
            "mask": (("time", "y", "x"), da.from_array(flags, chunks=(1, 8, 8))),
        },
        name="reflectance",
        attrs={"crs": f"EPSG:{EPSG}", "epsg": EPSG, "transform": (10.0, 0.0, X0, 0.0, -10.0, Y0),
               "resolution": (10.0, 10.0), "units": "surface reflectance (0-1)"},
    )


def texts(notes) -> list[str]:
    """The human texts of typed quality notes."""
    return [n.text for n in notes]


def kinds(notes) -> list[str]:
    return [n.kind for n in notes]


def clear_flags(dates, size: int = N) -> np.ndarray:
    return np.zeros((len(dates), size, size), np.uint8)


FOUR = pd.date_range("2021-03-01", periods=4, freq="30D")  # bi-temporal (90 days)
TWO_YEARS = pd.date_range("2020-01-01", "2021-12-31", freq="20D")  # series (37 dates)
THREE_YEARS = pd.date_range("2019-01-01", "2021-12-31", freq="20D")  # series (55 dates)


# --- 1. an index with a band missing -------------------------------------------------------------

NEEDS = {"ndvi": ("NDVI", ("nir", "red")), "nbr": ("NBR", ("nir", "swir22")),
         "ndwi": ("NDWI", ("green", "nir")), "mndwi": ("MNDWI", ("green", "swir16")),
         "ndbi": ("NDBI", ("swir16", "nir")), "ndmi": ("NDMI", ("nir", "swir16")),
         "bsi": ("BSI", ("swir16", "red", "nir", "blue"))}
CASES = [(name, band) for name, (_, need) in NEEDS.items() for band in need]


def test_needs_table_covers_every_index() -> None:
    assert sorted(NEEDS) == sorted(INDICES)


@pytest.mark.parametrize("name,missing", CASES)
def test_index_without_a_band_names_index_band_and_bands_present(name: str, missing: str) -> None:
    cube = make_cube(FOUR[:2])
    present = [b for b in BANDS if b != missing]
    with pytest.raises(UnknownBandError) as exc:
        INDICES[name](cube.sel(band=present))
    msg = str(exc.value)
    assert NEEDS[name][0] in msg and repr(missing) in msg
    assert str(present) in msg  # the bands the cube has
    with pytest.raises(UnknownBandError, match=NEEDS[name][0]):
        compute_indices(cube.sel(band=present), [name])
    # with every band present the index is a finite lazy raster in [-1, 1]
    value = INDICES[name](cube).compute()
    assert value.dims == ("time", "y", "x") and np.isfinite(value).all()
    assert float(abs(value).max()) <= 1


def test_index_names_every_missing_band_and_rejects_bandless_input() -> None:
    cube = make_cube(FOUR[:2])
    with pytest.raises(UnknownBandError, match=r"lacks \['red', 'blue'\]"):
        INDICES["bsi"](cube.sel(band=["green", "nir", "swir16"]))
    with pytest.raises(UnknownBandError, match="'band' dimension"):
        INDICES["ndvi"](cube.isel(time=0, band=0))
    with pytest.raises(UnknownBandError, match="no index requested"):
        compute_indices(cube, [])
    with pytest.raises(UnknownBandError, match="unknown indices"):
        compute_indices(cube, ["evi"])


# --- 2. a period without a clear observation -----------------------------------------------------


def test_all_cloud_in_the_period_raises_naming_period_and_dates(tmp_path: Path) -> None:
    flags = clear_flags(FOUR)
    flags[:] = masks.CLOUD
    with pytest.raises(InsufficientDataError, match="no clear observation between 2021-03-01 and 2021-05-30") as exc:
        analyze(make_cube(FOUR, flags), workdir=tmp_path)
    assert "2021-03-31" in str(exc.value) and "cloud" in str(exc.value)


def test_cloudy_analysis_period_with_clear_baseline_raises(tmp_path: Path) -> None:
    flags = clear_flags(FOUR)
    flags[2:] = masks.SHADOW  # the baseline (first two dates) is clear, the period is not
    with pytest.raises(InsufficientDataError, match="no clear observation between 2021-04-30"):
        analyze(make_cube(FOUR, flags), start="2021-04-30", workdir=tmp_path)


def test_single_clear_date_raises_with_clear_counts(tmp_path: Path) -> None:
    flags = clear_flags(FOUR)
    flags[[0, 1, 3]] = masks.CLOUD
    with pytest.raises(InsufficientDataError, match="only 1 of the 4 acquisitions") as exc:
        analyze(make_cube(FOUR, flags), workdir=tmp_path)
    assert "2021-03-01 (0 clear px)" in str(exc.value) and f"2021-04-30 ({N * N} clear px)" in str(exc.value)


def test_cloudy_before_period_is_stated_and_skipped(tmp_path: Path) -> None:
    dates = pd.date_range("2021-03-01", periods=6, freq="30D")
    flags = clear_flags(dates)
    flags[:2] = masks.CLOUD  # the first 30 days: no clear observation at all
    res = analyze(make_cube(dates, flags, change_at=4), magnitude_method="cva", workdir=tmp_path).compute()
    assert res.mode == "bitemporal"
    gap = [n for n in texts(res.notes) if "no clear observation from 2021-03-01 to 2021-03-31" in n]
    assert gap and gap[0].startswith("insufficient data") and "before period is 2021-04-30" in gap[0]
    moved = [n for n in res.notes if n.kind == "period_moved"]
    assert len(moved) == 1 and moved[0].dates == ("2021-03-01", "2021-03-31")
    np.testing.assert_array_equal(res.clear_counts.values, [0, 0] + [N * N] * 4)
    mask = res.layers.change_mask.values
    block = np.zeros(mask.shape, bool)
    block[2:6, N - 6:N - 2] = True  # the vegetation that turns to soil
    assert set(np.unique(mask)) == {0, 1} and mask[block].mean() >= 0.9 and mask[~block].mean() <= 0.1
    ev = build_evidence(res.layers.change_mask, {0: "no_change", 1: "change"},
                        clear_counts=res.clear_counts, notes=res.notes)
    assert ev.quality.status == "insufficient_data" and ev.quality.clear_observations[0].clear_count == 0


def test_first_year_all_cloud_in_a_series_is_stated(tmp_path: Path) -> None:
    flags = clear_flags(THREE_YEARS)
    flags[THREE_YEARS < "2020-01-01"] = masks.CLOUD
    res = analyze(make_cube(THREE_YEARS, flags), magnitude_method="cva", workdir=tmp_path)
    assert res.mode == "series"
    assert any(n.startswith("insufficient data: no clear observation from 2019-01-01 to 2019-12-")
               for n in texts(res.notes)), res.notes
    base = [n for n in texts(res.notes) if "no seasonal baseline" in n]
    assert base and "acquisition(s) from 2020-0" in base[0] and "to 2020-12-" in base[0], res.notes
    assert {"period_moved", "no_seasonal_baseline"} <= set(kinds(res.notes))


def test_no_date_with_a_seasonal_baseline_raises(tmp_path: Path) -> None:
    flags = clear_flags(TWO_YEARS)
    cloudy = (TWO_YEARS >= "2020-02-01") & (TWO_YEARS < "2021-06-01")
    flags[cloudy] = masks.CLOUD  # clear: January 2020, then June 2021 on
    with pytest.raises(InsufficientDataError, match="no acquisition between 2021-06-01 and 2021-12-.* "
                       "has a clear same-season observation a year earlier"):
        analyze(make_cube(TWO_YEARS, flags), start="2021-06-01", period_days=600, workdir=tmp_path)


def test_region_never_clear_is_nodata_in_series_with_a_note(tmp_path: Path) -> None:
    flags = clear_flags(TWO_YEARS)
    flags[:, :3, :] = masks.CLOUD  # the northern quarter is never clear
    res = analyze(make_cube(TWO_YEARS, flags), magnitude_method="cva", workdir=tmp_path).compute()
    assert res.mode == "series"
    cls = res.layers.change_class.values
    assert (cls[:3] == NODATA_CLASS).all() and (cls[3:] != NODATA_CLASS).all()
    assert np.isnan(res.layers.confidence.values[:3]).all()
    assert (res.layers.change_mask.values[:3] == NODATA_CLASS).all()
    assert np.isnan(res.layers.change_magnitude.values[:3]).all()
    note = [n for n in texts(res.notes) if "25.0% of the AOI" in n]
    assert note and "between 2020-01-01 and 2021-12-" in note[0] and "not no change" in note[0]
    unseen = [n for n in res.notes if n.kind == "unseen_pixels"]
    assert len(unseen) == 1 and unseen[0].fraction == pytest.approx(0.25) and unseen[0].dates[0] == "2020-01-01"
    ev = build_evidence(res.layers.change_class, CHANGE_CLASSES, valid_mask=res.layers.change_class != 255,
                        notes=res.notes)
    assert ev.aoi.valid_pixels == N * (N - 3)
    assert sum(c.n_pixels for c in ev.classes) == N * (N - 3)  # nodata is not counted as no change
    assert ev.quality.status == "insufficient_data" and note[0] in texts(ev.quality.notes)


def test_region_clear_only_before_the_period_is_nodata(tmp_path: Path) -> None:
    flags = clear_flags(TWO_YEARS)
    flags[TWO_YEARS >= "2021-06-01", :, :4] = masks.CLOUD  # the west: clear in the baseline only
    res = analyze(make_cube(TWO_YEARS, flags), start="2021-06-01", magnitude_method="cva",
                  workdir=tmp_path).compute()
    cls = res.layers.change_class.values
    assert (cls[:, :4] == NODATA_CLASS).all() and (cls[:, 4:] != NODATA_CLASS).all()
    assert any("33.3% of the AOI" in n and "between 2021-06-01" in n for n in texts(res.notes)), res.notes


def test_region_never_clear_is_nodata_in_bitemporal(tmp_path: Path) -> None:
    flags = clear_flags(FOUR)
    flags[:, :, :3] = masks.NODATA
    res = analyze(make_cube(FOUR, flags), magnitude_method="cva", workdir=tmp_path).compute()
    mask = res.layers.change_mask.values
    assert mask.dtype == np.uint8 and (mask[:, :3] == NODATA_CLASS).all()
    assert set(np.unique(mask[:, 3:])) == {0, 1}
    assert np.isnan(res.layers.change_magnitude.values[:, :3]).all()
    assert any("25.0% of the AOI (36 of 144 pixels)" in n for n in texts(res.notes)), res.notes


# --- 3. inputs that do not overlap in space ------------------------------------------------------


def test_periods_disjoint_in_space_raise_naming_both_extents(tmp_path: Path) -> None:
    flags = clear_flags(FOUR)
    flags[:2, :, 6:] = masks.NODATA  # before: the west half only
    flags[2:, :, :6] = masks.NODATA  # after: the east half only
    with pytest.raises(InsufficientDataError, match="no pixel is clear in both periods") as exc:
        analyze(make_cube(FOUR, flags), workdir=tmp_path)
    msg = str(exc.value)
    assert "(500000.0, 4999880.0, 500060.0, 5000000.0)" in msg  # before
    assert "(500060.0, 4999880.0, 500120.0, 5000000.0)" in msg  # after
    assert f"EPSG:{EPSG}" in msg


def test_series_with_disjoint_periods_has_nodata_magnitude_and_a_note(tmp_path: Path) -> None:
    flags = clear_flags(TWO_YEARS)
    flags[TWO_YEARS < "2020-09-01", :, 6:] = masks.NODATA  # the before period (240 days): west only
    flags[TWO_YEARS >= "2021-04-20", :, :6] = masks.NODATA  # the after period: east only
    res = analyze(make_cube(TWO_YEARS, flags), workdir=tmp_path).compute()
    assert res.mode == "series"
    assert np.isnan(res.layers.change_magnitude.values).all()
    assert (res.layers.change_mask.values == NODATA_CLASS).all()
    assert any(n.startswith("insufficient data: no change magnitude") for n in texts(res.notes)), res.notes
    assert (res.layers.change_class.values != NODATA_CLASS).all()  # every pixel is clear somewhere


def test_require_overlap_names_both_extents() -> None:
    a = make_cube(FOUR[:1]).isel(time=0)
    b = a.assign_coords(x=a.x + 1000.0)
    with pytest.raises(InsufficientDataError, match="do not overlap") as exc:
        require_overlap(a, b)
    assert "(500000.0, 4999880.0, 500120.0, 5000000.0)" in str(exc.value)
    assert "(501000.0, 4999880.0, 501120.0, 5000000.0)" in str(exc.value)
    assert require_overlap(a, a.isel(x=slice(6, None))) == (500060.0, 4999880.0, 500120.0, 5000000.0)
    assert extent_of(a.isel(y=slice(0, 2))) == (500000.0, 4999980.0, 500120.0, 5000000.0)
    with pytest.raises(GridError, match="EPSG:32634"):
        require_overlap(a, b.assign_attrs(crs="EPSG:32634"))


# --- 4. inverted, empty or too short periods -----------------------------------------------------


def test_start_after_end_is_a_period_error(tmp_path: Path) -> None:
    with pytest.raises(PeriodError, match="start 2021-05-01 is after end 2021-03-15"):
        analyze(make_cube(FOUR), start="2021-05-01", end="2021-03-15", workdir=tmp_path)
    with pytest.raises(PeriodError, match="'yesterday' is not a date"):
        analyze(make_cube(FOUR), start="yesterday", workdir=tmp_path)


@pytest.mark.parametrize("kw,asked", [
    (dict(start="2021-08-01"), "on or after 2021-08-01"),
    (dict(end="2021-01-31"), "on or before 2021-01-31"),
    (dict(start="2021-03-05", end="2021-03-25"), "between 2021-03-05 and 2021-03-25"),
])
def test_period_outside_the_cube_dates_raises(tmp_path: Path, kw: dict, asked: str) -> None:
    with pytest.raises(InsufficientDataError, match=f"no acquisition {asked}") as exc:
        analyze(make_cube(FOUR), workdir=tmp_path, **kw)
    assert "run from 2021-03-01 to 2021-05-30" in str(exc.value)


def test_single_date_cube_raises(tmp_path: Path) -> None:
    with pytest.raises(InsufficientDataError, match=r"1 acquisition \(2021-03-01\)"):
        analyze(make_cube(FOUR[:1]), workdir=tmp_path)
    with pytest.raises(UnknownBandError, match="swir22"):
        analyze(make_cube(FOUR, bands=BANDS[:5]), workdir=tmp_path)


# --- through run_analysis: STAC items -> COGs -> evidence.json -----------------------------------

SCL_CLEAR, SCL_CLOUD = 4, 9


def _items(root: Path, footprints: list[tuple[int, int]], scl_cloud_cols: int = 0) -> list[dict]:
    """One Sentinel-2 item per date of FOUR, 16 x 16 px at 10 m; item k covers columns
    ``footprints[k]`` (its own grid); SCL says cloud on the first ``scl_cloud_cols`` columns."""
    rng = np.random.default_rng(3)
    items = []
    for k, when in enumerate(FOUR):
        c0, c1 = footprints[k]
        t = Affine(10, 0, X0 + 10 * c0, 0, -10, Y0)
        w = c1 - c0
        assets = {}
        spec = SOIL if k >= 2 else VEG
        for j, band in enumerate(BANDS):
            dn = np.full((16, w), VEG[j] * 1e4)
            dn[4:10, max(0, 8 - c0):max(0, 14 - c0)] = spec[j] * 1e4  # a block turns to soil
            dn = (dn * (1 + 0.05 * rng.standard_normal(dn.shape))).astype(np.uint16)
            path = write_cog(root / f"d{k}_{band}.tif", dn, t, EPSG)
            assets[band] = {"href": str(path), "proj:shape": [16, w], "proj:transform": list(t)[:6],
                            "raster:bands": [{"scale": 0.0001, "offset": 0.0, "nodata": 0}]}
        scl = np.full((16, w), SCL_CLEAR, np.uint8)
        scl[:, :max(0, scl_cloud_cols - c0)] = SCL_CLOUD
        path = write_cog(root / f"d{k}_scl.tif", scl, t, EPSG)
        assets["scl"] = {"href": str(path), "proj:shape": [16, w], "proj:transform": list(t)[:6]}
        items.append(item_dict(f"S2A_{k}", f"{when.date()}T10:00:00Z", "sentinel-2-l2a", "sentinel-2a",
                               EPSG, assets))
    return items


def test_run_analysis_cloudy_region_is_nodata_in_cog_and_evidence(tmp_path: Path) -> None:
    items = _items(tmp_path, [(0, 16)] * 4, scl_cloud_cols=4)
    out = run_analysis(items, tmp_path / "out")
    assert out.mode == "bitemporal"
    with rasterio.open(out.files["change_mask"]) as src:
        mask = src.read(1)
        assert src.nodata == NODATA_CLASS
    assert (mask[:, :4] == NODATA_CLASS).all() and set(np.unique(mask[:, 4:])) == {0, 1}
    ev = json.loads(Path(out.files["evidence"]).read_text())
    assert ev["quality"]["status"] == "insufficient_data"
    assert ev["aoi"]["valid_pixels"] == 16 * 12
    assert any("25.0% of the AOI (64 of 256 pixels)" in r for r in [n["text"] for n in ev["quality"]["notes"]])
    # ... and the CLI's summary says so
    assert any(line.startswith("  note: insufficient data") for line in summary_lines(out))


def test_run_analysis_periods_on_disjoint_footprints_raise(tmp_path: Path) -> None:
    items = _items(tmp_path, [(0, 8), (0, 8), (8, 16), (8, 16)])
    with pytest.raises(InsufficientDataError, match="no pixel is clear in both periods") as exc:
        run_analysis(items, tmp_path / "out")
    msg = str(exc.value)
    assert "before period (2021-03-01..2021-03-31) has clear pixels within (500000.0, 4999840.0, 500080.0, 5000000.0)" in msg
    assert "after period (2021-04-30..2021-05-30) within (500080.0, 4999840.0, 500160.0, 5000000.0)" in msg
