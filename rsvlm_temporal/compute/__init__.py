"""The dask engine every stage shares: ``cluster`` (threads, LocalCluster or a remote
scheduler; worker environment), ``store`` (streaming dask blocks into a tiled on-disk stack
in whole tiles, and reading it back lazily), ``blocks`` (per-block labels, validity and the
patch merge across block borders) and ``nanstats`` (NaN order statistics in one sort).
It imports no stage.
"""
