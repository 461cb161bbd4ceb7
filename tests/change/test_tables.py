"""Lookup tables, not if/elif chains: one table feeds the function, the CLI's choices and the
error that lists the valid names, and names are checked before any pixel is read."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from rsvlm_temporal.change.analysis import analyze
from rsvlm_temporal.change.magnitude import METHOD_TABLE, METHODS, change_magnitude, check_method
from rsvlm_temporal.change.thresholds import THRESHOLDS, check_threshold
from rsvlm_temporal.cli import build_parser
from rsvlm_temporal.errors import ParameterError, UnknownNameError
from rsvlm_temporal.synth import SCENARIO_NAMES, make_scene


class _Untouchable:
    """A stand-in for pixels: any attempt to read it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"pixels were touched ({name}) before the names were checked")


def test_unknown_method_and_threshold_list_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown change method 'nope'; expected one of \['cva', "):
        check_method("nope")
    with pytest.raises(UnknownNameError, match="unknown threshold 'median'; expected one of"):
        check_method("irmad", "median")
    with pytest.raises(ParameterError, match="alpha must be in"):
        check_threshold("chi2", alpha=2.0)
    with pytest.raises(ParameterError, match="finite"):
        check_threshold(float("nan"))
    assert check_method("IRMAD") == "irmad" and check_threshold(0.3) == "fixed"
    assert set(METHODS) == set(METHOD_TABLE) and set(THRESHOLDS) == {"otsu", "mixture", "chi2", "auto", "auto-0.01", "auto-0.001"}


def test_names_are_checked_before_any_pixel_is_read() -> None:
    cube = _Untouchable()
    with pytest.raises(UnknownNameError):
        analyze(cube, magnitude_method="bogus")  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError):
        change_magnitude(cube, cube, method="bogus")  # type: ignore[arg-type]


def test_every_method_of_the_table_runs() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((3, 12, 12)).astype("float32")
    b = a.copy()
    b[:, :4, :4] += 0.5
    attrs = {"crs": "EPSG:32633", "epsg": 32633, "transform": (10.0, 0.0, 0.0, 0.0, -10.0, 120.0),
             "resolution": (10.0, 10.0)}
    coords = {"band": ["red", "nir", "swir16"], "y": 115.0 - 10 * np.arange(12), "x": 5.0 + 10 * np.arange(12)}
    before = xr.DataArray(a, dims=("band", "y", "x"), coords=coords, attrs=attrs)
    after = xr.DataArray(b, dims=("band", "y", "x"), coords=coords, attrs=attrs)
    for name in METHODS:
        # otsu: the rule this 144-pixel toy was written for (the default "auto" tests for two
        # modes first, which a 144-pixel histogram of uniform noise does not show for every method)
        mag = change_magnitude(before, after, method=name, threshold="otsu")
        assert mag.mask.values[:4, :4].mean() > 0.9, name


def test_the_cli_takes_its_choices_from_the_tables() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    assert list(sub["analyze"]._option_string_actions["--method"].choices) == list(METHODS)
    assert list(sub["synth"]._option_string_actions["--scenario"].choices) == list(SCENARIO_NAMES)
    run = subprocess.run([sys.executable, "-m", "rsvlm_temporal.cli", "analyze", "--catalog", "nowhere.json",
                          "--out", "unused", "--method", "nope"], capture_output=True, text=True)
    assert run.returncode == 2
    assert "invalid choice: 'nope'" in run.stderr and "irmad" in run.stderr and "cva-raw" in run.stderr
    assert "Traceback" not in run.stderr


def test_unknown_scenario_lists_the_names() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'volcano'; expected one of"):
        make_scene("volcano")
