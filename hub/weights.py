"""Resolve a demo's model to weights on disk: hf | path | native | random, with offline-honest errors.

- hf: `huggingface_hub.snapshot_download` into `<cache>/hf`, revision pinned by the demo's ModelChoice.
- native: the library's own downloader writes into `<cache>/native/<demo>` (never the working directory);
  here we only say where, and whether it is there when offline.
- path: a local file or folder, checked before use.
- random: no files; the demo builds the architecture with random weights.
Every file is checked before it is loaded: truncated safetensors, bad zip checkpoints, non-GGUF files and hash
mismatches raise `CorruptWeights` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from hub.errors import CorruptWeights, UserError, WeightsUnavailable
from hub.settings import Settings
from hub.spec import DemoSpec, ModelChoice

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".gguf")


@dataclass(frozen=True)
class Weights:
    """Where a model's weights are. `path` is a folder or file (None for random weights)."""

    demo: str
    choice: ModelChoice
    source: str
    path: Path | None
    cache_dir: Path

    @property
    def is_random(self) -> bool:
        return self.source == "random"

    @property
    def hf_cache(self) -> Path:
        return self.cache_dir / "hf"

    def record(self) -> dict:
        """For records people see: a local model by its readable name, never its path."""
        model = public_id(self.choice)
        return {"model": model, "source": self.source, "revision": self.choice.revision}


def hf_cache(settings: Settings) -> Path:
    return Path(settings.cache_dir) / "hf"


def cached_snapshot(cache_dir, pin: ModelChoice) -> Path | None:
    """The pinned revision's snapshot folder of `pin` (an "hf" ModelChoice) in the hub's Hugging Face cache under
    `cache_dir`, when every one of its `files` is there; None otherwise. No download, no log line."""
    if cache_dir is None or not pin.revision:
        return None
    folder = Path(cache_dir) / "hf" / f"models--{pin.id.replace('/', '--')}" / "snapshots" / str(pin.revision)
    return folder if all((folder / f).is_file() for f in pin.files or ()) and folder.is_dir() else None


def native_dir(settings: Settings, demo: str) -> Path:
    return Path(settings.cache_dir) / "native" / demo


def choice_for(spec: DemoSpec, text: str) -> ModelChoice:
    """Turn what a user named (a listed id, a local path, an HF repo id, a library name) into a ModelChoice."""
    text = (text or "").strip()
    if not text:
        raise UserError(f"No model given for {spec.title}; pick one of: {', '.join(m.id for m in spec.models)}.")
    if (known := spec.choice(text)) is not None:
        return known
    p = Path(text).expanduser()
    if p.exists():
        return ModelChoice(id=str(p), source="path", label=readable_name(p), cpu_dtype=_shared_cpu_dtype(spec))
    if text.startswith(("/", "./", "../", "~")) or text.lower().endswith(_CHECKPOINT_SUFFIXES):
        raise UserError(f"Model file or folder {text!r} does not exist; check the path ({spec.env_var}).")
    if _REPO_ID.match(text):
        return ModelChoice(id=text, source="hf", label=f"{text} (unpinned)", cpu_dtype=_shared_cpu_dtype(spec))
    native = [m for m in spec.models if m.source == "native"]
    if native:
        # an unlisted library name: the library resolves it; nothing of another listed model (its size, config) is kept
        return replace(native[0], id=text, label=text, sha256=None, files=None, options={})
    raise UserError(
        f"Unknown model {text!r} for {spec.title}: use one of {', '.join(m.id for m in spec.models)}, "
        "a Hugging Face repo id (org/name) or a local path."
    )


def _shared_cpu_dtype(spec: DemoSpec) -> str | None:
    """The CPU dtype every listed model of the demo prefers (SD and CLIP: bfloat16, used where the CPU computes it
    natively), so a local folder or an unpinned repo of the same kind runs as fast; None when they differ."""
    prefs = {m.cpu_dtype for m in spec.models if not m.hidden}
    return prefs.pop() if len(prefs) == 1 else None


_GENERIC = {"model", "models", "weights", "checkpoint", "checkpoints", "snapshot", "ct2", "main", "latest"}


def readable_name(path: Path) -> str:
    """A local model's name for people: "x.gguf (local)", "whisper-small-ct2/model (local)" for a generic folder."""
    name = path.name if path.name.lower() not in _GENERIC or not path.parent.name else f"{path.parent.name}/{path.name}"
    return f"{name} (local)"


def select(spec: DemoSpec, settings: Settings, device: str, requested: str | None = None) -> ModelChoice:
    """The model to run: the UI's pick, else the `DEMOHUB_<DEMO>_MODEL` override, else the device default.

    With `--weights random` every choice becomes architecture-true random weights (no download).
    """
    text = requested or settings.models.get(spec.name)
    choice = choice_for(spec, text) if text else spec.default_for(device)
    if settings.weights == "random" and choice.source != "random":
        # still named by its readable name, never its path
        choice = replace(choice, source="random", label=f"{choice.display} (random weights)", local=is_local(choice))
    return choice


def is_local(choice: ModelChoice) -> bool:
    """A model the operator gave as a file or folder (its id is a server path), random weights included."""
    return choice.source == "path" or choice.local


def public_id(choice: ModelChoice) -> str:
    """The id people see and may send back: a local model's readable name, else its id."""
    return choice.display if is_local(choice) else choice.id


def resolve(spec: DemoSpec, choice: ModelChoice, settings: Settings) -> Weights:
    """Find (downloading if allowed) the weights of `choice`. Raises WeightsUnavailable / CorruptWeights."""
    cache = Path(settings.cache_dir)
    if choice.source == "random":
        return Weights(spec.name, choice, "random", None, cache)
    if choice.source == "path":
        p = Path(choice.id).expanduser()
        if not p.exists():
            raise UserError(f"Model path {str(p)!r} does not exist; check {spec.env_var}.")
        verify_tree(p, choice.sha256, spec.name)
        return Weights(spec.name, choice, "path", p, cache)
    if choice.source == "native":
        folder = native_dir(settings, spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        missing = [f for f in (choice.files or ()) if not (folder / f).exists()]
        if missing and settings.offline:
            raise _offline_error(spec, choice, folder)
        for f in choice.files or ():
            if (folder / f).exists():
                verify_file(folder / f, choice.sha256, spec.name)
        return Weights(spec.name, choice, "native", folder, cache)
    return Weights(spec.name, choice, "hf", _snapshot(spec, choice, settings), cache)


def _snapshot(spec: DemoSpec, choice: ModelChoice, settings: Settings, local_only: bool | None = None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    local_only = settings.offline if local_only is None else local_only
    kwargs = dict(revision=choice.revision, cache_dir=hf_cache(settings),
                  allow_patterns=list(choice.files) if choice.files else None)
    try:
        try:  # cached already: no network round trip at all
            path = Path(snapshot_download(choice.id, local_files_only=True, **kwargs))
        except LocalEntryNotFoundError:
            if local_only:
                raise
            if (why := _unreachable()) is not None:  # fail in seconds, not after the client's retries
                raise _offline_error(spec, choice, hf_cache(settings), reason=why) from None
            path = Path(snapshot_download(choice.id, **kwargs))
    except LocalEntryNotFoundError:
        raise _offline_error(spec, choice, hf_cache(settings)) from None
    except WeightsUnavailable:  # already the sentence (unreachable endpoint)
        raise
    except Exception as e:  # network down, repo gone, disk full: say which and what to do
        raise download_error(spec, choice, hf_cache(settings), e) from None
    verify_tree(path, None, spec.name)
    pinned = [path / f for f in choice.files if Path(f).suffix in _CHECKPOINT_SUFFIXES and "*" not in f]
    if choice.sha256 and len(pinned) == 1:  # a one-file pin (TAESD, Depth Anything): its hash, at fetch and load
        verify_file(pinned[0], choice.sha256, spec.name)
    return path


def _unreachable(timeout: float = 3.0) -> str | None:
    """None if the Hugging Face endpoint accepts a TCP connection (or is reached through a proxy), else the reason."""
    import os
    import socket
    import urllib.request
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    if url.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return None  # behind a proxy a direct connection may be blocked while the download works: let it try
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"cannot reach {host}: {e.strerror or e}"
    return None


_REACH: dict = {}


def unreachable_reason(max_age: float = 60.0) -> str | None:
    """`_unreachable` with a short timeout, remembered for `max_age` seconds (pages ask on every load)."""
    import time

    now = time.monotonic()
    if _REACH and now - _REACH["at"] < max_age:
        return _REACH["why"]
    why = _unreachable(timeout=1.0)
    _REACH.update(at=now, why=why)
    return why


def _looks_offline(e: Exception) -> bool:
    names = {type(x).__name__ for x in (e, e.__cause__, e.__context__) if x is not None}
    text = str(e).lower()
    return bool(names & {"ConnectionError", "ConnectError", "OfflineModeIsEnabled", "MaxRetryError", "NameResolutionError"}) \
        or "offline" in text or "connection" in text or "name resolution" in text


def _offline_error(spec: DemoSpec, choice: ModelChoice, folder: Path, reason: str = "") -> WeightsUnavailable:
    """One sentence for visitors (no server path: the folder goes to the log for the operator)."""
    why = f"it cannot be downloaded ({reason[:200]})" if reason else "the hub is offline"
    logging.getLogger("demohub").warning("%s/%s: weights not in %s; %s", spec.name, choice.id, folder, why)
    return WeightsUnavailable(
        f"{choice.display} is not on this machine and {why}. The operator can download it where there is network "
        f"(demohub fetch {spec.name} --model {choice.id}); or pick another model."
    )


def _reason(e: BaseException) -> str:
    """The library's own words for a failed download, as plain text: its first line, without the decoration some
    libraries put in front ("❌  Download failure ...") or the wrapper urllib adds ("<urlopen error ...>")."""
    text = (str(e).strip().splitlines() or [""])[0]
    if text.startswith("<urlopen error ") and text.endswith(">"):
        text = text[len("<urlopen error "):-1]
    return text.lstrip(" \t-:*!\u274c\u26a0\ufe0f")[:200]


def download_error(spec: DemoSpec, choice: ModelChoice, folder: Path, e: BaseException) -> WeightsUnavailable:
    """The one sentence for any failed download (Hub snapshot, a library's release asset, a URL): offline is said as
    such; anything else names the library's reason, never a Python class name or a server path (both go to the
    log for the operator)."""
    if _looks_offline(e):
        return _offline_error(spec, choice, folder, reason=_reason(e))
    logging.getLogger("demohub").warning("Downloading %s for %s into %s failed", choice.id, spec.name, folder,
                                         exc_info=e)
    return WeightsUnavailable(
        f"Could not download {choice.display} for {spec.title} ({_reason(e) or 'no reason given'}). Check the model "
        f"and the connection, or download it where there is network (demohub fetch {spec.name} --model {choice.id})."
    )


def is_cached(spec: DemoSpec, choice: ModelChoice, settings: Settings) -> tuple[bool, int]:
    """(cached?, bytes on disk) without downloading anything."""
    if choice.source == "random":
        return True, 0
    if choice.source == "path":
        p = Path(choice.id)
        return p.exists(), folder_bytes(p)
    if choice.source == "native":
        folder = native_dir(settings, spec.name)
        files = [folder / f for f in (choice.files or ())]
        ok = bool(files) and all(f.exists() for f in files)
        return ok, sum(f.stat().st_size for f in files if f.exists())
    try:
        path = _snapshot(spec, choice, settings, local_only=True)
    except UserError:
        return False, 0
    return True, folder_bytes(path)


def folder_bytes(path: Path) -> int:
    path = Path(path)
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---- integrity checks ---------------------------------------------------------------------------------------


def verify_tree(path: Path, sha256: str | None, demo: str) -> None:
    """Check every checkpoint file under `path` (or `path` itself)."""
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.suffix in _CHECKPOINT_SUFFIXES]
    for f in files:
        verify_file(f, sha256 if path.is_file() else None, demo)


def verify_file(path: Path, sha256: str | None, demo: str) -> None:
    """Raise CorruptWeights if `path` is empty, truncated, not what its suffix says, or fails its pinned hash."""
    path = Path(path)
    why = _problem(path, sha256)
    if why:
        raise CorruptWeights(
            f"The weight file {path} is corrupt or incomplete ({why}). Delete it and run `demohub fetch {demo}` "
            "to download it again (or replace it with a good copy)."
        )


def _problem(path: Path, sha256: str | None) -> str:
    try:
        size = path.resolve().stat().st_size
    except OSError as e:
        return f"cannot read it: {e.strerror}"
    if size == 0:
        return "the file is empty"
    if sha256:
        if _sha256(path) != sha256.lower():
            return "its SHA-256 does not match the pinned hash"
        return ""
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(8)
        if suffix == ".safetensors":
            if len(head) < 8:
                return "no safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > 100_000_000:
                return "the safetensors header is cut off"
            try:
                header = json.loads(fh.read(n))
            except ValueError:
                return "the safetensors header is not valid JSON"
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            if 8 + n + end != size:
                return f"expected {8 + n + end} bytes, found {size}"
        elif suffix == ".gguf":
            if head[:4] != b"GGUF":
                return "it does not start with the GGUF magic bytes"
    if suffix in (".pt", ".pth", ".ckpt", ".bin") and head[:2] == b"PK" and not zipfile.is_zipfile(path):
        return "the checkpoint archive is cut off"
    if suffix in (".pt", ".pth", ".ckpt") and head[:2] != b"PK" and head[:1] != b"\x80":
        return "it is not a PyTorch checkpoint"
    return ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
