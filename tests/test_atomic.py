"""hub.atomic: a converted model's cache folder is there whole or not at all (CTranslate2, OpenVINO, int8, GGUF)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hub.atomic import replacing_folder
from tests import WAIT_S


def test_a_finished_write_replaces_the_old_folder_and_leaves_no_work_folder(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with replacing_folder(target) as tmp:
        assert tmp.parent == tmp_path and tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "new.bin").write_text("new")
        assert (target / "old.bin").is_file()  # a reader during the write still sees the old artifact whole
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_write_keeps_the_old_folder_and_removes_the_half_written_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with replacing_folder(target) as tmp:
            (tmp / "half.bin").write_text("half")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["old.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_first_write_leaves_nothing_under_the_name(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with replacing_folder(tmp_path / "deep" / "model") as tmp:
            (tmp / "half.bin").write_text("half")
            raise KeyboardInterrupt  # a stop mid-conversion
    assert not (tmp_path / "deep" / "model").exists() and list((tmp_path / "deep").iterdir()) == []


def test_two_threads_write_apart_and_the_folder_ends_whole(tmp_path):
    target = tmp_path / "model"
    names, both_in = [], threading.Barrier(2, timeout=WAIT_S)

    def write(tag: str) -> None:
        with replacing_folder(target) as tmp:
            names.append(tmp.name)
            both_in.wait()  # both work folders exist at once
            (tmp / "a.bin").write_text(tag)
            (tmp / "b.bin").write_text(tag)

    threads = [threading.Thread(target=write, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert len(set(names)) == 2 and all(n.startswith("model.partial-") for n in names)  # each its own work folder
    a, b = (target / "a.bin").read_text(), (target / "b.bin").read_text()
    assert a == b and a in ("one", "two")  # one writer's files, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_writer_that_loses_the_race_keeps_the_winners_folder_and_removes_its_own(tmp_path, monkeypatch):
    """Another writer's folder lands between this one's clearing of the name and its rename: the rename fails, the
    winner's folder stays whole, and this writer's work folder is removed (nothing half-written is left beside it)."""
    target = tmp_path / "model"
    real_rename = Path.rename

    def the_other_writer_renames_first(self, dest):
        if Path(dest) == target and not target.exists():
            target.mkdir()
            (target / "a.bin").write_text("theirs")
        return real_rename(self, dest)

    monkeypatch.setattr(Path, "rename", the_other_writer_renames_first)
    with replacing_folder(target) as tmp:
        (tmp / "a.bin").write_text("mine")
    assert (target / "a.bin").read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
