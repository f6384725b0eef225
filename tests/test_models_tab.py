"""The Models tab's pieces without a browser: the picker's memory sentence (issue #36 point 8) and the demos with a
model loaded (the Unload picker's default, point 7)."""

from __future__ import annotations

from types import SimpleNamespace

from hub.models_tab import loaded_demos, memory_note
from hub.spec import ModelChoice


class _Manager:
    def __init__(self, budget, rows=()):
        self.budget, self.rows = budget, list(rows)

    def _budget(self, kind):
        return self.budget

    def status(self):
        return self.rows


BIG = ModelChoice("acme/big", "hf", approx_bytes=20_500_000_000, size_dtype="bfloat16", cpu_dtype="bfloat16")
FP16 = ModelChoice("acme/fp16", "hf", approx_bytes=2_000_000_000, size_dtype="float16")


def test_a_model_over_the_budget_will_not_fit_and_one_under_it_fits():
    said = memory_note(_Manager(8_000_000_000), BIG, "cpu")
    assert said.startswith("⚠️ **It will not fit in memory**") and "20.5 GB" in said and "8.0 GB" in said
    assert memory_note(_Manager(30_000_000_000), BIG, "cpu") == \
        "It fits in memory (about 20.5 GB of the 30.0 GB this machine has for models)."


def test_the_size_is_the_one_of_the_dtype_the_model_runs_in_there():
    """fp16 weights run as float32 on a CPU (twice the room) and as float16 on a GPU."""
    assert "about 4.0 GB" in memory_note(_Manager(10_000_000_000), FP16, "cpu")
    assert "about 2.0 GB" in memory_note(_Manager(10_000_000_000), FP16, "cuda")
    assert "on the CUDA" in memory_note(_Manager(1_000_000_000), FP16, "cuda")


def test_nothing_is_said_when_the_budget_or_the_size_is_unknown():
    assert memory_note(_Manager(None), BIG, "cuda") == ""  # a GPU before torch is imported
    assert memory_note(SimpleNamespace(), BIG, "cpu") == ""  # a backend without a budget (Ray)
    assert memory_note(_Manager(10**9), ModelChoice("acme/unknown", "hf"), "cpu") == ""


def test_loaded_demos_leave_out_loading_and_failed_models():
    rows = [{"demo": "a", "state": "loading"}, {"demo": "b", "state": "CPU"}, {"demo": "c", "state": "failed"},
            {"demo": "b", "state": "CUDA"}, {"demo": "d", "state": "CUDA"}]
    assert loaded_demos(_Manager(0, rows)) == ["b", "d"]
