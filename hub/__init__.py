"""demohub core: settings, device choice, weights, the model manager, the registry and the app shell.

Nothing here imports torch or gradio at import time; each module imports them where it needs them.
"""
