"""Token auth on every path the hub starts or joins Ray, without a cluster (hub.cluster.security)."""

from __future__ import annotations

import logging
import stat

import pytest

from hub.cluster import security
from hub.errors import SettingsError


def test_a_fresh_token_is_random_and_private(tmp_path):
    a, b = security.write_token(tmp_path / "a"), security.write_token(tmp_path / "b")
    assert a.read_text() != b.read_text() and len(a.read_text()) == 64
    assert stat.S_IMODE(a.stat().st_mode) == 0o600 and stat.S_IMODE(a.parent.stat().st_mode) == 0o700


def test_the_hubs_own_ray_switches_token_auth_on_with_a_private_token():
    env = {}
    opts = security.local_init_options(env)
    assert env["RAY_AUTH_MODE"] == "token" and opts["include_dashboard"] is False
    path = env["RAY_AUTH_TOKEN_PATH"]
    assert stat.S_IMODE(__import__("os").stat(path).st_mode) == 0o600


def test_joining_a_cluster_without_a_token_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(security, "DEFAULT_TOKEN", tmp_path / "none")
    with pytest.raises(SettingsError) as e:
        security.check_join("10.0.0.10:6379", {})
    text = str(e.value)
    assert "RAY_AUTH_MODE=token" in text and "RAY_AUTH_TOKEN" in text and "RAY_AUTH_MODE=disabled" in text
    with pytest.raises(SettingsError, match="not a mode"):
        security.check_join("10.0.0.10:6379", {"RAY_AUTH_MODE": "tokn", "RAY_AUTH_TOKEN": "x"})


def test_joining_with_a_token_switches_token_mode_on(tmp_path, monkeypatch):
    token = security.write_token(tmp_path / "t")
    for env in ({"RAY_AUTH_TOKEN_PATH": str(token)}, {"RAY_AUTH_TOKEN": "abc"}):
        security.check_join("auto", env)
        assert env["RAY_AUTH_MODE"] == "token"
    monkeypatch.setattr(security, "DEFAULT_TOKEN", token)
    env = {}
    security.check_join("auto", env)
    assert env["RAY_AUTH_MODE"] == "token"
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(SettingsError):
        security.check_join("auto", {"RAY_AUTH_TOKEN_PATH": str(empty)})


def test_an_operator_may_join_without_auth_only_by_saying_so(caplog):
    with caplog.at_level(logging.WARNING, logger="demohub"):
        security.check_join("10.0.0.10:6379", {"RAY_AUTH_MODE": "disabled"})
    assert "without authentication" in caplog.text


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_every_documented_ray_start_uses_token_auth():
    """Each recipe is safe as written: every `ray start` in the README and deploy/ runs with RAY_AUTH_MODE=token."""
    import re

    texts = {p.name: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "deploy").iterdir())]}
    starts = [(name, line) for name, text in texts.items() for line in text.splitlines()
              if re.match(r"\s*(- )?([A-Z_]+=\S* )*\S*\bray start\b", line)]  # command lines, not prose
    assert len(starts) >= 3, starts
    for name, line in starts:
        assert "RAY_AUTH_MODE=token" in line, (name, line)
        if "--head" in line:
            assert "0.0.0.0" not in line, (name, line)


def test_the_cluster_recipes_carry_the_token_to_every_node_and_the_front_end():
    import yaml

    local = yaml.safe_load((ROOT / "deploy" / "ray-cluster.yaml").read_text())
    assert "~/.ray/auth_token" in local["file_mounts"]
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kuberay.yaml").read_text()))
    cluster = next(d for d in docs if d["kind"] == "RayCluster")
    assert cluster["spec"]["authOptions"]["mode"] == "token"
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"].get("dashboard-host") != "0.0.0.0"
    front = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"]: e for e in front["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token" and "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"ray.io/cluster": "demohub"}
