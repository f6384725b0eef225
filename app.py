"""demohub entry point: `python app.py` starts the hub; `demo` is what a Hugging Face Space serves.

Configuration comes from DEMOHUB_* environment variables (see README). Building `demo` loads no weights and
imports no torch: each tab loads its model on first use.
"""

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hub.app import create_app, launch  # noqa: E402
from hub.errors import SettingsError  # noqa: E402
from hub.settings import Settings  # noqa: E402

try:
    settings = Settings.load()
    demo = create_app(settings)
except SettingsError as e:  # a bad DEMOHUB_* value: its sentence, not a traceback
    sys.exit(f"demohub: {e}")

if __name__ == "__main__":
    try:
        launch(demo, settings)
    except SettingsError as e:  # e.g. DEMOHUB_SHARE=1 without DEMOHUB_AUTH
        sys.exit(f"demohub: {e}")
