"""``rsvlm train`` and ``rsvlm eval``: the temporal CLIP's commands (torch imported inside)."""

from __future__ import annotations

import argparse
import json
from typing import Any


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
    from rsvlm_temporal.train.evaluation import evaluate

    res = evaluate(model=args.model, pretrained=args.pretrained, seeds=tuple(args.seeds))
    print(json.dumps(res) if args.json else json.dumps(res, indent=2))
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
    e.set_defaults(func=cmd_eval)
