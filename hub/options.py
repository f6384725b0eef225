"""Demo options: `DEMOHUB_<DEMO>_<KEY>` parsed and checked at start against what each demo declares.

A variable that names no demo, or a key a demo does not declare, stops the start with a sentence listing the
valid names, so a misspelt `DEMOHUB_YOLO_MODEL` (the demo is `yolo_detect`) is not silently ignored.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Iterable, Mapping

from hub.contract import Demo, Option
from hub.errors import SettingsError

# The hub's own DEMOHUB_* variables (hub/settings.py), and those read by run.sh and the benchmarks.
HUB_VARS = frozenset({
    "CACHE_DIR", "DEVICE", "DTYPE", "WEIGHTS", "VRAM_BUDGET", "OFFLINE", "HOST", "PORT", "SHARE", "AUTH",
    "AUTH_FILE", "INSECURE_SHARE", "MAX_UPLOAD_MB", "QUEUE_SIZE", "DEMOS", "COMPILE", "VENV", "KEEP_ALIVE",
    "PINNED", "API_KEYS", "ALLOWED_ORIGINS", "ALLOW_ANY_MODEL", "OPERATORS", "BACKEND", "RAY_ADDRESS", "RAY_CONFIG",
    "ALLOWED_HOSTS", "TRUSTED_PROXIES", "EMBED", "PRELOAD",
})
PER_DEMO = frozenset({"MODEL", "KEEP_ALIVE"})  # every demo's hub-level settings: DEMOHUB_<DEMO>_MODEL, ..._KEEP_ALIVE
OTHER_PREFIXES = ("BENCH_", "TEST_", "CHROMIUM")  # read by the benchmarks and the browser tests


class DemoOptions:
    """One demo's parsed options: `opts.max_labels`, `opts["max_labels"]`; read-only."""

    def __init__(self, values: Mapping[str, object]):
        object.__setattr__(self, "_values", MappingProxyType(dict(values)))

    def __getattr__(self, key: str):
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no option {key!r}; declared: {', '.join(self._values) or 'none'}") from None

    def __getitem__(self, key: str):
        return self._values[key]

    def __setattr__(self, key, value):
        raise AttributeError("demo options are read-only")

    def __repr__(self) -> str:
        return f"DemoOptions({dict(self._values)})"

    def __reduce__(self):  # a closure shipped to a Ray replica carries its tab's options
        return DemoOptions, (dict(self._values),)

    def as_dict(self) -> dict:
        return dict(self._values)


def defaults(demo: Demo) -> DemoOptions:
    return DemoOptions({o.key: o.default for o in demo.options})


def parse(demo: Demo, env: Mapping[str, str]) -> DemoOptions:
    """The demo's options from `env` (the DEMOHUB_* variables); defaults for those not set."""
    values = {}
    for o in demo.options:
        raw = env.get(o.env_var(demo.name))
        values[o.key] = o.default if raw is None else parse_value(o, raw, o.env_var(demo.name))
    return DemoOptions(values)


def parse_value(o: Option, raw: str, name: str):
    """One option value from its text; SettingsError naming `name` and the accepted values."""
    text = raw.strip()
    if isinstance(o.default, bool):
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={raw!r} is not valid; use 1/0, true/false, yes/no or on/off.")
    if isinstance(o.default, (int, float)):
        whole = isinstance(o.default, int)
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise SettingsError(f"{name}={raw!r} is not {kind}; {_range(o)}.") from None
        if not math.isfinite(value) or (o.lo is not None and value < o.lo) or (o.hi is not None and value > o.hi):
            raise SettingsError(f"{name}={raw!r} is out of range; {_range(o)}.")
        return value
    if o.choices is not None and text not in o.choices:
        raise SettingsError(f"{name}={raw!r} is not valid; use one of: {', '.join(o.choices)}.")
    return text


def _range(o: Option) -> str:
    if o.lo is not None and o.hi is not None:
        return f"use a number from {o.lo:g} to {o.hi:g}"
    if o.lo is not None:
        return f"use a number of at least {o.lo:g}"
    return "use a number"


def check_names(env: Mapping[str, str], registered: Iterable[str], demos: Iterable[Demo]) -> None:
    """Refuse DEMOHUB_* variables that name no hub setting, no registered demo, or no option of a loaded demo.

    registered: every demo name in the registry; demos: the loaded ones (their options are known).
    """
    for var in ("DEMOHUB_PINNED", "DEMOHUB_DEMOS"):
        names = [n.strip() for n in env.get(var, "").split(",") if n.strip()]
        unknown = [n for n in names if n not in registered and "." not in n]
        if unknown:
            raise SettingsError(f"{var}: {unknown[0]!r} is not a demo; use names from: {', '.join(sorted(registered))}.")
    registered = sorted(set(registered), key=len, reverse=True)  # longest first: "llm_chat" before a shorter prefix
    keys = {d.name: {o.key.upper() for o in d.options} | PER_DEMO for d in demos}
    for var in sorted(env):
        if not var.startswith("DEMOHUB_"):
            continue
        rest = var[len("DEMOHUB_"):]
        if rest in HUB_VARS or rest.startswith(OTHER_PREFIXES):
            continue
        demo = next((n for n in registered if rest.startswith(n.upper() + "_")), None)
        if demo is None:
            raise SettingsError(
                f"{var} names no demo and no hub setting. Demo settings are DEMOHUB_<DEMO>_MODEL or "
                f"DEMOHUB_<DEMO>_<OPTION> with DEMO one of: {', '.join(n.upper() for n in sorted(registered))}; "
                f"hub settings are DEMOHUB_{', DEMOHUB_'.join(sorted(HUB_VARS))}.")
        key = rest[len(demo) + 1:]
        if demo in keys and key not in keys[demo]:
            raise SettingsError(f"{var} is not a {demo} setting; it has: "
                                f"{', '.join(f'DEMOHUB_{demo.upper()}_{k}' for k in sorted(keys[demo]))}.")
