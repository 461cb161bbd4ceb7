"""Synthetic Sentinel-2 / Landsat scenes with known truth (the offline demo and evaluation set)."""
