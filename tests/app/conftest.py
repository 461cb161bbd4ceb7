"""Fixtures of the dashboard tests: a tiny seeded demo in a private cache, and the app."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app" / "Home.py")
#: tiny showcase scenes (48 px at 10 m, three years): a few seconds to generate and analyse
TINY_DEMO = {"size": 48, "start": "2020-01-01", "end": "2022-12-31", "s2_revisit_days": 20,
             "landsat_revisit_days": 32, "landsat_dual_revisit_days": 32}


@pytest.fixture(scope="session")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of the app under test: private cache, showcase preset with tiny scenes,
    generated once per session."""
    from rsvlm_temporal.synth.writer import demo_catalog

    cache = tmp_path_factory.mktemp("rsvlm-cache")
    env = {"RSVLM_CACHE": str(cache), "RSVLM_DEMO_PRESET": "showcase", "RSVLM_DEMO_OPTIONS": json.dumps(TINY_DEMO)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    demo_catalog(cache, preset="showcase", workers=1, **TINY_DEMO)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def demo_dir(demo_env: dict[str, str]) -> Path:
    """Folder of the tiny demo catalog."""
    from rsvlm_temporal.synth.writer import demo_catalog

    return Path(demo_catalog(demo_env["RSVLM_CACHE"], preset="showcase", **TINY_DEMO)).parent


@pytest.fixture()
def app(demo_env: dict[str, str]):
    """The app, run once on the demo (player and analysis results on the page)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
