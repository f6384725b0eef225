"""Where a model load spends its time: named stages that the load path fills, read by the Models tab and the bench.

The manager opens a record around each load (`recording`); a demo's load marks its parts with `stage(name)`:

    with loadtimes.stage("import"):
        from faster_whisper import WhisperModel
    loadtimes.read_files([path / "model.bin"])        # the "read" stage: the bytes from disk, counted
    with loadtimes.stage("build"):
        model = WhisperModel(...)

Stages: "import" (libraries), "read" (weight bytes from disk into memory or the page cache), "build" (modules
constructed, weights put in place), "convert" (dtype casts, a CTranslate2 or OpenVINO conversion, a cached
artifact read), "warm-up" (a first run or compile at load). A stage nested in another counts on its own: the outer
stage's time excludes it. Without a record (tests, scripts calling a load directly) `stage` costs a thread-local
read and times nothing. The record is per thread: the load runs in the thread that opened it.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

STAGES = ("import", "read", "build", "convert", "warm-up")
_local = threading.local()
_CHUNK = 8 << 20


@dataclass
class LoadTimes:
    """One load: seconds per stage (in the order they first start), bytes read, the stage running now."""

    stages: dict[str, float] = field(default_factory=dict)
    bytes_read: int = 0
    files: list[str] = field(default_factory=list)  # what `read_files` read (the bench evicts and re-reads them)
    now: str = ""  # the stage running at this moment ("" between stages and when done)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    peak_rss_kb: int | None = None  # the process's high-water RSS (VmHWM) when the load ended (the bench resets it)
    _stack: list = field(default_factory=list, repr=False)

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    @property
    def seconds(self) -> float:
        """The whole load so far (or in all, once finished)."""
        return (self.finished or time.perf_counter()) - self.started

    def other(self) -> float:
        """Time of the load outside any named stage (the hub's own steps, the demo's unmarked code)."""
        return max(0.0, self.seconds - sum(self.stages.values()))

    def status(self) -> str:
        """One line for people: "loading: read 0.3 s (98 MB), build 1.2 s, now convert", or the finished split."""
        parts = [f"{k} {v:.1f} s" + (f" ({self.bytes_read / 1e6:.0f} MB)" if k == "read" and self.bytes_read else "")
                 for k, v in list(self.stages.items())]
        if self.finished is None:
            return "loading: " + ", ".join(parts + [f"now {self.now}" if self.now else f"{self.seconds:.1f} s so far"])
        return ", ".join(parts + [f"other {self.other():.1f} s"])


def current() -> LoadTimes | None:
    """The record of the load running in this thread, if any."""
    return getattr(_local, "record", None)


@contextmanager
def recording(record: LoadTimes | None = None) -> Iterator[LoadTimes]:
    """Make `record` (a new one by default) this thread's load record for the block; it is finished on exit."""
    record = record if record is not None else LoadTimes()
    outer = current()
    _local.record = record
    try:
        yield record
    finally:
        record.finished, record.now = time.perf_counter(), ""
        record.peak_rss_kb = _peak_rss_kb()
        _local.record = outer


def _peak_rss_kb() -> int | None:
    """VmHWM of this process in kB (Linux), None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage `name` of this thread's load (nothing without a record)."""
    record = current()
    if record is None:
        yield
        return
    start = time.perf_counter()
    record.stages.setdefault(name, 0.0)  # listed in the order the stages start
    record._stack.append([name, 0.0])  # [name, seconds spent in stages nested inside]
    outer_now, record.now = record.now, name
    try:
        yield
    finally:
        _, inner = record._stack.pop()
        spent = time.perf_counter() - start
        record.add(name, spent - inner)
        if record._stack:
            record._stack[-1][1] += spent
        record.now = outer_now


def read_files(paths: Iterable[str | os.PathLike]) -> int:
    """Read these files once, whole (stage "read"): the bytes from disk into the page cache, so the library that
    parses them next reads memory. Returns the bytes read; counted in the record. Missing paths are skipped."""
    total = 0
    with stage("read"):
        for p in paths:
            path = Path(p)
            if not path.is_file():
                continue
            if (record := current()) is not None:
                record.files.append(str(path))
            with open(path, "rb", buffering=0) as f:
                buf = bytearray(_CHUNK)
                while n := f.readinto(buf):
                    total += n
    if (record := current()) is not None:
        record.bytes_read += total
    return total


def files_under(path: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """The files of a weights folder (or the file itself), optionally only those with these suffixes."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(f for f in path.rglob("*") if f.is_file() and (not suffixes or f.suffix in suffixes))
