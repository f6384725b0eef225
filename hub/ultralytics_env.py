"""The one place ultralytics is configured (YOLO uses it, and SAM's MobileSAM encoder comes from it).

ultralytics reads `YOLO_CONFIG_DIR` once, when first imported, and writes a settings file there; whichever demo
imports it first decides for the whole process, so every caller goes through `import_ultralytics`.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("demohub")


def config_dir(cache_dir: Path | str | None) -> Path:
    """`<cache>/native/ultralytics` (a temporary folder when there is no cache, as in benchmarks)."""
    root = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "demohub-cache"
    return root / "native" / "ultralytics"


def import_ultralytics(cache_dir: Path | str | None = None):
    """Import ultralytics with its settings under the hub's cache (never the user's home or the cwd), package
    auto-install off, usage analytics off, and Pillow's own `Image.open` kept."""
    if "ultralytics" not in sys.modules:
        folder = config_dir(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)
        os.environ["YOLO_AUTOINSTALL"] = "false"  # never pip-install packages from inside the server
    import ultralytics
    from PIL import Image
    from ultralytics.utils import SETTINGS, patches

    if Image.open is getattr(patches, "image_open", None) and hasattr(patches, "_image_open"):
        # ultralytics replaces PIL.Image.open process-wide with a wrapper that, on any file Pillow cannot identify,
        # tries to install pi-heif; every tab opens uploads with Pillow, so put Pillow's own function back.
        Image.open = patches._image_open
    ours = Path(os.environ.get("YOLO_CONFIG_DIR", config_dir(cache_dir)))
    if Path(SETTINGS.file).resolve().is_relative_to(ours.resolve()):
        # Its defaults point at ./weights, ./runs and ./datasets; keep even those inside the cache, analytics off.
        wanted = {"weights_dir": str(ours.parent), "runs_dir": str(ours / "runs"),
                  "datasets_dir": str(ours / "datasets"), "sync": False}
        if any(SETTINGS.get(k) != v for k, v in wanted.items()):
            SETTINGS.update(wanted)
    else:
        log.info("ultralytics was imported before the hub configured it; its settings stay at %s", SETTINGS.file)
    return ultralytics
