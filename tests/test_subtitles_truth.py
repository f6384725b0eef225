"""Subtitle files against hand-written truth (issue #22): start AND end times, hours past 1 h, millisecond
rounding, numbering, the WebVTT header and separator. The expected text is typed here, not produced by the code."""

import json
from dataclasses import dataclass

from demos.whisper_asr.formats import get_writer, write_files


@dataclass
class Seg:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    segments: list


TALK = Transcript([Seg(0.0, 2.5, "Hello."), Seg(59.9994, 61.0005, "A minute in."),
                   Seg(3723.4567, 3725.0, "One hour, two minutes, three seconds."),
                   Seg(36000.0, 36001.999, "Ten hours.")])

SRT = """1
00:00:00,000 --> 00:00:02,500
Hello.

2
00:00:59,999 --> 00:01:01,000
A minute in.

3
01:02:03,457 --> 01:02:05,000
One hour, two minutes, three seconds.

4
10:00:00,000 --> 10:00:01,999
Ten hours.
"""

VTT = """WEBVTT

00:00:00.000 --> 00:00:02.500
Hello.

00:00:59.999 --> 00:01:01.000
A minute in.

01:02:03.457 --> 01:02:05.000
One hour, two minutes, three seconds.

10:00:00.000 --> 10:00:01.999
Ten hours.
"""


def test_srt_has_every_start_and_end_time_including_hours():
    assert get_writer("srt").format(TALK) == SRT


def test_webvtt_has_its_header_and_dots_before_milliseconds():
    assert get_writer("vtt").format(TALK) == VTT


def test_text_file_is_the_segments_one_per_line():
    assert get_writer("txt").format(TALK) == ("Hello.\nA minute in.\nOne hour, two minutes, three seconds.\n"
                                              "Ten hours.\n")


def test_an_empty_transcript_gives_valid_empty_files():
    empty = Transcript([])
    assert get_writer("srt").format(empty) == "" and get_writer("vtt").format(empty) == "WEBVTT\n\n"
    assert get_writer("txt").format(empty) == ""


def test_files_are_named_after_the_upload_without_unsafe_characters(tmp_path):
    paths = write_files(TALK, tmp_path, "../my talk (final)")
    assert [p.rsplit("/", 1)[1] for p in paths] == [f".._my_talk_final_.{e}" for e in ("txt", "srt", "vtt", "json")]
    assert all(p.startswith(str(tmp_path)) for p in paths)
    assert (tmp_path / ".._my_talk_final_.srt").read_text() == SRT


@dataclass
class Streaming:
    segments: list
    language: str
    done: bool
    progress: float


def test_json_is_the_result_without_streaming_state_and_keeps_every_script_readable(tmp_path):
    result = Streaming([Seg(0.0, 1.25, "Grüße, 世界.")], "de", True, 1.0)
    (path,) = [p for p in write_files(result, tmp_path / "a" / "b") if p.endswith(".json")]  # folders made
    raw = (tmp_path / "a" / "b" / "transcript.json").read_bytes()
    assert path.endswith("/a/b/transcript.json") and "Grüße, 世界.".encode() in raw  # UTF-8 text, not \\u escapes
    assert b'{\n "segments": [\n  {\n   "start": 0.0,' in raw  # indented: readable in any text editor
    assert json.loads(raw) == {"segments": [{"start": 0.0, "end": 1.25, "text": "Grüße, 世界."}], "language": "de"}


def test_a_long_name_is_cut_to_80_characters_and_a_name_of_nothing_safe_becomes_transcript(tmp_path):
    paths = write_files(TALK, tmp_path, "x" * 100)
    assert {p.rsplit("/", 1)[1] for p in paths} == {"x" * 80 + e for e in (".txt", ".srt", ".vtt", ".json")}
    paths = write_files(TALK, tmp_path, "")
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["transcript.json", "transcript.srt", "transcript.txt",
                                                          "transcript.vtt"]
