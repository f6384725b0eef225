"""A backend that sends every request, item and error through the standard pickle, as a Ray replica's would.

It wraps the in-process ModelManager: work that could not cross a process (a closure, a lock, a gradio object in a
request or a result) fails here on every test run, without a cluster.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from hub.models import ModelManager
from hub.work import Job, roundtrip


class RoundTripBackend:
    """The Backend protocol (hub.contract): `call`/`stream` through pickle; everything else is the manager's."""

    def __init__(self, manager):
        self._manager = manager
        self.requests: list[tuple[str, str, object]] = []  # (demo, method, request as the work received it)

    def __getattr__(self, name):
        return getattr(self._manager, name)

    @property
    def on_event(self):
        return self._manager.on_event

    @on_event.setter
    def on_event(self, fn):
        self._manager.on_event = fn

    def call(self, demo: str, method: str, request, model: str | None = None, job: Job | None = None):
        return ModelManager.call(self, demo, method, request, model, job)  # its call, over this stream

    def stream(self, demo: str, method: str, request, model: str | None = None, job: Job | None = None) -> Iterator:
        if not dataclasses.is_dataclass(request) and not hasattr(request, "model_dump"):
            raise TypeError(f"{demo}.{method}: a request is a dataclass or a pydantic model, not {type(request)}")
        shipped = roundtrip(request)
        assert type(shipped) is type(request)
        self.requests.append((demo, method, shipped))
        try:
            for item in self._manager.stream(demo, method, shipped, model, job):
                yield roundtrip(item)
        except Exception as e:
            raise roundtrip(e) from None
