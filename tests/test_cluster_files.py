"""Files named in requests and results cross nodes as bytes (hub.cluster.files), without Ray."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from hub.cluster.files import Blob, pack, unpack
from hub.work import FILE, FilePath


@dataclass(frozen=True)
class Request:
    video: FilePath
    frames: Annotated[list, FILE]
    out: Annotated[Path | None, FILE] = None
    note: str = "not a path"
    prompt: str = ""
    nested: list | None = None


def test_paths_under_the_request_folders_travel_as_bytes_and_land_in_the_other_sides_folder(tmp_path):
    roots = (str(tmp_path / "uploads"),)
    (tmp_path / "uploads").mkdir()
    clip = tmp_path / "uploads" / "clip.mp4"
    clip.write_bytes(b"\x00video")
    frame = tmp_path / "uploads" / "f.png"
    frame.write_bytes(b"png")
    outside = tmp_path / "secret.txt"
    outside.write_text("never sent")
    req = Request(str(clip), [str(frame), str(outside), 3], out=Path(clip))
    packed = pack(req, roots)
    assert packed.video == Blob("clip.mp4", b"\x00video") and packed.frames[0] == Blob("f.png", b"png")
    assert packed.frames[1:] == [str(outside), 3], "a file outside the request folders is never read"
    assert packed.out == Blob("clip.mp4", b"\x00video", as_path=True) and packed.note == "not a path"
    there = unpack(packed, tmp_path / "replica")
    assert Path(there.video).read_bytes() == b"\x00video" and Path(there.video).name == "clip.mp4"
    assert str(tmp_path / "replica") in there.video and isinstance(there.out, Path)
    assert Path(there.frames[0]).read_bytes() == b"png" and there.frames[1] == str(outside)


def test_a_blob_name_from_the_other_side_cannot_leave_the_folder(tmp_path):
    there = unpack({"file": Blob("../../etc/passwd", b"x")}, tmp_path / "in")
    assert os.path.realpath(there["file"]).startswith(str(tmp_path / "in") + os.sep)
    assert Path(there["file"]).name == "passwd"


def test_links_out_of_the_request_folders_are_not_followed(tmp_path):
    root = tmp_path / "uploads"
    root.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("x")
    (root / "link").symlink_to(secret)
    assert pack([str(root / "link")], (str(root),)) == [str(root / "link")]


def test_a_string_typed_into_a_field_that_is_not_a_file_never_travels_as_that_files_bytes(tmp_path):
    """A visitor who types the path of someone else's upload as a prompt gets their own text shipped, not the file."""
    roots = (str(tmp_path / "uploads"),)
    (tmp_path / "uploads").mkdir()
    other = tmp_path / "uploads" / "someone-elses.png"
    other.write_bytes(b"private")
    mine = tmp_path / "uploads" / "mine.mp4"
    mine.write_bytes(b"v")
    req = Request(str(mine), [], prompt=str(other), nested=[Request(str(mine), [], prompt=str(other))])
    packed = pack(req, roots)
    assert packed.prompt == str(other) and packed.nested[0].prompt == str(other)
    assert packed.video == Blob("mine.mp4", b"v") and packed.nested[0].video == Blob("mine.mp4", b"v")
    assert b"private" not in __import__("pickle").dumps(packed)


def test_every_demo_marks_the_fields_that_carry_its_uploads_and_outputs():
    from hub.cluster.files import file_fields
    import demos.clip_zero_shot.types as clip
    import demos.sam_segment.types as sam
    import demos.stable_diffusion.types as sd
    import demos.yolo_detect.types as yolo

    assert file_fields(yolo.DetectRequest) == {"image"} and file_fields(yolo.VideoResult) == {"path"}
    assert file_fields(yolo.DetectResult) == {"files"} and file_fields(yolo.VideoRequest) == {"video"}
    assert file_fields(sam.TrackRequest) == {"video"} and file_fields(sam.TrackResult) == {"video", "masks"}
    assert file_fields(clip.ClassifyRequest) == {"images"} and file_fields(clip.SearchRequest) == {"images"}
    assert file_fields(sd.InpaintRequest) == {"image", "mask"} and not file_fields(sd.GenerateRequest)
