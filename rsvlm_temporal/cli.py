"""``rsvlm``: the command line. Every command is a thin layer over library calls.

:func:`main` checks every argument (:func:`validate`) before a catalog, a cube or a pixel is
read and before ``--out`` is created, and has one error path: a mistake a user can make exits
2 with ``rsvlm CMD: error: MESSAGE``, Ctrl-C exits 130 with one line, and a bug shows its
traceback and exits 1.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from rsvlm_temporal.change.magnitude import METHODS
from rsvlm_temporal.errors import (
    AOIError,
    CatalogError,
    EmptySearchError,
    ItemError,
    OutputError,
    ParameterError,
    RsvlmError,
    SyntheticSceneError,
)
from rsvlm_temporal.io.catalog import PROFILES
from rsvlm_temporal.model.factory import DEFAULT_MODEL, shipped_models
from rsvlm_temporal.synth.scenarios import SCENARIO_NAMES
from rsvlm_temporal.timeutil import parse_date

#: the coarsest --resolution accepted (metres): a cell of 10 km is coarser than anything the
#: sensors read (10-60 m) can describe, and leaves a few pixels for a whole region
MAX_RESOLUTION_M = 10_000.0
#: the longest --http-timeout accepted (seconds)
MAX_HTTP_TIMEOUT_S = 3600.0
#: the most --http-retries accepted
MAX_HTTP_RETRIES = 20
#: the default STAC deadline of one HTTP request (seconds), as io.catalog.search's
DEFAULT_HTTP_TIMEOUT_S = 30.0
#: side of a synthetic scene (10 m pixels): at least 24 (the synth minimum), at most this
MAX_SYNTH_SIZE = 1200
#: the collection a STAC API is searched for when --collections is not given
DEFAULT_API_COLLECTIONS: tuple[str, ...] = ("sentinel-2-l2a",)
#: commands whose --out (synth: the positional OUT) is a folder of results; search's and
#: train's --out are one file
FOLDER_OUT = ("analyze", "demo", "evaluate", "synth", "ask", "caption", "ground", "finetune")
FILE_OUT = ("search", "train", "find", "fewshot")
_NUMBERS = re.compile(r"\s*[-+]?[0-9.][0-9.eE+\- ]*(,[0-9.eE+\- ]*)*")


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", help="local static catalog (catalog.json / collection.json / item collection)")
    p.add_argument("--stac", default=None,
                   help=f"STAC API: one of {', '.join(PROFILES)} or a URL (ignored with --catalog)")
    p.add_argument("--bbox", help="AOI as minx,miny,maxx,maxy in lon/lat (EPSG:4326), e.g. --bbox -8.21,39.94,-8.19,39.96")
    p.add_argument("--aoi", help="AOI as a GeoJSON file (read as GeoJSON whatever its extension)")
    p.add_argument("--collections", default=None,
                   help="comma-separated collection ids or aliases (s2, landsat); default: every collection "
                        "of a local --catalog, sentinel-2-l2a for a STAC API")
    p.add_argument("--max-cloud", type=float, default=None, help="maximum eo:cloud_cover, percent 0-100")
    p.add_argument("--http-timeout", type=float, default=None, metavar="SECONDS",
                   help=f"deadline of one HTTP request, STAC and COG reads (default {DEFAULT_HTTP_TIMEOUT_S:g})")
    p.add_argument("--http-retries", type=int, default=None, metavar="N",
                   help="extra tries of a failed HTTP request, STAC and COG reads (default 3)")
    p.add_argument("--max-pixels", type=float, default=None, metavar="N",
                   help="largest grid (pixels, y x x) this run may build (default io.cube.MAX_GRID_PIXELS, 1e8)")


def _aoi_of(args: argparse.Namespace) -> Any:
    """The AOI of --bbox (numbers) or --aoi (a GeoJSON file), or None."""
    from rsvlm_temporal.io.aoi import parse_aoi

    bbox, aoi = getattr(args, "bbox", None), getattr(args, "aoi", None)
    if bbox is not None and aoi is not None:
        raise AOIError("give the AOI once: --bbox minx,miny,maxx,maxy or --aoi FILE, not both")
    if bbox is not None:
        if not bbox.strip():
            raise AOIError("--bbox is empty; expected minx,miny,maxx,maxy in degrees, e.g. "
                           "--bbox -8.21,39.94,-8.19,39.96 (leave --bbox out for no AOI)")
        if "," not in bbox:
            raise AOIError(f"--bbox {bbox!r} is not minx,miny,maxx,maxy (4 comma-separated numbers in "
                           "degrees); a GeoJSON file goes to --aoi")
        return parse_aoi(bbox)
    if aoi is not None:
        if not aoi.strip():
            raise AOIError("--aoi is empty; expected a GeoJSON file")
        return parse_aoi(Path(aoi))  # always a file: GeoJSON by content, whatever the suffix
    return None


def _filter(items: list[Any], start: str | None = None, end: str | None = None,
            collections: Sequence[str] | None = None, max_cloud: float | None = None) -> list[Any]:
    """io.catalog.filter_items, with a malformed item property as an ItemError."""
    from rsvlm_temporal.io.catalog import filter_items

    try:
        return filter_items(items, start, end, collections=collections, max_cloud=max_cloud)
    except (TypeError, AttributeError) as exc:
        raise ItemError(f"an item of the catalog has a malformed property for the filters "
                        f"(--from/--to/--collections/--max-cloud): {exc}") from None


def _note(args: argparse.Namespace, text: str) -> None:
    print(f"rsvlm {getattr(args, 'command', '') or ''}: note: {text}".replace("rsvlm : ", "rsvlm: "),
          file=sys.stderr)


def _items(args: argparse.Namespace, start: str | None, end: str | None) -> tuple[list[Any], Any]:
    """The items of --catalog / --stac that pass every filter (AOI, dates, collections, cloud)
    and the AOI (or None). A local catalog is searched in every collection it holds unless
    --collections is given; a STAC API in :data:`DEFAULT_API_COLLECTIONS`."""
    from rsvlm_temporal.io.catalog import load_items, resolve_collections, search

    aoi = _aoi_of(args)
    text = getattr(args, "collections", None)
    asked = [c.strip() for c in text.split(",") if c.strip()] if text else None
    max_cloud = getattr(args, "max_cloud", None)
    timeout = getattr(args, "http_timeout", None) or DEFAULT_HTTP_TIMEOUT_S
    retries = getattr(args, "http_retries", None)
    http = {"timeout": timeout, **({"retries": retries} if retries is not None else {})}
    if args.catalog:
        if aoi is None:
            items = load_items(args.catalog)
            found = _filter(items, start, end, max_cloud=max_cloud)
            if not found:
                cloud = f" with eo:cloud_cover <= {max_cloud:g}" if max_cloud is not None else ""
                raise EmptySearchError(
                    f"none of the {len(items)} item(s) of {args.catalog} was acquired in "
                    f"{start or 'any time'}..{end or 'any time'}{cloud}: widen --from/--to"
                    + (" or raise --max-cloud" if cloud else ""))
        else:
            found = search(aoi, start or "1900-01-01", end or "2999-12-31", collections=None,
                           max_cloud=max_cloud, source=args.catalog, **http)
        if asked is None:
            return found, aoi
        kept = _filter(found, collections=asked)
        held = Counter(i.collection_id or "-" for i in found)
        dropped = held - Counter(i.collection_id or "-" for i in kept)
        if not kept:
            raise EmptySearchError(
                f"--collections {text} matches none of the {len(found)} item(s) found in {args.catalog}, "
                f"which are of {dict(held)}; pass --collections with those ids, or leave it out for all")
        if dropped:
            _note(args, f"--collections {text} leaves out {sum(dropped.values())} item(s) of "
                        f"{', '.join(sorted(dropped))} in {args.catalog}; include them with "
                        "--collections s2,landsat (or leave --collections out: every collection)")
        return kept, aoi
    if aoi is None:
        raise AOIError("searching a STAC API needs an AOI: pass --bbox or --aoi (or a local --catalog)")
    collections = resolve_collections(asked) if asked else DEFAULT_API_COLLECTIONS
    if asked is None:
        _note(args, f"searching {', '.join(collections)} only (the default for a STAC API); add Landsat "
                    "with --collections s2,landsat")
    return search(aoi, start or "1970-01-01", end or "2100-01-01", collections=collections,
                  max_cloud=max_cloud, source=args.stac or "earth-search", **http), aoi


# --- validation: every argument, before any work ---------------------------------------------

def _finite(value: Any, flag: str, lo: float, hi: float, unit: str, why: str = "",
            lo_open: bool = True) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > lo if lo_open else value >= lo)
    if not ok or value > hi:
        bound = f"> {lo:g}" if lo_open else f">= {lo:g}"
        raise ParameterError(f"{flag} {value!r} is out of range; expected a finite number {bound} and "
                             f"<= {hi:g} {unit}{why}")


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_writable_parent(path: Path, flag: str) -> None:
    anc = _nearest_existing(path.parent if path.name else path)
    if not anc.is_dir():
        raise OutputError(f"{flag} {path} lies inside {anc}, which is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: the folder {anc} is not writable; expected a folder you may write to")


def check_out_folder(text: Any, flag: str = "--out") -> Path:
    """An output folder: not empty, not an existing file or special file, writable (or creatable
    in a writable folder). Creates nothing. Raises :class:`OutputError`."""
    if not isinstance(text, str) or not text.strip():
        raise OutputError(f"{flag} is empty; expected a folder for the results, e.g. {flag} out/")
    path = Path(text)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{flag} {text} is a broken symbolic link; expected a folder")
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{flag} {text} exists and is not a folder; the results are several files, "
                              "so expected a folder (a new name, or an earlier result folder)")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{flag} {text} is not writable; expected a folder you may write to")
        return path
    _check_writable_parent(path, flag)
    return path


def check_out_file(text: Any, flag: str = "--out") -> Path:
    """An output file: not empty, not a folder or a device (a symbolic link is written through,
    :func:`atomic.resolve_destination`), in a writable folder. Creates nothing."""
    from rsvlm_temporal.atomic import resolve_destination

    if not isinstance(text, str) or not text.strip():
        raise OutputError(f"{flag} is empty; expected a file name, e.g. {flag} items.json")
    if Path(text).is_dir():
        raise OutputError(f"{flag} {text} is a folder; expected a file name (e.g. {text.rstrip('/')}/items.json)")
    final = resolve_destination(text)
    if final.exists() and not os.access(final, os.W_OK):
        raise OutputError(f"{flag} {text} is not writable")
    _check_writable_parent(final, flag)
    return final


def _check_scheduler(address: str) -> None:
    from urllib.parse import urlparse

    from rsvlm_temporal.compute.cluster import check_address

    address = check_address(address)
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme in ("tcp", "tls"):
        try:
            host, port = parsed.hostname, parsed.port
        except ValueError:
            host, port = None, None
        if not host or not port:
            raise ParameterError(f"--scheduler {address!r} is not HOST:PORT; expected tcp://HOST:PORT, "
                                 "e.g. tcp://10.0.0.5:8786")


def _check_dates(args: argparse.Namespace) -> None:
    """--from/--to (synth: --start/--end) through the one date parser, as ISO strings."""
    names = ("--start", "--end") if args.command == "synth" else ("--from", "--to")
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start is not None:
        args.start = parse_date(start, names[0]).isoformat()
    if end is not None:
        args.end = parse_date(end, names[1], end=True).isoformat()
    if start is not None and end is not None and args.start > args.end:
        from rsvlm_temporal.errors import PeriodError

        raise PeriodError(f"{names[0]} {start} is after {names[1]} {end}; expected {names[0]} <= {names[1]}")


def validate(args: argparse.Namespace) -> list[Callable[[], None]]:
    """Check every argument of a parsed command line before any work: ranges, names, dates,
    CRS, AOI, cluster options and output paths; apply --max-pixels and --http-timeout. Returns
    the callables that undo those process-wide settings. Reads no catalog and creates nothing."""
    cmd = args.command
    get = lambda name: getattr(args, name, None)  # noqa: E731 - the stage commands lack some flags
    _check_dates(args)
    workers, scheduler = get("workers"), get("scheduler")
    if workers is not None and scheduler is not None:
        raise ParameterError("--workers starts a local cluster and --scheduler joins an existing one: "
                             "give one of them, not both")
    if workers is not None:
        from rsvlm_temporal.compute.cluster import check_workers

        try:
            check_workers(workers)
        except ParameterError as exc:
            raise type(exc)(f"--workers {workers}: {exc}") from None
    if scheduler is not None:
        _check_scheduler(scheduler)
    if get("epsg") is not None:
        from rsvlm_temporal.io.cube import check_projected

        check_projected(args.epsg)
    _finite(get("resolution"), "--resolution", 0, MAX_RESOLUTION_M, "metres",
            ": a cell coarser than 10 km leaves too few pixels to analyse (the sensors read 10-60 m)")
    _finite(get("chunk_memory"), "--chunk-memory", 0, 2.0**20, "MiB")
    _finite(get("max_cloud"), "--max-cloud", 0, 100, "percent", lo_open=False)
    _finite(get("http_timeout"), "--http-timeout", 0, MAX_HTTP_TIMEOUT_S, "seconds")
    _finite(get("max_pixels"), "--max-pixels", 1, 1e12, "pixels", lo_open=False)
    _finite(get("http_retries"), "--http-retries", 0, MAX_HTTP_RETRIES, "tries", lo_open=False)
    if cmd == "synth":
        size = args.size
        if not MAX_SYNTH_SIZE >= size >= 24 or size % 6:
            raise SyntheticSceneError(f"--size {size} is out of range; expected a multiple of 6 in "
                                      f"24..{MAX_SYNTH_SIZE} pixels of 10 m (larger scenes take minutes "
                                      "and gigabytes to write)")
    if get("catalog") is not None:
        if not args.catalog.strip():
            raise CatalogError("--catalog is empty; expected a catalog.json, collection.json or item collection")
        if not Path(args.catalog).exists():
            raise CatalogError(f"--catalog {args.catalog}: no such file or folder; expected a local "
                               "catalog.json, collection.json or item collection")
    if hasattr(args, "bbox"):
        aoi = _aoi_of(args)
        if cmd in ("search", "analyze") and aoi is None and not args.catalog:
            raise AOIError("searching a STAC API needs an AOI: pass --bbox or --aoi (or a local --catalog)")
    if cmd == "evaluate":
        if args.dataset in ("taizhou", "levir") and not args.data:
            raise ParameterError(f"evaluate {args.dataset} needs --data: the dataset folder (../shared/data/...)")
        if args.data is not None and not Path(args.data).is_dir():
            raise ParameterError(f"evaluate {args.dataset} --data {args.data}: no such folder; expected the "
                                 "dataset folder (../shared/data/...)")
    out = args.out if cmd == "synth" else get("out")
    if cmd in FOLDER_OUT and out is not None:
        check_out_folder(out, "OUT" if cmd == "synth" else "--out")
        if cmd == "analyze":  # one result folder, replaced as a whole: refused now, not after the work
            from rsvlm_temporal.atomic import check_result_folder

            check_result_folder(out)
    elif cmd in FILE_OUT and out is not None:
        check_out_file(out)
    if get("geojson") is not None:  # rsvlm ground --geojson FILE
        check_out_file(args.geojson, "--geojson")
    return _apply_limits(args)


def _apply_limits(args: argparse.Namespace) -> list[Callable[[], None]]:
    undo: list[Callable[[], None]] = []
    if getattr(args, "max_pixels", None) is not None:
        from rsvlm_temporal.io import cube

        before = cube.MAX_GRID_PIXELS
        cube.set_grid_limit(args.max_pixels)
        undo.append(lambda: cube.set_grid_limit(before))
    timeout, retries = getattr(args, "http_timeout", None), getattr(args, "http_retries", None)
    if timeout is not None or retries is not None:
        from rsvlm_temporal.io import reader

        saved = dict(reader.HTTP_OPTIONS)
        reader.set_http_limits(timeout=timeout, retries=retries)
        undo.append(lambda: (reader.HTTP_OPTIONS.clear(), reader.HTTP_OPTIONS.update(saved)))
    return undo


def cmd_search(args: argparse.Namespace) -> int:
    items, _ = _items(args, args.start, args.end)
    for it in items:
        cc = it.properties.get("eo:cloud_cover")
        print(f"{it.datetime:%Y-%m-%d %H:%M}  {it.collection_id or '-':<16} {it.id}  cloud={cc}")
    print(f"{len(items)} item(s)")
    if args.out is not None:
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
        model=None if args.no_model else args.model,
    )
    print("\n".join(summary_lines(outputs)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.io.cube import load_cube
    from rsvlm_temporal.pipeline import run_analysis, summary_lines
    from rsvlm_temporal.synth import DEMO_RESOLUTION_M, demo_catalog

    root = Path(demo_catalog())
    root = root.parent if root.is_file() else root
    out = Path(args.out)
    print(f"demo catalog: {root}")
    for scenario_catalog in sorted(root.glob("*/catalog.json")):
        name = scenario_catalog.parent.name
        items = load_items(scenario_catalog)
        cube = load_cube(items, resolution=DEMO_RESOLUTION_M)
        print(f"\n[{name}] {len(items)} items -> cube {dict(cube.sizes)} {cube.attrs['crs']} "
              f"{cube.attrs['resolution'][0]:g} m, sensors {sorted(set(cube.sensor.values.tolist()))}")
        outputs = run_analysis(items, out / name, workers=args.workers, resolution=DEMO_RESOLUTION_M,
                               model=None if args.no_model else "auto")
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
    if not args.data:  # validate() refuses this before any work; kept for direct calls
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
    s.add_argument("--model", default="auto", choices=["auto", *shipped_models()], metavar="MODEL",
                   help=f"temporal CLIP run beside the spectral engine: one of {', '.join(shipped_models())} "
                        f"(its shipped weights), or auto (default: {DEFAULT_MODEL} up to 50 M pixel-dates, "
                        "skipped with a note beyond: the model reads ~25x slower than the spectral engine)")
    s.add_argument("--no-model", action="store_true",
                   help="spectral engine only: no learned mask, agreement layer or zero-shot labels")
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("demo", help="offline demo on the embedded synthetic scenes")
    s.add_argument("--out", default="rsvlm-demo-output")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--no-model", action="store_true", help="spectral engine only (no temporal CLIP)")
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


def _join_bbox(argv: list[str]) -> list[str]:
    """``--bbox -8.21,39.94,...`` as ``--bbox=-8.21,39.94,...``: argparse takes a value starting
    with '-' for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if tok == "--bbox" and nxt is not None and nxt.startswith("-") and _NUMBERS.fullmatch(nxt):
            out.append(f"--bbox={nxt}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def _user_fault(exc: BaseException) -> str | None:
    """The message of a library exception a user can cause (a broken raster, no memory, a full
    disk, no permission), or None for a bug."""
    if isinstance(exc, MemoryError):
        return ("out of memory: the run needs more memory than this machine has; pass a smaller AOI "
                "(--bbox/--aoi), a coarser --resolution or a smaller --chunk-memory")
    rio = sys.modules.get("rasterio.errors")
    if rio is not None and isinstance(exc, getattr(rio, "RasterioIOError", ())):
        return f"cannot read a raster: {exc}; check the files (asset hrefs) of the catalog"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"cannot write {exc.filename or 'a file'}: {exc.strerror} (disk or quota full); free space or write elsewhere"
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied: {exc.filename or exc}; expected a path you may read or write"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rsvlm`` console script: parse, validate, run; exit 0, 2 (a user's
    mistake, with a one-line message), 130 (interrupted) or 1 (a bug, with its traceback)."""
    argv = _join_bbox(list(sys.argv[1:] if argv is None else argv))
    prog = "rsvlm"
    undo: list[Callable[[], None]] = []
    try:
        args = build_parser().parse_args(argv)  # a usage error exits 2 (argparse's SystemExit)
        prog = f"rsvlm {args.command}"
        undo = validate(args)
        return int(args.func(args))
    except RsvlmError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rsvlm search ... | head`: the reader left
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the one error path
        message = _user_fault(exc)
        if message is not None:
            print(f"{prog}: error: {message}", file=sys.stderr)
            return 2
        import shlex
        import traceback

        print(f"command line: rsvlm {shlex.join(argv)}", file=sys.stderr)
        traceback.print_exc()
        print(f"{prog}: internal error: this is a bug, please report it with the command line above",
              file=sys.stderr)
        return 1
    finally:
        for restore in undo:
            restore()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
