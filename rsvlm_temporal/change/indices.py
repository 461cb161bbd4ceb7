"""Spectral indices as lazy xarray operations on a reflectance cube (band dimension "band").

Every index is a normalised difference or ratio of surface reflectance (0-1) and is unitless,
in [-1, 1]. Each function needs specific bands and raises :class:`UnknownBandError` naming the
index, every missing band and the bands the cube has. Division by zero gives NaN (never inf).
"""

from __future__ import annotations

from typing import Callable

import xarray as xr

from rsvlm_temporal.errors import UnknownBandError


def _bands(cube: xr.DataArray, index: str, names: tuple[str, ...]) -> list[xr.DataArray]:
    """The bands ``names`` of ``cube`` (band dimension dropped), or :class:`UnknownBandError`
    naming the index, every missing band and the bands the cube has."""
    if "band" not in cube.dims or "band" not in cube.coords:
        raise UnknownBandError(
            f"{index} needs bands {list(names)} along a 'band' dimension with band names as its "
            f"coordinate; the input has dims {tuple(cube.dims)} and no band names"
        )
    present = [str(b) for b in cube.band.values]
    missing = [n for n in names if n not in present]
    if missing:
        raise UnknownBandError(
            f"{index} needs bands {list(names)}, but the cube lacks {missing} (it has {present}); "
            f"load it with bands including {missing}"
        )
    return [cube.sel(band=n, drop=True) for n in names]


def _nd(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    den = a + b
    return ((a - b) / den.where(den != 0)).astype("float32")


def ndvi(cube: xr.DataArray) -> xr.DataArray:
    """NDVI = (NIR - Red) / (NIR + Red). Rouse et al. (1974), Monitoring vegetation systems in
    the Great Plains with ERTS."""
    return _nd(*_bands(cube, "NDVI", ("nir", "red"))).rename("ndvi")


def nbr(cube: xr.DataArray) -> xr.DataArray:
    """NBR = (NIR - SWIR2) / (NIR + SWIR2), SWIR2 ~2.2 um. Key & Benson (2006), Landscape
    Assessment, USDA FS RMRS-GTR-164-CD (FIREMON)."""
    return _nd(*_bands(cube, "NBR", ("nir", "swir22"))).rename("nbr")


def ndwi(cube: xr.DataArray) -> xr.DataArray:
    """NDWI = (Green - NIR) / (Green + NIR), open water > 0. McFeeters (1996), IJRS 17(7)."""
    return _nd(*_bands(cube, "NDWI", ("green", "nir"))).rename("ndwi")


def mndwi(cube: xr.DataArray) -> xr.DataArray:
    """MNDWI = (Green - SWIR1) / (Green + SWIR1), SWIR1 ~1.6 um, open water > 0. Xu (2006),
    IJRS 27(14)."""
    return _nd(*_bands(cube, "MNDWI", ("green", "swir16"))).rename("mndwi")


def ndbi(cube: xr.DataArray) -> xr.DataArray:
    """NDBI = (SWIR1 - NIR) / (SWIR1 + NIR). Zha, Gao & Ni (2003), IJRS 24(3)."""
    return _nd(*_bands(cube, "NDBI", ("swir16", "nir"))).rename("ndbi")


def ndmi(cube: xr.DataArray) -> xr.DataArray:
    """NDMI = (NIR - SWIR1) / (NIR + SWIR1), vegetation moisture. Gao (1996) NDWI, RSE 58(3);
    named NDMI by Wilson & Sader (2002), RSE 80(3)."""
    return _nd(*_bands(cube, "NDMI", ("nir", "swir16"))).rename("ndmi")


def bsi(cube: xr.DataArray) -> xr.DataArray:
    """BSI = ((SWIR1 + Red) - (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue)), bare soil index.
    Rikimaru, Roy & Miyatake (2002), Tropical Ecology 43(1)."""
    swir16, red, nir, blue = _bands(cube, "BSI", ("swir16", "red", "nir", "blue"))
    return _nd(swir16 + red, nir + blue).rename("bsi")


INDICES: dict[str, Callable[[xr.DataArray], xr.DataArray]] = {
    "ndvi": ndvi, "nbr": nbr, "ndwi": ndwi, "mndwi": mndwi, "ndbi": ndbi, "ndmi": ndmi, "bsi": bsi,
}


def compute_indices(cube: xr.DataArray, names: str | list[str] | tuple[str, ...]) -> xr.Dataset:
    """Several indices at once as a lazy Dataset (time, y, x), keeping the cube's coords/attrs."""
    if isinstance(names, str):
        names = [names]
    if not names:
        raise UnknownBandError(f"no index requested; expected some of {sorted(INDICES)}")
    unknown = [n for n in names if n not in INDICES]
    if unknown:
        raise UnknownBandError(f"unknown indices {unknown}; expected some of {sorted(INDICES)}")
    ds = xr.Dataset({n: INDICES[n](cube) for n in names})
    ds.attrs = dict(cube.attrs)
    return ds
