"""Stage 1, io: from an AOI and a period to a lazy reflectance cube.

``aoi`` parses bboxes and GeoJSON; ``catalog`` searches STAC APIs and local static catalogs;
``sensors`` (with ``config/sensors.json``) and ``items`` normalise items of any shape; ``masks``
decodes SCL / QA_PIXEL into quality flags; ``reader`` reads DN windows; ``cube`` builds the
lazy ``(time, band, y, x)`` cube (reflectance 0-1, NaN where masked) on one explicit grid.
"""
