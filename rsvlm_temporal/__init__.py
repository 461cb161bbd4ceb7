"""rsvlm-temporal: what changed here, and when? Landsat + Sentinel-2 time series analysis."""

__version__ = "0.1.0"
