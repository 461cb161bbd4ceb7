"""The package's layout is its flow: one folder per stage, and no module imports from a later
stage (so the layout cannot rot); every error class in errors.py; a light top-level import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rsvlm_temporal

PKG = Path(rsvlm_temporal.__file__).resolve().parent

#: the flow's order (../shared/DESIGN.md): a module may import its own stage and earlier ones
STAGES: dict[str, int] = {
    # the foundation every stage shares
    "errors": 0, "classes": 0, "grid": 0, "atomic": 0, "timeutil": 0, "quality": 0, "config": 0,
    "compute": 0,
    # catalog + cube -> change -> model -> evidence -> language -> outputs
    "io": 1, "change": 2, "model": 3, "evidence": 4, "language": 5, "outputs": 6,
    # around the flow: the scene generator (built with the flow's physics and writers) and the
    # trainers (on its scenes)
    "synth": 7, "train": 8,
    # the whole flow for one AOI, and the dashboard's library (frames, runs, exports) over it;
    # the evaluations run the flow as a user does; the CLI and the API on top
    "pipeline": 10, "viewer": 10, "evaluate": 11, "cli": 12, "__init__": 12,
}
FLOW_FOLDERS = ["io", "change", "model", "evidence", "language", "outputs"]


def _stage(module: str) -> str:
    """'rsvlm_temporal.io.cube' -> 'io'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "rsvlm_temporal" and node.level == 0:
            out += [(node.lineno, f"rsvlm_temporal.{a.name}") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("rsvlm_temporal."):
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            out.append((node.lineno, "<relative>"))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("rsvlm_temporal.")]
    return out


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_belongs_to_a_known_stage() -> None:
    unknown = sorted({p.relative_to(PKG).parts[0].removesuffix(".py") for p in _modules()} - set(STAGES))
    assert not unknown, f"modules or folders outside the flow's stages: {unknown}; add them to STAGES"


def test_the_folders_read_like_the_flow() -> None:
    folders = [p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    flow = sorted((f for f in folders if f in FLOW_FOLDERS), key=FLOW_FOLDERS.index)
    assert flow == FLOW_FOLDERS
    for f in folders:  # each stage folder says what it holds
        doc = ast.get_docstring(ast.parse((PKG / f / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"{f}/__init__.py needs a docstring saying what the stage holds"


def test_no_module_imports_from_a_later_stage() -> None:
    bad = []
    for path in _modules():
        rel = path.relative_to(PKG)
        if rel.name == "commands.py":  # a stage's CLI commands: the CLI layer, like cli.py
            continue
        own = STAGES[rel.parts[0].removesuffix(".py")]
        for line, module in _imports(path):
            if module == "<relative>":
                bad.append(f"{rel}:{line} uses a relative import; import rsvlm_temporal.<stage> absolutely")
                continue
            target = _stage(module)
            if target in STAGES and STAGES[target] > own:
                bad.append(f"{rel}:{line} imports {module} (stage {target!r} comes after {rel.parts[0]!r})")
    assert not bad, "\n".join(bad)


def test_every_error_class_lives_in_errors_py() -> None:
    elsewhere = []
    for path in _modules():
        if path.name == "errors.py" and path.parent == PKG:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and (node.name.endswith("Error") or node.name.endswith("Exception")):
                elsewhere.append(f"{path.relative_to(PKG)}: {node.name}")
    assert not elsewhere, elsewhere


def test_import_is_light_and_the_api_resolves() -> None:
    code = ("import sys, rsvlm_temporal as r; heavy = {'torch', 'transformers', 'streamlit', 'xarray', "
            "'dask', 'rasterio'} & set(sys.modules); print(sorted(heavy)); print(r.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", f"import rsvlm_temporal pulled in {out[0]}"
    from importlib import metadata

    assert out[1] == metadata.version("rsvlm-temporal")
    for name in rsvlm_temporal.__all__:
        assert getattr(rsvlm_temporal, name) is not None, name
    with pytest.raises(AttributeError):
        rsvlm_temporal.no_such_name  # noqa: B018
