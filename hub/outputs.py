"""Folders for the files a request hands to gradio (downloads, videos, pre-encoded images).

gradio copies returned files into its own cache (which `delete_cache` empties), so ours only have to live until the
response is sent; folders older than `keep_s` are removed whenever a new one is made.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path


def request_folder(demo: str, kind: str, keep_s: float = 3600.0) -> Path:
    """A fresh folder under the system temp dir (which gradio serves from) for one request's files."""
    root = Path(tempfile.gettempdir()) / "demohub" / demo / kind
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > keep_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    folder = root / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder
