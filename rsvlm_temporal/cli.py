"""``rsvlm``: the command line. Every command is a thin layer over library calls."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from rsvlm_temporal.change.magnitude import METHODS
from rsvlm_temporal.errors import RsvlmError
from rsvlm_temporal.io.catalog import PROFILES
from rsvlm_temporal.synth.scenarios import SCENARIO_NAMES


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", help="local static catalog (catalog.json / collection.json / item collection)")
    p.add_argument("--stac", default=None,
                   help=f"STAC API: one of {', '.join(PROFILES)} or a URL (ignored with --catalog)")
    p.add_argument("--bbox", help="AOI as minx,miny,maxx,maxy in lon/lat (EPSG:4326)")
    p.add_argument("--aoi", help="AOI as a GeoJSON file")
    p.add_argument("--collections", default="sentinel-2-l2a",
                   help="comma-separated collection ids or aliases (s2, landsat)")
    p.add_argument("--max-cloud", type=float, default=None, help="maximum eo:cloud_cover, percent")


def _items(args: argparse.Namespace, start: str | None, end: str | None) -> tuple[list[Any], Any]:
    from rsvlm_temporal.io.aoi import parse_aoi
    from rsvlm_temporal.io.catalog import load_items, search

    aoi = parse_aoi(args.aoi or args.bbox) if (args.aoi or args.bbox) else None
    collections = [c for c in args.collections.split(",") if c] if args.collections else None
    if args.catalog and aoi is None and start is None and end is None:
        return load_items(args.catalog), None
    source = args.catalog or args.stac or "earth-search"
    if aoi is None:
        if not args.catalog:
            raise RsvlmError("searching a STAC API needs an AOI: pass --bbox or --aoi")
        items = load_items(args.catalog)
        return items, None
    return search(aoi, start or "1970-01-01", end or "2100-01-01", collections=collections,
                  max_cloud=args.max_cloud, source=source), aoi


def cmd_search(args: argparse.Namespace) -> int:
    items, _ = _items(args, args.start, args.end)
    for it in items:
        cc = it.properties.get("eo:cloud_cover")
        print(f"{it.datetime:%Y-%m-%d %H:%M}  {it.collection_id or '-':<16} {it.id}  cloud={cc}")
    print(f"{len(items)} item(s)")
    if args.out:
        from rsvlm_temporal.atomic import write_json_atomic

        write_json_atomic(args.out, {"type": "FeatureCollection",
                                     "features": [i.to_dict(transform_hrefs=False) for i in items]})
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from rsvlm_temporal.synth import write_scene

    if getattr(args, "prompt", None):  # text to scene (rsvlm_temporal.synth.prompt)
        from rsvlm_temporal.synth.prompt import write_prompt_scene

        out, spec = write_prompt_scene(Path(args.out), args.prompt, size=min(args.size, 48))
        print(json.dumps({"catalog": str(out.catalog_path), "spec": spec}, default=str))
        return 0

    for scenario in args.scenario:
        out = write_scene(Path(args.out) / scenario, scenario, seed=args.seed, size=args.size,
                          start=args.start, end=args.end)
        print(f"{scenario}: {out.catalog_path if hasattr(out, 'catalog_path') else out}")
    return 0


def _baseline_start(start: str | None) -> str | None:
    """One year before ``start``: the seasonal baseline the analysis needs."""
    if start is None:
        return None
    import pandas as pd

    return str((pd.Timestamp(start) - pd.Timedelta(days=400)).date())


def cmd_analyze(args: argparse.Namespace) -> int:
    from rsvlm_temporal.pipeline import run_analysis, summary_lines

    items, aoi = _items(args, _baseline_start(args.start), args.end)
    outputs = run_analysis(
        items, args.out, args.start, args.end,
        bounds_latlon=aoi.bbox if aoi else None, resolution=args.resolution, epsg=args.epsg,
        workers=args.workers, scheduler=args.scheduler, magnitude_method=args.method,
        chunk_memory=int(args.chunk_memory * 2**20) if args.chunk_memory else None,
    )
    print("\n".join(summary_lines(outputs)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.io.cube import load_cube
    from rsvlm_temporal.pipeline import run_analysis, summary_lines
    from rsvlm_temporal.synth import demo_catalog

    root = Path(demo_catalog())
    root = root.parent if root.is_file() else root
    out = Path(args.out)
    print(f"demo catalog: {root}")
    for scenario_catalog in sorted(root.glob("*/catalog.json")):
        name = scenario_catalog.parent.name
        items = load_items(scenario_catalog)
        cube = load_cube(items)
        print(f"\n[{name}] {len(items)} items -> cube {dict(cube.sizes)} {cube.attrs['crs']} "
              f"{cube.attrs['resolution'][0]:g} m, sensors {sorted(set(cube.sensor.values.tolist()))}")
        outputs = run_analysis(items, out / name, workers=args.workers)
        print("\n".join(summary_lines(outputs)))
    print(f"\nfiles written under {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.dataset == "synthetic":
        from rsvlm_temporal.evaluate.synthetic import evaluate_synthetic, table

        reports = evaluate_synthetic(args.scenario or SCENARIO_NAMES, args.out, workers=args.workers or 1,
                                     **({"seed": args.seed} if args.seed is not None else {}))
        print(table(reports))
        return 0
    if args.dataset in ("real", "oscd"):  # every real labelled set (or the OSCD cities only)
        from rsvlm_temporal.evaluate.real import default_data_dir, evaluate_real, real_table

        data = Path(args.data) if args.data else default_data_dir()
        if args.dataset == "oscd" and (data / "oscd_s2").is_dir() is False and data.name == "oscd_s2":
            data = data.parent
        sets = ("taizhou", "oscd", "levir") if args.dataset == "real" else ("oscd",)
        print(real_table(evaluate_real(data, args.out, method=args.method, sets=sets)))
        return 0
    if not args.data:
        raise RsvlmError(f"evaluate {args.dataset} needs --data: the dataset folder (../shared/data/...)")
    if args.dataset == "taizhou":
        from rsvlm_temporal.evaluate.taizhou import evaluate_taizhou_pipeline

        report = evaluate_taizhou_pipeline(args.data, args.out, method=args.method)
    else:
        from rsvlm_temporal.evaluate.levir import evaluate_levir

        report = evaluate_levir(args.data, method=args.method)
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    script = folder / f"{args.name}.py"
    if not script.is_file():
        names = sorted(p.stem for p in folder.glob("[!_]*.py")) if folder.is_dir() else []
        where = f"choose one of {names}" if names else (
            "the benchmarks live in the source checkout (benchmarks/), not in an installed package")
        raise RsvlmError(f"no benchmark named {args.name!r}: {where}")
    return subprocess.call([sys.executable, str(script), *args.args], cwd=folder.parent)


#: modules of the later stages that add their own subcommands: each defines
#: ``register(sub: argparse._SubParsersAction) -> None`` and imports nothing heavy (torch,
#: transformers, streamlit) at module level
STAGE_COMMANDS: tuple[str, ...] = (
    "rsvlm_temporal.model.commands",
    "rsvlm_temporal.language.commands",
)


def _register(module: str, sub: Any) -> None:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # a missing dependency inside the module: a real error
            raise
        return
    mod.register(sub)


def build_parser() -> argparse.ArgumentParser:
    """The ``rsvlm`` argument parser; name choices come from the library's lookup tables."""
    p = argparse.ArgumentParser(prog="rsvlm", description="What changed here, and when?")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="search a STAC API or a local catalog")
    _add_source(s)
    s.add_argument("--from", dest="start")
    s.add_argument("--to", dest="end")
    s.add_argument("--out", help="write the items as a FeatureCollection JSON")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("synth", help="write synthetic Sentinel-2/Landsat scenes with known truth")
    s.add_argument("out")
    s.add_argument("--scenario", nargs="+", default=["wildfire"], choices=SCENARIO_NAMES, metavar="SCENARIO",
                   help=f"one or more of {', '.join(SCENARIO_NAMES)}")
    s.add_argument("--size", type=int, default=120, help="pixels at 10 m")
    s.add_argument("--start", default="2018-01-01")
    s.add_argument("--end", default="2024-12-31")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--prompt", help="text to scene: 'a wildfire in the south-east in summer 2021, then regrowth'")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("analyze", help="change analysis of an AOI and period; writes COG/GeoJSON/PNG/evidence")
    _add_source(s)
    s.add_argument("--from", dest="start")
    s.add_argument("--to", dest="end")
    s.add_argument("--out", required=True)
    s.add_argument("--resolution", type=float, default=None, help="metres")
    s.add_argument("--epsg", type=int, default=None)
    s.add_argument("--method", default="irmad", choices=METHODS, metavar="METHOD",
                   help=f"change magnitude: one of {', '.join(METHODS)} (default irmad)")
    s.add_argument("--workers", type=int, default=None, help="start a local dask cluster of N processes")
    s.add_argument("--scheduler", default=None, help="address of an existing dask scheduler, tcp://host:port")
    s.add_argument("--chunk-memory", type=float, default=None, metavar="MIB",
                   help="memory of one chunk's whole time series, which each thread holds (default 48); "
                        "160 reads 512 px tiles whole: ~1.4x faster, 1.5-2x the peak memory")
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("demo", help="offline demo on the embedded synthetic scenes")
    s.add_argument("--out", default="rsvlm-demo-output")
    s.add_argument("--workers", type=int, default=None)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("evaluate", help="evaluate on real labelled data (../shared/data)")
    s.add_argument("dataset", choices=["synthetic", "taizhou", "levir", "real", "oscd"])
    s.add_argument("--data", help="dataset folder (taizhou, levir; real, oscd: ../shared/data, the default)")
    s.add_argument("--out", default="rsvlm-eval-output")
    s.add_argument("--method", default="irmad", choices=METHODS, metavar="METHOD",
                   help=f"change magnitude: one of {', '.join(METHODS)}")
    s.add_argument("--scenario", nargs="+", choices=SCENARIO_NAMES, metavar="SCENARIO",
                   help="synthetic: scenarios (default all five)")
    s.add_argument("--seed", type=int, default=None, help="synthetic: scene seed")
    s.add_argument("--workers", type=int, default=None, help="synthetic: scenarios in parallel processes")
    s.set_defaults(func=cmd_evaluate)

    for module in STAGE_COMMANDS:  # the later stages add their own commands
        _register(module, sub)

    s = sub.add_parser("bench", help="run a benchmark of benchmarks/ (source checkout): loader, graph, distributed")
    s.add_argument("name")
    s.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark (e.g. --no-append)")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rsvlm`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RsvlmError as exc:
        print(f"rsvlm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
