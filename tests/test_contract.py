"""One contract test over every registered demo (like diffusers' PipelineTesterMixin); demos only declare examples.

For each demo: the registry lists exactly the packages in demos/; importing a demo imports no torch, gradio or model
library; every engine module imports with gradio blocked; the spec is complete; the tiny model loads through the
manager and its engine has what the hub reads; the tab builds and serves exactly its declared API names; and, on a
live public hub through gradio_client, every API's example answers with work that crossed pickle (as to a Ray
replica), its bad variant gets a sentence, and an unlisted model is refused on every API that takes one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hub.contract import Demo
from hub.registry import DEMOS, load_demos
from hub.spec import DemoSpec
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "gradio", "diffusers", "transformers", "whisper", "ultralytics", "open_clip", "segment_anything",
         "faster_whisper", "av", "cv2")


def demo(name: str) -> Demo:
    (h,) = load_demos((name,))
    assert h.demo is not None, h.error
    return h.demo


EXAMPLES = [(name, ex) for name in DEMOS for ex in demo(name).examples]
EXAMPLE_IDS = [f"{name}{ex.api_name}" for name, ex in EXAMPLES]
WITH_MODEL = [(n, ex) for n, ex in EXAMPLES if ex.model_arg]


def test_registry_lists_exactly_the_demo_packages():
    packages = {p.parent.name for p in (ROOT / "demos").glob("*/__init__.py")}
    modules = {p.stem for p in (ROOT / "demos").glob("*.py") if p.stem != "__init__"}
    assert not modules, f"demos are packages now (demos/<name>/__init__.py); loose modules: {modules}"
    assert packages == set(DEMOS), "every demos/<name>/ must be in hub/registry.py DEMOS and vice versa"


def test_importing_every_demo_imports_no_torch_gradio_or_model_library():
    code = ("import sys, hub.registry as r; hs = r.load_demos(); bad = [h.name + ': ' + h.error for h in hs if h.error]; "
            f"assert not bad, bad; heavy = [m for m in {HEAVY!r} if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("name", DEMOS)
def test_every_engine_module_imports_with_gradio_blocked(name):
    """Everything but the tab (ui*.py) must work without gradio: benchmarks, the GPU box and Ray workers lack it."""
    modules = sorted(f"demos.{name}.{p.stem}" for p in (ROOT / "demos" / name).glob("*.py")
                     if p.stem != "__init__" and not p.stem.startswith("ui"))
    assert f"demos.{name}.engine" in modules
    code = ("import sys, importlib; sys.modules['gradio'] = None; sys.modules['gradio_client'] = None\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "assert 'gradio' not in [k for k, v in sys.modules.items() if v is not None]")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("name", DEMOS)
def test_spec_is_complete_and_every_api_has_an_example(name):
    d = demo(name)
    spec: DemoSpec = d.spec
    assert spec.name == name and spec.title and spec.description and spec.api_names
    assert spec.choice("tiny-random") is not None and spec.choice("tiny-random").source == "random"
    assert {ex.api_name for ex in d.examples} == set(spec.api_names), "one example per API name"
    for m in spec.models + spec.components:  # components: weights used with the models (SD's tiny decoder)
        if m.source == "random":
            continue
        assert m.license, f"{m.id}: license missing"
        assert m.approx_bytes > 0, f"{m.id}: approx_bytes missing"
        if m.source == "hf":
            assert m.revision, f"{m.id}: an hf model needs a pinned revision"
        if m.source == "native":
            assert m.sha256, f"{m.id}: a native download needs a pinned sha256"
    for o in d.options:
        assert o.help and re.fullmatch(r"[a-z][a-z0-9_]*", o.key)


@pytest.mark.parametrize("name", DEMOS)
def test_tiny_model_loads_on_cpu_through_the_manager(name, settings):
    from hub.models import ModelManager

    d = demo(name)
    from hub.contract import Backend, Engine

    manager = ModelManager(settings, {name: (d.spec, d.loader(), d.work)})
    assert isinstance(manager, Backend)
    assert manager.work(name).methods, f"{name} declares no work methods"
    with manager.use(name, "tiny-random") as lease:
        assert isinstance(lease.engine, Engine), "the engine has what the hub reads (hub.contract.Engine)"
        assert lease.device == "cpu" and lease.dtype == "float32"
    assert manager.status()[0]["state"] == "CPU"
    manager.unload(name)
    assert manager.status() == []


@pytest.mark.parametrize("name", DEMOS)
def test_ui_builds_and_serves_its_api_names(name, settings):
    from hub.app import create_app

    blocks = create_app(replace(settings, models={name: "tiny-random"}), (name,))
    served = public_apis(blocks) - public_apis(create_app(settings, ()))  # the Models tab's are the hub's
    declared = set(blocks.hub_demos[0].spec.api_names)
    assert served == declared, f"{name}: served {sorted(served)} != declared {sorted(declared)} (each needs an Example)"
    assert not re.search(r"failed", str([h.error for h in blocks.hub_demos]))


def public_apis(blocks) -> set[str]:
    return {fn.api_name for fn in blocks.fns.values() if fn.api_name and fn.api_visibility == "public"}


# ---- on a live public hub, through gradio_client ----------------------------------------------------------------


@pytest.fixture(scope="module")
def public_hub(tmp_path_factory):
    """Every demo with its tiny model, configured as a public hub (host 0.0.0.0) but bound to loopback."""
    from gradio_client import Client, handle_file

    from hub.app import create_app, launch
    from hub.models import ModelManager
    from hub.options import parse
    from hub.samples import fill, make_samples
    from hub.settings import Settings
    from tests.roundtrip_backend import RoundTripBackend

    tmp = tmp_path_factory.mktemp("contract")
    s = replace(Settings.load({}), host="0.0.0.0", port=free_port(), device="cpu", offline=True,
                cache_dir=tmp / "cache", models={d: "tiny-random" for d in DEMOS})
    backend = RoundTripBackend(ModelManager(s, {n: (d.spec, d.loader(parse(d, s.env)), d.work)
                                                for n, d in ((n, demo(n)) for n in DEMOS)}))
    blocks = create_app(s, manager=backend)
    launch(blocks, s, prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    client = Client(f"http://127.0.0.1:{s.port}/", verbose=False)
    paths = make_samples(tmp / "media")
    yield client, (lambda args: fill(args, paths, handle_file)), backend
    blocks.close()


def is_sentence(message: str) -> bool:
    words = re.findall(r"[A-Za-z']+", message)
    return (len(words) >= 4 and "Traceback" not in message and not re.search(r"\b\w+(Error|Exception)\b", message)
            and not re.search(r"/(tmp|root|home|work)/", message))


@pytest.mark.parametrize("name, ex", EXAMPLES, ids=EXAMPLE_IDS)
def test_every_api_answers_its_example_with_work_that_crosses_a_process_as_data(public_hub, name, ex):
    """The hub's backend here sends every request, result and error through pickle, as a Ray replica's does: a
    handler that handed the hub a closure, or a result that holds a lock or a gradio object, fails here."""
    client, fill, backend = public_hub
    before = len(backend.requests)
    result = client.predict(*fill(ex.values()), api_name=f"/{ex.api_name}")
    assert result is not None
    crossed = [(d, m) for d, m, _ in backend.requests[before:]]
    if ex.model_arg is not None:  # an API without a model (reading a PNG's parameters) needs no work method
        assert crossed and all(d == name for d, _ in crossed), f"/{ex.api_name} reached no work method: {crossed}"


@pytest.mark.parametrize("name, ex", EXAMPLES, ids=EXAMPLE_IDS)
def test_every_api_answers_bad_input_with_a_sentence_and_keeps_serving(public_hub, name, ex):
    client, fill, _ = public_hub
    with pytest.raises(Exception) as e:
        client.predict(*fill(ex.values(**ex.bad)), api_name=f"/{ex.api_name}")
    assert is_sentence(str(e.value)), f"not a sentence: {e.value!r}"
    assert "failed unexpectedly" not in str(e.value), f"bad input reached a bug path: {e.value}"
    assert client.predict(*fill(ex.values()), api_name=f"/{ex.api_name}") is not None


@pytest.mark.parametrize("name, ex", WITH_MODEL, ids=[f"{n}{ex.api_name}" for n, ex in WITH_MODEL])
def test_a_public_hub_refuses_an_unlisted_model_on_every_api(public_hub, name, ex):
    client, fill, _ = public_hub
    for model in ("attacker/any-repo", "/etc/passwd"):
        with pytest.raises(Exception, match="not one of this hub's"):
            client.predict(*fill(ex.values(**{ex.model_arg: model})), api_name=f"/{ex.api_name}")


def test_example_parameters_are_the_apis_own_names(public_hub):
    """An example is a real call: its keys are the parameter names gradio_client shows and accepts as keywords."""
    client, _, _ = public_hub
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name, ex in EXAMPLES:
        names = [p["parameter_name"] for p in api[f"/{ex.api_name}"]["parameters"]]
        assert list(ex.args) == names, f"{name}/{ex.api_name}: example keys {list(ex.args)} != API parameters {names}"
