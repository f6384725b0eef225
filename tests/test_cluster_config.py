"""The Ray backend's per-demo deployment config (hub.cluster.config): defaults for one GPU node, a TOML or YAML file
for a cluster, and a sentence for a bad file."""

from __future__ import annotations

import pytest

from hub.cluster import config
from hub.errors import SettingsError
from hub.registry import DEMOS, load_demos

SHARE = {h.name: h.spec.gpu_share for h in load_demos()}  # each demo's declared GPU share


def test_defaults_one_replica_each_and_every_demo_fits_on_one_gpu():
    c = config.ClusterConfig()
    total = 0.0
    for demo in DEMOS:
        opts = c.deployment(demo).serve_options(SHARE[demo], concurrency=2, cluster_gpus=1)
        assert opts["num_replicas"] == 1 and "autoscaling_config" not in opts
        assert opts["ray_actor_options"]["num_cpus"] == 0
        total += opts["ray_actor_options"]["num_gpus"]
    assert 0 < total <= 1.0
    assert c.deployment("stable_diffusion").gpus(SHARE["stable_diffusion"], 1) == max(
        c.deployment(d).gpus(SHARE[d], 1) for d in DEMOS), "Stable Diffusion gets the largest share"
    no_gpu = c.deployment("llm_chat").serve_options(SHARE["llm_chat"], 1, cluster_gpus=0)
    assert no_gpu["ray_actor_options"]["num_gpus"] == 0, "a cluster without GPUs asks for none"


def test_a_toml_file_sets_autoscaling_and_gpus_per_demo(tmp_path):
    f = tmp_path / "ray.toml"
    f.write_text('queue_timeout_s = 60\n[default]\nmax_queued_requests = 4\n'
                 '[demos.stable_diffusion]\nmin_replicas = 1\nmax_replicas = 4\nnum_gpus = 1\n'
                 'target_ongoing_requests = 1.5\n')
    c = config.load(f)
    c.check_names(DEMOS)
    sd = c.deployment("stable_diffusion").serve_options(SHARE["stable_diffusion"], 1, cluster_gpus=8)
    assert c.queue_timeout_s == 60
    assert sd["autoscaling_config"]["min_replicas"] == 1 and sd["autoscaling_config"]["max_replicas"] == 4
    assert sd["autoscaling_config"]["target_ongoing_requests"] == 1.5
    assert sd["ray_actor_options"]["num_gpus"] == 1.0 and sd["max_queued_requests"] == 4
    other = c.deployment("yolo_detect").serve_options(SHARE["yolo_detect"], 2, cluster_gpus=8)
    assert other["max_queued_requests"] == 4 and other["num_replicas"] == 1, "[default] applies to every demo"


def test_a_yaml_file_works_too(tmp_path):
    pytest.importorskip("yaml")
    f = tmp_path / "ray.yaml"
    f.write_text("demos:\n  llm_chat:\n    min_replicas: 0\n    max_replicas: 3\n    num_gpus: 0.5\n")
    d = config.load(f).deployment("llm_chat")
    assert (d.min_replicas, d.max_replicas, d.num_gpus) == (0, 3, 0.5)


@pytest.mark.parametrize("text, says", [
    ("[demos.stable_difusion]\nmax_replicas = 2\n", "not a demo"),
    ("[demos.llm_chat]\nmin_replicas = 3\nmax_replicas = 1\n", "less than min_replicas"),
    ("[demos.llm_chat]\nnum_gpus = -1\n", "num_gpus"),
    ("[default]\nreplicas = 2\n", "replicas"),
    ("queue_timeout_s = 'soon'\n", "queue_timeout_s"),
    ("[demos.llm_chat\n", "not valid TOML"),
])
def test_a_bad_file_gets_a_sentence_naming_the_field(tmp_path, text, says):
    f = tmp_path / "ray.toml"
    f.write_text(text)
    with pytest.raises(SettingsError, match=says) as e:
        config.load(f).check_names(DEMOS)
    assert "Traceback" not in str(e.value) and "ValidationError" not in str(e.value)


def test_a_missing_file_is_named_without_its_folder(tmp_path):
    with pytest.raises(SettingsError, match="Cannot read the Ray config nope.toml"):
        config.load(tmp_path / "nope.toml")


def test_the_example_config_in_the_repository_is_valid():
    from pathlib import Path

    c = config.load(Path(__file__).resolve().parents[1] / "deploy" / "ray.toml")
    c.check_names(DEMOS)
    assert c.deployment("stable_diffusion").gpus(SHARE["stable_diffusion"], 2) == 1.0
