"""A cache folder written whole or not at all: converted models (CTranslate2, OpenVINO IR, int8 UNets, dequantized
GGUF copies) are made in a folder of their own beside the target, then renamed into place, so a process that loads
the target sees the whole artifact or none, and a conversion that fails or is killed half-way leaves no half folder
under the target's name.

    with replacing_folder(cache / "model") as tmp:
        save(model, tmp)           # tmp: "<name>.partial-<pid>-<thread>", empty
    # here cache / "model" holds what was saved; on an error tmp is removed and the old folder (if any) is kept
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def partial_name(folder: Path) -> Path:
    """The work folder beside `folder` of this process and thread (two writers never share one)."""
    return folder.with_name(f"{folder.name}.partial-{os.getpid()}-{threading.get_ident()}")


@contextmanager
def replacing_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty work folder; when the block ends without an error it replaces `folder`. On an error it is
    removed and `folder` is left as it was. When another writer put the same folder in place at the same moment,
    theirs is kept (both made the same artifact)."""
    folder = Path(folder)
    tmp = partial_name(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.is_dir():
            raise
        # else another writer's rename came between: theirs is kept
