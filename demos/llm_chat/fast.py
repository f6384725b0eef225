"""The CUDA fast path: batch-1 decoding with a static KV cache and a one-token step replayed as a CUDA graph."""

from __future__ import annotations

import logging
import queue
import threading
import time

from demos.llm_chat.engine import Engine, GenParams, Run, mask_vocab

log = logging.getLogger("demohub")


class GraphDecoder:
    """Batch-1 decoding on CUDA: StaticCache + a one-token step compiled with mode="reduce-overhead" (CUDA graphs).

    Everything runs on one dedicated thread: the compile/warm-up right after load, then every request's decode
    (inductor's CUDA-graph trees are thread-local, so a graph recorded here is replayed only here). Until the
    warm-up finished — or if it failed (`ready` is set then too, with `error`) — `usable()` is False and requests
    take the eager `generate` path.
    """

    def __init__(self, engine: Engine, max_len: int):
        import torch
        from transformers import StaticCache

        self.engine, self.max_len = engine, max_len
        self.cache = StaticCache(config=engine.model.config, max_cache_len=max_len)
        self.ready, self.error = threading.Event(), ""
        self.jobs: queue.Queue = queue.Queue()
        self.step = torch.compile(self._forward_one, mode="reduce-overhead", fullgraph=True)
        self.thread = threading.Thread(target=self._serve, name="llm-cuda-graph-decoder", daemon=True)
        self.thread.start()

    def usable(self, total_len: int) -> bool:
        return self.ready.is_set() and not self.error and total_len <= self.max_len

    def submit(self, ids, params: GenParams, max_new: int, streamer, run: Run) -> None:
        self.jobs.put((ids, params, max_new, streamer, run))

    def close(self) -> None:
        self.jobs.put(None)

    def _forward_one(self, token, position):
        out = self.engine.model(input_ids=token, position_ids=position.unsqueeze(0), cache_position=position,
                                past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1, :]

    def _serve(self) -> None:
        import torch

        try:
            t0 = time.perf_counter()
            warm = torch.tensor([[1] * 16], device=self.engine.device)
            for _ in range(3):  # compile, record the graph, replay it once
                self._decode(warm, GenParams(temperature=0.0, repetition_penalty=1.0), 8, None, Run(threading.Event()))
            torch.cuda.synchronize()
            log.info("llm_chat: CUDA-graph decoder ready in %.1fs", time.perf_counter() - t0)
            self.ready.set()
        except Exception as e:  # keep serving with eager generate; the reason is logged and kept
            self.error = f"{type(e).__name__}: {e}"
            log.exception("llm_chat: CUDA-graph decoder unavailable, using plain generate")
            self.ready.set()  # the warm-up is over (failed): whoever waits for it wakes; `usable()` stays False
            return
        while (job := self.jobs.get()) is not None:
            ids, params, max_new, streamer, run = job
            try:
                self._decode(ids, params, max_new, streamer, run)
            except BaseException as e:
                run.error = e
                streamer.end()
            finally:
                run.finished.set()

    def _processors(self, params: GenParams):
        """The logits processors `generate` would apply for `params`, in its order."""
        from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                  TopKLogitsWarper, TopPLogitsWarper)

        procs = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if self.engine.vocab_limit:
            procs.append(mask_vocab(self.engine.vocab_limit))
        if params.temperature > 0:
            procs.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k:
                procs.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                procs.append(TopPLogitsWarper(params.top_p))
        return procs

    def _prefill(self, ids, run: Run):
        """The last position's logits after reading the prompt into the static cache, PREFILL_CHUNK tokens per
        forward pass with the stop flag read before each (a stopped run returns None within one chunk)."""
        import torch

        from demos.llm_chat import engine as L

        n, dev, logits = ids.shape[1], self.engine.device, None
        for start in range(0, n, L.PREFILL_CHUNK):
            if run.stop.is_set():
                return None
            end = min(n, start + L.PREFILL_CHUNK)
            logits = self.engine.model(input_ids=ids[:, start:end], cache_position=torch.arange(start, end, device=dev),
                                       past_key_values=self.cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]
        return logits

    def _decode(self, ids, params: GenParams, max_new: int, streamer, run: Run) -> None:
        import torch

        dev, n = self.engine.device, ids.shape[1]
        procs = self._processors(params)
        sample = params.temperature > 0
        seq = torch.zeros((1, n + max_new), dtype=torch.long, device=dev)
        seq[:, :n] = ids
        eos = torch.tensor(self.engine.eos_ids, device=dev) if self.engine.eos_ids else None
        min_new = max_new if self.engine.ignore_eos else params.min_new_tokens
        if streamer is not None:  # as `generate` does: the streamer (skip_prompt=True) drops this first put
            streamer.put(ids.cpu())
        with torch.inference_mode():  # the cache's tensors are created in inference mode: reset them there too
            self.cache.reset()
            logits = self._prefill(ids, run)
            for i in range(0 if logits is None else max_new):  # None: stopped while reading the prompt
                scores = procs(seq[:, : n + i], logits.float())
                if eos is not None and i < min_new:
                    scores[:, eos] = -float("inf")
                nxt = torch.multinomial(scores.softmax(-1), 1) if sample else scores.argmax(-1, keepdim=True)
                seq[:, n + i] = nxt[:, 0]
                token = int(nxt.item())
                run.new_tokens = i + 1
                if run.t_first is None:
                    run.t_first = time.perf_counter()
                if streamer is not None:
                    streamer.put(nxt[0].cpu())
                if token in self.engine.eos_ids and i >= min_new:
                    run.hit_eos = True
                    break
                if run.stop.is_set() or i + 1 == max_new:
                    break
                torch.compiler.cudagraph_mark_step_begin()
                logits = self.step(nxt, torch.tensor([n + i], device=dev)).clone()
        if streamer is not None:
            streamer.end()
