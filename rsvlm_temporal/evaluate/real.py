"""One evaluation over every real labelled set: ``rsvlm evaluate real``.

Sets (``../shared/data``, SOURCES.md): the Landsat Taizhou pair (labelled pixels only), the OSCD
Sentinel-2 cities (urban change, every pixel labelled) and the LEVIR-CD samples (building
change, RGB 0.5 m). Taizhou and OSCD run through the user's path (COGs + a static STAC catalog,
then :func:`rsvlm_temporal.pipeline.run_analysis`, the function behind ``rsvlm analyze``).
LEVIR-CD is RGB only, at 0.5 m, from a platform no sensor table describes, so it cannot be a
catalog the loader reads: it runs the same change magnitude directly
(:func:`rsvlm_temporal.evaluate.levir.evaluate_levir`) and says so in the table.

Printed per set and pooled (confusion counts summed): Kappa and F1 of the change class (the
change mask), F1 of the built-up-gain class against the OSCD urban labels, % of the (valid)
area flagged and % truly changed. Nothing is fitted to a label: the class rules and the
threshold rule are fixed a priori. The one choice offered, the threshold rule among
``candidates``, is made leave-one-set-out: for each set, the rule with the best pooled change
F1 on the *other* sets, then scored on the held-out one; the table says which rule was chosen
for which set. The default rule's rows involve no choice at all.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rsvlm_temporal.change.thresholds import AUTO_TAIL_RULES, DEFAULT_THRESHOLD
from rsvlm_temporal.errors import InsufficientDataError
from rsvlm_temporal.evaluate.metrics import ConfusionCounts

__all__ = ["RealSetScore", "evaluate_real", "leave_one_set_out", "real_table"]

#: the threshold rules the leave-one-set-out choice is made among
#: (the bimodality-test rules: Otsu and the mixture split a unimodal magnitude, so they are no
#: candidates for a default)
CANDIDATES: tuple[str, ...] = tuple(AUTO_TAIL_RULES)


@dataclass
class RealSetScore:
    """Scores of one set under one threshold rule: confusion counts of the change mask (and of
    the built-up class where the set has urban labels), % flagged / truly changed, the path."""

    name: str
    rule: str
    change: ConfusionCounts
    built_up: ConfusionCounts | None = None
    flagged_pct: float = float("nan")
    true_pct: float = float("nan")
    path: str = "run_analysis"
    notes: list[str] = field(default_factory=list)


def _taizhou(data: Path, out: Path, rule: str, method: str) -> RealSetScore:
    import rasterio

    from rsvlm_temporal.evaluate.metrics import confusion_counts
    from rsvlm_temporal.evaluate.taizhou import evaluate_taizhou_pipeline, load_taizhou

    rep = evaluate_taizhou_pipeline(data, out, method=method, threshold=rule)
    cc = ConfusionCounts(rep["tp"], rep["fp"], rep["fn"], rep["tn"])
    with rasterio.open(rep["change_mask"]) as r:
        mask = r.read(1)
    _, _, ch, nc = load_taizhou(data)
    lab = ch.values | nc.values
    valid = mask != 255
    flagged = 100.0 * float((mask == 1).sum()) / max(int(valid.sum()), 1)
    true = 100.0 * float(confusion_counts(ch.values, ch.values, lab).tp) / max(int(lab.sum()), 1)
    return RealSetScore("taizhou", rule, cc, None, flagged, true,
                        notes=["% true: of the labelled pixels only"])


def _oscd(city: Path, out: Path, rule: str, method: str) -> RealSetScore:
    from rsvlm_temporal.evaluate.oscd import evaluate_city

    r = evaluate_city(city, out, method=method, threshold=rule)
    return RealSetScore(r["set"], rule, r["change"], r["built_up"], r["flagged_pct"], r["true_pct"],
                        notes=list(r["notes"]))


def _levir(data: Path, rule: str, method: str) -> RealSetScore:
    from rsvlm_temporal.evaluate.levir import evaluate_levir

    rep = evaluate_levir(data, method=method, threshold=rule)
    p = rep["pooled"]
    cc = ConfusionCounts(p["tp"], p["fp"], p["fn"], p["tn"])
    flagged = 100.0 * (cc.tp + cc.fp) / max(cc.n, 1)
    true = 100.0 * (cc.tp + cc.fn) / max(cc.n, 1)
    return RealSetScore("levir-cd", rule, cc, None, flagged, true, path="change_magnitude (RGB, no catalog)")


def evaluate_real(data_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  candidates: Sequence[str] = CANDIDATES, method: str = "irmad",
                  cities: Sequence[str] | None = None, sets: Sequence[str] = ("taizhou", "oscd", "levir"),
                  ) -> dict[str, list[RealSetScore]]:
    """Scores of every real set under every rule of ``candidates``: ``{rule: [RealSetScore]}``.

    ``data_dir``: ``../shared/data`` (holding ``landsat_taizhou_cd``, ``oscd_s2``,
    ``levir-cd_samples``; a set whose folder is absent is left out, and none at all is an
    :class:`InsufficientDataError`). ``cities``: OSCD cities (default all). Outputs (COGs,
    catalogs, analyses) under ``out_dir/<rule>/<set>``.
    """
    from rsvlm_temporal.evaluate.oscd import oscd_cities

    d, out = Path(data_dir), Path(out_dir)
    jobs: list[tuple[str, Any]] = []
    if "taizhou" in sets and (d / "landsat_taizhou_cd").is_dir():
        jobs.append(("taizhou", d / "landsat_taizhou_cd"))
    if "oscd" in sets and (d / "oscd_s2").is_dir():
        for c in cities or oscd_cities(d / "oscd_s2"):
            jobs.append(("oscd", d / "oscd_s2" / c))
    if "levir" in sets and (d / "levir-cd_samples").is_dir():
        jobs.append(("levir", d / "levir-cd_samples"))
    if not jobs:
        raise InsufficientDataError(f"no real labelled set under {d}; expected landsat_taizhou_cd, "
                                    "oscd_s2 or levir-cd_samples (../shared/data)")
    results: dict[str, list[RealSetScore]] = {}
    for rule in dict.fromkeys([DEFAULT_THRESHOLD, *candidates]):
        rows = []
        for kind, path in jobs:
            where = out / rule / (kind if kind != "oscd" else f"oscd_{path.name}")
            if kind == "taizhou":
                rows.append(_taizhou(path, where, rule, method))
            elif kind == "oscd":
                rows.append(_oscd(path, where, rule, method))
            else:
                rows.append(_levir(path, rule, method))
        results[rule] = rows
    return results


def _pool(rows: Sequence[RealSetScore], built: bool = False) -> ConfusionCounts:
    total = ConfusionCounts(0, 0, 0, 0)
    for r in rows:
        cc = r.built_up if built else r.change
        if cc is not None:
            total = total + cc
    return total


def leave_one_set_out(results: dict[str, list[RealSetScore]]) -> list[tuple[str, str, RealSetScore]]:
    """For each set: the rule with the best pooled change F1 over the other sets (ties: the
    first candidate), and that rule's score on the held-out set. Returns
    ``[(set name, chosen rule, score)]``."""
    rules = list(results)
    names = [r.name for r in results[rules[0]]]
    out = []
    for i, name in enumerate(names):
        def f1_without(rule: str) -> float:
            f = _pool([r for j, r in enumerate(results[rule]) if j != i]).f1
            return f if math.isfinite(f) else -1.0
        best = max(rules, key=f1_without)
        out.append((name, best, results[best][i]))
    return out


def _fmt(x: float | None) -> str:
    return "   -  " if x is None or not math.isfinite(x) else f"{x:6.3f}"


def _line(label: str, r: RealSetScore | None, cc: ConfusionCounts, built: ConfusionCounts | None,
          flagged: float, true: float, extra: str = "") -> str:
    return (f"{label:24s} {_fmt(cc.kappa)} {_fmt(cc.f1)} {_fmt(built.f1 if built else None)} "
            f"{flagged:8.2f} {true:7.2f}  {extra}")


def real_table(results: dict[str, list[RealSetScore]]) -> str:
    """The printed table: the default rule per set and pooled, then the leave-one-set-out rows."""
    head = f"{'set':24s} {'Kappa':>6s} {'F1':>6s} {'F1 bu':>6s} {'%flag':>8s} {'%true':>7s}  notes"
    rows = results[DEFAULT_THRESHOLD] if DEFAULT_THRESHOLD in results else next(iter(results.values()))
    lines = [f"threshold rule {rows[0].rule!r} (the default; nothing chosen on any set)", head]
    for r in rows:
        extra = ", ".join([r.path] * (r.path != "run_analysis") + r.notes)
        ratio = r.flagged_pct / r.true_pct if r.true_pct > 0 else float("nan")
        lines.append(_line(r.name, r, r.change, r.built_up, r.flagged_pct, r.true_pct,
                           f"flag/true {ratio:4.1f}x; {extra}"))

    def pooled(label: str, sel: list[RealSetScore]) -> None:
        if not sel:
            return
        cc, bu = _pool(sel), _pool(sel, built=True)
        n = cc.n
        lines.append(_line(label, None, cc, bu if bu.n else None, 100.0 * (cc.tp + cc.fp) / max(n, 1),
                           100.0 * (cc.tp + cc.fn) / max(n, 1), "counts summed"))
    pooled("pooled OSCD", [r for r in rows if r.name.startswith("oscd/")])
    pooled("pooled all", list(rows))
    if len(results) > 1:
        lines += ["", f"leave-one-set-out choice among {list(results)} (best pooled change F1 on the "
                  "other sets, scored on the held-out one)", head]
        loso = leave_one_set_out(results)
        for name, rule, r in loso:
            lines.append(_line(name, r, r.change, r.built_up, r.flagged_pct, r.true_pct,
                               f"rule {rule!r} chosen on the other sets"))
        sel = [r for _, _, r in loso]
        pooled("pooled OSCD (LOSO)", [r for r in sel if r.name.startswith("oscd/")])
        pooled("pooled all (LOSO)", sel)
    return "\n".join(lines)


def default_data_dir() -> Path:
    """``$RSVLM_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("RSVLM_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def summary(results: dict[str, list[RealSetScore]]) -> dict[str, Any]:
    """Plain-dict figures of the default rule (for tests and JSON)."""
    rows = results[DEFAULT_THRESHOLD]
    oscd = [r for r in rows if r.name.startswith("oscd/")]
    out: dict[str, Any] = {r.name: {"kappa": r.change.kappa, "f1": r.change.f1,
                                    "built_up_f1": r.built_up.f1 if r.built_up else None,
                                    "flagged_pct": r.flagged_pct, "true_pct": r.true_pct} for r in rows}
    if oscd:
        out["pooled_oscd"] = {"f1": _pool(oscd).f1, "built_up_f1": _pool(oscd, built=True).f1,
                              "max_flag_ratio": float(np.nanmax([r.flagged_pct / r.true_pct for r in oscd]))}
    return out
