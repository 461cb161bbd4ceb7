"""End to end: the app served on 127.0.0.1, opened in headless chromium over the DevTools
protocol; nothing but 127.0.0.1 is reachable, and the page must ask for nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_browser import chromium_path, drive, streamlit_server

pytest.importorskip("websockets", reason="the DevTools client needs the websockets package")


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (apt-get install chromium)")
def test_app_in_headless_chromium_stays_on_localhost(demo_env, tmp_path: Path):
    shot = tmp_path / "app.png"
    with streamlit_server(demo_env["RSVLM_DEMO_PRESET"], env=demo_env) as url:
        report = drive(url, shot, timeout=150, play_s=4.0)
    assert report.seconds_to_player is not None, "the player never appeared"
    assert report.seconds_to_results is not None, "the analysis results never appeared"
    assert report.exceptions == [], report.exceptions
    assert report.frames_played is not None and report.frames_played > 0, "Play did not advance the frames"
    assert report.requests, "no request was recorded: the Network domain saw nothing"
    assert report.external() == [], report.external()
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
