"""The one request path: ctx.call and ctx.stream run a named work method on a typed request, check the allow-list,
hold the lease, recover from out-of-memory (a stream only before its first item), show the CPU-fallback warning and
stop the work when the consumer goes away; demos reach models no other way."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from hub.context import DemoContext
from hub.errors import UserError
from hub.work import Progress, Work
from tests import WAIT_S
from tests.test_models import manager, spec, loader

ROOT = Path(__file__).resolve().parents[1]
OOM = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")


WORK = Work()


@dataclass(frozen=True)
class Count:
    n: int = 3
    oom_on: tuple = ()  # devices where the work runs out of memory before its first item
    oom_after_first: bool = False
    bug: bool = False


SEEN: list = []


@WORK.method(Count)
def count(lease, req: Count, job):
    SEEN.append(lease.device)
    if req.bug:
        raise RuntimeError("a bug")
    if lease.device in req.oom_on:
        raise OOM
    for i in range(req.n):
        if job.stop.is_set():
            return
        yield i
        if req.oom_after_first:
            raise OOM


class Tick(Progress):
    pass


@WORK.method(Count)
def ticks_then_count(lease, req: Count, job):
    """Two progress items, then (out of memory on `oom_on` devices) the work."""
    SEEN.append(lease.device)
    yield Tick()
    yield Tick()
    if lease.device in req.oom_on:
        raise OOM
    yield req.n


@WORK.method(Count)
def total(lease, req: Count, job):
    return sum(range(req.n))


def ctx_for(settings, budget=10_000, **kw):
    demos = {"a": (spec("a"), loader(100), WORK), "b": (spec("b"), loader(100), WORK)}
    m = manager(settings, demos, budget=budget)
    SEEN.clear()
    return DemoContext(m, replace(settings, **kw), spec("a")), m


def test_stream_holds_the_lease_until_the_method_returns_or_the_consumer_closes(settings):
    ctx, m = ctx_for(settings)
    items = ctx.stream("count", Count(3))
    assert next(items) == 0
    assert m.status()[0]["in_use"] == 1
    assert list(items) == [1, 2]
    assert m.status()[0]["in_use"] == 0  # the end is read after the lease is released
    items = ctx.stream("count", Count(10_000))
    next(items)
    items.close()  # a client that goes away: the method's stop is set, it returns, the lease goes
    assert items.finished.wait(WAIT_S)
    assert m.status()[0]["in_use"] == 0


def test_a_dropped_stream_stops_its_work(settings):
    """A gradio handler's generator closed on Stop drops the stream without closing it: the work stops all the same."""
    ctx, m = ctx_for(settings)
    items = ctx.stream("count", Count(10**9))
    next(items)
    finished = items.finished
    del items
    assert finished.wait(WAIT_S)
    assert m.status()[0]["in_use"] == 0


def test_call_returns_a_plain_methods_result_after_the_lease_is_released(settings):
    ctx, m = ctx_for(settings)
    assert ctx.call("total", Count(4)) == 6
    assert m.status()[0]["in_use"] == 0


def test_a_stop_event_set_before_the_result_stops_the_call_with_a_sentence(settings):
    ctx, _ = ctx_for(settings)
    stop = threading.Event()
    stop.set()
    with pytest.raises(UserError, match="stopped before it finished"):
        ctx.call("count", Count(10**9), stop=stop)


def test_stream_out_of_memory_before_the_first_item_evicts_retries_then_runs_on_cpu(settings):
    ctx, m = ctx_for(settings)
    with m.use("b"):
        pass
    with pytest.warns(UserWarning, match="CPU"):  # the fallback warning reaches the user (gr.Warning)
        assert list(ctx.stream("count", Count(2, oom_on=("cuda",)))) == [0, 1]
    assert SEEN == ["cuda", "cuda", "cpu"]
    assert "b" not in {r["demo"] for r in m.status()}  # evicted on the first out-of-memory


def test_out_of_memory_after_only_progress_items_is_still_retried(settings):
    """A denoising run that said "Step 0" and then ran out of memory is retried, as a run that said nothing."""
    ctx, m = ctx_for(settings)
    with pytest.warns(UserWarning, match="CPU"):
        items = list(ctx.stream("ticks_then_count", Count(7, oom_on=("cuda",))))
    assert SEEN == ["cuda", "cuda", "cpu"] and items[-1] == 7 and all(isinstance(i, Tick) for i in items[:-1])


def test_stream_out_of_memory_after_the_first_item_ends_with_a_sentence_and_frees_the_lease(settings):
    ctx, m = ctx_for(settings)
    items = ctx.stream("count", Count(3, oom_after_first=True))
    assert next(items) == 0
    with pytest.raises(UserError, match="ran out of memory part-way"):
        next(items)
    assert m.status()[0]["in_use"] == 0


def test_other_errors_in_a_stream_are_not_turned_into_retries(settings):
    ctx, m = ctx_for(settings)
    with pytest.raises(RuntimeError, match="a bug"):
        list(ctx.stream("count", Count(bug=True)))
    assert SEEN == ["cuda"]


def test_a_request_of_the_wrong_type_or_an_unknown_method_is_refused(settings):
    ctx, _ = ctx_for(settings)
    with pytest.raises(TypeError, match="takes a Count"):
        ctx.call("total", {"n": 3})
    with pytest.raises(LookupError, match="no work method 'nope'"):
        ctx.call("nope", Count())


@pytest.mark.parametrize("how", ["call", "stream"])
def test_a_public_hub_refuses_unlisted_models_on_call_and_stream(settings, how):
    for public in (dict(share=True, auth=(("u", "p"),)), dict(host="0.0.0.0")):
        ctx, m = ctx_for(settings, **public)
        run = (lambda model: ctx.call("total", Count(2), model)) if how == "call" else \
            (lambda model: list(ctx.stream("count", Count(2), model)))
        for bad in ("evil/repo", "/etc/passwd", "../../x"):
            with pytest.raises(UserError, match="not one of this hub's"):
                run(bad)
        with pytest.raises(UserError, match="by its name"):
            run(["m"])
        assert SEEN == [] and m.status() == []  # refused before anything loaded
        run("m2")
        assert len(SEEN) == (1 if how == "stream" else 0) and m.status()[0]["model"] == "m2"


def test_any_model_only_when_the_operator_opts_in_on_a_hub_only_this_machine_reaches(settings):
    ctx, _ = ctx_for(settings)
    assert ctx.local_only
    for other in ("some/other-repo", "/root/.ssh"):  # a web page the operator visits could send these
        with pytest.raises(UserError, match="DEMOHUB_ALLOW_ANY_MODEL=1"):
            ctx.check_model(other)
    opted_in, _ = ctx_for(settings, allow_any_model=True)
    opted_in.check_model("some/other-repo")
    public, _ = ctx_for(settings, allow_any_model=True, host="0.0.0.0")  # never on a hub others reach
    with pytest.raises(UserError, match="not one of this hub's"):
        public.check_model("some/other-repo")


def test_demos_reach_models_only_through_ctx_call_and_ctx_stream():
    """No demo touches the manager: the allow-list, leases and OOM recovery hold on every path."""
    offenders = []
    for path in sorted((ROOT / "demos").rglob("*.py")):
        text = path.read_text()
        for pattern in (r"\bctx\._?manager\b", r"\bModelManager\b", r"\.manager\.(use|run|stream|leased)\(",
                        r"\bctx\.run\(", r"call_until_gone",
                        r"(os\.environ|getenv)[^\n]*DEMOHUB_", r"demo_option|demo_flag"):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert not offenders, offenders


def test_hub_has_no_per_demo_branches():
    """No string in hub/ code (docstrings aside) names a demo or its library: per-demo behaviour lives in demos/."""
    import ast

    from hub.registry import DEMOS

    names = set(DEMOS) | {"whisper", "yolo", "clip", "sam", "llm", "diffusion", "ultralytics"}
    offenders = []
    for path in sorted((ROOT / "hub").rglob("*.py")):
        if path.name in ("registry.py", "ultralytics_env.py"):  # the one list of demos; the one library setup
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if node.value.lower() in names:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not offenders, offenders


def test_hidden_test_models_are_not_for_visitors_of_a_public_hub(settings):
    from hub.spec import DemoSpec, ModelChoice

    hidden = DemoSpec(name="a", title="A", description="", api_names=("a",), default_model={"cpu": "m"},
                      models=(ModelChoice("m", "random"), ModelChoice("tiny-random", "random", hidden=True)))
    m = manager(settings, {"a": (hidden, loader(100))})
    ctx = DemoContext(m, replace(settings, host="0.0.0.0"), hidden)
    with pytest.raises(UserError, match="not one of this hub's"):
        ctx.check_model("tiny-random")
    operator_chose_it = DemoContext(manager(replace(settings, models={"a": "tiny-random"}), {"a": (hidden, loader(100))}),
                                    replace(settings, host="0.0.0.0", models={"a": "tiny-random"}), hidden)
    operator_chose_it.check_model("tiny-random")


def test_an_async_consumer_reads_a_stream_without_holding_a_thread_and_closing_it_stops_the_work(settings):
    """/v1 routes `async for` over a stream: the event loop is woken by the worker, no thread pool thread waits."""
    import asyncio

    import anyio.to_thread

    ctx, m = ctx_for(settings)

    async def main():
        waiting_threads = anyio.to_thread.current_default_thread_limiter().borrowed_tokens
        items = ctx.stream("count", Count(10**9, ))
        got = []
        async for i in items:
            got.append(i)
            assert anyio.to_thread.current_default_thread_limiter().borrowed_tokens == waiting_threads
            if len(got) == 5:
                break
        items.close()
        return got, items.finished

    got, finished = asyncio.run(main())
    assert got == [0, 1, 2, 3, 4]
    assert finished.wait(WAIT_S) and m.status()[0]["in_use"] == 0
