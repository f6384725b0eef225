import json
import struct
from pathlib import Path

import pytest

from hub.errors import CorruptWeights, UserError, WeightsUnavailable
from hub.spec import DemoSpec, ModelChoice
from hub.weights import choice_for, is_cached, resolve, select, verify_file

SPEC = DemoSpec(
    name="thing", title="Thing", description="",
    models=(ModelChoice("org/model", "hf", revision="0123456789abcdef0123456789abcdef01234567", approx_bytes=1, license="MIT"),
            ModelChoice("small", "native", files=("small.pt",), approx_bytes=1, license="MIT"),
            ModelChoice("tiny-random", "random", hidden=True)),
    default_model={"cpu": "small", "cuda": "org/model"}, api_names=("x",),
)


def write_safetensors(path: Path, n_floats: int = 4, truncate: int = 0) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}}).encode()
    data = struct.pack("<Q", len(header)) + header + b"\0" * (4 * n_floats)
    path.write_bytes(data[: len(data) - truncate])
    return path


def test_offline_without_cache_gives_an_actionable_error(settings, caplog):
    with pytest.raises(WeightsUnavailable) as e:
        resolve(SPEC, SPEC.choice("org/model"), settings)
    msg = str(e.value)
    # plain text (a toast shows backticks as they are), the command once, no server path
    assert msg == ("org/model is not on this machine and the hub is offline. The operator can download it where "
                   "there is network (demohub fetch thing --model org/model); or pick another model.")
    assert str(settings.cache_dir) in caplog.text  # where it looked: for the operator, in the log only


def test_native_offline_missing_file_is_actionable(settings):
    with pytest.raises(WeightsUnavailable, match="demohub fetch thing"):
        resolve(SPEC, SPEC.choice("small"), settings)


def test_good_safetensors_pass_and_truncated_or_empty_are_reported(tmp_path):
    verify_file(write_safetensors(tmp_path / "ok.safetensors"), None, "thing")
    bad = write_safetensors(tmp_path / "cut.safetensors", truncate=3)
    with pytest.raises(CorruptWeights) as e:
        verify_file(bad, None, "thing")
    assert "cut.safetensors" in str(e.value) and "demohub fetch thing" in str(e.value)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CorruptWeights, match="empty"):
        verify_file(tmp_path / "empty.safetensors", None, "thing")


def test_pinned_hash_mismatch_and_fake_gguf_are_rejected(tmp_path):
    f = tmp_path / "m.pt"
    f.write_bytes(b"\x80not really")
    with pytest.raises(CorruptWeights, match="SHA-256"):
        verify_file(f, "0" * 64, "thing")
    g = tmp_path / "m.gguf"
    g.write_text("hello")
    with pytest.raises(CorruptWeights, match="GGUF"):
        verify_file(g, None, "thing")


def test_truncated_torch_zip_checkpoint_is_rejected(tmp_path):
    import zipfile

    f = tmp_path / "ckpt.pt"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("archive/data.pkl", b"x" * 1000)
    verify_file(f, None, "thing")
    f.write_bytes(f.read_bytes()[:-30])
    with pytest.raises(CorruptWeights, match="cut off"):
        verify_file(f, None, "thing")


def test_corrupt_native_file_in_cache_is_not_loaded(settings):
    folder = Path(settings.cache_dir) / "native" / "thing"
    folder.mkdir(parents=True)
    (folder / "small.pt").write_bytes(b"garbage")
    with pytest.raises(CorruptWeights, match="small.pt"):
        resolve(SPEC, SPEC.choice("small"), settings)


def test_choice_for_paths_repo_ids_and_names(tmp_path):
    local = write_safetensors(tmp_path / "mine.safetensors")
    assert choice_for(SPEC, str(local)).source == "path"
    assert choice_for(SPEC, "someone/else").source == "hf"
    assert choice_for(SPEC, "medium").source == "native"  # a library model name
    with pytest.raises(UserError, match="does not exist"):
        choice_for(SPEC, "/nope/model.safetensors")


def test_select_prefers_ui_then_env_then_device_default(settings):
    from dataclasses import replace

    assert select(SPEC, settings, "cpu").id == "small"
    assert select(SPEC, settings, "cuda").id == "org/model"
    s = replace(settings, models={"thing": "tiny-random"})
    assert select(SPEC, s, "cpu").id == "tiny-random"
    assert select(SPEC, s, "cpu", "org/model").id == "org/model"
    r = select(SPEC, replace(settings, weights="random"), "cpu")
    assert r.id == "small" and r.source == "random"


def test_random_needs_no_files_and_is_cached(settings):
    w = resolve(SPEC, SPEC.choice("tiny-random"), settings)
    assert w.is_random and w.path is None
    assert is_cached(SPEC, SPEC.choice("tiny-random"), settings) == (True, 0)
    assert is_cached(SPEC, SPEC.choice("org/model"), settings) == (False, 0)


def test_behind_a_proxy_the_direct_probe_is_skipped(monkeypatch):
    from hub.weights import _unreachable

    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # refused when connected to directly
    assert _unreachable() is not None
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")  # the download goes through the proxy instead
    assert _unreachable() is None


def test_unreachable_hub_fails_fast_with_the_fetch_command(settings, monkeypatch):
    import time
    from dataclasses import replace

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused at once
    online = replace(settings, offline=False)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailable) as e:
        resolve(SPEC, SPEC.choice("org/model"), online)
    assert time.monotonic() - t0 < 30  # no retries with back-off for minutes
    assert "cannot reach 127.0.0.1" in str(e.value) and "demohub fetch thing" in str(e.value)


def test_an_unlisted_library_name_keeps_nothing_of_a_listed_models_options():
    from hub.spec import DemoSpec, ModelChoice
    from hub.weights import choice_for

    spec = DemoSpec(name="w", title="W", description="", api_names=("w",), default_model={"cpu": "tiny.en"},
                    models=(ModelChoice("tiny.en", "native", sha256="0" * 64, options={"size": "tiny.en"}),))
    other = choice_for(spec, "large-v2")
    assert other.id == "large-v2" and other.options == {} and other.sha256 is None  # not tiny.en under another name


def test_a_one_file_hf_pin_is_checked_against_its_hash_when_resolved(settings):
    """A pinned Hub file (TAESD, Depth Anything) whose bytes are not the pinned ones is refused with the fetch
    command, wherever it came from: the fetch that just downloaded it, or a cache copied from elsewhere."""
    import hashlib
    from dataclasses import replace

    from hub.weights import hf_cache

    rev = "89abcdef0123456789abcdef0123456789abcdef"
    snap = Path(hf_cache(settings)) / "models--org--pinned" / "snapshots" / rev
    snap.mkdir(parents=True)
    good = write_safetensors(snap / "w.safetensors")
    pin = ModelChoice("org/pinned", "hf", revision=rev, files=("config.json", "w.safetensors"),
                      sha256=hashlib.sha256(good.read_bytes()).hexdigest(), approx_bytes=1, license="MIT")
    (snap / "config.json").write_text("{}")
    spec = replace(SPEC, models=(*SPEC.models, pin))
    assert resolve(spec, pin, settings).path == snap
    write_safetensors(snap / "w.safetensors", n_floats=5)  # another file, still well-formed
    with pytest.raises(CorruptWeights, match="its SHA-256 does not match the pinned hash"):
        resolve(spec, pin, settings)


def test_a_pinned_snapshot_counts_as_cached_only_with_every_file_of_its_pin(tmp_path):
    from hub.spec import ModelChoice
    from hub.weights import cached_snapshot

    pin = ModelChoice("org/net", "hf", revision="b" * 40, files=("config.json", "model.safetensors"))
    snap = tmp_path / "hf" / "models--org--net" / "snapshots" / ("b" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert cached_snapshot(tmp_path, pin) is None  # the weights file is still missing (an interrupted fetch)
    (snap / "model.safetensors").write_bytes(b"x")
    assert cached_snapshot(tmp_path, pin) == snap
    assert cached_snapshot(None, pin) is None
    other_revision = ModelChoice("org/net", "hf", revision="c" * 40, files=("config.json",))
    assert cached_snapshot(tmp_path, other_revision) is None  # another revision's files are not this pin's


def test_a_local_or_unpinned_model_gets_the_cpu_dtype_every_listed_model_of_its_demo_prefers(tmp_path):
    """A local SD folder ran fp32 on a CPU with native bf16 (2x slower than the listed SD-Turbo there), though the
    README promises bf16 for SD and CLIP on such CPUs."""
    from demos.stable_diffusion.spec import SPEC as SD
    from demos.yolo_detect import SPEC as YOLO
    from hub.device import choose

    folder = tmp_path / "my-sd-model"
    folder.mkdir()
    for choice in (choice_for(SD, str(folder)), choice_for(SD, "someone/sd-finetune")):
        assert choice.cpu_dtype == "bfloat16"
        assert choose("cpu", cpu_bf16=True, cpu_prefers=choice.cpu_dtype).dtype == "bfloat16"
        assert choose("cpu", cpu_bf16=False, cpu_prefers=choice.cpu_dtype).dtype == "float32"  # an AVX2-only CPU
    assert {m.cpu_dtype for m in YOLO.models} == {None}  # no YOLO measured faster in bf16: a local one neither
    assert choice_for(YOLO, str(write_safetensors(tmp_path / "mine.safetensors"))).cpu_dtype is None
