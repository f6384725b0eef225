"""The CPU fast path: CTranslate2 int8 decoding of Llama (SmolLM2), Qwen2/Qwen3 and Mistral checkpoints.

Batch-1 decoding on a few CPU cores is bound by reading the weights once per token: CTranslate2 keeps them as int8
and runs its own fused kernels (measured on 2 vCPUs: SmolLM2-360M ~4x transformers' fp32 `generate`, see the README
table). The checkpoint is converted once, at its first load, with CTranslate2's own converter, into the hub's cache
folder, keyed by model, revision (or the local files' size and time) and CTranslate2 version; the folder also keeps
the model's tokenizer and configs, so later loads read nothing else and build no torch model at all.

Prompts are rendered and fitted by engine.py exactly as on the transformers path (same chat template, same
tokenizer); `CT2Decoder.submit` streams the generated ids into the same `TextIteratorStreamer`, honours the stop
flag at the next token, and uses the same sampling settings (temperature 0 = greedy, top-k, top-p, repetition
penalty, seed). GGUF files and other architectures keep the transformers path. Never imports gradio.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from demos.llm_chat.engine import Engine, GenParams, Run
from hub import loadtimes
from hub.atomic import partial_name, replacing_folder

log = logging.getLogger("demohub")

SUPPORTED = ("llama", "qwen2", "qwen3", "mistral")  # model_type values CTranslate2's converter handles
QUANTIZATION = "int8"


def version() -> str:
    import ctranslate2

    return ctranslate2.__version__


def auto_threads() -> int:
    """All the CPUs this process may use, at most 4 (CTranslate2's own default). Batch-1 decoding reads every weight
    once per token; on a quiet 2-vCPU AMD EPYC SmolLM2-360M int8 decoded at 22-23.6 tokens/s on two threads and
    18-19 on one (2026-12-07). With a busy loop on the other core, two threads fell to 16 and one held 18: an
    operator whose hub shares a small machine with other work sets `DEMOHUB_LLM_CHAT_CT2_THREADS=1`."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _random_config(weights) -> str:
    """The architecture config a random model is built from (configs.CONFIGS key)."""
    from demos.llm_chat.configs import guess_config

    return weights.choice.options.get("config") or guess_config(weights.choice.id)


def _generator(folder: Path, threads: int):
    import ctranslate2

    return ctranslate2.Generator(str(folder), device="cpu", compute_type=QUANTIZATION, inter_threads=1,
                                 intra_threads=threads)


def model_type(weights) -> str:
    """The checkpoint's architecture (config.json's model_type) without loading it; "" when unknown."""
    if weights.is_random:
        from demos.llm_chat.configs import CONFIGS

        return CONFIGS[_random_config(weights)]["model_type"]
    path = Path(weights.path)
    if not path.is_dir() or not (path / "config.json").is_file():
        return ""  # a .gguf file (or nothing usable): the transformers path reads it
    try:
        return str(json.loads((path / "config.json").read_text()).get("model_type", ""))
    except (OSError, ValueError):
        return ""


def wanted(weights, device: str, options) -> bool:
    """Whether this load takes the CTranslate2 path: on the CPU, the option on, a supported architecture."""
    if device != "cpu" or not getattr(options, "ctranslate2", False) or model_type(weights) not in SUPPORTED:
        return False
    if importlib.util.find_spec("ctranslate2") is None:
        log.warning("CTranslate2 is not installed: the chat model runs on transformers (slower on a CPU).")
        return False
    return True


def checkpoint_key(weights) -> str:
    """The converted model's folder name: model and revision, or a local folder's files' names, sizes and times."""
    choice = weights.choice
    if weights.is_random:
        return f"random-{_random_config(weights)}"
    if choice.source == "hf" and choice.revision:
        return f"{choice.id.replace('/', '--')}@{choice.revision[:12]}"
    path = Path(weights.path)  # a local folder or an unpinned repo
    state = sorted((f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in path.iterdir() if f.is_file())
    return f"{path.name}-{hashlib.sha256(repr(state).encode()).hexdigest()[:12]}"


def folder_for(weights) -> Path:
    """Where the converted model lives: one folder per model, revision (or local files' state) and version."""
    return Path(weights.cache_dir) / "native" / "llm_chat" / f"ct2-{version()}-{QUANTIZATION}" / checkpoint_key(weights)


@contextmanager
def source_folder(weights, scratch: Path):
    """The checkpoint folder to convert from: the weights' own, or (random weights) the model built from its config
    and saved to `scratch`, removed afterwards."""
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        if weights.is_random:
            import torch

            from demos.llm_chat.configs import random_model

            model, tok = random_model(_random_config(weights), torch.float32)
            model.save_pretrained(scratch)
            tok.save_pretrained(scratch)
            del model
        yield Path(weights.path) if not weights.is_random else scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def keep_small_files(source: Path, hf: Path) -> None:
    """The tokenizer, configs and chat template (the small files) into `hf`, for later loads."""
    hf.mkdir()
    for f in source.iterdir():
        if f.is_file() and f.suffix in (".json", ".txt", ".model", ".jinja") and f.stat().st_size < 50e6:
            shutil.copy2(f, hf / f.name)


def convert(weights, folder: Path) -> None:
    """Convert the checkpoint (random: built, then saved) into `folder`, atomically, with its tokenizer and
    configs under folder/hf."""
    from ctranslate2.converters import TransformersConverter
    from tqdm.auto import tqdm

    scratch = partial_name(folder).with_name(partial_name(folder).name + "-source")  # random weights are saved here
    with tqdm(total=2, desc=f"Converting {weights.choice.display} to CTranslate2 {QUANTIZATION} (once)") as bar, \
            replacing_folder(folder) as tmp, source_folder(weights, scratch) as source:
        bar.update(1)
        start = time.perf_counter()
        TransformersConverter(str(source), low_cpu_mem_usage=True, trust_remote_code=False).convert(
            str(tmp), quantization=QUANTIZATION, force=True)
        keep_small_files(source, tmp / "hf")
        config = json.loads((tmp / "config.json").read_text())
        if not config.get("bos_token"):  # tokenizers without a BOS token (Qwen2, the offline one): CT2 needs a string
            config["bos_token"] = config.get("eos_token") or "<|endoftext|>"
            (tmp / "config.json").write_text(json.dumps(config, indent=1))
        bar.update(1)
    log.info("Converted %s to CTranslate2 %s in %.1f s.", weights.choice.display, QUANTIZATION,
             time.perf_counter() - start)


def engine_for(weights, folder: Path, weights_file: Path, options, notes: list[str], dtype: str,
               weights_format: str) -> Engine:
    """The Engine of a converted model (no torch model: `engine.fast` decodes), its tokenizer and configs read from
    folder/hf."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from demos.llm_chat.engine import chat_template_or_chatml, context_for, eos_ids

    hf = folder / "hf"
    with loadtimes.stage("build"):
        tok = AutoTokenizer.from_pretrained(hf, trust_remote_code=False)
        config = AutoConfig.from_pretrained(hf, trust_remote_code=False)
        try:
            gen_config = GenerationConfig.from_pretrained(hf)
        except OSError:  # no generation_config.json: the model config's ids
            gen_config = GenerationConfig.from_model_config(config)
    chat_template_or_chatml(tok, notes)
    vocab = int(config.vocab_size)
    return Engine(None, tok, "cpu", dtype, context_for(config, "cpu", options), eos_ids(gen_config, config, tok),
                  weights.choice.display, ignore_eos=bool(weights.choice.options.get("ignore_eos")),
                  vocab_limit=len(tok) if weights.is_random and len(tok) < vocab else None, notes=tuple(notes),
                  weights_format=weights_format, nbytes=weights_file.stat().st_size,
                  max_prompt_tokens=int(options.max_prompt_tokens))


def load(weights, options, notes: list[str]) -> Engine:
    """An Engine whose decoding runs on CTranslate2 (converting the checkpoint first if this is its first load)."""
    with loadtimes.stage("import"):
        import ctranslate2  # noqa: F401
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig  # noqa: F401

    folder = folder_for(weights)
    if not (folder / "model.bin").is_file():
        with loadtimes.stage("convert"):
            convert(weights, folder)
    engine = engine_for(weights, folder, folder / "model.bin", options, notes, QUANTIZATION,
                        f"int8 (CTranslate2 {version()})")
    threads = options.ct2_threads or auto_threads()
    loadtimes.read_files([folder / "model.bin"])
    with loadtimes.stage("build"):
        generator = _generator(folder, threads)
    engine.fast = CT2Decoder(generator, engine, folder, threads)
    return engine


class CT2Decoder:
    """Streams tokens from a `ctranslate2.Generator` into the engine's streamer (the engine.fast interface)."""

    def __init__(self, generator, engine: Engine, folder: Path, threads: int):
        self.generator, self.engine, self.folder, self.threads = generator, engine, folder, threads

    def _seeded(self, seed: int):
        """A generator whose sampling starts from `seed`: CTranslate2 seeds each worker thread's random generator
        once, when that thread first samples, so a seeded request gets a fresh generator (its own worker thread;
        it reloads the int8 weights from the cache folder) instead of the long-lived one."""
        import ctranslate2

        ctranslate2.set_random_seed(seed % 2**32)
        return _generator(self.folder, self.threads)

    def usable(self, total_len: int) -> bool:
        return self.generator is not None

    def submit(self, ids, params: GenParams, max_new: int, streamer, run: Run) -> None:
        threading.Thread(target=self._decode, args=(ids, params, max_new, streamer, run), name="llm-ct2-decode",
                         daemon=True).start()

    def close(self) -> None:
        if self.generator is not None:
            self.generator.unload_model()
        self.generator = None

    def _options(self, params: GenParams, max_new: int) -> dict:
        e = self.engine
        kw = dict(max_length=max_new, repetition_penalty=params.repetition_penalty,
                  end_token=[] if e.ignore_eos else list(e.eos_ids) or None)
        if params.temperature > 0:
            kw.update(sampling_temperature=params.temperature, sampling_topk=params.top_k or 0,
                      sampling_topp=params.top_p)
        else:
            kw.update(sampling_topk=1)
        if params.min_new_tokens:
            kw["min_length"] = min(params.min_new_tokens, max_new)
        return kw

    def _decode(self, ids, params: GenParams, max_new: int, streamer, run: Run) -> None:
        import torch

        e = self.engine
        seeded = params.seed is not None and params.temperature > 0
        generator = None
        try:
            # CTranslate2 reads the whole prompt in one call that cannot be interrupted: a stop that came while the
            # request waited is honoured before it starts, and `cpu_context` keeps that one call short
            if run.stop.is_set():
                return
            generator = self._seeded(params.seed) if seeded else self.generator
            streamer.put(ids.cpu())  # the streamer skips the prompt it is given first
            tokens = e.tokenizer.convert_ids_to_tokens(ids[0].tolist())
            for step in generator.generate_tokens(tokens, **self._options(params, max_new)):
                if run.t_first is None:
                    run.t_first = time.perf_counter()
                run.new_tokens += 1  # the end token counts, as transformers counts it
                if step.token_id in e.eos_ids and not e.ignore_eos:
                    run.hit_eos = True
                    break
                # random models emit ids beyond their offline tokenizer's: shown as one it knows (random text
                # either way; the transformers path masks them instead)
                token = step.token_id if e.vocab_limit is None else step.token_id % e.vocab_limit
                streamer.put(torch.tensor([token]))
                if run.stop.is_set():
                    break
        except BaseException as err:  # handed to the request thread, which re-raises it
            run.error = err
        finally:
            if seeded and generator is not None:
                generator.unload_model()
            streamer.end()
            run.finished.set()
