"""Request folders: each request's files get a fresh folder; folders older than the keep time go when a new one is made."""

from __future__ import annotations

import os
import tempfile
import time

from hub.outputs import request_folder


def test_request_folders_are_fresh_and_old_ones_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    old, recent = request_folder("demo", "files"), request_folder("demo", "files")
    assert old != recent and old.is_dir() and not any(old.iterdir())
    (old / "result.png").write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    new = request_folder("demo", "files", keep_s=600)
    assert not old.exists() and recent.is_dir() and new.is_dir()
    assert new.parent == tmp_path / "demohub" / "demo" / "files"
