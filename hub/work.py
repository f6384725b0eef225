"""Work as data: a demo's engine work is a table of named methods, each taking one typed request.

An engine module declares its methods in a `Work` table:

    WORK = Work()

    @WORK.method(DetectRequest)
    def detect(lease: Lease, req: DetectRequest, job: Job) -> DetectResult:
        check(req)                        # one check step before any work: UserError with a sentence
        ...
        return DetectResult(...)

    @WORK.method(VideoRequest)            # a generator function is a streaming method: it yields typed items
    def detect_video(lease, req, job):
        for ...:
            if job.stop.is_set(): return  # the consumer went away (Cancel, Stop, a closed page, a client hung up)
            job.progress(done / total, "Detecting")
            yield VideoProgress(...)

What crosses a backend is `(demo, method name, request, model id)`: plain data that pickles with the standard
`pickle` module (dataclasses, numbers, strings, bytes, numpy arrays, PIL images; file paths that the backend maps).
A closure, a lock, a gradio object or a request header cannot be a request: `roundtrip` refuses them, and the
contract test runs every example through it. The method runs where the model is (this process, or a Ray replica)
with a `Lease` of the loaded engine and a `Job`: the `stop` Event and the `progress(fraction, text)` callback.
State that outlives a request lives in the engine, keyed by a session key the request carries in a field named
`session` (hub.sessions); the Ray backend routes a session's requests to the replica that holds its state.
"""

from __future__ import annotations

import inspect
import pickle
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Iterator

from hub.errors import UserError


class Stop:
    """A stop flag set by the call's own consumer (`set`) or by any linked Event (a Cancel pressed, the event that
    ran the handler cancelled): `is_set()` reads them all. Has the parts of `threading.Event` methods use."""

    def __init__(self, *linked: threading.Event | None):
        self._own = threading.Event()
        self._linked = tuple(e for e in linked if e is not None)

    def set(self) -> None:
        self._own.set()

    def is_set(self) -> bool:
        return self._own.is_set() or any(e.is_set() for e in self._linked)

    def wait(self, timeout: float | None = None) -> bool:
        if not self._linked:
            return self._own.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                return False
            self._own.wait(left)
        return True


@dataclass
class Job:
    """What a running method gets besides its request: `stop` (set when the consumer goes away, or a Cancel is
    pressed), `progress(fraction, text)` (fraction in [0, 1], or None for "working"), and `warn(text)` for a
    sentence the person should see beside the answer (the hub's CPU-fallback warning uses it)."""

    stop: Stop | threading.Event = field(default_factory=Stop)
    progress: Callable[[float | None, str], None] = lambda fraction, text: None
    warn: Callable[[str], None] = lambda text: None

    def stopped(self) -> bool:
        return self.stop.is_set()


FILE = "demohub:file"
"""Marks a request or result field that names files (uploads, outputs): `video: Annotated[str, FILE]`,
`image: Annotated[Any, FILE]` (a path, or pixels). Only such fields travel as file bytes to a Ray replica on another
node (hub.cluster.files); a string a visitor typed elsewhere is never read as a file name."""
FilePath = Annotated[str, FILE]


class Progress:
    """Base of stream items that only report progress (a denoising step, "model loaded"): out of memory before the
    first item that is not one is still retried from the start, since nothing but progress was shown."""


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable
    request: type
    streams: bool


class Work:
    """A demo's table of named work methods (see the module docstring)."""

    def __init__(self):
        self.methods: dict[str, Method] = {}

    def method(self, request: type, name: str | None = None):
        """Declare `fn(lease, request, job)` as the method `name` (default: the function's name)."""

        def add(fn):
            key = name or fn.__name__
            if key in self.methods:
                raise ValueError(f"work method {key!r} is declared twice")
            self.methods[key] = Method(key, fn, request, inspect.isgeneratorfunction(fn))
            return fn
        return add

    def get(self, name: str) -> Method:
        try:
            return self.methods[name]
        except KeyError:
            raise LookupError(f"no work method {name!r}; this demo has {sorted(self.methods)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.methods


def dispatch(method: Method, lease, request, job: Job) -> Iterator:
    """The items of one method call: a streaming method's items, or a plain method's one result."""
    if not isinstance(request, method.request):
        raise TypeError(f"{method.name} takes a {method.request.__name__}, not a {type(request).__name__}")
    if method.streams:
        return method.fn(lease, request, job)
    return iter((method.fn(lease, request, job),))


def roundtrip(obj: Any) -> Any:
    """`obj` through the standard pickle and back, as a backend in another process would see it. A closure, a lock
    or a gradio object cannot cross, and says so (a bug in the demo, caught by the contract test on every run)."""
    try:
        return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise TypeError(f"{type(obj).__name__} is not plain data and cannot cross a process: {e}") from None


def cancelled_sentence(title: str) -> UserError:
    return UserError(f"The {title} request was stopped before it finished.")
