"""Surface reflectance signatures (0-1) of the land covers, as data: the spectral library the
synthetic scenes are drawn from and the change engine unmixes against.

Every material is a spectrum sampled at a few wavelength nodes (micrometres); a band takes the
linear interpolation of the spectrum at its centre wavelength from ``config/sensors.json``, so
Sentinel-2 and Landsat see the same surfaces at their own band centres. Mixed pixels are linear
mixtures of the endmembers (``mix``).

Sources. The shapes and levels follow published library spectra, read by hand at the nodes
(approximately, to about +-0.01 reflectance) and brought to canopy / surface level; they are not
resampled from the library files, which are not shipped:

- green vegetation: USGS Spectral Library v7 (splib07a, Kokaly et al. 2017, doi:10.5066/F7RR1WDJ),
  vegetation chapter (e.g. Lawn_Grass GDS91, Aspen_Leaf-A DW92-2), and ECOSTRESS v1 (Meerdink et al.
  2019) tree / grass spectra; closed canopy levels: red ~0.03, NIR ~0.40, red edge rising over
  0.70-0.78 um, SWIR16 ~0.19, SWIR22 ~0.09. Crops/herbaceous: brighter NIR (~0.47).
- dry (non-photosynthetic) vegetation: splib07a Dry_Long_Grass AV87-2 and ECOSTRESS dry grass:
  red ~0.17, NIR ~0.29, cellulose/lignin SWIR16 ~0.38 > NIR.
- bare soil: ECOSTRESS (ASTER) soil spectra, brown loam / Alfisol: monotonic rise to SWIR16 ~0.35,
  clay absorption lowering SWIR22 (~0.30).
- water: splib07a / ECOSTRESS water spectra; clear water NIR < 0.01, SWIR ~0; turbid
  (sediment-laden) water brighter green/red (~0.10 / 0.085) with NIR still < 0.02.
- built-up: ECOSTRESS man-made materials (concrete, asphalt, roofing tiles) as a mix: flat
  ~0.12-0.27 with SWIR16 > NIR (positive NDBI).
- burned (char/ash): char/ash spectra of burn-severity field libraries (FRAMES / Joint Fire Science
  Program) and post-fire Landsat/Sentinel-2 reflectances (Key & Benson 2006): dark, NIR ~0.09,
  SWIR22 ~0.16 > NIR (negative NBR).
- clouds / cirrus: bright, spectrally flat thick cloud (~0.45-0.60, lower in SWIR22) and thin cirrus
  brightening mostly the visible; not from a library, typical L2A values over cloud.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rsvlm_temporal.errors import unknown_name
from rsvlm_temporal.io.sensors import sensor_table

#: wavelength nodes (micrometres) at which every signature is tabulated
NODES_UM: tuple[float, ...] = (
    0.400, 0.443, 0.490, 0.560, 0.620, 0.665, 0.680, 0.705, 0.740, 0.783, 0.842, 0.865, 0.945,
    1.610, 2.190, 2.400,
)

#: surface reflectance (0-1) of each endmember at ``NODES_UM`` (sources in the module docstring)
SIGNATURES: dict[str, tuple[float, ...]] = {
    #                 400    443    490    560    620    665    680    705    740    783    842    865    945    1610   2190   2400
    "water_clear":  (0.060, 0.058, 0.052, 0.040, 0.025, 0.018, 0.016, 0.013, 0.010, 0.008, 0.006, 0.005, 0.004, 0.002, 0.001, 0.001),
    "water_turbid": (0.060, 0.068, 0.078, 0.100, 0.095, 0.085, 0.080, 0.060, 0.035, 0.026, 0.019, 0.017, 0.011, 0.004, 0.002, 0.002),
    "forest":       (0.022, 0.025, 0.030, 0.060, 0.038, 0.030, 0.029, 0.095, 0.260, 0.360, 0.400, 0.410, 0.410, 0.190, 0.085, 0.070),
    "crop":         (0.028, 0.030, 0.040, 0.085, 0.052, 0.040, 0.038, 0.115, 0.310, 0.420, 0.470, 0.480, 0.470, 0.240, 0.110, 0.095),
    "dry_vegetation": (0.050, 0.060, 0.080, 0.120, 0.150, 0.165, 0.170, 0.190, 0.220, 0.250, 0.280, 0.290, 0.300, 0.380, 0.280, 0.250),
    "bare_soil":    (0.045, 0.060, 0.080, 0.120, 0.155, 0.170, 0.175, 0.190, 0.210, 0.230, 0.250, 0.260, 0.270, 0.350, 0.300, 0.290),
    "built_up":     (0.120, 0.135, 0.150, 0.165, 0.175, 0.182, 0.184, 0.190, 0.200, 0.210, 0.220, 0.222, 0.230, 0.270, 0.250, 0.240),
    "burned":       (0.035, 0.040, 0.045, 0.050, 0.055, 0.060, 0.061, 0.065, 0.072, 0.080, 0.088, 0.092, 0.100, 0.140, 0.160, 0.160),
}

#: endmember order used by every fraction array (axis 0 of ``fractions``)
MATERIALS: tuple[str, ...] = tuple(SIGNATURES)
MATERIAL_CODES: dict[str, int] = {m: i for i, m in enumerate(MATERIALS)}

#: thick cloud top reflectance and thin cirrus reflectance at ``NODES_UM`` (typical L2A values)
CLOUD_SIGNATURE: tuple[float, ...] = (
    0.52, 0.52, 0.51, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.49, 0.49, 0.49, 0.47, 0.42, 0.30, 0.28,
)
CIRRUS_SIGNATURE: tuple[float, ...] = (
    0.30, 0.28, 0.26, 0.22, 0.20, 0.19, 0.19, 0.18, 0.18, 0.17, 0.17, 0.17, 0.16, 0.12, 0.08, 0.07,
)
#: fraction of the sunlit reflectance that remains in a cloud shadow (diffuse light only)
SHADOW_TRANSMITTANCE: float = 0.35


def _interp(table: Sequence[float], wavelengths_um: Sequence[float]) -> np.ndarray:
    return np.interp(np.asarray(wavelengths_um, dtype=float), NODES_UM, np.asarray(table, dtype=float))


def band_wavelengths(sensor: str, bands: Sequence[str]) -> np.ndarray:
    """Centre wavelengths (micrometres) of ``bands`` of ``sensor`` (a sensors.json id)."""
    spec = sensor_table()[sensor]
    return np.array([spec.band(b).wavelength for b in bands], dtype=float)


def signature(material: str, wavelengths_um: Sequence[float]) -> np.ndarray:
    """Reflectance (0-1) of one endmember at the given wavelengths (micrometres)."""
    try:
        table = SIGNATURES[material]
    except KeyError:
        raise unknown_name("material", material, MATERIALS) from None
    return _interp(table, wavelengths_um)


def signature_matrix(sensor: str, bands: Sequence[str]) -> np.ndarray:
    """Endmember matrix (n_materials, n_bands) of reflectance for ``bands`` of ``sensor``.

    Rows follow :data:`MATERIALS`; ``mix(fractions, matrix)`` gives the pixel spectra.
    """
    wl = band_wavelengths(sensor, bands)
    return np.stack([_interp(SIGNATURES[m], wl) for m in MATERIALS])


def cloud_spectra(sensor: str, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(thick cloud, thin cirrus) reflectance per band of ``sensor``, each (n_bands,)."""
    wl = band_wavelengths(sensor, bands)
    return _interp(CLOUD_SIGNATURE, wl), _interp(CIRRUS_SIGNATURE, wl)


def mix(fractions: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Linear mixture: fractions (n_materials, ...) x matrix (n_materials, n_bands) -> (n_bands, ...)."""
    return np.tensordot(matrix.T, fractions, axes=(1, 0))


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b), NaN where a + b == 0 (NDVI: nir, red; NBR: nir08, swir22)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, (a - b) / np.where(den != 0, den, 1.0), np.nan)


def index_of(
    refl: np.ndarray, bands: Sequence[str], index: str, axis: int = 0
) -> np.ndarray:
    """A spectral index from reflectance with bands on ``axis``: "ndvi", "nbr", "mndwi" or "ndbi".

    NDVI = (nir - red)/(nir + red); NBR = (nir08 - swir22)/(nir08 + swir22) (Key & Benson 2006,
    Sentinel-2 B8A/B12, Landsat B5/B7); MNDWI = (green - swir16)/(green + swir16);
    NDBI = (swir16 - nir)/(swir16 + nir). ``nir`` falls back to ``nir08`` (Landsat) and back.
    """
    pairs: Mapping[str, tuple[str, str]] = {
        "ndvi": ("nir", "red"), "nbr": ("nir08", "swir22"),
        "mndwi": ("green", "swir16"), "ndbi": ("swir16", "nir"),
    }
    a_name, b_name = pairs[index]
    names = list(bands)

    def pick(name: str) -> np.ndarray:
        alt = {"nir": "nir08", "nir08": "nir"}.get(name)
        if name not in names and alt in names:
            name = alt  # type: ignore[assignment]
        return np.take(refl, names.index(name), axis=axis)

    return normalized_difference(pick(a_name), pick(b_name))
