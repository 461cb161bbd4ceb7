"""The change engine against the synthetic generator's truth, scenario by scenario.

For each scenario a scene is generated (seeded), loaded with :func:`~rsvlm_temporal.io.cube.load_cube`
like any catalog, analysed with :func:`~rsvlm_temporal.change.analysis.analyze`, and compared with the
truth rasters the generator wrote (``truth/change_class.tif``, ``change_date.tif``,
``burn_severity.tif``):

* per change class present in the truth: precision, recall, F1 of that class's mask;
* burn severity class agreement on pixels both the truth and the analysis call burned;
* the share of truly changed and detected pixels whose change date is within one revisit
  interval (``revisit_days``) of the truth, and of the first clear acquisition on or after the
  truth date (no method can date a change before it is seen: clouds make gaps longer than a
  revisit);
* for the no-change control (seasonal crops): the changed share of the valid area (%).

``python -m rsvlm_temporal.evaluate.synthetic`` (or ``rsvlm evaluate synthetic``) prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import reproject

from rsvlm_temporal.change.analysis import analyze
from rsvlm_temporal.classes import CHANGE_CLASSES, NODATA_CLASS
from rsvlm_temporal.evaluate.metrics import confusion_counts
from rsvlm_temporal.io.catalog import load_items
from rsvlm_temporal.io.cube import load_cube
from rsvlm_temporal.io.masks import DEFAULT_MASKED
from rsvlm_temporal.synth import SCENARIO_NAMES, write_scene

#: the scene options of the reported figures: 4 years of Sentinel-2 at a 10-day revisit
DEFAULT_OPTIONS: dict[str, Any] = dict(size=60, start="2019-01-01", end="2022-12-31", sensors=("s2",),
                                       s2_revisit_days=10, seed=1)


Grid = tuple[tuple[int, int], Any, Any]  # (shape, affine transform, crs) of the analysis


def _read(folder: Path, name: str, grid: Grid | None = None) -> np.ndarray:
    """A truth raster, on the analysis grid when given (majority of the truth pixels in each
    analysis pixel: e.g. 3 x 3 at 30 m for a 10 m truth)."""
    with rasterio.open(folder / f"{name}.tif") as src:
        data = src.read(1)
        if grid is None or (grid[0] == data.shape and grid[1] == src.transform):
            return data
        out = np.empty(grid[0], data.dtype)
        reproject(data, out, src_transform=src.transform, src_crs=src.crs, dst_transform=grid[1],
                  dst_crs=grid[2], resampling=Resampling.mode)
        return out


def first_clear_after(truth_days: np.ndarray, times: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """Per pixel, the first clear acquisition day (days since 1970-01-01) on or after
    ``truth_days`` (y, x; < 0 none), from acquisition ``times`` (T,) and ``clear`` (T, y, x); -1
    where there is none: the earliest day any method could see the change."""
    days = times.astype("datetime64[D]").astype(np.int64)
    out = np.full(truth_days.shape, -1, np.int64)
    for k in range(len(days) - 1, -1, -1):
        hit = clear[k] & (days[k] >= truth_days) & (truth_days >= 0)
        out = np.where(hit, days[k], out)
    return out


def score_scene(layers: dict[str, np.ndarray], truth_dir: str | Path, revisit_days: int,
                first_seen: np.ndarray | None = None, grid: Grid | None = None) -> dict[str, Any]:
    """Scores of computed layers (``change_class``, ``change_date`` as datetime64,
    ``burn_severity``) against a generator truth folder; see the module docstring.
    ``first_seen``: :func:`first_clear_after` of the truth dates, for the date error measured
    from the first clear view of the change. ``grid``: the layers' grid when it differs from the
    truth's (see :func:`_read`)."""
    truth = Path(truth_dir)
    t_cls = _read(truth, "change_class", grid)
    t_days = _read(truth, "change_date", grid).astype(np.int64)
    p_cls = np.asarray(layers["change_class"])
    valid = p_cls != NODATA_CLASS
    p_days = np.asarray(layers["change_date"]).astype("datetime64[D]").astype(np.int64)
    p_has = ~np.isnat(np.asarray(layers["change_date"]).astype("datetime64[D]"))
    out: dict[str, Any] = {"valid_percent": round(100 * float(valid.mean()), 2), "classes": {}}
    changed_t = (t_cls > 0) & valid
    changed_p = (p_cls > 0) & valid
    out["changed_percent"] = round(100 * float(changed_p.sum()) / max(int(valid.sum()), 1), 3)
    out["truth_changed_percent"] = round(100 * float(changed_t.sum()) / max(int(valid.sum()), 1), 3)
    for code, name in CHANGE_CLASSES.items():
        if code == 0 or not ((t_cls == code).any() or (p_cls == code).any()):
            continue
        c = confusion_counts(p_cls == code, t_cls == code, valid)
        out["classes"][name] = {"precision": round(c.precision, 4), "recall": round(c.recall, 4),
                                "f1": round(c.f1, 4), "truth_px": c.tp + c.fn, "predicted_px": c.tp + c.fp}
    both = changed_t & changed_p & p_has & (t_days >= 0)
    if both.any():
        err = np.abs(p_days[both] - t_days[both])
        out["date_within_revisit"] = round(float((err <= revisit_days).mean()), 4)
        out["date_median_error_days"] = float(np.median(err))
        if first_seen is not None:
            seen = both & (first_seen >= 0)
            err_seen = np.abs(p_days[seen] - first_seen[seen])
            out["date_within_revisit_of_first_clear_view"] = round(float((err_seen <= revisit_days).mean()), 4)
    burned = (t_cls == 1) & (p_cls == 1)
    if burned.any():
        sev_t = _read(truth, "burn_severity", grid)
        out["severity_agreement"] = round(float((sev_t[burned] == np.asarray(layers["burn_severity"])[burned]).mean()), 4)
    return out


def evaluate_scenario(scenario: str, work_dir: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Generate ``scenario`` (``DEFAULT_OPTIONS`` updated by ``options``), analyse it and score it."""
    opts = {**DEFAULT_OPTIONS, **options}
    root = Path(work_dir or tempfile.mkdtemp(prefix=f"rsvlm-eval-{scenario}-")) / scenario
    write_scene(root, scenario, keep_arrays=False, **opts)
    cube = load_cube(load_items(root / "catalog.json"))
    result = analyze(cube, workdir=root / "work").compute()
    layers = {k: result.layers[k].values for k in ("change_class", "change_date", "burn_severity")}
    # the interval between acquisitions of the densest sensor in the series
    revisit = int(opts["s2_revisit_days"] if "s2" in opts["sensors"] else opts.get("landsat_revisit_days", 16))
    clear = ((cube.mask & np.uint8(DEFAULT_MASKED)) == 0).values
    grid = ((cube.sizes["y"], cube.sizes["x"]), Affine(*cube.attrs["transform"][:6]), cube.attrs["crs"])
    truth_days = _read(root / "truth", "change_date", grid).astype(np.int64)
    first_seen = first_clear_after(truth_days, cube.time.values, clear)
    report = score_scene(layers, root / "truth", revisit, first_seen, grid)
    report.update(scenario=scenario, revisit_days=revisit, options={k: v for k, v in opts.items()})
    return report


def evaluate_synthetic(scenarios: Sequence[str] = SCENARIO_NAMES, work_dir: str | Path | None = None,
                       workers: int = 1, **options: Any) -> dict[str, Any]:
    """:func:`evaluate_scenario` for each scenario, in ``workers`` processes; ``{scenario: report}``."""
    if workers <= 1 or len(scenarios) <= 1:
        return {s: evaluate_scenario(s, work_dir, **options) for s in scenarios}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {s: pool.submit(evaluate_scenario, s, work_dir, **options) for s in scenarios}
        return {s: f.result() for s, f in futures.items()}


def table(reports: dict[str, Any]) -> str:
    """Markdown table of :func:`evaluate_synthetic` reports."""
    rows = ["| scenario | class | truth px | predicted px | precision | recall | F1 | severity agr. "
            "| date within revisit | ... of first clear view | changed % |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s, r in reports.items():
        nan = float("nan")
        classes = r["classes"] or {"(none)": {"precision": nan, "recall": nan, "f1": nan, "truth_px": 0,
                                              "predicted_px": 0}}
        for name, m in classes.items():
            rows.append(f"| {s} | {name} | {m['truth_px']} | {m['predicted_px']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                        f"{r.get('severity_agreement', nan):.3f} | "
                        f"{r.get('date_within_revisit', nan):.3f} | "
                        f"{r.get('date_within_revisit_of_first_clear_view', nan):.3f} | {r['changed_percent']:.2f} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", nargs="+", default=list(SCENARIO_NAMES))
    ap.add_argument("--size", type=int, default=DEFAULT_OPTIONS["size"])
    ap.add_argument("--seed", type=int, default=DEFAULT_OPTIONS["seed"])
    ap.add_argument("--work", default=None, help="folder for the scenes (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=1, help="scenarios evaluated in parallel processes")
    ap.add_argument("--json", action="store_true", help="print the full reports as JSON")
    args = ap.parse_args(argv)
    reports = evaluate_synthetic(args.scenario, args.work, args.workers, size=args.size, seed=args.seed)
    print(json.dumps(reports, indent=2, default=str) if args.json else table(reports))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
