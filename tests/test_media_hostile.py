"""Hostile media (issue #33): uploads that make FFmpeg read other files of the server, and size bombs.

An HLS playlist (text) named .mp4/.wav/.webm/.m3u8 listing a `file://` segment outside the request folder, and an
ffconcat script, are real files here, pointing at a real private clip made with ffmpeg. Every way the hub or gradio
hands an upload to FFmpeg must refuse them with one sentence and never return the clip: the hub's audio and video
decoders (PyAV and the ffmpeg program), the YOLO and SAM video paths, the Whisper /v1 route, the tabs through
gradio_client, gradio's own conversions, and gradio's screen-recording route on a live hub. Then the bombs: a
16000x16000 MJPEG frame (a small file) is refused before any frame is decoded, with bounded memory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hub.errors import UserError
from hub.media import audio as A
from hub.media.video import open_video
from tests import WAIT_S

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")

NAMES = ("clip.mp4", "voice.wav", "clip.webm", "list.m3u8", "concat.mp4")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True)


@pytest.fixture(scope="module")
def private(tmp_path_factory) -> dict[str, Path]:
    """The server's private media, outside any request folder: a 2 s clip (test pattern + 440 Hz) and a WAV."""
    folder = tmp_path_factory.mktemp("private")
    ts, wav = folder / "secret.ts", folder / "secret.wav"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=2", "-c:v", "mpeg2video", "-c:a", "mp2", "-f", "mpegts", str(ts))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-ac", "1", "-ar", "16000", str(wav))
    return {"ts": ts, "wav": wav}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, private) -> dict[str, Path]:
    """Uploads in their own request folder: HLS playlists under several names, and an ffconcat script."""
    folder = tmp_path_factory.mktemp("request")
    playlist = (f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile://{private['ts']}\n#EXT-X-ENDLIST\n")
    files = {}
    for name in NAMES[:-1]:
        files[name] = folder / name
        files[name].write_text(playlist)
    files["concat.mp4"] = folder / "concat.mp4"
    files["concat.mp4"].write_text(f"ffconcat version 1.0\nfile '{private['wav']}'\nfile 'file:{private['ts']}'\n")
    return files


def one_sentence(text: str, private: dict) -> None:
    """A sentence for a person: no server path, no class name, one line."""
    assert "\n" not in text and "Error" not in text and "Traceback" not in text, text
    assert all(str(p.parent) not in text for p in private.values()), text


def test_the_playlists_are_real_attacks(hostile, private, tmp_path):
    """Without the whitelists the ffmpeg program reads the private clip through each playlist (so the tests below
    refuse something that works)."""
    out = tmp_path / "stolen.wav"
    ffmpeg("-i", str(hostile["clip.mp4"]), "-vn", str(out))
    assert out.stat().st_size > 10_000


# ---- the hub's decoders -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_load_audio_refuses_playlists_and_scripts(hostile, private, name):
    with pytest.raises(UserError) as e:
        A.load_audio(str(hostile[name]))
    one_sentence(str(e.value), private)


@pytest.mark.parametrize("name", NAMES)
def test_load_audio_through_the_ffmpeg_program_refuses_them_too(hostile, private, name, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_av(module, *a, **k):  # the hub without PyAV: the ffmpeg program decodes
        if module == "av":
            raise ImportError(module)
        return real_import(module, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(UserError) as e:
        A.load_audio(str(hostile[name]))
    one_sentence(str(e.value), private)


@pytest.mark.parametrize("name", NAMES)
def test_open_video_refuses_playlists_and_scripts(hostile, private, name):
    with pytest.raises(UserError) as e:
        open_video(str(hostile[name]))
    one_sentence(str(e.value), private)


@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
    """The YOLO tab's tiny random detector."""
    from demos.yolo_detect import engine as yd
    from demos.yolo_detect.spec import SPEC
    from hub.settings import Settings
    from hub.weights import resolve

    s = Settings.load({}, cache_dir=str(tmp_path_factory.mktemp("yolo-cache")), offline=True, device="cpu")
    return yd.load(resolve(SPEC, SPEC.choice("tiny-random"), s), "cpu", "float32")


@pytest.mark.parametrize("name", NAMES)
def test_the_yolo_and_sam_video_paths_refuse_them(hostile, private, name, yolo, tmp_path):
    from demos.sam_segment.video import first_frame
    from demos.yolo_detect import video as yv

    with pytest.raises(UserError) as e:
        first_frame(str(hostile[name]))
    one_sentence(str(e.value), private)
    with pytest.raises(UserError) as e:
        list(yv.detect_video(yolo, str(hostile[name]), tmp_path / "out.mp4", imgsz=64))
    one_sentence(str(e.value), private)
    assert not (tmp_path / "out.mp4").exists()


def test_a_real_clip_still_decodes(tmp_path):
    """The whitelists keep every ordinary upload working (mp4 from PyAV, WAV, MP3)."""
    from hub.samples import make_samples

    samples = make_samples(tmp_path)
    container, stream = open_video(samples["video"])
    with container:
        assert sum(1 for _ in container.decode(stream)) == 12
    assert A.load_audio(samples["audio"]).size > 0
    mp3 = Path(__import__("gradio").__file__).parent / "media_assets" / "audio" / "heath_ledger.mp3"
    assert abs(A.load_audio(str(mp3)).size / 16000 - 3.03) < 0.1


# ---- gradio's own FFmpeg calls ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradios_conversions_refuse_them_once_the_hub_guards_gradio(hostile, private, name, tmp_path):
    import gradio as gr
    from gradio import processing_utils as pu

    from hub import gradio_media

    gradio_media._guard_ffmpeg()
    calls = {"video_is_playable": (), "convert_video_to_playable_mp4": (str(tmp_path),), "audio_from_file": (),
             "get_video_length": (), "audio_is_playable": (), "convert_audio_to_playable": (str(tmp_path),)}
    for fn, args in calls.items():
        with pytest.raises(gr.Error) as e:
            getattr(pu, fn)(str(hostile[name]), *args)
        one_sentence(e.value.message, private)
    # gradio's Video conversion (to its `format`) runs its FFmpeg wrapper, which now reads only self-contained files
    upload = tmp_path / "upload" / name
    upload.parent.mkdir()
    shutil.copy(hostile[name], upload)
    with pytest.raises(Exception):
        gr.Video(format="avi").preprocess(gr.data_classes.FileData(path=str(upload)))
    assert not upload.with_suffix(".avi").exists()


def test_a_live_hub_has_no_recording_route_and_its_tabs_refuse_the_playlists(serve, hostile, private):
    import httpx
    from gradio_client import handle_file

    from demos.sam_segment import DEMO as SAM
    from demos.whisper_asr import DEMO as WHISPER
    from demos.yolo_detect import DEMO as YOLO
    from hub.samples import fill

    client = serve(("whisper_asr", "yolo_detect", "sam_segment"),
                   models={"whisper_asr": "tiny-random", "yolo_detect": "tiny-random", "sam_segment": "tiny-random"})
    for name in ("clip.mp4", "list.m3u8"):
        with open(hostile[name], "rb") as fh:
            r = httpx.post(client.src + "gradio_api/process_recording", files={"video": (name, fh, "video/mp4")},
                           timeout=WAIT_S)
        assert r.status_code == 404 and "turned off" in r.text and b"ftyp" not in r.content
    calls = [(ex, kind) for demo, kind in ((WHISPER, "audio"), (YOLO, "video"), (SAM, "video"))
             for ex in demo.examples if ex.api_name in ("transcribe", "detect_video", "track_video")]
    assert len(calls) == 3
    for name in ("clip.mp4", "list.m3u8"):
        for ex, kind in calls:
            with pytest.raises(Exception) as e:
                client.predict(*fill(ex.values(), {kind: str(hostile[name])}, handle_file),
                               api_name=f"/{ex.api_name}")
            assert "not an audio or video file" in str(e.value) or "could not be read" in str(e.value), \
                (ex.api_name, name, str(e.value))
            one_sentence(str(e.value).splitlines()[-1], private)
    from hub.samples import make_samples  # the guards keep ordinary uploads and gradio's playback checks working

    good = make_samples(Path(client.blocks.hub_settings.cache_dir).parent / "samples")
    for ex, kind in calls[:2]:
        assert client.predict(*fill(ex.values(), {kind: good[kind]}, handle_file), api_name=f"/{ex.api_name}")
    url = client.src + "v1/audio/transcriptions"
    for name in NAMES:
        r = httpx.post(url, files={"file": (name, hostile[name].read_bytes())}, data={"model": "whisper-1"},
                       timeout=WAIT_S)
        assert r.status_code == 400, (name, r.text)
        one_sentence(r.json()["error"]["message"], private)


# ---- size bombs ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> dict[str, Path]:
    """One flat 16000x16000 MJPEG frame (256 megapixels, ~1.5 MB) in AVI and in MKV."""
    folder = tmp_path_factory.mktemp("bomb")
    out = {}
    for ext in ("avi", "mkv"):
        out[ext] = folder / f"big.{ext}"
        ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=16000x16000:rate=1:duration=1", "-frames:v", "1",
               "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", str(out[ext]))
    return out


@pytest.mark.parametrize("ext", ["avi", "mkv"])
def test_a_huge_video_frame_is_refused_before_it_is_decoded(bomb, ext, yolo, tmp_path):
    from demos.sam_segment.video import first_frame
    from demos.yolo_detect import video as yv

    for run in (lambda: open_video(str(bomb[ext])), lambda: first_frame(str(bomb[ext])),
                lambda: list(yv.detect_video(yolo, str(bomb[ext]), tmp_path / "o.mp4", imgsz=64))):
        with pytest.raises(UserError, match="megapixels per frame: scale it down first.$"):
            run()
    assert peak_mb(f"from hub.media.video import open_video\nopen_video({str(bomb[ext])!r})") < 250


def peak_mb(code: str) -> int:
    """The peak resident memory (MB) of `code` run in a fresh Python (its own VmHWM: ru_maxrss would carry this
    test process's peak across the exec); a UserError there is expected and ignored."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read a process's peak memory")
    wrapped = ("from hub.errors import UserError\ntry:\n" + "".join(f"    {line}\n" for line in code.splitlines())
               + "except UserError:\n    pass\n"
               "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    run = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    return int(run.stdout.split()[-1]) // 1024


def test_a_frame_that_grows_past_the_cap_mid_stream_is_refused_by_the_decoder(tmp_path):
    """The header says 64x48; the decoder itself refuses a later frame over the cap (its max_pixels)."""
    import av

    from hub.media import video as V

    path = tmp_path / "grows.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=64x48:rate=1:duration=1", "-c:v", "mjpeg",
           "-pix_fmt", "yuvj420p", str(tmp_path / "a.mkv"))
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=4000x3000:rate=1:duration=1", "-c:v", "mjpeg",
           "-pix_fmt", "yuvj420p", str(tmp_path / "b.mkv"))
    (tmp_path / "list.txt").write_text("file 'a.mkv'\nfile 'b.mkv'\n")
    ffmpeg("-f", "concat", "-i", str(tmp_path / "list.txt"), "-c", "copy", str(path))
    container, stream = V.open_video(str(path), max_pixels=1_000_000)
    sizes = []
    with container, pytest.raises(av.FFmpegError) as e:
        for frame in container.decode(stream):
            sizes.append(frame.width)
    assert sizes == [64] and "megapixels" in str(V.damaged(e.value, 1))


def test_audio_without_a_length_stops_decoding_past_the_cap_and_says_longer_than(tmp_path):
    import tracemalloc

    path = tmp_path / "silence.flac"
    with open(path, "wb") as out:  # piped: the encoder cannot go back to write the length into the header
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t",
                        "1200", "-c:a", "flac", "-f", "flac", "-"], stdout=out, check=True)
    tracemalloc.start()
    try:
        with pytest.raises(UserError) as e:
            A.load_audio(str(path), max_seconds=60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(e.value) == ("The audio is longer than 60 seconds; this hub accepts at most 60 seconds. Cut it into "
                            "parts.")
    assert peak < 16 * 2**20  # 61 s at 16 kHz (3.9 MB), never the 20 minutes (77 MB)


def test_a_five_hour_file_is_said_to_be_five_hours_long(tmp_path):
    path = tmp_path / "five.flac"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=1000:cl=mono", "-t", "18000", "-c:a", "flac", str(path))
    with pytest.raises(UserError, match=r"^The audio is 5 hours long; this hub accepts at most 4 hours\. "):
        A.load_audio(str(path), max_seconds=4 * 3600)
    assert A._duration(4 * 3600 + 1) == "4 hours" and A._duration(150 * 60) == "150 minutes"
