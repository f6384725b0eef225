"""DEMOHUB_PRELOAD: models loaded right after launch, in a background thread, so the first click finds them ready.

The page answers from the start: the loads run one after another in a daemon thread (never on the event loop),
through the manager's own path (`ModelManager.use`: budget, load lock, keep-alive), and the Models tab shows each
one as it loads (its stages: hub.loadtimes). A preload that fails is logged and shown in the Models tab like any
failed load; the hub keeps serving. Settings: comma-separated `demo` or `demo:model` items, `pinned` (the
DEMOHUB_PINNED demos, the default) or `none`. A preloaded model unloads after its keep-alive like any other unless
it is pinned. On the Ray backend replicas load their own models; preloading applies to this process's manager.
"""

from __future__ import annotations

import logging
import threading

from hub.errors import SettingsError, UserError

log = logging.getLogger("demohub")


def plan(settings, manager, demos) -> list[tuple[str, str | None]]:
    """(demo, model or None for its default) to preload, in order, without duplicates; `demos`: the names this hub
    serves. Raises SettingsError naming DEMOHUB_PRELOAD for a demo it does not serve or a model it cannot run."""
    jobs: list[tuple[str, str | None]] = []
    for item in settings.preload:
        if item == "pinned":
            jobs += [(d, None) for d in settings.pinned if d in demos]
            continue
        demo, _, model = (part.strip() for part in item.partition(":"))
        if demo not in demos:
            raise SettingsError(f"DEMOHUB_PRELOAD: {demo!r} is not a demo of this hub; use names from: "
                                f"{', '.join(demos)}.")
        try:
            manager.choice(demo, model or None)
        except UserError as e:
            raise SettingsError(f"DEMOHUB_PRELOAD: {item!r}: {e}") from None
        jobs.append((demo, model or None))
    return list(dict.fromkeys(jobs))


def start(manager, jobs: list[tuple[str, str | None]]) -> threading.Thread | None:
    """Load `jobs` one after another in a daemon thread; None when there is nothing to load (or no local manager)."""
    if not jobs:
        return None
    if not hasattr(manager, "use"):
        log.info("DEMOHUB_PRELOAD is ignored on the Ray backend: each replica loads its model at its first request.")
        return None
    thread = threading.Thread(target=_load_all, args=(manager, jobs), name="demohub-preload", daemon=True)
    thread.start()
    return thread


def _load_all(manager, jobs) -> None:
    for demo, model in jobs:
        try:
            with manager.use(demo, model):
                pass
            log.info("Preloaded %s (%s).", demo, manager.choice(demo, model).display)
        except Exception as e:  # shown in the Models tab as a failed load; the hub keeps serving
            log.warning("Preloading %s failed: %s", demo, e if isinstance(e, UserError) else repr(e))
