"""Files in requests and results, between the front end and a Ray replica on another node.

A request names its uploads by path in fields marked as files (`Annotated[str, FILE]`, hub.work) and a result names
the files a method wrote the same way. On the front end's own node those paths mean the same thing on both sides and
travel as they are. Across nodes, `pack` replaces every path to an existing file under the request folders
(`file_roots()`: gradio's uploads and the hub's request folders) found in a file field (or in plain data outside any
dataclass) by a `Blob` (its name and bytes), and `unpack` writes each Blob into a folder on the other side and puts
that path in its place. A string in any other field (a prompt, a label) is never read, even if it names a file.
Only plain data is walked: dataclasses, tuples, lists, dicts, str, Path. Nothing here imports Ray, so it is tested
without a cluster.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import typing
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePath

from hub.work import FILE

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
    return _walk(obj, one, files=True)


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
    return _walk(obj, one, files=True)


@functools.lru_cache(maxsize=256)
def file_fields(cls: type) -> frozenset[str]:
    """The fields of dataclass `cls` marked as naming files (FILE anywhere in their annotation)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(name for name, hint in hints.items() if _marked(hint))


def _marked(hint) -> bool:
    if typing.get_origin(hint) is typing.Annotated and FILE in hint.__metadata__:
        return True
    return any(_marked(a) for a in typing.get_args(hint))


def _walk(obj, one, depth: int = 0, files: bool = False):
    """`obj` with `one` applied to each leaf where files may be (`files`: inside a file field, or plain data)."""
    if depth > MAX_DEPTH:
        return obj
    if isinstance(obj, Blob):
        return one(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        marked, changes = file_fields(type(obj)), {}
        for f in dataclasses.fields(obj):
            if not f.init:
                continue
            old = getattr(obj, f.name)
            new = _walk(old, one, depth + 1, f.name in marked)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        items = [_walk(v, one, depth + 1, files) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        return type(obj)(items)
    if isinstance(obj, dict):
        items = {k: _walk(v, one, depth + 1, files) for k, v in obj.items()}
        return obj if all(items[k] is obj[k] for k in obj) else items
    return one(obj) if files else obj
