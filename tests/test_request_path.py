"""The one request path: ctx.run and ctx.stream check the allow-list, hold the lease, recover from out-of-memory
(a stream only before its first item) and show the CPU-fallback warning; demos reach models no other way."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hub.context import DemoContext
from hub.errors import UserError
from tests.test_models import manager, spec, loader

ROOT = Path(__file__).resolve().parents[1]
OOM = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")


def ctx_for(settings, budget=10_000, **kw):
    demos = {"a": (spec("a"), loader(100)), "b": (spec("b"), loader(100))}
    m = manager(settings, demos, budget=budget)
    return DemoContext(m, replace(settings, **kw), spec("a")), m


def test_stream_holds_the_lease_until_the_consumer_finishes_or_closes(settings):
    ctx, m = ctx_for(settings)

    def gen(lease):
        for i in range(3):
            yield i

    items = ctx.stream(gen)
    assert next(items) == 0
    assert m.status()[0]["in_use"] == 1
    assert list(items) == [1, 2]
    assert m.status()[0]["in_use"] == 0
    items = ctx.stream(gen)
    next(items)
    items.close()  # a client that goes away
    assert m.status()[0]["in_use"] == 0


def test_stream_out_of_memory_before_the_first_item_evicts_retries_then_runs_on_cpu(settings):
    ctx, m = ctx_for(settings)
    with m.use("b"):
        pass
    devices = []

    def gen(lease):
        devices.append(lease.device)
        if lease.device == "cuda":
            raise OOM
        yield "first"
        yield "second"

    with pytest.warns(UserWarning, match="CPU"):  # the fallback warning reaches the user (gr.Warning)
        assert list(ctx.stream(gen)) == ["first", "second"]
    assert devices == ["cuda", "cuda", "cpu"]
    assert "b" not in {r["demo"] for r in m.status()}  # evicted on the first out-of-memory


def test_stream_out_of_memory_after_the_first_item_ends_with_a_sentence_and_frees_the_lease(settings):
    ctx, m = ctx_for(settings)

    def gen(lease):
        yield "partial"
        raise OOM

    items = ctx.stream(gen)
    assert next(items) == "partial"
    with pytest.raises(UserError, match="ran out of memory part-way"):
        next(items)
    assert m.status()[0]["in_use"] == 0


def test_other_errors_in_a_stream_are_not_turned_into_retries(settings):
    ctx, m = ctx_for(settings)
    calls = []

    def gen(lease):
        calls.append(1)
        raise RuntimeError("a bug")
        yield

    with pytest.raises(RuntimeError, match="a bug"):
        list(ctx.stream(gen))
    assert calls == [1]


@pytest.mark.parametrize("how", ["run", "stream"])
def test_a_public_hub_refuses_unlisted_models_on_run_and_stream(settings, how):
    calls = []
    for public in (dict(share=True, auth=(("u", "p"),)), dict(host="0.0.0.0")):
        ctx, m = ctx_for(settings, **public)
        call = (lambda model: ctx.run(lambda lease: calls.append(lease), model)) if how == "run" else \
            (lambda model: list(ctx.stream(lambda lease: iter([calls.append(lease)]), model)))
        for bad in ("evil/repo", "/etc/passwd", "../../x"):
            with pytest.raises(UserError, match="not one of this hub's"):
                call(bad)
        with pytest.raises(UserError, match="by its name"):
            call(["m"])
        assert calls == [] and m.status() == []  # refused before anything loaded
        call("m2")
        assert len(calls) == 1
        calls.clear()


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


def test_demos_reach_models_only_through_ctx_run_and_ctx_stream():
    """No demo touches the manager: the allow-list, leases and OOM recovery hold on every path."""
    offenders = []
    for path in sorted((ROOT / "demos").rglob("*.py")):
        text = path.read_text()
        for pattern in (r"\bctx\._?manager\b", r"\bModelManager\b", r"\.manager\.(use|run|stream)\(",
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
                      models=(ModelChoice("m", "random"), ModelChoice("tiny-random", "random", options={"hidden": True})))
    m = manager(settings, {"a": (hidden, loader(100))})
    ctx = DemoContext(m, replace(settings, host="0.0.0.0"), hidden)
    with pytest.raises(UserError, match="not one of this hub's"):
        ctx.check_model("tiny-random")
    operator_chose_it = DemoContext(manager(replace(settings, models={"a": "tiny-random"}), {"a": (hidden, loader(100))}),
                                    replace(settings, host="0.0.0.0", models={"a": "tiny-random"}), hidden)
    operator_chose_it.check_model("tiny-random")
