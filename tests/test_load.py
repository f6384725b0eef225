"""Load: 50 concurrent gradio_client sessions across all tabs for 60 s (then on to 500 requests), tiny models, CPU."""

import json

import pytest

from bench.load_test import run_load, server_process
from tests import WAIT_S
from tests.conftest import free_port

pytestmark = pytest.mark.load


def test_fifty_sessions_across_all_tabs(tmp_path):
    with server_process(free_port(), queue_size=64, start_s=WAIT_S) as (url, pid):
        report = run_load(url, sessions=50, seconds=60, media_dir=tmp_path, min_requests=500, max_seconds=900,
                          server_pid=pid)
    (tmp_path / "load.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    per_api = report["per_api"]
    assert report["hung_sessions"] == 0
    from hub.registry import load_demos
    from bench.load_test import SKIP

    declared = {f"/{ex.api_name}" for h in load_demos() for ex in h.demo.examples if ex.api_name not in SKIP}
    assert set(per_api) == declared and len(declared) >= 6  # every tab, from the demos' examples
    assert all(v["error"] == 0 for v in per_api.values()), report["errors"]
    assert all(v["leak"] == 0 for v in per_api.values()), report["errors"]
    assert all(v["ok"] > 0 for v in per_api.values())
    assert report["completed"] >= 500, "fewer than 500 requests completed: memory growth cannot be judged"
    rss50, rss500 = report["rss_mb"][50], report["rss_mb"][500]
    assert rss500 <= rss50 * 1.10, f"resident memory grew from {rss50:.0f} MB to {rss500:.0f} MB"


def test_a_full_queue_answers_with_a_clear_try_again(tmp_path):
    import threading

    from gradio_client import Client

    from bench.load_test import QUEUE_FULL

    with server_process(free_port(), queue_size=2, start_s=WAIT_S) as (url, _):
        outcomes = []

        def one():
            try:
                Client(url, verbose=False).predict("tiny-random", "a cube", "", 1, 8, 7.5, "Euler a", 64, 64, 1,
                                                   api_name="/generate_image")
                outcomes.append("ok")
            except Exception as e:  # noqa: BLE001 - classified below
                outcomes.append(str(e))

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    full = [o for o in outcomes if o != "ok"]
    assert len(outcomes) == 12 and "ok" in outcomes and full, outcomes
    assert all(QUEUE_FULL in o.lower() and "try again" in o.lower() for o in full), full
