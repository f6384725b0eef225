"""The one stream implementation: a method's work runs in a worker thread; the consumer reads its items.

`WorkStream(produce, ...)` starts `produce(job)` (an iterator of items; the backend's `stream`) in a worker thread.
The consumer iterates it (or `async for`s it, or asks for `result()`), and everything the worker reports comes back
to the consumer's thread in order: items, `job.progress(fraction, text)`, `job.warn(text)`, the error. A consumer
that goes away — gradio closing the handler's generator on Cancel or Stop, a closed page, a `/v1` client that
disconnects — calls `close()`, which sets `job.stop`; the method ends at its next step and the lease is released
when the worker returns (the backend holds it inside `produce`). The consumer never waits for that step to end.

The UI, `/v1` streaming, `/v1` non-streaming calls with disconnect detection and the Ray replica all use it.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Iterator

from hub.errors import UserError
from hub.work import Job, Stop

log = logging.getLogger("demohub")

_ITEM, _PROGRESS, _WARN, _ERROR, _END = range(5)
AHEAD = 1  # items the worker may produce before the consumer has read them


class Stopped(UserError):
    """A run whose consumer stopped it before it had a result (a Cancel, a client that went away)."""

    def __init__(self, message: str = "The request was stopped before it finished; run it again for a result."):
        super().__init__(message)


def _work(produce, job: Job, q: queue.Queue, finished: threading.Event, room: threading.Semaphore) -> None:
    try:
        items = produce(job)
        try:
            for item in items:
                # at most AHEAD items wait for the consumer: a slow reader slows the work (and keeps its lease)
                # instead of piling frames up in memory; a reader that goes away sets stop
                while not room.acquire(timeout=0.1):
                    if job.stop.is_set():
                        break
                if job.stop.is_set():
                    break
                q.put((_ITEM, item))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        q.put((_END, None))
    except BaseException as e:  # every error goes to the consumer, who raises it where the request waits
        q.put((_ERROR, e))
    finally:
        finished.set()


def callback_items(run: Callable[[Callable[[object], None]], object], job: Job, name: str = "demohub-callback"):
    """Items of a library loop that reports through a callback (diffusers' `callback_on_step_end`) as they happen.

    `run(emit)` runs in a helper thread and calls `emit(item)` for each step; this generator yields those items and
    returns `run`'s return value (`res = yield from callback_items(...)`). `run` reads `job.stop` between steps.
    Closed early (the consumer went away) it sets `job.stop` and waits for `run` to return, so the lease is held
    until the library has let go of the model."""
    q: queue.Queue = queue.Queue()

    def target():
        try:
            q.put((_END, run(lambda item: q.put((_ITEM, item)))))
        except BaseException as e:
            q.put((_ERROR, e))

    worker = threading.Thread(target=target, daemon=True, name=name)
    worker.start()
    try:
        while True:
            kind, value = q.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return value
    finally:
        if worker.is_alive():
            job.stop.set()
            worker.join()


class _Mailbox(queue.Queue):
    """The worker's messages; an async consumer is woken on its event loop (no thread waits for it)."""

    waker: Callable[[], None] | None = None

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        waker = self.waker
        if waker is not None:
            try:
                waker()
            except RuntimeError:  # the consumer's event loop is closed: nobody is waiting any more
                pass


class WorkStream:
    """Iterator (sync and async) over the items of `produce(job)` run in a worker thread."""

    def __init__(self, produce: Callable[[Job], Iterator], *, on_progress: Callable | None = None,
                 on_warning: Callable[[str], None] | None = None, stop: threading.Event | None = None,
                 name: str = "demohub-work", raw: bool = False, on_end: Callable | None = None):
        q = _Mailbox()
        self._q = q
        self._wake = None  # an asyncio.Event, made by the first `async for` step
        # its own stop (set by close) and the caller's (a Cancel button, the cancelled event: hub.context)
        self.job = Job(stop=Stop(stop), progress=lambda f, text="": q.put((_PROGRESS, (f, text))),
                       warn=lambda text: q.put((_WARN, text)))
        self._on_progress, self._on_warning = on_progress, on_warning
        self._raw = raw  # yield ("item", x), ("progress", (fraction, text)), ("warning", text): a Ray replica relays them
        self._done = False
        self._on_end = on_end  # on_end(error or None), once: the stream ended, failed or was closed (metrics)
        self.finished = threading.Event()  # set when the worker returned (the lease is released by then)
        # the worker holds the queue and the job, never this object: a consumer dropped without close() (a handler's
        # generator closed by gradio) is collected at once, and __del__ stops the work
        self._room = threading.Semaphore(AHEAD)
        threading.Thread(target=_work, args=(produce, self.job, q, self.finished, self._room), daemon=True,
                         name=name).start()

    # ---- the consumer side ---------------------------------------------------------------------------------------

    def _deliver(self, kind, data):
        """One message from the worker: an item to return, None to keep reading; raises the end or the error."""
        if kind == _ITEM:
            self._room.release()
            return (("item", data),) if self._raw else (data,)
        if self._raw and kind in (_PROGRESS, _WARN):
            return (("progress" if kind == _PROGRESS else "warning", data),)
        if kind == _PROGRESS:
            if self._on_progress is not None:
                self._on_progress(*data)
            return None
        if kind == _WARN:
            if self._on_warning is not None:
                self._on_warning(data)
            return None
        self._done = True
        if kind == _ERROR:
            self._ended(data)
            raise data
        self._ended(None)
        raise StopIteration

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        while True:
            got = self._deliver(*self._q.get())
            if got is not None:
                return got[0]

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._done:
            raise StopAsyncIteration
        while True:
            message = await self._aget()
            try:
                got = self._deliver(*message)
            except StopIteration:
                raise StopAsyncIteration from None
            if got is not None:
                return got[0]

    async def _aget(self):
        """The next message, awaited on the event loop: the worker's put wakes it (call_soon_threadsafe)."""
        import asyncio

        if self._wake is None:
            loop, wake = asyncio.get_running_loop(), asyncio.Event()
            self._wake = wake
            self._q.waker = lambda: loop.call_soon_threadsafe(wake.set)  # the event, not this object (see __init__)
        while True:
            try:
                return self._q.get_nowait()
            except queue.Empty:
                self._wake.clear()
            try:  # a message put between the first look and clear() would not wake us: look again
                return self._q.get_nowait()
            except queue.Empty:
                await self._wake.wait()

    def result(self):
        """The one result of a plain method (its only item), once the worker has returned (the lease released).
        A run stopped before its result raises `Stopped`."""
        try:
            value = next(self)
        except StopIteration:
            raise Stopped() from None
        for _ in self:  # a plain method has one item: this reads the end, after the lease is released
            pass
        return value

    def close(self) -> None:
        """The consumer goes away: the method stops at its next step (its lease is released when it returns)."""
        self._done = True
        self.job.stop.set()
        self._ended(None)  # a stream the client closed early counts as ok

    def _ended(self, error) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(None if isinstance(error, Stopped) else error)

    def __del__(self):
        self.close()
