"""A CPU decoder through OpenVINO GenAI: the checkpoint exported once as a Q8_0 GGUF file (gguf_export.py), read by
GenAI's own GGUF reader and run by its LLM pipeline (issue #35: chat at >= 20 tokens/s on any x86 CPU with AVX2).

Measured on a 2-vCPU AMD EPYC with AVX2 only (no AVX-512, no VNNI; 2026-12-07, quiet; README): the SmolLM2-360M
architecture decoded at 27.6 tokens/s through the hub against CTranslate2 int8's 13.2 in the same run, and on the
real SmolLM2-135M it matched transformers fp32's greedy next token at 106 of 107 positions (CTranslate2 int8: 92.8 %).
It is the default CPU path for the architectures it exports (`DEMOHUB_LLM_CHAT_OPENVINO_GENAI=0` turns it off);
the others, and a checkpoint it fails to load, go on to ct2.py. An operator's .gguf file (Llama, Qwen2, Qwen3 in
F16 or Q8_0) is read as it is, where transformers would dequantize it to fp32: only its tokenizer and configs are
saved once into the cache folder. 4-bit files stay with transformers (READS says why).

The export is keyed like CTranslate2's conversion (model and revision, or a local folder's files) and the GenAI
version, made once into the hub's cache folder, atomically, with the tokenizer and configs kept beside it; prompts
are rendered and fitted by engine.py as on every other path and handed over as token ids, so GenAI applies no chat
template of its own. `GenAIDecoder` streams the ids into the engine's streamer, stops at the next token when the
work's stop flag is set, and maps the sampling settings (temperature 0 = greedy, top-k, top-p, repetition penalty,
seed). Never imports gradio.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from pathlib import Path

from demos.llm_chat import ct2, gguf_cache, gguf_export
from demos.llm_chat.gguf_file import gguf_header
from demos.llm_chat.engine import Engine, GenParams, Run
from hub import loadtimes
from hub.atomic import partial_name, replacing_folder

log = logging.getLogger("demohub")

SUPPORTED = gguf_export.ARCHITECTURES
FILE = "model-q8_0.gguf"
GGUF_ARCHS = set(gguf_export.GGUF_ARCH.values())  # the GGUF architectures GenAI builds a model for (as exported)
# the GGUF file types run as they are: GenAI's reader takes Q4_0 and Q4_1 too, but on the packaged SmolLM2-135M Q4_1
# file its greedy next token was transformers' (the same file, dequantized exactly) at only 78 of 107 positions
# (2026-12-08; with dynamic quantization and an f32 KV cache alike), against 106 of 107 for a Q8_0 file: 4-bit files
# stay with transformers
READS = ("F32", "F16", "Q8_0")


def version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("openvino-genai")


def gguf_source(weights) -> Path | None:
    """The operator's .gguf file when the weights are one: GenAI reads it as it is (no export, its own quantization)."""
    if weights.is_random or weights.path is None:
        return None
    path = Path(weights.path)
    return path if path.is_file() and path.suffix.lower() == ".gguf" else None


def wanted(weights, device: str, options) -> bool:
    """Whether this load takes the GenAI path: on the CPU, the option on (the default), an architecture it exports,
    or a .gguf file of an architecture and quantization its reader takes."""
    if device != "cpu" or not getattr(options, "openvino_genai", False):
        return False
    gguf = gguf_source(weights)
    if gguf is None and ct2.model_type(weights) not in SUPPORTED:
        return False
    if gguf is not None:
        arch, quant = gguf_header(gguf)
        if arch not in GGUF_ARCHS or quant not in READS:
            return False  # a Q4_1 or Q4_K_M file, say: transformers dequantizes it
    if importlib.util.find_spec("openvino_genai") is None:
        log.warning("openvino-genai is not installed (pip install 'demohub[openvino]'): the chat model runs on "
                    "CTranslate2 or transformers.")
        return False
    return True


def folder_for(weights) -> Path:
    root = Path(weights.cache_dir) / "native" / "llm_chat"
    if gguf_source(weights) is not None:  # only the tokenizer and configs: the weights stay in the operator's file
        return root / f"ovgenai-{version()}-gguf" / gguf_cache.file_key(weights)
    return root / f"ovgenai-{version()}-q8_0" / ct2.checkpoint_key(weights)


def convert(weights, folder: Path) -> None:
    """Export the checkpoint (random: built, then saved) into folder/FILE, atomically, with its tokenizer and
    configs under folder/hf; for a .gguf file, only the tokenizer and configs that transformers reads from it."""
    start = time.perf_counter()
    gguf = gguf_source(weights)
    if gguf is not None:
        with replacing_folder(folder) as tmp:
            _gguf_configs(gguf, tmp / "hf")
        log.info("Read %s's tokenizer for OpenVINO GenAI in %.1f s.", weights.choice.display,
                 time.perf_counter() - start)
        return
    scratch = partial_name(folder).with_name(partial_name(folder).name + "-source")
    with replacing_folder(folder) as tmp, ct2.source_folder(weights, scratch) as source:
        gguf_export.export(source, tmp / FILE, name=weights.choice.display)
        ct2.keep_small_files(source, tmp / "hf")
    log.info("Exported %s as a Q8_0 GGUF for OpenVINO GenAI in %.1f s.", weights.choice.display,
             time.perf_counter() - start)


def _gguf_configs(gguf: Path, hf: Path) -> None:
    """The tokenizer (with its chat template) and configs of a .gguf file, as transformers reads them from its
    metadata, saved into `hf` once: the engine renders prompts and decodes ids with them, as on every path."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
    tok.save_pretrained(hf)
    config.save_pretrained(hf)
    GenerationConfig.from_model_config(config).save_pretrained(hf)


def load(weights, options, notes: list[str]) -> Engine:
    """An Engine whose decoding runs on OpenVINO GenAI (exporting the checkpoint first if this is its first load)."""
    with loadtimes.stage("import"):
        import openvino_genai

    gguf = gguf_source(weights)
    folder = folder_for(weights)
    if not (folder / ("hf/config.json" if gguf else FILE)).is_file():  # made whole or not at all (replacing_folder)
        with loadtimes.stage("convert"):
            convert(weights, folder)
    model = gguf or folder / FILE
    quant = gguf_header(gguf)[1] if gguf else "Q8_0"
    engine = ct2.engine_for(weights, folder, model, options, notes, quant.lower(),
                            f"{quant}{' GGUF' if gguf else ''} (OpenVINO GenAI {version()})")
    threads = options.ct2_threads or ct2.auto_threads()
    loadtimes.read_files([model])
    with loadtimes.stage("build"):
        pipeline = openvino_genai.LLMPipeline(str(model), "CPU", INFERENCE_NUM_THREADS=threads)
    engine.fast = GenAIDecoder(pipeline, engine)
    return engine


class GenAIDecoder:
    """Streams tokens from an `openvino_genai.LLMPipeline` into the engine's streamer (the engine.fast interface)."""

    def __init__(self, pipeline, engine: Engine):
        self.pipeline, self.engine = pipeline, engine

    def usable(self, total_len: int) -> bool:
        return self.pipeline is not None

    def submit(self, ids, params: GenParams, max_new: int, streamer, run: Run) -> None:
        threading.Thread(target=self._decode, args=(ids, params, max_new, streamer, run), name="llm-ovgenai-decode",
                         daemon=True).start()  # pragma: no mutate (a daemon only matters when the interpreter exits)

    def close(self) -> None:
        self.pipeline = None

    def config(self, params: GenParams, max_new: int):
        import openvino_genai

        e = self.engine
        c = openvino_genai.GenerationConfig()
        c.max_new_tokens = max_new
        c.min_new_tokens = min(params.min_new_tokens or 0, max_new)
        c.repetition_penalty = params.repetition_penalty
        c.ignore_eos = e.ignore_eos
        if e.eos_ids:
            c.eos_token_id = e.eos_ids[0]
            c.stop_token_ids = set(e.eos_ids)
        c.do_sample = params.temperature > 0
        if c.do_sample:
            c.temperature = params.temperature
            c.top_p = params.top_p
            if params.top_k:
                c.top_k = params.top_k
            if params.seed is not None:
                c.rng_seed = params.seed  # 0 to 2**63 - 1 (check_params): GenAI's seed is 64-bit
        return c

    def _decode(self, ids, params: GenParams, max_new: int, streamer, run: Run) -> None:
        import numpy as np
        import openvino
        import openvino_genai
        import torch

        e = self.engine

        class Into(openvino_genai.StreamerBase):
            """Each new id into the engine's streamer; STOP at the next token once the work's stop flag is set."""

            def write(self, token):
                for t in (token if isinstance(token, (list, tuple)) else [token]):
                    t = int(t)
                    if run.t_first is None:
                        run.t_first = time.perf_counter()
                    run.new_tokens += 1
                    if t in e.eos_ids and not e.ignore_eos:
                        run.hit_eos = True
                        continue
                    streamer.put(torch.tensor([t if e.vocab_limit is None else t % e.vocab_limit]))
                stopped = run.stop.is_set()
                return openvino_genai.StreamingStatus.STOP if stopped else openvino_genai.StreamingStatus.RUNNING

            def end(self):
                pass

        try:
            if run.stop.is_set():  # a stop that came while the request waited: the prompt is not read at all
                return
            streamer.put(ids.cpu())  # the streamer skips the prompt it is given first
            prompt = openvino.Tensor(np.ascontiguousarray(ids.cpu().numpy().astype(np.int64)))
            # GenAI streams the end token too (counted in `write`, as transformers counts it) and applies no chat
            # template to ids: the prompt is engine.py's, already rendered
            self.pipeline.generate(prompt, self.config(params, max_new), Into())
        except BaseException as err:  # handed to the request thread, which re-raises it
            run.error = err
        finally:
            streamer.end()
            run.finished.set()
