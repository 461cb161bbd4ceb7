"""``rsvlm train`` and ``rsvlm eval``: the temporal CLIP's commands (torch imported inside)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np


def cmd_train(args: argparse.Namespace) -> int:
    from rsvlm_temporal.errors import ParameterError
    from rsvlm_temporal.train.trainer import TrainConfig, run_training

    if not 1 <= args.seeds <= 64:
        raise ParameterError(f"--seeds {args.seeds}: expected 1..64 (seeds >= 1000 are held out for eval)")
    seeds = tuple(range(args.seeds))
    cfg = TrainConfig(model=args.model, seeds=seeds, steps=args.steps, pixels=args.pixels, lr=args.lr, seed=args.seed)
    rec = run_training(cfg, tag=args.tag, out=args.out)
    print(json.dumps({k: rec[k] for k in ("file", "sha256", "bytes", "train_seconds")}))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rsvlm_temporal.evaluate.model import real_data_scores
    from rsvlm_temporal.model.factory import create_model
    from rsvlm_temporal.train.evaluation import evaluate

    res = evaluate(model=args.model, pretrained=args.pretrained, seeds=tuple(args.seeds))
    # the real labelled sets through the model path (null with a reason where ../shared is absent)
    real = real_data_scores(create_model(args.model, pretrained=args.pretrained), levir_stride=args.levir_stride)
    res.update(taizhou_kappa=real["taizhou_kappa"], levir_f1=real["levir_f1"], reasons=real["reasons"], real=real["real"])
    print(json.dumps(res) if args.json else json.dumps(res, indent=2))
    return 0


def _points(text: str, what: str) -> list[tuple[float, float]]:
    from rsvlm_temporal.errors import ParameterError

    pts = []
    for part in text.split(";"):
        xy = [v.strip() for v in part.split(",")]
        try:
            x, y = float(xy[0]), float(xy[1])
            if len(xy) != 2 or not (np.isfinite(x) and np.isfinite(y)):
                raise ValueError
        except (ValueError, IndexError):
            raise ParameterError(f"{what}: {part!r} is not a point; expected X,Y pairs separated by ';' "
                                 "(lon,lat in degrees, or row,col with --pixel)") from None
        pts.append((x, y))
    return pts


def cmd_find(args: argparse.Namespace) -> int:
    from rsvlm_temporal.outputs.model_search import search_run

    res = search_run(args.run, args.query, top=args.top)
    if args.out:
        from rsvlm_temporal.outputs.cog import write_cog

        write_cog(res.score, args.out, nodata=np.nan, description=f"search score: {args.query}")
    out = {"query": res.query, "nearest_class": res.score.attrs.get("nearest_class"), "matched_ha": res.matched_ha,
           "where": res.where, "dates": [{"date": d, "share": s} for d, s in res.dates],
           "score_file": args.out}
    print(json.dumps(out) if args.json else res.describe())
    return 0


def cmd_fewshot(args: argparse.Namespace) -> int:
    from rsvlm_temporal.errors import ParameterError
    from rsvlm_temporal.outputs.model_search import few_shot_run

    marked = {}
    for spec in args.mark:
        name, _, pts = spec.partition("=")
        if not name.strip() or not pts:
            raise ParameterError(f"--mark {spec!r}: expected NAME=X,Y;X,Y;X,Y")
        marked[name.strip()] = _points(pts, f"--mark {name.strip()}")
    res = few_shot_run(args.run, marked, crs="pixel" if args.pixel else "EPSG:4326")
    if args.out:
        from rsvlm_temporal.outputs.cog import write_cog

        write_cog(res.labels, args.out, nodata=255, class_names=dict(enumerate(res.names)),
                  description="few-shot classes (nearest prototype in the joint space)")
    print(json.dumps({"classes": list(res.names), "areas_ha": res.areas_ha, "labels_file": args.out}))
    return 0


def register(sub: Any) -> None:
    """Add ``train`` and ``eval`` to the CLI's subparsers."""
    from rsvlm_temporal.train.trainer import HELDOUT_SEEDS  # numpy-only module level

    s = sub.add_parser("train", help="train the temporal CLIP on synthetic scenes (CPU, fixed seed)")
    s.add_argument("--model", default="temporal-tiny")
    s.add_argument("--seeds", type=int, default=8, help="training scene seeds 0..N-1 per scenario")
    s.add_argument("--steps", type=int, default=300)
    s.add_argument("--pixels", type=int, default=160, help="pixels sampled per scene and step")
    s.add_argument("--lr", type=float, default=3e-3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tag", default="synthetic-v1")
    s.add_argument("--out", default=None, help="weights file (default: the package's model/weights/, registered)")
    s.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="evaluate the temporal CLIP on held-out synthetic seeds")
    e.add_argument("--model", default="temporal-tiny")
    e.add_argument("--pretrained", default="default")
    e.add_argument("--seeds", type=int, nargs="+", default=list(HELDOUT_SEEDS))
    e.add_argument("--json", action="store_true", help="one JSON object on stdout")
    e.add_argument("--levir-stride", type=int, default=2,
                   help="LEVIR-CD scored on every Nth pixel of each axis (1: all 720,896; default 2, a regular quarter)")
    e.set_defaults(func=cmd_eval)
    f = sub.add_parser("find", help="text search over a finished run: where and when does 'burned forest' match?")
    f.add_argument("query")
    f.add_argument("--run", required=True, help="a result folder of `rsvlm analyze` (with the model)")
    f.add_argument("--top", type=int, default=5, help="dates listed")
    f.add_argument("--out", help="write the region score as a COG")
    f.add_argument("--json", action="store_true", help="one JSON object on stdout")
    f.set_defaults(func=cmd_find)
    k = sub.add_parser("fewshot", help="map new classes over a finished run from 3-5 marked points each")
    k.add_argument("--run", required=True, help="a result folder of `rsvlm analyze` (with the model)")
    k.add_argument("--mark", action="append", required=True, metavar="NAME=X,Y;X,Y;X,Y",
                   help="a class and its points (lon,lat degrees; row,col with --pixel); repeat per class")
    k.add_argument("--pixel", action="store_true", help="points are row,col of the run's grid")
    k.add_argument("--out", help="write the class raster as a COG")
    k.set_defaults(func=cmd_fewshot)
