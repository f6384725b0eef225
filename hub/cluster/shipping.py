"""How a handler's `fn(lease)` travels to a Ray replica and how what it does there comes back.

A tab's handler gives `ctx.run` / `ctx.stream` a closure. On the Ray backend that closure runs in the replica that
holds the model, so it is pickled (cloudpickle: closures by value, module functions by reference) with three kinds
of substitutions, and nothing in the demos has to know:

- **Callbacks to the front end.** A captured `gr.Progress`, `queue.Queue` or `threading.Event` becomes a proxy in
  the replica: a call on it (`progress(0.5, desc=...)`, `events.put(...)`, `done.set()`) is sent back as a message
  and made on the real object in the front end, in order, while the call runs. An Event's `is_set()` in the replica
  is true once the front end stopped the call (Cancel, Stop, a closed page): that is how a pipeline's `should_stop`
  sees a Cancel pressed in another process.
- **Files.** Paths (str or Path) under the front end's upload and output folders (`file_roots()`) do not mean
  anything on another node. An existing file travels as bytes and is written into the call's scratch folder; a
  path to a file not yet written (an output) is mapped into the same folder, and files the call writes there travel
  back and are written at their front-end paths before the item that names them. Paths in the results are mapped
  back. When the replica runs on the front end's own node, paths are kept as they are (`share_files`).
- **Locks** are recreated (a copy of a closure gets its own); a gradio `Request` travels as its plain facts; a
  tab's DemoContext as its spec, settings and options.
- **Resident objects** (a class with `__replica_resident__ = True`, such as SAM's embedding store) are made once in
  each replica and reused by later calls: caches live where the model is.

Everything here is plain Python (pickle, cloudpickle): no Ray import, so it is tested without a cluster.
"""

from __future__ import annotations

import io
import os
import pickle
import queue
import tempfile
import threading
import types
from pathlib import Path, PurePath

import cloudpickle

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
_FRONT_END = f"{os.getpid()}-{os.urandom(4).hex()}"  # resident objects are keyed by front end and object
_RESIDENTS: dict[str, object] = {}  # in a replica: the resident objects (caches) it keeps between calls
_RESIDENTS_LOCK = threading.Lock()
MAX_FILE_BYTES = 2 * 1024 ** 3  # one file a request may carry (uploads are capped far below this by the hub)


def file_roots() -> tuple[str, ...]:
    """Folders whose files belong to a request: gradio's uploads and cache, and the hub's request folders."""
    tmp = tempfile.gettempdir()
    gradio = os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tmp, "gradio")
    return tuple(os.path.realpath(p) for p in (gradio, os.path.join(tmp, "demohub")))


def _under_roots(path: str, roots: tuple[str, ...]) -> str | None:
    if not path.startswith("/") or len(path) > 4096 or "\x00" in path:
        return None
    real = os.path.realpath(path)
    return real if any(real == r or real.startswith(r + os.sep) for r in roots) else None


# ---- front end: pickle a call, deliver what comes back ----------------------------------------------------------


class Channel:
    """The front end's half of one call: the objects the replica may call back, and the files it may write."""

    def __init__(self, share_files: bool = True):
        self.share_files = share_files
        self.targets: dict[int, object] = {}
        self.remote_set: set[int] = set()  # Events the replica itself set: not a stop request

    def dumps(self, obj) -> bytes:
        buf = io.BytesIO()
        _CallPickler(buf, self).dump(obj)
        return buf.getvalue()

    def watched_events(self) -> list[threading.Event]:
        """The front end's Events captured by the call: one being set here means "stop" (Cancel, a closed page)."""
        return [t for i, t in self.targets.items() if isinstance(t, threading.Event) and i not in self.remote_set]

    def deliver(self, message: tuple) -> None:
        """Make a call the replica asked for: (target id, method, args, kwargs)."""
        tid, method, args, kwargs = message
        target = self.targets[tid]
        if isinstance(target, threading.Event) and method == "set":
            self.remote_set.add(tid)
        getattr(target, method)(*args, **kwargs)


class _CallPickler(cloudpickle.Pickler):
    def __init__(self, file, channel: Channel):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.channel = channel
        self.roots = file_roots()

    def _target(self, obj, kind: str):
        tid = id(obj)
        self.channel.targets[tid] = obj
        return _make_proxy, (tid, kind)

    def reducer_override(self, obj):
        kind = type(obj)
        if isinstance(obj, types.MethodType) and _is_target(obj.__self__):
            return getattr, (obj.__self__, obj.__name__)  # `stop.is_set` handed over alone
        if isinstance(obj, threading.Event):
            return self._target(obj, "event")
        if isinstance(obj, (queue.Queue, queue.SimpleQueue)):
            return self._target(obj, "callback")
        if kind.__module__.startswith("gradio") and kind.__name__ == "Progress":
            return self._target(obj, "callback")
        if kind.__module__.startswith("gradio") and kind.__name__ == "Request":
            return types.SimpleNamespace, (), _request_facts(obj)
        if getattr(kind, "__replica_resident__", False):
            args, kwargs = obj.__replica_args__()
            return _resident, (f"{_FRONT_END}:{id(obj)}", kind, args, kwargs)
        if kind.__module__ == "hub.context" and kind.__name__ == "DemoContext":
            return RemoteContext, (obj.spec, obj.settings, obj.options)
        if isinstance(obj, _LOCK_TYPES):
            return (threading.RLock if "RLock" in kind.__name__ else threading.Lock), ()
        return super().reducer_override(obj)

    def persistent_id(self, obj):
        if self.channel.share_files or not isinstance(obj, (str, PurePath)):
            return None
        text = str(obj)
        real = _under_roots(text, self.roots)
        if real is None:
            return None
        data = None
        if os.path.isfile(real) and os.path.getsize(real) <= MAX_FILE_BYTES:
            with open(real, "rb") as f:
                data = f.read()
        # the path as bytes: a str inside the persistent id would be offered to persistent_id again
        return ("file", text.encode(), isinstance(obj, PurePath), data)


def _is_target(obj) -> bool:
    kind = type(obj)
    return isinstance(obj, (threading.Event, queue.Queue, queue.SimpleQueue)) or (
        kind.__module__.startswith("gradio") and kind.__name__ == "Progress")


def _request_facts(request) -> dict:
    """What a handler may read of a gradio Request in a replica: who and which session, not the socket."""
    facts = {}
    for name in ("session_hash", "username"):
        facts[name] = getattr(request, name, None)
    client = getattr(request, "client", None)
    facts["client"] = types.SimpleNamespace(host=getattr(client, "host", None))
    facts["headers"] = dict(getattr(request, "headers", {}) or {})
    return facts


class RemoteContext:
    """A tab's DemoContext as a closure sees it in a replica: its spec, settings and options (read-only facts);
    the model is the lease's, so nothing here reaches a manager."""

    def __init__(self, spec, settings, options):
        self.spec, self.settings, self.options = spec, settings, options

    @property
    def name(self) -> str:
        return self.spec.name


# ---- replica: unpickle a call, send back what it does -----------------------------------------------------------

_binding = threading.local()


class Call:
    """The replica's half of one call: where proxies send messages, the stop flag, and the scratch folder."""

    def __init__(self, send, share_files: bool = True):
        self.send = send  # send(("callback", message)) from any thread
        self.stopped = threading.Event()
        self.share_files = share_files
        self.scratch = Path(tempfile.mkdtemp(prefix="demohub-call-")) if not share_files else None
        self.mapping: dict[str, str] = {}  # replica path -> front-end path
        self._sent: dict[str, tuple[int, int]] = {}

    def loads(self, data: bytes):
        _binding.call = self
        try:
            return _CallUnpickler(io.BytesIO(data), self).load()
        finally:
            _binding.call = None

    def local_path(self, front: str, data: bytes | None) -> str:
        real = os.path.realpath(front)
        local = self.scratch / real.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            local.write_bytes(data)
            st = local.stat()
            self._sent[str(local)] = (st.st_size, st.st_mtime_ns)  # the front end has it already
        self.mapping[str(local)] = front
        return str(local)

    def written_files(self) -> list[tuple[str, bytes]]:
        """(front-end path, bytes) of files the call wrote or changed in its scratch folder since the last ask."""
        if self.scratch is None:
            return []
        out = []
        for path in sorted(p for p in self.scratch.rglob("*") if p.is_file()):
            st = path.stat()
            if self._sent.get(str(path)) == (st.st_size, st.st_mtime_ns):
                continue
            self._sent[str(path)] = (st.st_size, st.st_mtime_ns)
            out.append(("/" + str(path.relative_to(self.scratch)), path.read_bytes()))
        return out

    def dumps_result(self, obj) -> bytes:
        buf = io.BytesIO()
        _ResultPickler(buf, self).dump(obj)
        return buf.getvalue()

    def close(self) -> None:
        if self.scratch is not None:
            import shutil

            shutil.rmtree(self.scratch, ignore_errors=True)


class _CallUnpickler(pickle.Unpickler):
    def __init__(self, file, call: Call):
        super().__init__(file)
        self.call = call

    def persistent_load(self, pid):
        kind, front, is_path, data = pid
        if kind != "file":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        local = self.call.local_path(front.decode(), data)
        return Path(local) if is_path else local


class _ResultPickler(cloudpickle.Pickler):
    """Results of a call, with its scratch paths turned back into the front end's."""

    def __init__(self, file, call: Call):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.call = call
        self.scratch = str(call.scratch) if call.scratch is not None else None

    def persistent_id(self, obj):
        if self.scratch is None or not isinstance(obj, (str, PurePath)):
            return None
        text = str(obj)
        if text == self.scratch or not text.startswith(self.scratch + os.sep):
            return None
        return ("path", ("/" + os.path.relpath(text, self.scratch)).encode(), isinstance(obj, PurePath))


class ResultUnpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        kind, front, is_path = pid
        return Path(front.decode()) if is_path else front.decode()


def loads_result(data: bytes):
    return ResultUnpickler(io.BytesIO(data)).load()


class _Proxy:
    """A front-end object seen from the replica: calls become messages; an Event's is_set() is the stop flag."""

    def __init__(self, tid: int, kind: str, call: Call | None):
        self._tid, self._kind, self._call = tid, kind, call
        self._set = False

    def _send(self, method: str, args, kwargs) -> None:
        if self._call is not None:
            self._call.send(("callback", (self._tid, method, args, kwargs)))

    def __call__(self, *args, **kwargs):
        self._send("__call__", args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._kind == "event":
            if name not in ("is_set", "set", "clear", "wait"):
                raise AttributeError(name)
            return getattr(self, f"_event_{name}")

        def method(*args, **kwargs):
            self._send(name, args, kwargs)
        return method

    # threading.Event, seen from the replica
    def _event_is_set(self) -> bool:
        return self._set or (self._call is not None and self._call.stopped.is_set())

    def _event_set(self) -> None:
        self._set = True
        self._send("set", (), {})

    def _event_clear(self) -> None:
        self._set = False
        self._send("clear", (), {})

    def _event_wait(self, timeout=None) -> bool:
        if self._set:
            return True
        return self._call.stopped.wait(timeout) if self._call is not None else False

    def __reduce__(self):
        return _make_proxy, (self._tid, self._kind)


def _resident(key: str, cls, args: tuple, kwargs: dict):
    """A front-end object that lives in the replica (a cache of embeddings): made on first use, then reused.
    A class says so with `__replica_resident__ = True` and gives its constructor's arguments in
    `__replica_args__()`; its state stays in the replica (each replica has its own)."""
    with _RESIDENTS_LOCK:
        if key not in _RESIDENTS:
            _RESIDENTS[key] = cls(*args, **kwargs)
        return _RESIDENTS[key]


def _make_proxy(tid: int, kind: str) -> _Proxy:
    return _Proxy(tid, kind, getattr(_binding, "call", None))
