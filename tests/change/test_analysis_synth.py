"""The change engine against the synthetic generator's truth, every scenario, through the user
path (COGs + static STAC catalog -> load_cube -> analyze). Small scenes: 30 x 30 px, three years
of Sentinel-2 at a 10-day revisit with clouds and shadows; the scenarios run in two processes.

Targets (issue 3): F1 >= 0.95 per change class, burn severity class agreement >= 0.9, change date
within one revisit for >= 90% of changed pixels, < 1% changed area on the seasonal-crop control.
"""

from __future__ import annotations

import pytest

from rsvlm_temporal.evaluate.synthetic import evaluate_synthetic
from rsvlm_temporal.synth import SCENARIO_NAMES

OPTIONS = dict(size=30, start="2019-01-01", end="2021-12-31", sensors=("s2",), s2_revisit_days=10, seed=1)
TRUTH_CLASS = {"wildfire": "burn", "flood": "flood", "deforestation": "vegetation_loss",
               "urban_growth": "built_up_gain"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return evaluate_synthetic(SCENARIO_NAMES, tmp_path_factory.mktemp("scenes"), workers=2, **OPTIONS)


@pytest.mark.parametrize("scenario", sorted(TRUTH_CLASS))
def test_change_class_f1_and_dates(reports: dict, scenario: str) -> None:
    r = reports[scenario]
    m = r["classes"][TRUTH_CLASS[scenario]]
    assert m["truth_px"] > 50  # the scene has a real event to find
    assert m["f1"] >= 0.95, r["classes"]
    # no other class takes a noticeable share of the AOI
    others = sum(v["predicted_px"] for k, v in r["classes"].items() if k != TRUTH_CLASS[scenario])
    assert others <= 0.01 * 30 * 30, r["classes"]
    assert r["date_within_revisit_of_first_clear_view"] >= 0.9, r
    assert r["date_within_revisit"] >= 0.9, r


def test_burn_severity_agreement(reports: dict) -> None:
    assert reports["wildfire"]["severity_agreement"] >= 0.9


def test_seasonal_crops_show_no_change(reports: dict) -> None:
    r = reports["seasonal_crops"]
    assert r["truth_changed_percent"] == 0
    assert r["changed_percent"] < 1.0, r["classes"]
