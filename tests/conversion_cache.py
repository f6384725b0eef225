"""One conversion per test run: the YOLO -> OpenVINO IR and chat model -> CTranslate2 int8 / GenAI GGUF folders, and a
real GGUF's dequantized copy, that a load writes into its cache folder are made once per test run and copied into
every later cache folder that asks for them.

Why: the tiny random models themselves build in 0.01-0.15 s (faster than reading them back from disk), but every
test module and many tests start from an empty cache folder, and the derived artefacts cost seconds each there:
YOLO's OpenVINO conversion took 28-45 s per fresh cache folder on the shared 2-vCPU machine (load average ~9), the
CTranslate2 conversion of a tiny random chat model ~0.9 s. The product's own path is unchanged (it still converts
once per cache folder, where a user's cache lives); only the test session shares the result between its folders.

Keys, so a copy is never of another model: OpenVINO by a sha256 of the network's own weights and layout (a YOLO built
without a seed gets its own conversion) plus the folder name the product picked (OpenVINO version, end-to-end head);
CTranslate2 by the product's folder (CTranslate2 version, quantization, random config: built from seed 0) and only
for random weights. The shared folder is under pytest's basetemp, shared by the xdist workers of the run (a file
lock makes one worker convert while the other waits). Subprocesses (Ray replicas, `bench.load_test` servers) still
convert on their own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger("demohub.tests")

_ROOT: list[Path] = []


def install(root: Path) -> None:
    """Route this process's OpenVINO and CTranslate2 conversions through the shared folder `root`."""
    from demos.llm_chat import ct2, ov_genai
    from demos.yolo_detect import openvino

    _ROOT[:] = [Path(root)]
    if not getattr(openvino.OpenVinoNet._convert, "shared", False):
        openvino.OpenVinoNet._convert = _shared_openvino(openvino.OpenVinoNet._convert)
    if not getattr(ct2.convert, "shared", False):
        ct2.convert = _shared_random("ct2", ct2.convert)
    if not getattr(ov_genai.convert, "shared", False):
        ov_genai.convert = _shared_random("genai", ov_genai.convert)
    from demos.llm_chat import gguf_cache

    if not getattr(gguf_cache.ready, "shared", False):
        gguf_cache.ready, gguf_cache.save = _shared_gguf(gguf_cache.ready, gguf_cache.save)


def net_digest(net) -> str:
    """sha256 of a torch module's layout and every tensor of its state (weights and buffers)."""
    import torch

    digest = hashlib.sha256(repr(net).encode())
    for name, tensor in net.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def _shared_openvino(convert):
    def shared_convert(self) -> None:
        dest = self.xml.parent
        entry = _ROOT[0] / "openvino" / f"{net_digest(self.net)}-{dest.name}"

        def make(into: Path) -> None:
            twin = object.__new__(type(self))
            twin.__dict__.update(self.__dict__)
            twin.xml = into / "model.xml"
            convert(twin)

        _fetch("openvino", entry, dest, make)

    shared_convert.shared = True
    return shared_convert


def _shared_random(kind: str, convert):
    """A random chat model's CTranslate2 conversion or GGUF export for OpenVINO GenAI (`kind`), made once."""
    def shared_convert(weights, folder: Path) -> None:
        if not weights.is_random:  # a real checkpoint: its key is the product's (revision or file state); keep it
            return convert(weights, folder)
        entry = _ROOT[0] / kind / f"{folder.parent.name}-{folder.name}"
        _fetch(kind, entry, Path(folder), lambda into: convert(weights, into))

    shared_convert.shared = True
    return shared_convert


def _shared_gguf(ready, save):
    """A real GGUF's dequantized copy (demos/llm_chat/gguf_cache.py, 24-56 s to make on 2 vCPUs): the first module
    that loads the packaged SmolLM2 GGUF saves it as the product does and leaves a copy here; later cache folders
    get that copy where the product would look for its own. Keyed by the product's folder (file hash or state,
    transformers version, dtype)."""

    def entry_for(folder: Path) -> Path:
        return _ROOT[0] / "gguf" / f"{folder.parent.name}-{folder.name}"

    def shared_ready(folder) -> bool:
        folder = Path(folder)
        if ready(folder):
            return True
        entry = entry_for(folder)
        if not ready(entry):
            return False
        _copy(entry, folder)
        _note("gguf", "copied", 0.0)
        return ready(folder)

    def shared_save(folder, model, tok, fmt) -> None:
        from filelock import FileLock

        save(folder, model, tok, fmt)
        folder, entry = Path(folder), entry_for(Path(folder))
        if ready(folder) and not ready(entry):
            entry.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(entry) + ".lock"):
                if not ready(entry):
                    _copy(folder, entry)
                    _note("gguf", "made", 0.0)

    shared_ready.shared = True
    return shared_ready, shared_save


def _copy(src: Path, dest: Path) -> None:
    """Copy the folder `src` to `dest` atomically (a partial copy is never seen under `dest`'s name)."""
    tmp = dest.with_name(f"{dest.name}.partial-{os.getpid()}-copy")
    shutil.rmtree(tmp, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _fetch(kind: str, entry: Path, dest: Path, make) -> None:
    """Copy `entry` into `dest` (atomically, as the product writes it), making `entry` first if no one has."""
    from filelock import FileLock

    entry.parent.mkdir(parents=True, exist_ok=True)
    seconds = entry.parent / f"{entry.name}.seconds"
    with FileLock(str(entry) + ".lock"):
        if not entry.is_dir():
            start = time.perf_counter()
            make(entry)
            seconds.write_text(f"{time.perf_counter() - start:.2f}")
            _note(kind, "made", float(seconds.read_text()))
        else:
            _note(kind, "copied", float(seconds.read_text()) if seconds.is_file() else 0.0)
    _copy(entry, dest)
    log.info("tests: %s artefact %s copied from this run's shared cache", kind, dest.name)


def _note(kind: str, what: str, seconds: float) -> None:
    """One line per conversion made or copied, in a file every worker of the run appends to (for `summary`)."""
    with open(_ROOT[0] / "events.log", "a") as f:
        f.write(f"{kind} {what} {seconds:.2f}\n")


def summary(root: Path) -> str:
    """One line for the end of the run: the conversions made, and those copied instead (with the time they took)."""
    events = root / "events.log"
    rows = [line.split() for line in events.read_text().splitlines()] if events.is_file() else []
    parts = []
    for kind in ("openvino", "ct2", "genai", "gguf"):
        made = [float(r[2]) for r in rows if r[:2] == [kind, "made"]]
        copied = [float(r[2]) for r in rows if r[:2] == [kind, "copied"]]
        if kind == "gguf" and (made or copied):  # the dequantizing is timed by the load, not here
            parts.append(f"gguf: {len(made)} dequantized copy made, {len(copied)} copied instead")
        elif made or copied:
            parts.append(f"{kind}: {len(made)} made ({sum(made):.0f} s), {len(copied)} copied instead "
                         f"(~{sum(copied):.0f} s of conversions saved)")
    return "; ".join(parts)
