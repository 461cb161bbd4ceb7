"""The quickstart notebook runs end to end (nbclient) on the small offline demo scene."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path: Path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel", reason="executing a notebook needs the python3 kernel (ipykernel)")
    nb = nbformat.read(NOTEBOOKS / "01_quickstart.ipynb", as_version=4)
    # a per-cell limit against a hang, not a speed test (speed: benchmarks/)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "analysis: series" in text and "burn" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 5


def test_stored_notebooks_are_executed():
    nbformat = pytest.importorskip("nbformat")
    for name in ("01_quickstart.ipynb", "02_stac_walkthrough.ipynb"):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{name} is not stored executed"
        assert not [o for c in code for o in c.outputs if o.output_type == "error"], name
    stac = nbformat.read(NOTEBOOKS / "02_stac_walkthrough.ipynb", as_version=4)
    assert any("network" in c.metadata.get("tags", []) for c in stac.cells)
