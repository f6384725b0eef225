"""Tabs that work together: a tab publishes named parts of its page (Stable Diffusion's prompt, init image, inpaint
editor, mode tabs); another tab's button sends values to them and switches the hub to that tab ("Send to SD tab").

Tabs build one after another in registry order, so a sender may be built before its target, and the target may be
missing (a hub started with --demos without it) or may have failed to build. So a send is declared while its tab
builds and wired once every tab is built (`finish`, which hub/app.py runs at the end of the Blocks, with the
after-build hooks): its button shows only when every part it sends to was published by a tab that built. A tab built
outside the hub shell (a test, a demo on its own) gets a Links with no hub tabs, whose sends stay hidden.

    # the target tab, while it builds
    ctx.links.publish("stable_diffusion", "prompt", c.prompt)
    ctx.links.publish_tab("stable_diffusion", "inpaint", c.tab_inp)  # a mode a send may open
    # a sender, while it builds: fn(*inputs) -> {"stable_diffusion.prompt": value, ...} (a part left out stays)
    ctx.links.send("vision", button, fn, [answer], ("stable_diffusion.prompt",))

A send runs on the page's own event (private, not queued: it only moves values the page already holds): the switch to
the target tab with the values, then (`opens`) a click on one of its inner tabs (a mode). A UserError its function
raises is shown as that sentence, and nothing moves.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Callable

from hub.errors import UserError

log = logging.getLogger("demohub")


@dataclass
class Part:
    """Components of one tab that other tabs may set. `convert(value)` gives one update per component; without it
    the value goes to the one component as it is."""

    demo: str
    components: tuple
    convert: Callable | None = None

    def updates(self, value, skip) -> list:
        if value is skip:
            return [skip] * len(self.components)
        if self.convert is None:
            return [value]
        out = list(self.convert(value))
        if len(out) != len(self.components):
            raise ValueError(f"a {self.demo} part gave {len(out)} updates for {len(self.components)} components")
        return out


@dataclass
class Send:
    """A button of `demo`'s tab that sends `fn(*inputs)` to `targets` (part names, all of one tab). `wired`: True
    once `finish` found every target (the button then shows, or shows as `show` says)."""

    demo: str
    button: object
    fn: Callable
    inputs: list
    targets: tuple[str, ...]
    opens: str | None = None
    show: bool = True
    wired: bool = field(default=False, init=False)


class Links:
    """The hub's cross-tab parts, sends and after-build hooks (see the module docstring). `tabs`: the hub's
    top-level gr.Tabs, whose tab ids are the demo names (hub/app.py); None: no hub around, nothing is wired."""

    def __init__(self, tabs=None):
        self.tabs = tabs
        self._tab: dict[str, object] = {}  # demo -> its gr.Tab
        self._parts: dict[str, Part] = {}  # "demo.name" -> Part
        self._inner: dict[str, tuple[str, object]] = {}  # "demo.name" -> (demo, a gr.Tab inside its tab)
        self._sends: list[Send] = []
        self._hooks: list[tuple[str, Callable]] = []
        self.finished = False

    # ---- while the tabs build -------------------------------------------------------------------------------------

    def tab(self, demo: str, tab) -> None:
        """hub/app.py: `demo`'s top-level gr.Tab."""
        self._tab[demo] = tab

    def publish(self, demo: str, name: str, *components, convert: Callable | None = None) -> None:
        """Offer `components` of `demo`'s tab to the others as "demo.name" (`convert`: see Part)."""
        if not components or (convert is None and len(components) != 1):
            raise ValueError(f"{demo}.{name}: one component, or several with a convert function")
        self._parts[f"{demo}.{name}"] = Part(demo, tuple(components), convert)

    def publish_tab(self, demo: str, name: str, tab) -> None:
        """Offer a gr.Tab inside `demo`'s tab (a mode) as "demo.name", for a send to open (`send(opens=...)`)."""
        if tab.elem_id is None:
            tab.elem_id = f"{demo}-{name}".replace("_", "-")  # gradio gives its button the id "<elem_id>-button"
        self._inner[f"{demo}.{name}"] = (demo, tab)

    def send(self, demo: str, button, fn: Callable, inputs, targets: tuple[str, ...], *, opens: str | None = None,
             show: bool = True) -> Send:
        """Declare `button` (in `demo`'s tab) as a send to `targets`, then a click on the inner tab `opens` (a mode,
        "demo.name" of `publish_tab`); the button is hidden until `finish` wires it."""
        button.visible = False
        item = Send(demo, button, fn, list(inputs), tuple(targets), opens, show)
        self._sends.append(item)
        return item

    def after_build(self, demo: str, fn: Callable[[], object]) -> None:
        """Run `fn()` once every tab is built (after the sends are wired): what depends on the other tabs."""
        self._hooks.append((demo, fn))

    def drop(self, demo: str) -> None:
        """`demo`'s tab failed to build: nothing it published, sends or hooks counts."""
        self._parts = {k: p for k, p in self._parts.items() if p.demo != demo}
        self._inner = {k: t for k, t in self._inner.items() if t[0] != demo}
        self._sends = [s for s in self._sends if s.demo != demo]
        self._hooks = [h for h in self._hooks if h[0] != demo]

    # ---- once every tab is built ------------------------------------------------------------------------------------

    def available(self, key: str) -> bool:
        """Whether "demo.name" was published by a tab that built, in a hub whose tabs a send can switch."""
        part = self._parts.get(key)
        return part is not None and self.tabs is not None and part.demo in self._tab

    def hide_tab(self, demo: str) -> None:
        """Leave `demo`'s tab out of the tab bar (its events and APIs still work)."""
        if demo in self._tab:
            self._tab[demo].visible = False

    def finish(self) -> None:
        """hub/app.py, inside the Blocks once every tab is built: wire the sends, then run the hooks. A hook that
        fails is logged with its traceback and leaves the rest of the hub as it is."""
        self.finished = True
        for item in self._sends:
            self._wire(item)
        for demo, fn in self._hooks:
            try:
                fn()
            except Exception:
                log.exception("The %s tab's after-build step failed; the rest of the hub works", demo)

    def _wire(self, item: Send) -> None:
        if not all(self.available(t) for t in item.targets) or (item.opens and item.opens not in self._inner):
            return  # a target tab is not in this hub or failed to build: the button stays hidden
        parts = [self._parts[t] for t in item.targets]
        demos = {p.demo for p in parts} | ({self._inner[item.opens][0]} if item.opens else set())
        if len(demos) != 1:
            raise ValueError(f"a send goes to one tab, not {sorted(demos)}")
        quiet = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
        item.button.visible = item.show
        sent = item.button.click(_runner(item, parts, self._tab[parts[0].demo].id), item.inputs,
                                 [self.tabs, *(c for p in parts for c in p.components)], **quiet)
        if item.opens:
            # a click on the mode's tab, as a person makes it: the tab's own select events run (SD shows the mode's
            # one main button), and gradio 6.31's image editor draws a value it holds when a click shows it (shown by
            # an event's `selected`, it stayed blank)
            button_id = json.dumps(f"{self._inner[item.opens][1].elem_id}-button")
            sent.then(None, None, None, js=f"() => {{ document.getElementById({button_id})?.click(); }}", **quiet)
        item.wired = True


def _runner(item: Send, parts: list[Part], tab_id) -> Callable:
    """The event function of a send: the switch to `tab_id`, then `item.fn`'s values for `parts`."""
    def run(*values):
        import gradio as gr

        try:
            got = item.fn(*values) or {}
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        skip = gr.skip()
        updates = [gr.update(selected=tab_id)]
        for key, part in zip(item.targets, parts):
            updates += part.updates(got.get(key, skip), skip)
        return updates
    return run
