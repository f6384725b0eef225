"""The explicit list of demos. Adding a demo = one package in demos/ + one line here (see demos/README.md).

A demo package's `__init__.py` defines `DEMO` (hub.contract.Demo) and imports neither torch nor gradio nor its
model library: `load`, `ui`, `fetch` and `routes` are named by reference and imported when first used.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from dataclasses import dataclass

from hub.contract import Demo
from hub.errors import SettingsError

log = logging.getLogger("demohub")

DEMOS = (
    "stable_diffusion",
    "upscale",
    "whisper_asr",
    "yolo_detect",
    "clip_zero_shot",
    "sam_segment",
    "llm_chat",
    "tts",
    "edit_object",
    "speech_notes",
    "vision",
)


@dataclass
class DemoHandle:
    """A registered demo: its `Demo` when the package imported, else the reason it did not."""

    name: str
    demo: Demo | None
    error: str = ""

    @property
    def spec(self):
        return self.demo.spec if self.demo else None

    @property
    def title(self) -> str:
        return self.spec.title if self.demo else self.name.replace("_", " ").title()


def load_demos(names: tuple[str, ...] | None = None) -> list[DemoHandle]:
    """Import the demos (all of DEMOS, or `names`). A name with a dot is a full module path (tests use this).

    A demo whose package fails to import is returned with `error` set, so its tab can explain and the rest work.
    """
    if names is not None:
        unknown = [n for n in names if "." not in n and n not in DEMOS]
        if unknown:
            raise SettingsError(f"--demos / DEMOHUB_DEMOS: unknown demo {unknown[0]!r}; use names from: {', '.join(DEMOS)}.")
    handles = []
    for name in DEMOS if names is None else names:
        module_name = name if "." in name else f"demos.{name}"
        try:
            demo = getattr(importlib.import_module(module_name), "DEMO", None)
            if not isinstance(demo, Demo):
                raise TypeError(f"{module_name} does not define DEMO = hub.contract.Demo(...) (see demos/README.md)")
            handles.append(DemoHandle(demo.name, demo))
        except Exception as e:  # the tab shows this; the other demos still work
            log.error("Demo %s failed to import: %s", name, e)
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            handles.append(DemoHandle(name.rsplit(".", 1)[-1], None, detail))
    return handles
