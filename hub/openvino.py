"""What every OpenVINO path of the hub shares: whether it is installed, and its telemetry switched off.

Imported by the demos' OpenVINO paths (YOLO's network, Stable Diffusion's int8 UNet) only when they are used;
importing this module imports no OpenVINO.
"""

from __future__ import annotations

import importlib.util


def available(*extra: str) -> bool:
    """OpenVINO (and the `extra` packages, e.g. "nncf") can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", *extra))


def telemetry_off() -> None:
    """OpenVINO's Python package sends usage telemetry (Google Analytics) from `import openvino` and from every
    conversion, and writes ~/intel, unless a consent file there says no: a hub must neither phone home nor write in
    the user's home. Its own checker is made to answer "declined" before openvino is imported."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package: nothing is sent
        return
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED
