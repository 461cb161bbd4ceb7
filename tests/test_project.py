"""Project frame: environment.yml names the same dependencies as pyproject.toml; the CLI parses."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from rsvlm_temporal.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ]", r.strip(), maxsplit=1)[0].lower() for r in reqs}


def _expand(extras: dict[str, list[str]], name: str) -> list[str]:
    """The requirements of extra ``name``, with self-references (rsvlm-temporal[x, y]) expanded."""
    out: list[str] = []
    for r in extras[name]:
        m = re.fullmatch(r"rsvlm-temporal\[(.*)\]", r.strip())
        out += [q for n in m.group(1).split(",") for q in _expand(extras, n.strip())] if m else [r]
    return out


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    deps = _names(project["dependencies"]) | _names(_expand(extras, "all")) | _names(_expand(extras, "test"))
    env = [line.strip()[2:] for line in (REPO / "environment.yml").read_text().splitlines()
           if line.strip().startswith("- ") and not line.strip().startswith("- -e")]
    env_names = _names([e for e in env if e not in ("conda-forge", "python=3.11", "pip", "pip:")])
    assert env_names == deps


def test_cli_commands_parse() -> None:
    p = build_parser()
    for argv in (["demo"], ["search", "--bbox", "1,2,3,4"], ["synth", "x"],
                 ["analyze", "--catalog", "c.json", "--out", "o", "--workers", "2"],
                 ["evaluate", "taizhou", "--data", "d"]):
        assert callable(p.parse_args(argv).func)
