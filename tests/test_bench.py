import json
import time

import pytest

from bench.harness import Case, main, run_case


def test_run_case_reports_both_sides_and_the_ratio():
    import time

    # naive sleeps 0.2 s, the hub 0.02 s: the ratio stays above 1 even when a busy machine wakes both late
    case = Case("smoke/sleep", setup=lambda: 0.02, naive=lambda d: time.sleep(10 * d), hub=lambda d: time.sleep(d))
    r = run_case(case, repeat=3)
    assert r["naive"]["runs"] == r["hub"]["runs"] == 3
    assert r["naive"]["p50_ms"] >= 200.0 and r["hub"]["p50_ms"] >= 20.0
    assert r["speedup"] == pytest.approx(r["naive"]["p50_ms"] / r["hub"]["p50_ms"], rel=0.01) and r["speedup"] > 1


def test_manager_bench_case_runs_under_its_budget_and_writes_json(tmp_path, monkeypatch):
    import functools

    from bench import cases_hub

    # the case as `demohub bench` finds it, with 4 MB models instead of 64 (the same evictions under a budget of three;
    # 64 MB of random numbers per naive load took 100 s of a CI run)
    monkeypatch.setattr(cases_hub, "_manager_case", functools.partial(cases_hub._manager_case, mb_each=4))
    assert main(["hub/manager"], repeat=1, out=str(tmp_path)) == 0
    (report,) = tmp_path.glob("bench-*.json")
    data = json.loads(report.read_text())
    (result,) = data["results"]
    assert result["case"] == "hub/manager-cycle" and result["hub"]["p50_ms"] > 0 and "error" not in result
    assert (tmp_path / report.name.replace(".json", ".md")).read_text().startswith("| case |")


def test_a_failing_case_is_reported_not_hidden(tmp_path, monkeypatch):
    import bench.harness as h

    monkeypatch.setattr(h, "discover", lambda: [Case("x/bad", setup=lambda: 1 / 0, naive=print, hub=print)])
    assert h.main([], repeat=1, out=str(tmp_path)) == 1
    (report,) = tmp_path.glob("bench-*.json")
    assert "ZeroDivisionError" in report.read_text()


def test_profile_case_names_the_function_where_the_hub_side_spends_its_time(tmp_path, monkeypatch):
    from bench import profile_case as pc

    def slow_part(d):
        time.sleep(d)

    case = Case("smoke/profiled", setup=lambda: 0.002, naive=lambda d: time.sleep(2 * d), hub=slow_part)
    monkeypatch.setattr(pc, "discover", lambda: [case])
    out = tmp_path / "profile.txt"
    assert pc.main(["smoke/profiled", "--calls", "3", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("## smoke/profiled: hub p50 ") and "slow_part" in text
    assert pc.main(["no/such-case"]) == 2
