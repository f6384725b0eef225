"""The explicit list of demos. Adding a demo = one file in demos/ + one line here.

A demo module declares `SPEC` (hub.spec.DemoSpec), `load(weights, device, dtype)` and `ui(ctx)`; optionally
`fetch(weights)` (pre-download for native sources) and `routes(ctx)` (extra HTTP routes, a fastapi.APIRouter).
Importing a demo module must not import torch or its model library: those imports live inside `load`.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from dataclasses import dataclass
from types import ModuleType

from hub.errors import SettingsError

log = logging.getLogger("demohub")

DEMOS = (
    "stable_diffusion",
    "whisper_asr",
    "yolo_detect",
    "clip_zero_shot",
    "sam_segment",
    "llm_chat",
)


@dataclass
class DemoHandle:
    """A registered demo: its module when it imported, else the reason it did not."""

    name: str
    module: ModuleType | None
    error: str = ""

    @property
    def spec(self):
        return self.module.SPEC if self.module else None

    @property
    def title(self) -> str:
        return self.spec.title if self.module else self.name.replace("_", " ").title()


def load_demos(names: tuple[str, ...] | None = None) -> list[DemoHandle]:
    """Import the demos (all of DEMOS, or `names`). A name with a dot is a full module path (tests use this).

    A demo whose module fails to import is returned with `error` set, so its tab can explain and the rest work.
    """
    if names is not None:
        unknown = [n for n in names if "." not in n and n not in DEMOS]
        if unknown:
            raise SettingsError(f"--demos / DEMOHUB_DEMOS: unknown demo {unknown[0]!r}; use names from: {', '.join(DEMOS)}.")
    handles = []
    for name in names or DEMOS:
        module_name = name if "." in name else f"demos.{name}"
        try:
            module = importlib.import_module(module_name)
            _check(module)
            handles.append(DemoHandle(module.SPEC.name, module))
        except Exception as e:  # the tab shows this; the other demos still work
            log.error("Demo %s failed to import: %s", name, e)
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            handles.append(DemoHandle(name.rsplit(".", 1)[-1], None, detail))
    return handles


def _check(module: ModuleType) -> None:
    for attr in ("SPEC", "load", "ui"):
        if not hasattr(module, attr):
            raise TypeError(f"{module.__name__} does not define {attr} (see hub/registry.py for the demo contract)")
