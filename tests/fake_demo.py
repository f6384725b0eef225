"""A complete demo in one file, used by the tests to show the contract (a real demo splits this into a package).

Its "model" is a tiny engine; loading records calls so tests can count them.
"""

import json
from dataclasses import dataclass

from hub import validate
from hub.contract import Demo, EngineBase, Example, Option
from hub.errors import UserError
from hub.spec import DemoSpec, ModelChoice
from hub.work import Work

SPEC = DemoSpec(
    name="fake_echo",
    title="Echo (test demo)",
    description="Repeats text, scaled by a tiny model.",
    models=(
        ModelChoice("echo-small", "random", approx_bytes=1000, license="MIT"),
        ModelChoice("echo-large", "random", approx_bytes=5000, license="MIT"),
    ),
    default_model={"cpu": "echo-small", "cuda": "echo-large"},
    api_names=("echo",),
)

LOADS: list[str] = []
CRASH = "crash now"  # text that makes the engine fail as a bug would


@dataclass(frozen=True)
class EchoRequest:
    """What /echo asks of the engine: plain data, so it crosses to a Ray replica as it is."""

    text: str
    times: int | float | None = 2


@dataclass(frozen=True)
class EchoResult:
    text: str
    record: dict


class Engine(EngineBase):
    def __init__(self, model_id: str, device: str, dtype: str, prefix: str = ""):
        self.model_id, self.device, self.dtype, self.prefix = model_id, device, dtype, prefix
        self.nbytes = SPEC.choice(model_id).approx_bytes if SPEC.choice(model_id) else 10


def load(weights, device, dtype, options=None):
    LOADS.append(weights.choice.id)
    return Engine(weights.choice.id, device, dtype, options.prefix if options is not None else "")


WORK = Work()


def check(req: EchoRequest) -> int:
    if not isinstance(req.text, str) or not req.text.strip():
        raise UserError("Type some text to echo.")
    return validate.number(req.times, "times", 1, 10, integer=True)


@WORK.method(EchoRequest)
def echo(lease, req: EchoRequest, job) -> EchoResult:
    """Repeat the text `times` times."""
    times = check(req)
    if req.text.strip() == CRASH:
        raise RuntimeError("a bug in the engine")  # what a failure that is not the visitor's looks like
    return EchoResult(lease.engine.prefix + " ".join([req.text.strip()] * times), lease.record(times=times))


def ui(ctx):
    import gradio as gr

    from hub import fields

    model, _notice = ctx.model_picker()  # the picker, and under it whether the model is here
    text = gr.Textbox(label="Text")
    times = fields.number("Times", 1, 10, 2)
    go = gr.Button("Echo", variant="primary")
    status = gr.Markdown()  # progress and errors show here only: the other outputs keep their values
    out = gr.Textbox(label="Echo")
    record = gr.JSON(label="Record")

    @ctx.handler
    def run(model, text, times, progress=gr.Progress()):
        """Echo text through the model.

        Args:
            model: a listed model.
            text: what to repeat.
            times: how many times, 1 to 10.
        """
        out = ctx.call("echo", EchoRequest(text, times), model, progress=progress)
        return out.text, out.record

    go.click(run, [model, text, times], [out, record], api_name="echo", **ctx.events_on(status))


def routes(ctx):
    """POST /v1/echo {"text", "times"}: the tab's work through the /v1 path (error mapping, metrics)."""
    from fastapi import APIRouter, Request

    from hub.api import add_route, call, error, json_bytes

    router = APIRouter()

    @add_route(router, ctx, "/v1/echo", api="v1_echo")
    async def echo_route(request: Request):
        try:
            body = json.loads(await json_bytes(request))
        except ValueError:
            body = None
        if not isinstance(body, dict) or "text" not in body:
            return error(400, "Send a JSON object with the text to echo.")
        out = await call(ctx, "echo", EchoRequest(body["text"], body.get("times", 2)), None, http=request)
        return {"text": out.text}

    return router


DEMO = Demo(
    spec=SPEC, load=load, ui=ui, work=WORK, routes=routes,
    options=(Option("prefix", "", "Text put before every answer."),),
    examples=(Example("echo", {"model": "echo-small", "text": "hi", "times": 2}, bad={"times": 0}),),
)
