"""CLI commands of the language stage: ``rsvlm ask``, ``rsvlm caption``, ``rsvlm ground`` and
``rsvlm finetune``. Heavy imports (torch, transformers, the pipeline, synth) happen inside the
command functions only."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rsvlm_temporal.errors import RsvlmError


def _add_evidence_source(p: argparse.ArgumentParser) -> None:
    from rsvlm_temporal.cli import _add_source

    _add_source(p)
    p.add_argument("--from", dest="start", help="analysis start (ISO date)")
    p.add_argument("--to", dest="end", help="analysis end (ISO date)")
    p.add_argument("--demo", metavar="SCENARIO", help="a scenario of the embedded demo (wildfire, flood, ...)")
    p.add_argument("--truth", action="store_true", help="with --demo: the generator truth as evidence (oracle)")
    p.add_argument("--evidence", help="an evidence.json (of rsvlm analyze / demo) instead of running the analysis")
    p.add_argument("--out", default="rsvlm-ask-output", help="analysis outputs folder (reused when present)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--lm", action="store_true", help="let the LM head phrase the answer (verified)")
    p.add_argument("--model", default=None, help="causal LM: id in the local cache, folder or .gguf (default SmolLM2)")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (default: the shipped one, if any)")


def _evidence(args: argparse.Namespace) -> tuple[Any, Any, Path | None]:
    """(evidence, rerun callback or None, outputs folder or None)."""
    from rsvlm_temporal.evidence.schema import Evidence

    if args.evidence:
        p = Path(args.evidence)
        if not p.is_file():
            raise RsvlmError(f"no evidence file {p}: expected an evidence.json written by rsvlm analyze")
        return Evidence.from_json(p.read_text()), None, p.parent
    if args.demo and args.truth:
        from rsvlm_temporal.synth import DEMO_OPTIONS, make_scene
        from rsvlm_temporal.synth.prompt import truth_evidence

        return truth_evidence(make_scene(args.demo, **DEMO_OPTIONS)), None, None
    from rsvlm_temporal.io.catalog import load_items
    from rsvlm_temporal.pipeline import run_analysis

    out = Path(args.out)
    grid: dict[str, Any] = {}
    if args.demo:
        from rsvlm_temporal.synth import DEMO_RESOLUTION_M, SCENARIO_NAMES, demo_catalog

        if args.demo not in SCENARIO_NAMES:
            raise RsvlmError(f"unknown demo scenario {args.demo!r}; expected one of {list(SCENARIO_NAMES)}")
        root = Path(demo_catalog())
        root = root.parent if root.is_file() else root
        items = load_items(root / args.demo / "catalog.json")
        aoi = None
        out = out / args.demo
        grid["resolution"] = DEMO_RESOLUTION_M  # the grid of `rsvlm demo`
    elif args.catalog or args.bbox or args.aoi:
        from rsvlm_temporal.cli import _baseline_start, _items

        items, aoi = _items(args, _baseline_start(args.start), args.end)
    else:
        raise RsvlmError("give the evidence: --demo SCENARIO, --catalog/--bbox (and --from/--to) or --evidence FILE")
    bounds = aoi.bbox if aoi is not None else None

    def rerun(start: str, end: str) -> Evidence:
        o = run_analysis(items, out / f"period-{start}-{end}", start, end, bounds_latlon=bounds, **grid)
        return o.evidence

    cached = out / "evidence.json"
    if cached.is_file() and not (args.start or args.end):
        return Evidence.from_json(cached.read_text()), rerun, out
    outputs = run_analysis(items, out, args.start, args.end, bounds_latlon=bounds, **grid)
    return outputs.evidence, rerun, out


def _head(args: argparse.Namespace) -> Any:
    if not args.lm:
        return None
    from rsvlm_temporal.language.head import ADAPTER_DIR, LMHead

    adapter = args.adapter
    if adapter is None and args.model is None and (ADAPTER_DIR / "adapter_config.json").is_file():
        adapter = ADAPTER_DIR
    return LMHead(args.model, adapter=adapter)


def _print(res: Any, as_json: bool) -> None:
    if as_json:
        d = res.to_dict()
        keys = ("question", "intent", "slots", "answer", "evidence", "verified", "unsupported")
        print(json.dumps({**{k: d[k] for k in keys}, **{k: d[k] for k in d if k not in keys}}, default=str))
    else:
        print(res.answer)
        if not res.verified:
            print(f"(not verified: {res.unsupported})", file=sys.stderr)


def cmd_ask(args: argparse.Namespace) -> int:
    from rsvlm_temporal.language.ask import ask

    ev, rerun, _ = _evidence(args)
    res = ask(args.question, ev, rerun=rerun, head=_head(args), use_lm=args.lm)
    _print(res, args.json)
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from rsvlm_temporal.language.ask import describe

    ev, _, _ = _evidence(args)
    _print(describe(ev, head=_head(args), use_lm=args.lm), args.json)
    return 0


def cmd_ground(args: argparse.Namespace) -> int:
    from rsvlm_temporal.atomic import write_json_atomic
    from rsvlm_temporal.language.ground import ground

    ev, _, folder = _evidence(args)
    raster = folder / "change_class.tif" if folder and (folder / "change_class.tif").is_file() else None
    polys = folder / "change_polygons.geojson" if folder and (folder / "change_polygons.geojson").is_file() else None
    g = ground(args.phrase, ev, class_raster=raster, polygons=polys)
    if args.geojson:
        write_json_atomic(args.geojson, g.geojson)
    print(json.dumps(g.to_dict(), default=str) if args.json else
          f"{len(g.geojson['features'])} feature(s), {g.area_ha:.2f} ha of {', '.join(g.classes)} in "
          f"{', '.join(g.cells)} (source: {g.source})")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from rsvlm_temporal.train.language import finetune

    report = finetune(args.captions, out_dir=args.out, model=args.model, steps=args.steps, rank=args.rank,
                      lr=args.lr, max_len=args.max_len, seed=args.seed, init_adapter=args.adapter)
    print(json.dumps(report, indent=2, default=str))
    return 0


def register(sub: Any) -> None:
    """Add ``ask``, ``caption``, ``ground`` and ``finetune`` to the ``rsvlm`` subcommands."""
    s = sub.add_parser("ask", help="answer a question about what changed (verified against the evidence)")
    s.add_argument("question")
    _add_evidence_source(s)
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("caption", help="a verified change caption of an analysis")
    _add_evidence_source(s)
    s.set_defaults(func=cmd_caption)

    s = sub.add_parser("ground", help="phrase grounding: 'the burned area in the north-east' -> GeoJSON + mask")
    s.add_argument("phrase")
    _add_evidence_source(s)
    s.add_argument("--geojson", help="write the grounded features (EPSG:4326) here")
    s.set_defaults(func=cmd_ground)

    s = sub.add_parser("finetune", help="adapt the LM head's LoRA adapter on captions / QA pairs (CPU, minutes)")
    s.add_argument("--captions", required=True, help="JSONL: {\"prompt\"|\"question\", \"evidence\"?, \"caption\"|\"answer\"}")
    s.add_argument("--out", default="rsvlm-adapter", help="adapter folder (safetensors + model card)")
    s.add_argument("--model", default=None, help="base causal LM (default SmolLM2-135M GGUF)")
    s.add_argument("--adapter", default=None, help="start from this adapter folder")
    s.add_argument("--steps", type=int, default=60)
    s.add_argument("--rank", type=int, default=8)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--max-len", type=int, default=160)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_finetune)
