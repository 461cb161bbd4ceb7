"""Stage 6, outputs: Cloud-Optimized GeoTIFFs (``cog``), GeoJSON polygons in EPSG:4326
(``polygons``), PNG quicklooks (``quicklook``), the exports and evidence of a run (``results``)
and its human-readable summary (``report``). Every write is atomic.
"""
