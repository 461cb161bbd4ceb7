"""Stage 2, change: what changed and when, from the spectral physics of the cube.

``indices`` (NDVI, NBR, MNDWI, ...), ``spectra`` (the spectral library), ``unmixing`` (fully
constrained unmixing), ``series`` (the per-pixel series engine: classes, dates, dNBR severity,
flood timing), ``magnitude`` (IR-MAD / MAD / iSFA / CVA change magnitude), ``thresholds``
(Otsu, mixture) and ``analysis`` (:func:`analyze`, which runs them over a cube lazily).
"""
