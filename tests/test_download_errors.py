"""A download that fails says so in one sentence a visitor can act on, whichever downloader failed.

Found by hand from a fresh clone (2026-12-07, no network): YOLO's first click answered "Could not download
yolo26n.pt for Object detection (YOLO) (ConnectionError: ❌  Download failure for https://... Environment may be
offline.). ... copy the file to model_cache/native/yolo_detect/yolo26n.pt by hand": a Python class name, the
library's emoji and a server path. Each demo's own fetch runs here with its library's downloader failing the way it
does (the messages are the libraries' own), and every sentence comes from `hub.weights.download_error`."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hub.errors import UserError, WeightsUnavailable
from hub.weights import Weights, download_error

ULTRALYTICS_OFFLINE = ("❌  Download failure for https://github.com/ultralytics/assets/releases/download/v8.4.0/"
                       "yolo26n.pt. Environment may be offline.")


def _plain(msg: str, tmp_path: Path) -> None:
    """No class name, no decoration, no server path; the fetch command once."""
    for bad in ("ConnectionError", "URLError", "HTTPError", "Error:", "❌", "<urlopen", str(tmp_path), "model_cache/"):
        assert bad not in msg, (bad, msg)
    assert msg.count("demohub fetch ") == 1, msg


def test_yolo_offline_download_is_one_plain_sentence(tmp_path, monkeypatch, caplog):
    import ultralytics.utils.downloads as downloads

    from demos.yolo_detect import loading
    from demos.yolo_detect.spec import SPEC

    def offline(path, *a, **kw):
        raise ConnectionError(ULTRALYTICS_OFFLINE)

    monkeypatch.setattr(downloads, "attempt_download_asset", offline)
    folder = tmp_path / "native" / "yolo_detect"
    folder.mkdir(parents=True)
    w = Weights("yolo_detect", SPEC.choice("yolo26n"), "native", folder, tmp_path)
    with pytest.raises(WeightsUnavailable) as e:
        loading.fetch(w)
    msg = str(e.value)
    _plain(msg, tmp_path)
    assert msg.startswith("YOLO26n (fastest, NMS-free) is not on this machine and it cannot be downloaded "
                          "(Download failure for https://github.com/"), msg
    assert "demohub fetch yolo_detect --model yolo26n" in msg and not list(folder.iterdir())
    assert str(folder) in caplog.text  # where it looked: the operator's log


def test_upscale_download_refused_by_the_hub_names_the_reason_not_the_class(tmp_path, monkeypatch, caplog):
    import huggingface_hub

    from demos.upscale import engine
    from demos.upscale.spec import SPEC

    def gone(repo, name, **kw):  # what the Hub answers for a revision it no longer has
        import httpx2  # huggingface_hub's HTTP client

        url = f"https://huggingface.co/api/models/{repo}/revision/x"
        raise huggingface_hub.errors.RevisionNotFoundError(
            f"404 Client Error. Revision Not Found for url: {url}.",
            response=httpx2.Response(404, request=httpx2.Request("GET", url)))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gone)
    choice = next(m for m in SPEC.models if m.options.get("repo"))
    w = Weights("upscale", choice, "native", tmp_path / "native" / "upscale", tmp_path)
    with pytest.raises(WeightsUnavailable) as e:
        engine.fetch(w)
    msg = str(e.value)
    _plain(msg, tmp_path)
    assert msg.startswith(f"Could not download {choice.display} for {SPEC.title} (404 Client Error. Revision Not "
                          "Found for url"), msg
    assert f"demohub fetch upscale --model {choice.id}" in msg
    assert "RevisionNotFoundError" in caplog.text  # the whole error, for the operator


def test_kokoro_url_download_offline_loses_urllibs_wrapper_and_its_partial_file(tmp_path, monkeypatch):
    from demos.tts import kokoro
    from demos.tts.spec import SPEC

    def offline(url, timeout=None):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    choice = next(m for m in SPEC.models if "kokoro" in m.id.lower())
    w = Weights("tts", choice, "native", tmp_path, tmp_path)
    target = tmp_path / "kokoro.onnx"
    with pytest.raises(WeightsUnavailable) as e:
        kokoro._download("https://example.invalid/kokoro.onnx", target, w)
    msg = str(e.value)
    _plain(msg, tmp_path)
    assert "cannot be downloaded ([Errno -3] Temporary failure in name resolution)" in msg, msg
    assert not list(tmp_path.iterdir())  # no .part left behind


def test_the_reason_is_the_librarys_first_line_and_offline_is_told_apart():
    from hub.spec import DemoSpec, ModelChoice

    spec = DemoSpec(name="thing", title="Thing", description="", models=(ModelChoice("org/m", "hf"),),
                    default_model={"cpu": "org/m"}, api_names=("x",))
    choice = spec.choice("org/m")
    full = download_error(spec, choice, Path("/srv/cache"), OSError("No space left on device\nTraceback ..."))
    assert str(full) == ("Could not download org/m for Thing (No space left on device). Check the model and the "
                         "connection, or download it where there is network (demohub fetch thing --model org/m).")
    offline = download_error(spec, choice, Path("/srv/cache"), ConnectionError("Connection refused"))
    assert str(offline).startswith("org/m is not on this machine and it cannot be downloaded (Connection refused).")
    blank = download_error(spec, choice, Path("/srv/cache"), RuntimeError(""))
    assert "(no reason given)" in str(blank) and "RuntimeError" not in str(blank)
    assert isinstance(full, UserError)
