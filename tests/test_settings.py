import pytest
from hypothesis import given, strategies as st

from hub.errors import SettingsError
from hub.settings import Settings, parse_auth, parse_bytes


def test_defaults_without_environment():
    s = Settings.load({})
    assert (s.device, s.dtype, s.weights, s.port, s.share) == ("auto", "auto", "hf", 7860, False)
    assert str(s.cache_dir) == "model_cache" and s.vram_budget is None and s.demos is None


def test_environment_is_read_and_flags_win():
    env = {"DEMOHUB_DEVICE": "cpu", "DEMOHUB_PORT": "9000", "DEMOHUB_VRAM_BUDGET": "6GiB", "DEMOHUB_WEIGHTS": "random",
           "DEMOHUB_DEMOS": "whisper_asr, yolo_detect", "DEMOHUB_AUTH": "a:1,b:2", "DEMOHUB_WHISPER_ASR_MODEL": "tiny"}
    s = Settings.load(env, port=9100, device="cuda")
    assert s.device == "cuda" and s.port == 9100 and s.vram_budget == 6 * 2**30 and s.weights == "random"
    assert s.demos == ("whisper_asr", "yolo_detect") and s.auth == (("a", "1"), ("b", "2"))
    assert s.models == {"whisper_asr": "tiny"}


def test_hf_hub_offline_means_offline():
    assert Settings.load({"HF_HUB_OFFLINE": "1"}).offline


@pytest.mark.parametrize("var,value", [
    ("DEMOHUB_DEVICE", "gpu"), ("DEMOHUB_DTYPE", "fp8"), ("DEMOHUB_WEIGHTS", "none"), ("DEMOHUB_PORT", "99999"),
    ("DEMOHUB_PORT", "abc"), ("DEMOHUB_VRAM_BUDGET", "lots"), ("DEMOHUB_OFFLINE", "maybe"),
    ("DEMOHUB_MAX_UPLOAD_MB", "0"), ("DEMOHUB_AUTH", "nopassword"), ("DEMOHUB_CACHE_DIR", " "),
])
def test_invalid_values_name_the_variable(var, value):
    with pytest.raises(SettingsError, match=var):
        Settings.load({var: value})


def test_auth_file(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text("# team\nalice:pw1\nbob:pw2\n")
    assert Settings.load({}, auth_file=str(f)).auth == (("alice", "pw1"), ("bob", "pw2"))
    with pytest.raises(SettingsError, match="--auth-file"):
        Settings.load({}, auth_file=str(tmp_path / "missing.txt"))


def test_share_without_auth_refuses_to_start():
    with pytest.raises(SettingsError, match="--auth"):
        Settings.load({}, share=True).check_launch()
    Settings.load({}, share=True, auth=["u:p"]).check_launch()
    Settings.load({}, share=True, insecure_share=True).check_launch()


def test_demo_options_are_operator_env_only():
    from hub.options import parse
    from demos.stable_diffusion import DEMO

    s = Settings.load({"DEMOHUB_STABLE_DIFFUSION_SAFETY_CHECKER": "off"})
    assert parse(DEMO, s.env).safety_checker is False
    assert parse(DEMO, Settings.load({}).env).safety_checker is True


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["", "B", "KB", "MB", "GB", "MiB", "GiB", "gb"]))
def test_parse_bytes_accepts_every_unit(n, unit):
    value = parse_bytes(f"{n}{unit}", "X")
    assert value is not None and value >= n


@given(st.text(max_size=30))
def test_parse_bytes_never_crashes_uncontrolled(text):
    try:
        v = parse_bytes(text, "DEMOHUB_VRAM_BUDGET")
    except SettingsError as e:
        assert "DEMOHUB_VRAM_BUDGET" in str(e)
    else:
        assert v is None or v > 0


@given(st.text(max_size=40))
def test_parse_auth_either_pairs_or_a_clear_error(text):
    try:
        pairs = parse_auth(text, "DEMOHUB_AUTH")
    except SettingsError as e:
        assert "USER:PASSWORD" in str(e)
    else:
        assert all(u and p for u, p in pairs)


def test_allowed_hosts_trusted_proxies_and_embedding():
    s = Settings.load({"DEMOHUB_ALLOWED_HOSTS": " Hub.LAN, demo.example.com:7860,[::1]:80 ,",
                       "DEMOHUB_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8, ::1"})
    assert s.allowed_hosts == ("hub.lan", "demo.example.com", "::1")
    assert s.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    assert not s.embed and Settings.load({"SPACE_ID": "me/demo"}).embed  # a Space shows the app in a frame
    assert Settings.load({"SPACE_HOST": "me-demo.hf.space"}).allowed_origins == ("https://me-demo.hf.space",)
    assert not Settings.load({"SPACE_ID": "me/demo", "DEMOHUB_EMBED": "0"}).embed
    assert Settings.load({"DEMOHUB_ALLOWED_HOSTS": "*"}).allowed_hosts == ("*",)
    for var, value, said in (("DEMOHUB_ALLOWED_HOSTS", "evil.example/path", "not a host name"),
                             ("DEMOHUB_TRUSTED_PROXIES", "proxy.lan", "not an IP address or network"),
                             ("DEMOHUB_EMBED", "sometimes", "DEMOHUB_EMBED")):
        with pytest.raises(SettingsError, match=said):
            Settings.load({var: value})
