"""Shared fixtures. Real data lives in ../shared/data beside the repository (never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RSVLM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a clear reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real test data not found at {SHARED_DATA}: clone the project with ../shared beside it "
            "or set RSVLM_SHARED_DATA"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def presto_pt() -> Path:
    """The original Presto checkpoint in ../shared/data/weights (skips where it is absent)."""
    p = SHARED_DATA / "weights" / "presto" / "default_model.pt"
    if not p.is_file():
        pytest.skip(f"real Presto checkpoint not found at {p}: clone with ../shared beside the repo")
    return p
