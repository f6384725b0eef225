"""Files that installed packages ship (sample media, packaged weights), found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, *parts: str) -> Path | None:
    """`<package folder>/<parts...>` if the package is installed and the file exists, else None.

    Uses the import system's spec only, so looking up ultralytics' bus.jpg does not import torch.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    return p if p.exists() else None
