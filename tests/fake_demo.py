"""A complete demo in one file, used by the tests to show the contract (a real demo splits this into a package).

Its "model" is a tiny engine; loading records calls so tests can count them.
"""

from hub import validate
from hub.contract import Demo, Example, Option
from hub.errors import UserError
from hub.spec import DemoSpec, ModelChoice

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


class Engine:
    def __init__(self, model_id: str, device: str, dtype: str, prefix: str = ""):
        self.model_id, self.device, self.dtype, self.prefix = model_id, device, dtype, prefix
        self.nbytes = SPEC.choice(model_id).approx_bytes if SPEC.choice(model_id) else 10


def load(weights, device, dtype, options=None):
    LOADS.append(weights.choice.id)
    return Engine(weights.choice.id, device, dtype, options.prefix if options is not None else "")


def echo(engine: Engine, text: str, times) -> str:
    """Repeat `text` `times` times."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("Type some text to echo.")
    times = validate.number(times, "times", 1, 10, integer=True)
    return engine.prefix + " ".join([text.strip()] * times)


def ui(ctx):
    import gradio as gr

    model = ctx.model_dropdown()
    text = gr.Textbox(label="Text")
    times = gr.Number(2, label="Times", precision=0)
    out = gr.Textbox(label="Echo")
    record = gr.JSON(label="Record")

    @ctx.handler
    def run(model_id, text, times):
        return ctx.run(lambda lease: (echo(lease.engine, text, times), lease.record(times=times)), model_id)

    gr.Button("Echo").click(run, [model, text, times], [out, record], api_name="echo", **ctx.events)


DEMO = Demo(
    spec=SPEC, load=load, ui=ui,
    options=(Option("prefix", "", "Text put before every answer."),),
    examples=(Example("echo", {"model_id": "echo-small", "text": "hi", "times": 2}, bad={"times": 0}),),
)
