"""The verifier catches wrong areas, dates, directions, invented classes and wrong places."""

from __future__ import annotations

from typing import Any

from rsvlm_temporal.language.compose import caption
from rsvlm_temporal.language.verify import verify


def test_perturbations(bench: Any, truth_ev: dict[str, Any]) -> None:
    ev = truth_ev["wildfire"]
    for kind, text, should_pass in bench.perturbations(ev):
        v = verify(text, ev)
        assert v.ok is should_pass, (kind, text, v.unsupported)


def test_rounding_tolerance(truth_ev: dict[str, Any]) -> None:
    ev = truth_ev["deforestation"]
    c = ev.class_by_name("vegetation_loss")
    assert verify(f"{c.area_ha:.1f} ha of forest was lost.", ev).ok
    assert verify(f"About {round(c.area_ha)} ha of forest was lost.", ev).ok
    assert verify(f"{c.area_ha / 100:.3f} km2 of forest was lost.", ev).ok
    assert verify(f"{c.area_ha * 2.4710538:.1f} acres of forest was lost.", ev).ok
    assert not verify(f"{c.area_ha * 1.1:.2f} ha of forest was lost.", ev).ok
    assert not verify(f"{c.area_ha / 100 * 1.2:.3f} km2 of forest was lost.", ev).ok


def test_every_caption_passes(truth_ev: dict[str, Any]) -> None:
    for name, ev in truth_ev.items():
        v = verify(caption(ev).text, ev)
        assert v.ok, (name, v.unsupported)


def test_negated_absent_class_passes(truth_ev: dict[str, Any]) -> None:
    ev = truth_ev["wildfire"]
    assert verify("There is no flood in this area.", ev).ok
    assert not verify("A flood covered the valley.", ev).ok
