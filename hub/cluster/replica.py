"""One demo's Ray Serve replica: its own ModelManager (and byte budget), the calls it runs, its reports.

`call` is an async generator Ray Serve streams back to the front end. It runs the shipped `fn(lease)` (see
hub.cluster.shipping) in a worker thread under this replica's ModelManager and yields messages:

    ("started", where)              the call reached a replica (the front end stops counting it as queued)
    ("callback", (tid, method, args, kwargs))   a call on a front-end object (progress, a queue, an Event)
    ("file", (front-end path, bytes))           a file the call wrote (only when files do not share a disk)
    ("warning", text)               the lease's fallback warning (CPU after out-of-memory)
    ("item", pickled) / ("result", pickled)     a stream's item / run's result
    ("error", pickled exception)    a user error with its sentence, or a bug
    ("end", None)

When the front end stops the call (Cancel, Stop, a closed page) Ray Serve cancels this generator: the call's stop
flag is set, the shipped Events read as set, a stream ends after its current item and the lease is released when
the worker thread returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import threading
import time

from hub.cluster.shipping import Call

log = logging.getLogger("demohub")

BOARD = "demohub-board"
NAMESPACE = "demohub"
REPORT_EVERY_S = 1.0


class DemoReplica:
    """Serve deployment class (wrapped by `serve.deployment` in hub.cluster.backend)."""

    def __init__(self, demo: str, settings, gpu_share: float = 0.0):
        from hub import options as demo_options
        from hub.models import ModelManager
        from hub.registry import load_demos

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        (handle,) = load_demos((demo,))
        if handle.demo is None:
            raise RuntimeError(f"the {demo} demo failed to import on this node: {handle.error}")
        self.demo = demo
        opts = demo_options.parse(handle.demo, settings.env)
        self.manager = ModelManager(settings, {demo: (handle.spec, handle.demo.loader(opts))},
                                    budgets=_gpu_budget(gpu_share))
        self.where = _where()
        self.manager.where = {"replica": self.where["label"]}
        self.ongoing = 0
        self._lock = threading.Lock()
        self._seen_unload = 0
        threading.Thread(target=self._report_loop, daemon=True, name="demohub-report").start()

    async def call(self, payload: bytes, model: str | None, mode: str, share_files: bool):
        loop = asyncio.get_running_loop()
        messages: asyncio.Queue = asyncio.Queue()
        call = Call(lambda m: loop.call_soon_threadsafe(messages.put_nowait, m), share_files)
        with self._lock:
            self.ongoing += 1
        threading.Thread(target=self._work, args=(call, payload, model, mode), daemon=True,
                         name=f"demohub-{self.demo}").start()
        yield ("started", self.where["label"])
        try:
            while True:
                message = await messages.get()
                yield message
                if message[0] in ("end", "error"):
                    return
        except (asyncio.CancelledError, GeneratorExit):
            call.stopped.set()
            raise

    def _work(self, call: Call, payload: bytes, model: str | None, mode: str) -> None:
        send = call.send
        try:
            fn = call.loads(payload)
            warn = lambda text: send(("warning", text))  # noqa: E731
            if mode == "run":
                result = self.manager.run(self.demo, fn, model, warn=warn)
                _send_files(call)
                send(("result", call.dumps_result(result)))
            else:
                items = self.manager.stream(self.demo, fn, model, warn=warn)
                try:
                    for item in items:
                        _send_files(call)
                        send(("item", call.dumps_result(item)))
                        if call.stopped.is_set():
                            break
                finally:
                    items.close()
            send(("end", None))
        except BaseException as e:  # everything goes back: the front end raises it where the request waits
            from hub.errors import UserError

            if not isinstance(e, UserError):
                log.error("%s failed in its replica", self.demo, exc_info=e)
            send(("error", _pickle_error(e)))
        finally:
            call.close()
            with self._lock:
                self.ongoing -= 1

    # ---- what the front end asks: reports on a board actor, commands back --------------------------------------

    def _report_loop(self) -> None:
        import ray

        board = None
        while True:
            try:
                board = board or ray.get_actor(BOARD, namespace=NAMESPACE)
                rows = self.manager.status()
                unload = ray.get(board.report.remote(self.where["id"], {
                    **self.where, "demo": self.demo, "rows": rows, "ongoing": self.ongoing, "time": time.time()}))
                if unload and unload[0] > self._seen_unload:
                    self._seen_unload = unload[0]
                    try:
                        self.manager.unload(self.demo, unload[1])
                    except Exception as e:  # busy: the operator is told by the front end's answer
                        log.warning("Unload on %s: %s", self.where["label"], e)
            except Exception as e:
                log.debug("report failed: %s", e)
                board = None
            time.sleep(REPORT_EVERY_S)


def _send_files(call: Call) -> None:
    for front, data in call.written_files():
        call.send(("file", (front, data)))


def _pickle_error(e: BaseException) -> bytes:
    import cloudpickle

    try:
        data = cloudpickle.dumps(e)
        pickle.loads(data)
        return data
    except Exception:
        return cloudpickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))


def _where() -> dict:
    import ray

    ctx = ray.get_runtime_context()
    gpus = [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])]
    node = ray.util.get_node_ip_address()
    pid = os.getpid()
    try:
        from ray import serve

        rid = serve.get_replica_context().replica_id.unique_id
    except Exception:
        rid = f"{node}-{pid}"
    label = f"pid {pid} on {node}" + (f", GPU {','.join(gpus)}" if gpus else "")
    return {"id": rid, "pid": pid, "node": node, "node_id": ctx.get_node_id(), "gpus": gpus, "label": label}


def _gpu_budget(share: float) -> dict:
    """A replica that holds a fraction of a GPU gets that fraction of its memory as its byte budget."""
    if not 0 < share < 1:
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    _, total = torch.cuda.mem_get_info()
    return {"cuda": int(total * share)}
