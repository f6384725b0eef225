"""demohub entry point: `python app.py` starts the hub; `demo` is what a Hugging Face Space serves.

Configuration comes from DEMOHUB_* environment variables (see README). Building `demo` loads no weights and
imports no torch: each tab loads its model on first use.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from hub.app import create_app, launch  # noqa: E402
from hub.settings import Settings  # noqa: E402

settings = Settings.load()
demo = create_app(settings)

if __name__ == "__main__":
    launch(demo, settings)
