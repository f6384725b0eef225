"""The Ray backend of the hub's one request path: `RayManager` stands where the in-process ModelManager stands.

The front end (the Gradio app, the /v1 routes, the Models tab) keeps one DemoContext per demo; its `call` and
`stream` reach this class (the Backend protocol, hub.contract), which sends `(method name, request)` — plain data,
pickled with the standard pickle — to the demo's Ray Serve deployment (hub.cluster.replica) and plays back what the
replica sends: progress, warnings, the items or the result, the error. Files named in requests and results travel as
bytes when the replica runs on another node (hub.cluster.files). Everything else the hub asks of a backend (choice,
status, unload, concurrency, the manager's events for /metrics) is answered here from the specs and from the
replicas' reports on a small board actor.

Faults: a call that dies before a replica took it is retried on another (Serve replaces dead replicas); one that
dies part-way ends with a sentence and the next request goes to a live replica. A demo without free capacity queues
its requests in Serve (bounded by `max_queued_requests`, then refused), and a request no replica took within
`queue_timeout_s` is refused with a sentence.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from typing import Callable, Iterator, Mapping

from hub.cluster import config as cluster_config
from hub.cluster import files, security
from hub.cluster.replica import BOARD, NAMESPACE, DemoReplica
from hub.device import Placement
from hub.errors import UserError
from hub.settings import Settings
from hub.spec import DemoSpec
from hub.weights import select
from hub.work import Job

log = logging.getLogger("demohub")

APP_PREFIX = "demohub-"
STALE_S = 6.0  # a replica that has not reported for this long is gone


class Board:
    """A named actor the replicas report to (status rows, where they run) and read unload commands from."""

    def __init__(self):
        self.reports: dict[str, dict] = {}
        self.unloads: dict[str, tuple[int, str | None]] = {}
        self.seq = 0

    def report(self, replica_id: str, facts: dict):
        self.reports[replica_id] = facts
        return self.unloads.get(facts["demo"])

    def snapshot(self) -> list[dict]:
        now = time.time()
        self.reports = {k: v for k, v in self.reports.items() if now - v["time"] < 60}
        return list(self.reports.values())

    def unload(self, demo: str, model: str | None) -> int:
        self.seq += 1
        self.unloads[demo] = (self.seq, model)
        return sum(1 for r in self.reports.values() if r["demo"] == demo and time.time() - r["time"] < STALE_S)


class RayManager:
    """The Backend protocol (hub.contract) over Ray Serve deployments, one per demo."""

    def __init__(self, settings: Settings, specs: Mapping[str, DemoSpec], config=None, address: str | None = None,
                 share_files: bool | None = None, sources: Mapping[str, str] | None = None):
        import ray
        from ray import serve

        self.settings = settings
        self._specs = dict(specs)
        self.config = config or cluster_config.ClusterConfig()
        self.config.check_names(tuple(self._specs))
        if not ray.is_initialized():
            joined = _address(address)
            if joined:
                security.check_join(joined)
                ray.init(address=joined, namespace=NAMESPACE, log_to_driver=False)
            else:  # a Ray of our own: token auth with a private token, loopback address, no dashboard
                ray.init(namespace=NAMESPACE, log_to_driver=False, **security.local_init_options())
        self._node_id = ray.get_runtime_context().get_node_id()
        self._share_files = share_files
        self._nodes_at, self._one_node = -1e9, True
        self._board = ray.remote(num_cpus=0)(Board).options(name=BOARD, namespace=NAMESPACE,
                                                            get_if_exists=True).remote()
        gpus = ray.cluster_resources().get("GPU", 0.0)
        serve.start(proxy_location="Disabled")  # no Serve HTTP proxy: the hub's own app is the front end
        deployment = serve.deployment(DemoReplica)
        # model files live in the cache folder on every node: an absolute path, the same everywhere
        shipped = _replace_cache(settings)
        self._handles, self._concurrency = {}, {}
        apps = []
        for name, spec in self._specs.items():
            dep = self.config.deployment(name)
            opts = dep.serve_options(spec.gpu_share, spec.gpu_concurrency, gpus)
            share = opts["ray_actor_options"]["num_gpus"]
            app = deployment.options(name=f"{APP_PREFIX}{name}", **opts).bind(name, shipped, share, (sources or {}).get(name))
            apps.append((name, app))
            # the UI's events run as many at once as the replicas can take; more wait in gradio's queue, which
            # shows each visitor their position (and is bounded by --queue-size)
            self._concurrency[name] = dep.max_replicas * opts["max_ongoing_requests"]
        for name, app in apps:  # deploy all, then wait for all: replicas start in parallel
            serve._run(app, name=f"{APP_PREFIX}{name}", route_prefix=None, _blocking=False)
        for name, _ in apps:
            self._handles[name] = _wait_ready(f"{APP_PREFIX}{name}")
        self._queued: dict[str, int] = {n: 0 for n in self._specs}
        self._qlock = threading.Lock()
        self.on_event: Callable[..., None] | None = None
        self._seen_events: dict[str, dict] = {}  # per replica: its event counts already passed to on_event
        log.info("Ray Serve backend: %d demo deployment(s) on %s", len(apps), ray.get_runtime_context().gcs_address)

    # ---- what DemoContext uses ---------------------------------------------------------------------------------

    def spec(self, demo: str) -> DemoSpec:
        try:
            return self._specs[demo]
        except KeyError:
            raise UserError(f"There is no demo called {demo!r}; available: {', '.join(self._specs)}.") from None

    def choice(self, demo: str, model: str | None = None):
        return select(self.spec(demo), self.settings, self.default_device(), model)

    def default_device(self) -> str:
        """The device the demos' default models are picked for: cuda when the cluster has GPUs."""
        import ray

        return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"

    def is_loaded(self, demo: str, model: str | None = None) -> bool:
        want = self.choice(demo, model).id
        return any(r["model"] == want and r["state"] not in ("loading", "failed")
                   for rep in self._reports() if rep["demo"] == demo for r in rep["rows"])

    def concurrency(self, demo: str) -> int:
        """Requests of `demo` that may run at once: its replicas times the requests each takes."""
        self.spec(demo)
        return self._concurrency[demo]

    def call(self, demo: str, method: str, request, model: str | None = None, job: Job | None = None):
        items = self.stream(demo, method, request, model, job)
        try:
            for result in items:
                return result
        finally:
            items.close()
        raise UserError(f"The {self.spec(demo).title} request was stopped before it finished.")

    def stream(self, demo: str, method: str, request, model: str | None = None, job: Job | None = None) -> Iterator:
        """The items of `method` on `request`, run in one of `demo`'s replicas; `job.stop` cancels the call there."""
        job = job or Job()
        share = self._files_shared()
        payload = pickle.dumps((method, request if share else files.pack(request)), protocol=pickle.HIGHEST_PROTOCOL)
        # a request that carries a session (state kept in the engine) goes to the replica that holds it
        session = getattr(request, "session", None)
        return self._call(demo, payload, model, share, job, str(session)[:200] if session else "")

    # ---- one call ----------------------------------------------------------------------------------------------

    def _call(self, demo: str, payload: bytes, model: str | None, share: bool, job: Job, session: str) -> Iterator:
        spec = self.spec(demo)
        deadline = time.monotonic() + self.config.queue_timeout_s
        routing = {"multiplexed_model_id": f"session-{session}"} if session else {}
        for attempt in range(5):
            response = self._handles[demo].options(stream=True, method_name="call", **routing).remote(
                payload, model, share)
            started = False
            watcher = _Watcher(job, response, deadline)
            try:
                for kind, data in _messages(response, demo, self):
                    if kind == "started":
                        started = watcher.started = True
                    elif kind == "progress":
                        job.progress(*data)
                    elif kind == "warning":
                        job.warn(data)
                    elif kind == "item":
                        item = pickle.loads(data)
                        yield item if share else files.unpack(item, _inbox(demo))
                    elif kind == "error":
                        raise pickle.loads(data)
                    elif kind == "end":
                        return
                if watcher.timed_out:
                    raise UserError(f"No {spec.title} worker was free within {self.config.queue_timeout_s:.0f} s "
                                    "(every replica busy, or none could start); try again later.")
                return
            except _Died as e:
                if started or time.monotonic() > deadline:
                    raise UserError(f"The {spec.title} worker stopped while answering ({e}); it is being replaced. "
                                    "Try again in a moment: what was shown so far stands.") from None
                log.warning("%s: the replica died before it took the request; retrying (%s)", demo, e)
                time.sleep(min(2.0, 0.5 * (attempt + 1)))
            finally:
                watcher.stop()
                response.cancel()  # a consumer that stopped early (Stop, a closed page) stops the replica's call
        raise UserError(f"No {spec.title} worker could take the request: they keep failing to start. "
                        "The operator can see why in the Ray dashboard or the server log.")

    def _files_shared(self) -> bool:
        """Files are passed by path when every replica runs on this node (one machine), else as bytes."""
        if self._share_files is not None:
            return self._share_files
        now = time.monotonic()
        if now - self._nodes_at > 2.0:  # asked of the board at most every 2 s, not on every request
            reports = self._reports()  # none yet: send bytes, which works wherever the replica runs
            self._nodes_at, self._one_node = now, bool(reports) and all(r["node_id"] == self._node_id for r in reports)
        return self._one_node

    def _queue_enter(self, demo: str, delta: int) -> None:
        with self._qlock:
            self._queued[demo] += delta

    # ---- what the Models tab and /metrics use ------------------------------------------------------------------

    def _reports(self) -> list[dict]:
        import ray

        now = time.time()
        try:
            reports = [r for r in ray.get(self._board.snapshot.remote(), timeout=5) if now - r["time"] < STALE_S]
        except Exception as e:
            log.warning("Could not read the replicas' reports: %s", e)
            return []
        self._pass_events(reports)
        return reports

    def _pass_events(self, reports: list[dict]) -> None:
        """The replicas' manager events (evictions, out-of-memory fallbacks) since the last report, to on_event:
        /metrics counts them as it does in-process."""
        for rep in reports:
            seen = self._seen_events.setdefault(rep["id"], {})
            for key, count in (rep.get("events") or {}).items():
                new = count - seen.get(key, 0)
                seen[key] = count
                if new > 0 and self.on_event is not None:
                    kind, _, reason = key.partition(":")
                    for _ in range(new):
                        self.on_event(kind, **({"reason": reason} if reason else {}))

    def status(self) -> list[dict]:
        rows = []
        for rep in sorted(self._reports(), key=lambda r: (r["demo"], r["pid"])):
            for r in rep["rows"]:
                rows.append({**r, "device": f"{r['device']} · {rep['label']}" if r["device"] else rep["label"]})
        return rows

    def replicas(self) -> dict[str, dict]:
        """Per demo: the replicas (where, what is loaded, requests running), the target count and the queue."""
        from ray import serve

        out = {n: {"replicas": [], "running": 0, "target": None, "queued": self._queued.get(n, 0)}
               for n in self._specs}
        for rep in self._reports():
            out[rep["demo"]]["replicas"].append(rep)
        try:
            apps = serve.status().applications
            for n in self._specs:
                dep = apps[f"{APP_PREFIX}{n}"].deployments[f"{APP_PREFIX}{n}"]
                out[n]["running"] = dep.replica_states.get("RUNNING", 0)
                out[n]["target"] = getattr(dep, "target_num_replicas", None)
                out[n]["state"] = str(getattr(dep.status, "value", dep.status))
        except Exception as e:
            log.debug("serve.status(): %s", e)
        return out

    def placement(self, prefers: str | None = None, cpu_prefers: str | None = None) -> Placement:
        kind = self.default_device()
        return Placement(kind, "float16" if kind == "cuda" else "float32", "Ray Serve replicas choose their own")

    def resident_bytes(self, kind: str) -> int:
        return sum(r["bytes"] for r in self.status() if r["state"] not in ("loading", "failed")
                   and r["device"].split(" ")[0].startswith(kind))

    def unload(self, demo: str, model: str | None = None) -> str:
        import ray

        self.spec(demo)
        n = ray.get(self._board.unload.remote(demo, model), timeout=10)
        return (f"Asked {n} {demo} replica(s) to unload; the table shows it within a few seconds (a replica busy "
                "with a request keeps its model)." if n else f"No {demo} replica is running.")

    def unload_all(self) -> str:
        return "\n".join(self.unload(d) for d in self._specs)

    def shutdown(self) -> None:
        from ray import serve

        for name in self._specs:
            try:
                serve.delete(f"{APP_PREFIX}{name}", _blocking=False)
            except Exception:
                pass


class _Died(Exception):
    pass


def _messages(response, demo: str, manager: RayManager) -> Iterator[tuple]:
    """The replica's messages; a dead replica becomes `_Died`, a full queue a sentence."""
    from ray import exceptions as rex
    from ray.serve.exceptions import BackPressureError, RequestCancelledError

    manager._queue_enter(demo, 1)
    queued = True
    try:
        for message in response:
            if queued:
                manager._queue_enter(demo, -1)
                queued = False
            yield message
    except BackPressureError:
        raise UserError(f"{manager.spec(demo).title} is at capacity: every replica is busy and the waiting line is "
                        "full. Try again in a minute.") from None
    except RequestCancelledError:
        return
    except rex.OutOfMemoryError:  # Ray's memory monitor killed the worker: not a bug in demohub
        raise _Died("the machine ran out of memory") from None
    except (rex.ActorDiedError, rex.ActorUnavailableError, rex.RayActorError, rex.WorkerCrashedError,
            rex.NodeDiedError) as e:
        raise _Died("its process ended" if isinstance(e, (rex.ActorDiedError, rex.RayActorError)) else
                    "it became unreachable") from None
    finally:
        if queued:
            manager._queue_enter(demo, -1)


class _Watcher:
    """Cancels the replica's call when the job's stop is set (Cancel, Stop, a closed page, a client gone), or when
    no replica took the call before the deadline."""

    def __init__(self, job: Job, response, deadline: float):
        self.started = False
        self.timed_out = False
        self._done = threading.Event()
        threading.Thread(target=self._run, args=(job, response, deadline), daemon=True, name="demohub-watch").start()

    def _run(self, job: Job, response, deadline: float) -> None:
        while not self._done.wait(0.05):
            if not self.started and time.monotonic() > deadline:
                self.timed_out = True
                response.cancel()
                return
            if job.stop.is_set():
                response.cancel()
                return

    def stop(self) -> None:
        self._done.set()


def _inbox(demo: str) -> str:
    """Where files a replica on another node sent back are written (a request folder gradio may serve)."""
    from hub.outputs import request_folder

    return str(request_folder(demo, "from-replica"))


def _address(address: str | None) -> str | None:
    """The cluster to join: the flag, RAY_ADDRESS, a `ray start --head` on this machine; None: start one here."""
    if address:
        return address
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    import tempfile

    return "auto" if os.path.exists(os.path.join(tempfile.gettempdir(), "ray", "ray_current_cluster")) else None


def _replace_cache(settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(settings, cache_dir=settings.cache_dir.expanduser().resolve())


def _wait_ready(app: str, timeout_s: float = 600.0):
    from ray import serve

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        status = serve.status().applications.get(app)
        state = str(getattr(status, "status", "")) if status else ""
        if state.endswith("RUNNING"):
            return serve.get_app_handle(app)
        if state.endswith("DEPLOY_FAILED"):
            raise UserError(f"Ray Serve could not start {app}: {status.message}")
        time.sleep(0.25)
    raise UserError(f"Ray Serve did not start {app} within {timeout_s:.0f} s (no node with the resources its "
                    "replicas ask for?). See `ray status`.")
