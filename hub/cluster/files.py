"""Files in requests and results, between the front end and a Ray replica on another node.

A request names its uploads by path (a `str` or `Path` field) and a result names the files a method wrote the same
way. On the front end's own node those paths mean the same thing on both sides and travel as they are. Across
nodes, `pack` replaces every path to an existing file under the request folders (`file_roots()`: gradio's uploads
and the hub's request folders) by a `Blob` (its name and bytes), and `unpack` writes each Blob into a folder on the
other side and puts that path in its place. Only plain data is walked: dataclasses, tuples, lists, dicts, str, Path.
Nothing here imports Ray, so it is tested without a cluster.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePath

MAX_FILE_BYTES = 2 * 1024 ** 3  # one file a request may carry (uploads are capped far below this by the hub)
MAX_DEPTH = 8


@dataclass(frozen=True)
class Blob:
    """A file's name, its bytes, and whether the field held a Path (else a str)."""

    name: str
    data: bytes
    as_path: bool = False


def file_roots() -> tuple[str, ...]:
    """Folders whose files belong to a request: gradio's uploads and cache, and the hub's request folders."""
    tmp = tempfile.gettempdir()
    gradio = os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tmp, "gradio")
    return tuple(os.path.realpath(p) for p in (gradio, os.path.join(tmp, "demohub")))


def under_roots(path: str, roots: tuple[str, ...]) -> str | None:
    """The real path of `path` when it is inside one of `roots`, else None (links are resolved first)."""
    if not path.startswith("/") or len(path) > 4096 or "\x00" in path:
        return None
    real = os.path.realpath(path)
    return real if any(real.startswith(r + os.sep) for r in roots) else None


def pack(obj, roots: tuple[str, ...] | None = None):
    """`obj` with every path to an existing file under `roots` replaced by a Blob of it."""
    roots = roots or file_roots()

    def one(value):
        if not isinstance(value, (str, PurePath)):
            return value
        real = under_roots(str(value), roots)
        if real is None or not os.path.isfile(real) or os.path.getsize(real) > MAX_FILE_BYTES:
            return value
        with open(real, "rb") as f:
            return Blob(os.path.basename(real), f.read(), isinstance(value, PurePath))
    return _walk(obj, one)


def unpack(obj, folder: str | Path):
    """`obj` with every Blob written into its own subfolder of `folder` and replaced by the path (str or Path)."""

    def one(value):
        if not isinstance(value, Blob):
            return value
        target = Path(folder) / uuid.uuid4().hex[:12]
        target.mkdir(parents=True, exist_ok=True)
        name = os.path.basename(value.name) or "file"  # never a path from the other side
        path = target / name
        path.write_bytes(value.data)
        return path if value.as_path else str(path)
    return _walk(obj, one)


def _walk(obj, one, depth: int = 0):
    if depth > MAX_DEPTH:
        return obj
    if isinstance(obj, Blob):
        return one(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in dataclasses.fields(obj):
            if not f.init:
                continue
            old = getattr(obj, f.name)
            new = _walk(old, one, depth + 1)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        items = [_walk(v, one, depth + 1) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        return type(obj)(items)
    if isinstance(obj, dict):
        items = {k: _walk(v, one, depth + 1) for k, v in obj.items()}
        return obj if all(items[k] is obj[k] for k in obj) else items
    return one(obj)
