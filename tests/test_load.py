"""Load: 50 concurrent gradio_client sessions across all tabs for 60 s (then on to 500 requests), tiny models, CPU."""

import json

import pytest

from bench.load_test import run_load, serve_tiny
from tests.conftest import free_port

pytestmark = pytest.mark.load


def test_fifty_sessions_across_all_tabs(tmp_path):
    blocks, url = serve_tiny(free_port(), queue_size=64)
    try:
        report = run_load(url, sessions=50, seconds=60, media_dir=tmp_path, min_requests=500, max_seconds=900)
    finally:
        blocks.close()
    (tmp_path / "load.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    per_api = report["per_api"]
    assert report["hung_sessions"] == 0
    assert set(per_api) == {"/generate_image", "/transcribe", "/detect", "/classify", "/segment", "/chat"}
    assert all(v["error"] == 0 for v in per_api.values()), report["errors"]
    assert all(v["leak"] == 0 for v in per_api.values()), report["errors"]
    assert all(v["ok"] > 0 for v in per_api.values())
    assert report["completed"] >= 500, "fewer than 500 requests completed: memory growth cannot be judged"
    rss50, rss500 = report["rss_mb"][50], report["rss_mb"][500]
    assert rss500 <= rss50 * 1.10, f"resident memory grew from {rss50:.0f} MB to {rss500:.0f} MB"
