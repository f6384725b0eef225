"""One demo's Ray Serve replica: its own ModelManager (and byte budget), the work it runs, its reports.

`call` is an async generator Ray Serve streams back to the front end. It receives `(method name, request)` as
standard-pickle bytes — plain data, never code — and runs the method on this replica's ModelManager through the hub's
one stream implementation (hub.streams), yielding messages:

    ("started", where)              the call reached a replica (the front end stops counting it as queued)
    ("progress", (fraction, text))  the method's job.progress
    ("warning", text)               job.warn, and the lease's fallback warning (CPU after out-of-memory)
    ("item", pickled)               a stream's item or a plain method's result
    ("error", pickled exception)    a user error with its sentence, or a bug
    ("end", None)

Files: when the front end is on another node, request files arrive as bytes (hub.cluster.files) and are written to
a scratch folder; files named in the results go back as bytes. When the front end stops the call (Cancel, Stop, a
closed page, a /v1 client gone) Ray Serve cancels this generator: the method's `job.stop` is set, it ends at its
next step, and the lease is released when it returns.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections import Counter

from ray import serve

log = logging.getLogger("demohub")

BOARD = "demohub-board"
NAMESPACE = "demohub"
REPORT_EVERY_S = 1.0
SESSIONS_PER_REPLICA = 1024  # sessions a replica advertises to Serve's router (least recently used forgotten first)


class DemoReplica:
    """Serve deployment class (wrapped by `serve.deployment` in hub.cluster.backend)."""

    def __init__(self, demo: str, settings, gpu_share: float = 0.0, source: str | None = None):
        from hub import options as demo_options
        from hub.models import ModelManager
        from hub.registry import load_demos

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        (handle,) = load_demos((source or demo,))  # source: a module path for a demo outside the registry (tests)
        if handle.demo is None:
            raise RuntimeError(f"the {demo} demo failed to import on this node: {handle.error}")
        self.demo = demo
        opts = demo_options.parse(handle.demo, settings.env)
        self.manager = ModelManager(settings, {demo: (handle.spec, handle.demo.loader(opts), handle.demo.work)},
                                    budgets=_gpu_budget(gpu_share))
        self.where = _where()
        self.manager.where = {"replica": self.where["label"]}
        self.events: Counter = Counter()  # the manager's events, reported to the front end's metrics
        self.manager.on_event = lambda kind, **labels: self.events.update([f"{kind}:{labels.get('reason', '')}"])
        self.ongoing = 0
        self._lock = threading.Lock()
        self._seen_unload = 0
        threading.Thread(target=self._report_loop, daemon=True, name="demohub-report").start()

    @serve.multiplexed(max_num_models_per_replica=SESSIONS_PER_REPLICA)
    async def _session(self, session: str) -> str:
        """Session affinity through Serve's model multiplexing: a request that carries a session (the front end sets
        it as the multiplexed id) marks it as held here, and Serve's router sends that session's next requests to
        this replica while it can take them, so state kept in the engine per session (a webcam's tracker, SAM's
        embeddings) is found again. Best effort: a busy or lost replica means a fresh state elsewhere."""
        return session

    async def call(self, payload: bytes, model: str | None, share_files: bool):
        from hub.cluster import files
        from hub.streams import WorkStream

        if session := serve.get_multiplexed_model_id():
            await self._session(session)
        with self._lock:
            self.ongoing += 1
        scratch = None
        work = None
        try:
            method, request = pickle.loads(payload)
            if not share_files:
                scratch = tempfile.mkdtemp(prefix=f"demohub-{self.demo}-", dir=_scratch_root())
                request = files.unpack(request, scratch)
            demo, manager = self.demo, self.manager
            work = WorkStream(lambda job: manager.stream(demo, method, request, model, job), raw=True,
                              name=f"demohub-{demo}-{method}")
            yield ("started", self.where["label"])
            async for kind, data in work:
                if kind == "item":
                    data = pickle.dumps(data if share_files else files.pack(data), protocol=pickle.HIGHEST_PROTOCOL)
                yield (kind, data)
            yield ("end", None)
        except Exception as e:  # everything goes back: the front end raises it where the request waits
            from hub.errors import UserError

            if not isinstance(e, UserError):
                log.error("%s failed in its replica", self.demo, exc_info=e)
            yield ("error", _pickle_error(e))
        finally:  # also on cancel (GeneratorExit / CancelledError): stop the work, its lease goes when it returns
            if work is not None:
                work.close()
            if scratch is not None:
                threading.Thread(target=_remove_when, args=(work, scratch), daemon=True).start()
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
                    **self.where, "demo": self.demo, "rows": rows, "ongoing": self.ongoing, "time": time.time(),
                    "events": dict(self.events)}))
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


def _scratch_root() -> str:
    from hub.cluster.files import file_roots

    root = file_roots()[1]  # the hub's request folders: files written here travel back with the results
    os.makedirs(root, exist_ok=True)
    return root


def _remove_when(work, folder: str) -> None:
    """Remove a call's scratch folder once its method has returned (it may still read its inputs)."""
    if work is not None:
        work.finished.wait(3600)
    shutil.rmtree(folder, ignore_errors=True)


def _pickle_error(e: BaseException) -> bytes:
    try:
        data = pickle.dumps(e)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))


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
