"""One contract test over every registered demo (like diffusers' PipelineTesterMixin)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hub.registry import DEMOS, load_demos
from hub.spec import DemoSpec

ROOT = Path(__file__).resolve().parents[1]


def test_registry_lists_exactly_the_demo_files():
    files = {p.stem for p in (ROOT / "demos").glob("*.py") if p.stem != "__init__"}
    assert files == set(DEMOS), "every demos/*.py must be in hub/registry.py DEMOS and vice versa"


def test_importing_every_demo_imports_no_heavy_library():
    code = ("import sys, hub.registry as r; hs = r.load_demos(); bad = [h.name + ': ' + h.error for h in hs if h.error]; "
            "assert not bad, bad; heavy = [m for m in ('torch', 'diffusers', 'transformers', 'whisper', 'ultralytics', "
            "'open_clip', 'segment_anything', 'faster_whisper') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("name", DEMOS)
def test_spec_is_complete(name):
    (h,) = load_demos((name,))
    assert h.module is not None, h.error
    spec: DemoSpec = h.spec
    assert spec.name == name and spec.title and spec.description and spec.api_names
    assert spec.choice("tiny-random") is not None and spec.choice("tiny-random").source == "random"
    for m in spec.models:
        if m.source == "random":
            continue
        assert m.license, f"{m.id}: license missing"
        assert m.approx_bytes > 0, f"{m.id}: approx_bytes missing"
        if m.source == "hf":
            assert m.revision, f"{m.id}: an hf model needs a pinned revision"


@pytest.mark.parametrize("name", DEMOS)
def test_tiny_model_loads_on_cpu_through_the_manager(name, settings):
    from hub.models import ModelManager

    (h,) = load_demos((name,))
    manager = ModelManager(settings, {name: (h.spec, h.module.load)})
    with manager.use(name, "tiny-random") as lease:
        assert lease.engine is not None
        assert lease.device == "cpu" and lease.dtype == "float32"
    assert manager.status()[0]["state"] == "CPU"
    manager.unload(name)
    assert manager.status() == []


@pytest.mark.parametrize("name", DEMOS)
def test_ui_builds_and_serves_its_api_names(name, settings):
    from hub.app import create_app

    blocks = create_app(replace(settings, models={name: "tiny-random"}), (name,))
    served = {fn.api_name for fn in blocks.fns.values() if fn.api_name}
    missing = set(blocks.hub_demos[0].spec.api_names) - served
    assert not missing, f"{name} declares api_names it does not serve: {missing}"
    assert not re.search(r"failed", str([h.error for h in blocks.hub_demos]))
