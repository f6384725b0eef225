"""One typed settings object, read from `DEMOHUB_*` environment variables and overridden by CLI flags.

Invalid values fail at start with a sentence naming the variable (or flag) and the values it accepts.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from hub.errors import SettingsError

DEVICES = ("auto", "cuda", "cpu", "mps")
DTYPES = ("auto", "float16", "bfloat16", "float32")
WEIGHTS = ("hf", "random")
BACKENDS = ("local", "ray")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_bytes(text: str, name: str) -> int | None:
    """'auto' -> None; '8GB', '7.5GiB', '6000MB', '123' -> bytes. Raises SettingsError naming `name`."""
    text = text.strip()
    if text.lower() in ("", "auto"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?", text, flags=re.IGNORECASE)
    if not m:
        raise SettingsError(f"{name}={text!r} is not a size: use 'auto' or a number with a unit, like 8GB or 6000MiB.")
    value = float(m.group(1)) * _UNITS[(m.group(2) or "").upper()]
    if value <= 0:
        raise SettingsError(f"{name} must be larger than zero, or 'auto'.")
    if value < 1:
        raise SettingsError(f"{name}={text!r} is less than one byte: give at least 1 byte, like 8GB, or 'auto'.")
    if not math.isfinite(value):
        raise SettingsError(f"{name} is too large a size: give a real size, like 8GB or 6000MiB, or 'auto'.")
    return int(value)


def parse_duration(text: str, name: str) -> float:
    """'1800', '30m', '2h', '45s' -> seconds; '-1' or 'never' -> -1 (keep loaded); '0' -> unload after each request."""
    t = text.strip().lower()
    if t in ("-1", "never", "forever"):
        return -1.0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h)?", t)
    if not m:
        raise SettingsError(f"{name}={text!r} is not a duration: use seconds (1800), or 30m, 2h; 0 unloads a model "
                            "right after each request, -1 keeps it until it is evicted for room.")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def parse_auth(text: str, name: str) -> tuple[tuple[str, str], ...]:
    """'alice:pw1,bob:pw2' (commas or newlines) -> (('alice', 'pw1'), ('bob', 'pw2'))."""
    pairs = []
    for item in re.split(r"[,\n]", text):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise SettingsError(f"{name}: {item!r} is not USER:PASSWORD (several users: separate them with commas).")
        pairs.append((user, password))
    return tuple(pairs)


def parse_preload(text: str, name: str) -> tuple[str, ...]:
    """'yolo_detect, llm_chat:HuggingFaceTB/SmolLM2-135M-Instruct, pinned' -> the same items, each checked for
    its form ('demo' or 'demo:model', or 'pinned'); 'none' or '' -> (). The names are checked against the hub's
    demos when it starts (hub.preload.plan)."""
    items = tuple(i.strip() for i in text.split(",") if i.strip())
    if items in ((), ("none",)):
        return ()
    for item in items:
        demo, sep, model = item.partition(":")
        if item == "none" or not demo.strip() or not all(c.isalnum() or c == "_" for c in demo.strip()) \
                or (sep and not model.strip()):
            raise SettingsError(f"{name}: {item!r} is not a demo name, demo:model or 'pinned'; give a comma-separated "
                                "list like yolo_detect,llm_chat (or 'none').")
    return items


def parse_hosts(text: str, name: str) -> tuple[str, ...]:
    """'hub.lan, Demo.Example.com:7860' -> ('hub.lan', 'demo.example.com'): host names, lower case, ports dropped;
    '*' allows every name."""
    hosts = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        host = item if item == "*" else _without_port(item)
        if host != "*" and (not host or not all(c.isalnum() or c in "-._:[]" for c in host)):
            raise SettingsError(f"{name}: {item!r} is not a host name; give names like hub.example.com (commas "
                                "between them), or * for any name.")
        hosts.append(host)
    return tuple(hosts)


def _without_port(host: str) -> str:
    """'example.com:7860' -> 'example.com'; '[::1]:7860' -> '::1'."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def parse_networks(text: str, name: str) -> tuple[str, ...]:
    """'127.0.0.1, 10.0.0.0/8, ::1' -> the same addresses and networks, each checked."""
    import ipaddress

    nets = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an IP address or network; give addresses like 127.0.0.1 "
                                "or networks like 10.0.0.0/8, separated by commas.") from None
    return tuple(nets)


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not valid; use one of: {', '.join(allowed)}.")
    return value


def _bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise SettingsError(f"{name}={value!r} is not valid; use 1/0, true/false, yes/no or on/off.")


def _int(value: str, name: str, lo: int, hi: int) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number; use a number from {lo} to {hi}.") from None
    if not lo <= n <= hi:
        raise SettingsError(f"{name}={n} is out of range; use a number from {lo} to {hi}.")
    return n


@dataclass(frozen=True)
class Settings:
    """Everything the hub can be configured with. Build it with `Settings.load()`."""

    cache_dir: Path = Path("model_cache")
    device: str = "auto"
    dtype: str = "auto"
    weights: str = "hf"
    vram_budget: int | None = None  # bytes; None = free device memory minus a margin
    offline: bool = False
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: tuple[tuple[str, str], ...] = ()
    insecure_share: bool = False
    max_upload_mb: int = 100
    queue_size: int = 64
    demos: tuple[str, ...] | None = None  # None = every registered demo
    compile: bool = False
    models: Mapping[str, str] = field(default_factory=dict)  # demo name -> override (DEMOHUB_<DEMO>_MODEL)
    keep_alive: float = 1800.0  # seconds an idle model stays loaded; -1 = until evicted for room or unloaded
    keep_alives: Mapping[str, float] = field(default_factory=dict)  # demo name -> DEMOHUB_<DEMO>_KEEP_ALIVE
    pinned: tuple[str, ...] = ()  # demos whose models are never unloaded for time or room (DEMOHUB_PINNED)
    preload: tuple[str, ...] = ("pinned",)  # loaded in the background after launch (DEMOHUB_PRELOAD; hub.preload)
    api_keys: tuple[str, ...] = ()  # Bearer keys for /v1 and /metrics (DEMOHUB_API_KEYS)
    allow_any_model: bool = False  # requests may name any HF repo id or local path (loopback hubs only)
    allowed_origins: tuple[str, ...] = ()  # other websites whose pages may call /v1 (DEMOHUB_ALLOWED_ORIGINS)
    operators: tuple[str, ...] = ()  # hub users who may unload models and see versions and paths (DEMOHUB_OPERATORS)
    allowed_hosts: tuple[str, ...] = ()  # Host names answered beyond loopback ones (DEMOHUB_ALLOWED_HOSTS)
    trusted_proxies: tuple[str, ...] = ()  # proxies whose X-Forwarded-* count (DEMOHUB_TRUSTED_PROXIES)
    embed: bool = False  # the login cookie works inside other sites' frames (DEMOHUB_EMBED; default on in a Space)
    backend: str = "local"  # where engines run: this process, or Ray Serve deployments (DEMOHUB_BACKEND)
    ray_address: str | None = None  # the Ray cluster to join (DEMOHUB_RAY_ADDRESS; default RAY_ADDRESS or a local one)
    ray_config: str | None = None  # per-demo deployment file, TOML or YAML (DEMOHUB_RAY_CONFIG)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # the DEMOHUB_* variables, for demo options

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **flags) -> "Settings":
        """Read `DEMOHUB_*` from `environ` (default os.environ), then apply CLI `flags` that are not None."""
        env = dict(os.environ if environ is None else environ)
        s = cls._from_env(env)
        flags = {k: v for k, v in flags.items() if v is not None}
        return s.with_flags(**flags) if flags else s

    @classmethod
    def _from_env(cls, env: dict) -> "Settings":
        kw: dict = {"env": {k: v for k, v in env.items() if k.startswith("DEMOHUB_")}}
        get = env.get
        if (v := get("DEMOHUB_CACHE_DIR")) is not None:
            if not v.strip():
                raise SettingsError("DEMOHUB_CACHE_DIR is empty; set it to a folder path, or unset it for ./model_cache.")
            kw["cache_dir"] = Path(v).expanduser()
        if (v := get("DEMOHUB_DEVICE")) is not None:
            kw["device"] = _choice(v, "DEMOHUB_DEVICE", DEVICES)
        if (v := get("DEMOHUB_DTYPE")) is not None:
            kw["dtype"] = _choice(v, "DEMOHUB_DTYPE", DTYPES)
        if (v := get("DEMOHUB_WEIGHTS")) is not None:
            kw["weights"] = _choice(v, "DEMOHUB_WEIGHTS", WEIGHTS)
        if (v := get("DEMOHUB_VRAM_BUDGET")) is not None:
            kw["vram_budget"] = parse_bytes(v, "DEMOHUB_VRAM_BUDGET")
        offline = _bool(get("DEMOHUB_OFFLINE", "0"), "DEMOHUB_OFFLINE")
        kw["offline"] = offline or get("HF_HUB_OFFLINE", "0").strip().lower() in _TRUE
        if (v := get("DEMOHUB_HOST")) is not None:
            kw["host"] = v.strip() or "127.0.0.1"
        if (v := get("DEMOHUB_PORT")) is not None:
            kw["port"] = _int(v, "DEMOHUB_PORT", 1, 65535)
        if (v := get("DEMOHUB_SHARE")) is not None:
            kw["share"] = _bool(v, "DEMOHUB_SHARE")
        auth = ()
        if (v := get("DEMOHUB_AUTH")) is not None:
            auth += parse_auth(v, "DEMOHUB_AUTH")
        if (v := get("DEMOHUB_AUTH_FILE")) is not None:
            auth += _read_auth_file(v, "DEMOHUB_AUTH_FILE")
        kw["auth"] = auth
        if (v := get("DEMOHUB_INSECURE_SHARE")) is not None:
            kw["insecure_share"] = _bool(v, "DEMOHUB_INSECURE_SHARE")
        if (v := get("DEMOHUB_MAX_UPLOAD_MB")) is not None:
            kw["max_upload_mb"] = _int(v, "DEMOHUB_MAX_UPLOAD_MB", 1, 100_000)
        if (v := get("DEMOHUB_QUEUE_SIZE")) is not None:
            kw["queue_size"] = _int(v, "DEMOHUB_QUEUE_SIZE", 1, 100_000)
        if (v := get("DEMOHUB_DEMOS")) is not None:
            kw["demos"] = _demo_list(v)
        if (v := get("DEMOHUB_COMPILE")) is not None:
            kw["compile"] = _bool(v, "DEMOHUB_COMPILE")
        if (v := get("DEMOHUB_KEEP_ALIVE")) is not None:
            kw["keep_alive"] = parse_duration(v, "DEMOHUB_KEEP_ALIVE")
        kw["keep_alives"] = {
            m.group(1).lower(): parse_duration(val, key)
            for key, val in env.items() if (m := re.fullmatch(r"DEMOHUB_(\w+?)_KEEP_ALIVE", key))
        }
        if (v := get("DEMOHUB_PINNED")) is not None:
            kw["pinned"] = _demo_list(v) or ()
        if (v := get("DEMOHUB_PRELOAD")) is not None:
            kw["preload"] = parse_preload(v, "DEMOHUB_PRELOAD")
        if (v := get("DEMOHUB_ALLOW_ANY_MODEL")) is not None:
            kw["allow_any_model"] = _bool(v, "DEMOHUB_ALLOW_ANY_MODEL")
        if (v := get("DEMOHUB_ALLOWED_ORIGINS")) is not None:
            kw["allowed_origins"] = tuple(o.strip() for o in v.split(",") if o.strip())
        if space := get("SPACE_HOST", "").strip():  # a Space's own page, whatever Host its proxy forwards
            kw["allowed_origins"] = kw.get("allowed_origins", ()) + (f"https://{space}",)
        if (v := get("DEMOHUB_OPERATORS")) is not None:
            kw["operators"] = tuple(u.strip() for u in v.split(",") if u.strip())
        if (v := get("DEMOHUB_ALLOWED_HOSTS")) is not None:
            kw["allowed_hosts"] = parse_hosts(v, "DEMOHUB_ALLOWED_HOSTS")
        if (v := get("DEMOHUB_TRUSTED_PROXIES")) is not None:
            kw["trusted_proxies"] = parse_networks(v, "DEMOHUB_TRUSTED_PROXIES")
        # A Space shows the app in a frame of huggingface.co: its login cookie must work there
        kw["embed"] = _bool(get("DEMOHUB_EMBED", "1" if get("SPACE_ID") else "0"), "DEMOHUB_EMBED")
        if (v := get("DEMOHUB_BACKEND")) is not None:
            kw["backend"] = _choice(v, "DEMOHUB_BACKEND", BACKENDS)
        kw["ray_address"] = get("DEMOHUB_RAY_ADDRESS", "").strip() or None
        kw["ray_config"] = get("DEMOHUB_RAY_CONFIG", "").strip() or None
        if (v := get("DEMOHUB_API_KEYS")) is not None:
            kw["api_keys"] = tuple(k.strip() for k in re.split(r"[,\n]", v) if k.strip())
        kw["models"] = {
            m.group(1).lower(): val.strip()
            for key, val in env.items()
            if (m := re.fullmatch(r"DEMOHUB_(\w+?)_MODEL", key)) and val.strip()
        }
        return cls(**kw)

    def with_flags(self, **flags) -> "Settings":
        """Apply CLI flags (already typed by argparse, except the strings parsed here)."""
        kw = dict(flags)
        if "device" in kw:
            kw["device"] = _choice(kw["device"], "--device", DEVICES)
        if "dtype" in kw:
            kw["dtype"] = _choice(kw["dtype"], "--dtype", DTYPES)
        if "weights" in kw:
            kw["weights"] = _choice(kw["weights"], "--weights", WEIGHTS)
        if "backend" in kw:
            kw["backend"] = _choice(kw["backend"], "--backend", BACKENDS)
        if "vram_budget" in kw and isinstance(kw["vram_budget"], str):
            kw["vram_budget"] = parse_bytes(kw["vram_budget"], "--vram-budget")
        if "auth" in kw:
            kw["auth"] = self.auth + tuple(p for a in kw["auth"] for p in parse_auth(a, "--auth"))
        if "auth_file" in kw:
            kw["auth"] = kw.get("auth", self.auth) + _read_auth_file(kw.pop("auth_file"), "--auth-file")
        if "demos" in kw and isinstance(kw["demos"], str):
            kw["demos"] = _demo_list(kw["demos"])
        if "keep_alive" in kw and isinstance(kw["keep_alive"], str):
            kw["keep_alive"] = parse_duration(kw["keep_alive"], "--keep-alive")
        if "pinned" in kw and isinstance(kw["pinned"], str):
            kw["pinned"] = _demo_list(kw["pinned"]) or ()
        if "cache_dir" in kw:
            kw["cache_dir"] = Path(kw["cache_dir"]).expanduser()
        if "port" in kw and not 1 <= int(kw["port"]) <= 65535:
            raise SettingsError(f"--port {kw['port']} is out of range; use a number from 1 to 65535.")
        return replace(self, **kw)

    def check_launch(self) -> None:
        """Refuse unsafe launches: a public share link needs auth unless the operator insists."""
        if self.share and not self.auth and not self.insecure_share:
            raise SettingsError(
                "--share makes the hub public: give --auth USER:PASSWORD (or DEMOHUB_AUTH / --auth-file), "
                "or pass --insecure-share if you really want a link anyone can use."
            )


def _demo_list(text: str) -> tuple[str, ...] | None:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    return names or None


def _read_auth_file(path: str, name: str) -> tuple[tuple[str, str], ...]:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"{name}: cannot read {path!r} ({e.strerror}); give a file with one USER:PASSWORD per line.") from None
    pairs = parse_auth(text, f"{name} {path}")
    if not pairs:
        raise SettingsError(f"{name}: {path!r} has no USER:PASSWORD lines.")
    return pairs
