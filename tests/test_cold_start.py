"""Cold start (issue 35): the load's stages (hub.loadtimes) as the manager and the Models tab see them, and the
cold-start bench case, which runs in fresh processes and splits click -> result into stages that add up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hub import loadtimes
from hub.models import ModelManager
from hub.spec import DemoSpec, ModelChoice
from tests import WAIT_S


def test_stages_nest_without_counting_twice_and_add_up_to_the_load():
    with loadtimes.recording() as rec:
        with loadtimes.stage("build"):
            time.sleep(0.02)
            with loadtimes.stage("convert"):  # inside build: counted as convert only
                time.sleep(0.05)
        time.sleep(0.01)  # outside any stage: "other"
    assert list(rec.stages) == ["build", "convert"]
    assert rec.stages["convert"] >= 0.05 and 0.02 <= rec.stages["build"] < 0.05
    assert rec.seconds == pytest.approx(sum(rec.stages.values()) + rec.other(), abs=1e-9)
    assert rec.other() >= 0.01 and rec.finished is not None
    assert "build" in rec.status() and "other" in rec.status()


def test_a_stage_outside_a_load_times_nothing_and_reads_still_work(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"x" * 12345)
    assert loadtimes.current() is None
    with loadtimes.stage("build"):
        pass
    assert loadtimes.read_files([f, tmp_path / "missing.bin"]) == 12345  # a missing file is skipped


def test_reading_counts_the_bytes_on_disk_and_names_the_files(tmp_path):
    files = []
    for i, size in enumerate((3 << 20, 10 << 20, 1)):  # one over the 8 MiB read block
        files.append(tmp_path / f"part{i}.bin")
        files[-1].write_bytes(bytes(size))
    with loadtimes.recording() as rec:
        assert loadtimes.read_files(loadtimes.files_under(tmp_path, (".bin",))) == (3 << 20) + (10 << 20) + 1
    assert rec.bytes_read == sum(f.stat().st_size for f in files)
    assert sorted(rec.files) == sorted(map(str, files)) and "read" in rec.stages
    assert "(14 MB)" in rec.status()


def test_the_record_keeps_the_peak_rss_of_the_load_not_of_what_runs_after_it():
    """The issue's "peak RSS during the load": VmHWM when the load ends (the bench resets it at the click), so a
    buffer the first request allocates later does not count in it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to the current RSS
    except OSError:
        pytest.skip("this kernel does not let a process reset its peak RSS")
    mb = 1 << 20
    with loadtimes.recording() as rec:
        held = bytearray(96 * mb)  # touched (zeroed) pages: the load's own peak
        held[::4096] = b"x" * len(held[::4096])
        del held
    after_load = loadtimes._peak_rss_kb()
    work = bytearray(256 * mb)  # the "work" after the load: a higher peak the record must not take
    work[::4096] = b"y" * len(work[::4096])
    assert rec.peak_rss_kb is not None and rec.peak_rss_kb == after_load
    assert loadtimes._peak_rss_kb() * 1024 >= rec.peak_rss_kb * 1024 + 128 * mb
    del work


def test_the_upscaler_load_names_its_stages_and_counts_its_file(tmp_path):
    from demos.upscale import engine as U
    from demos.upscale.spec import SPEC
    from hub.weights import Weights

    choice = SPEC.choice("tiny-random")
    weights = Weights("upscale", choice, "random", None, tmp_path)
    with loadtimes.recording() as rec:
        eng = U.load(weights, "cpu", "float32")
    assert list(rec.stages) == ["import", "read", "build", "convert"]
    (path,) = rec.files
    assert rec.bytes_read == Path(path).stat().st_size > 0 and path.endswith(".safetensors")
    assert eng.dtype == "float32"


def _gated_manager(settings, gate: threading.Event, reached: threading.Event):
    def load(weights, device, dtype, settings=None):
        with loadtimes.stage("import"):
            pass
        with loadtimes.stage("build"):
            reached.set()
            assert gate.wait(WAIT_S), "the test never opened the gate"
        return object()

    spec = DemoSpec("gated", "Gated", "", (ModelChoice("m", "random", approx_bytes=10),), {"cpu": "m"}, ())
    return ModelManager(settings, {"gated": (spec, load)})


def test_the_models_tab_row_shows_the_stage_running_now_and_the_split_when_done(settings):
    gate, reached = threading.Event(), threading.Event()
    manager = _gated_manager(settings, gate, reached)

    def first_click():
        with manager.use("gated"):
            pass

    t = threading.Thread(target=first_click)
    t.start()
    try:
        assert reached.wait(WAIT_S)
        (row,) = manager.status()
        assert row["state"] == "loading" and row["note"].startswith("loading: ") and "now build" in row["note"]
        assert "import" in row["stages"]
    finally:
        gate.set()
        t.join(WAIT_S)
    (row,) = manager.status()
    assert row["state"] == "CPU" and row["note"] == "" and set(row["stages"]) >= {"import", "build"}


def test_the_cold_start_case_runs_in_fresh_processes_and_its_stages_add_up(tmp_path, monkeypatch):
    """The Piper stand-in (random weights: no model library) keeps this to two small hub processes."""
    from bench.cases_cold_start import Target, case_for
    from bench.harness import run_case

    monkeypatch.setenv("DEMOHUB_CACHE_DIR", str(tmp_path / "cache"))
    result = run_case(case_for(Target("tts", label="Piper stand-in, random", repeat=1)))
    assert "error" not in result
    m = result["metrics"]
    assert m["random"] and m["runs"] == 1 and result["hub"]["runs"] == 1
    assert m["cold_s"] > 0 and m["warm_s"] > 0 and m["read_mb"] == 0  # no weight files: nothing to read
    # the split adds up to click -> result: the engine module, the load's stages and "other", the work
    assert sum(m["stages"].values()) == pytest.approx(m["cold_s"], rel=0.01, abs=0.02)
    assert "work" in m["stages"] and "load: other" in m["stages"]
    # the load's peak is within the whole click's peak (both from the click on, VmHWM reset there)
    if m["peak_rss_delta_mb"] is not None:
        assert m["load_peak_rss_delta_mb"] is not None and m["load_peak_rss_delta_mb"] <= m["peak_rss_delta_mb"]
    # the ratio is of the unrounded times: bound it by the rounding of the reported ones (cold_s to 0.01 s, the
    # others to 0.001 s; a random voice's warm click is ~0.01 s, so its rounding alone moves the ratio by ~5 %)
    naive = m["raw_read_s"] + m["warm_s"]
    low, high = (m["cold_s"] - 0.005) / (naive + 0.001), (m["cold_s"] + 0.005) / max(naive - 0.001, 1e-9)
    assert low - 0.005 <= m["cold_over_naive"] <= high + 0.005
    # the harness times the same click from outside: a little more (the pipe), never less
    assert result["hub"]["p50_ms"] / 1e3 >= m["cold_s"] * 0.99


def test_a_gguf_model_is_dequantized_once_and_later_loads_give_the_same_answers(tmp_path, monkeypatch):
    """Lever of issue 35: transformers dequantizes a GGUF file at every load; the hub keeps the result."""
    pytest.importorskip("gguf")
    from demos.llm_chat import engine as L
    from demos.llm_chat.messages import build_messages
    from hub.spec import ModelChoice
    from hub.weights import Weights
    from tests.test_llm_chat_gguf import write_tiny_gguf

    path = write_tiny_gguf(tmp_path / "tiny-chat.Q4_1.gguf")
    weights = Weights("llm_chat", ModelChoice(str(path), "path", label="tiny-chat (local)"), "path", path,
                      tmp_path / "cache")
    msgs, params = build_messages("", [], "Hello there"), L.check_params(temperature=0, max_new_tokens=8)
    with loadtimes.recording() as first_load:
        first = L.load(weights, "cpu", "float32")
    assert first_load.files == [str(path)]  # the GGUF file itself
    answer = L.chat(first, msgs, params)

    def parsed_again(*args):
        raise AssertionError("the GGUF file was parsed again")

    monkeypatch.setattr(L, "gguf_format", parsed_again)
    with loadtimes.recording() as later_load:
        later = L.load(weights, "cpu", "float32")
    assert later_load.files and all(f.endswith(".safetensors") for f in later_load.files)  # the kept copy
    assert later.weights_format == first.weights_format == "Q4_1 GGUF, dequantized to float32 in memory"
    again = L.chat(later, msgs, params)
    assert (again.text, again.new_tokens) == (answer.text, answer.new_tokens) and answer.new_tokens >= 1
