"""Demo options: declared by each demo, parsed at start, and a misspelt DEMOHUB_* variable stops the start."""

from __future__ import annotations

import pytest

from hub.contract import Demo, Example, Option
from hub.errors import SettingsError
from hub.options import check_names, parse
from hub.spec import DemoSpec, ModelChoice
from hub.settings import Settings

SPEC = DemoSpec(name="yolo_detect", title="YOLO", description="", models=(ModelChoice("m", "random"),),
                default_model={"cpu": "m"}, api_names=("detect",))
DEMO = Demo(SPEC, load=lambda *a: None, ui=lambda ctx: None,
            options=(Option("video_batch", 0, "frames per pass", lo=0, hi=256), Option("cuda_graphs", True, "graphs")))
REGISTERED = ("yolo_detect", "llm_chat", "whisper_asr")


def test_options_parse_typed_with_defaults():
    opts = parse(DEMO, {"DEMOHUB_YOLO_DETECT_VIDEO_BATCH": " 16 ", "DEMOHUB_YOLO_DETECT_CUDA_GRAPHS": "off"})
    assert opts.video_batch == 16 and opts.cuda_graphs is False
    assert parse(DEMO, {}).video_batch == 0 and parse(DEMO, {}).cuda_graphs is True
    with pytest.raises(AttributeError):
        opts.video_batch = 3


@pytest.mark.parametrize("value, words", [("-1", "out of range"), ("300", "out of range"), ("many", "whole number"),
                                          ("1.5", "whole number")])
def test_bad_option_values_name_the_variable_and_the_range(value, words):
    with pytest.raises(SettingsError, match=f"DEMOHUB_YOLO_DETECT_VIDEO_BATCH.*{words}.*from 0 to 256"):
        parse(DEMO, {"DEMOHUB_YOLO_DETECT_VIDEO_BATCH": value})


def test_a_misspelt_demo_name_stops_the_start_with_the_names():
    with pytest.raises(SettingsError) as e:
        check_names({"DEMOHUB_YOLO_MODEL": "yolo11s"}, REGISTERED, [DEMO])
    message = str(e.value)
    assert "DEMOHUB_YOLO_MODEL names no demo" in message and "YOLO_DETECT" in message and "LLM_CHAT" in message


def test_an_unknown_option_of_a_known_demo_stops_the_start_with_its_options():
    with pytest.raises(SettingsError, match="DEMOHUB_YOLO_DETECT_BATCH is not a yolo_detect setting.*"
                                            "DEMOHUB_YOLO_DETECT_VIDEO_BATCH"):
        check_names({"DEMOHUB_YOLO_DETECT_BATCH": "8"}, REGISTERED, [DEMO])


def test_hub_settings_models_and_options_of_demos_not_loaded_pass():
    check_names({"DEMOHUB_PORT": "1", "DEMOHUB_VENV": ".venv", "DEMOHUB_YOLO_DETECT_MODEL": "yolov8n",
                 "DEMOHUB_YOLO_DETECT_VIDEO_BATCH": "8", "DEMOHUB_LLM_CHAT_ANYTHING": "1", "OTHER": "x",
                 "DEMOHUB_BENCH_SPEECH": "a.wav"}, REGISTERED, [DEMO])


def test_create_app_refuses_a_misspelt_variable(settings):
    from dataclasses import replace

    from hub.app import create_app

    bad = replace(settings, env={"DEMOHUB_FAKE_ECHO_PREFX": "x"})
    with pytest.raises(SettingsError, match="DEMOHUB_FAKE_ECHO_PREFIX"):
        create_app(bad, ("tests.fake_demo",))


def test_an_option_reaches_the_engine_through_load(serve):
    client = serve(("tests.fake_demo",), env={"DEMOHUB_FAKE_ECHO_PREFIX": "[x]"})
    text, _ = client.predict("echo-small", "hi", 2, api_name="/echo")
    assert text == "[x]hi hi"


def test_the_cli_says_the_sentence_and_exits_2(tmp_path, capsys, monkeypatch):
    from hub.cli import main

    monkeypatch.setenv("DEMOHUB_WHISPER_MODEL", "tiny")
    monkeypatch.setenv("DEMOHUB_CACHE_DIR", str(tmp_path))
    assert main(["serve", "--demos", "whisper_asr", "--port", "1"]) == 2
    assert "DEMOHUB_WHISPER_MODEL names no demo" in capsys.readouterr().err


def test_demo_declarations_are_checked():
    with pytest.raises(ValueError, match="not in api_names"):
        Demo(SPEC, load="x:y", ui="x:z", examples=(Example("nope", {"model": "m"}, bad={}),))
    with pytest.raises(ValueError, match="model_arg"):
        Demo(SPEC, load="x:y", ui="x:z", examples=(Example("detect", {"image": 1}, bad={}),))
    with pytest.raises(ValueError, match="unique"):
        Demo(SPEC, load="x:y", ui="x:z", options=(Option("a", 1, ""), Option("a", 2, "")))
    ex = Example("detect", {"model": "m", "conf": 0.25}, bad={"conf": 5})
    assert ex.values() == ("m", 0.25) and ex.values(**ex.bad) == ("m", 5)
    with pytest.raises(KeyError):
        ex.values(nope=1)


def test_settings_env_keeps_only_demohub_variables():
    assert Settings.load({"DEMOHUB_X_Y": "1", "PATH": "/bin"}).env == {"DEMOHUB_X_Y": "1"}


def test_readme_lists_every_declared_option_with_its_default():
    from pathlib import Path

    from hub.registry import load_demos

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for h in load_demos():
        for o in h.demo.options:
            default = ("1" if o.default else "0") if isinstance(o.default, bool) else str(o.default)
            assert f"| `{o.env_var(h.name)}` | `{default}` |" in readme, f"README misses {o.env_var(h.name)}"


def test_every_hub_variable_the_settings_read_and_the_readme_documents_is_accepted_at_start():
    """DEMOHUB_BACKEND=ray, DEMOHUB_RAY_ADDRESS and DEMOHUB_RAY_CONFIG once stopped the start as "names no demo"."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    read = set(re.findall(r'"DEMOHUB_([A-Z_]+)"', (root / "hub" / "settings.py").read_text()))
    table = (root / "README.md").read_text().split("## Configuration", 1)[1].split("### Demo options", 1)[0]
    documented = set(re.findall(r"`DEMOHUB_([A-Z][A-Z_]+)`", table))
    assert {"BACKEND", "RAY_ADDRESS", "RAY_CONFIG"} <= read & documented
    for var in sorted(read | documented):
        value = "yolo_detect" if var in ("DEMOS", "PINNED") else "1"
        check_names({f"DEMOHUB_{var}": value}, REGISTERED, [DEMO])  # no SettingsError


def test_the_error_lists_each_demo_once_when_the_registry_and_loaded_demos_overlap():
    with pytest.raises(SettingsError) as e:
        check_names({"DEMOHUB_NOPE": "1"}, REGISTERED + ("yolo_detect",), [DEMO])
    assert str(e.value).count("YOLO_DETECT") == 1
