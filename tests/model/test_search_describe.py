"""The one search sentence (outputs.model_search.SearchResult.describe), shared by `rsvlm find`
and the dashboard's search."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rsvlm_temporal.outputs.model_search import SearchResult


def _score(nearest: str) -> xr.DataArray:
    return xr.DataArray(np.zeros((2, 2), np.float32), dims=("y", "x"), attrs={"nearest_class": nearest})


def test_describe_says_how_much_where_and_when() -> None:
    r = SearchResult("burned forest", _score("burn"), [("2021-07-04", 0.75), ("2021-07-09", 0.25)], "north-east", 12.5)
    assert r.describe() == ("12.5 ha match \u201cburned forest\u201d, mostly in the north-east; "
                            "changed on 2021-07-04 (75%), 2021-07-09 (25%).")
    undated = SearchResult("burned forest", _score("burn"), [], "centre", 0.3)
    assert undated.describe().endswith("mostly in the centre; changed on no learned date.")


def test_describe_says_when_nothing_matches_and_the_nearest_class() -> None:
    r = SearchResult("new buildings", _score("urban"))
    assert r.describe() == "Nothing in this run matches \u201cnew buildings\u201d (nearest class: urban)."
