"""The Ray Serve backend (`demohub serve --backend ray`): each demo's engine in its own Serve deployment.

Imported only when that backend is switched on: `ray[serve]` is an optional extra (`pip install 'demohub[ray]'`).
- `config.py`: per-demo replicas, GPUs, autoscaling and queue bounds (TOML/YAML, pydantic).
- `shipping.py`: how a handler's `fn(lease)` travels to a replica, with callbacks and files (no Ray import).
- `replica.py`: the deployment class: a ModelManager of its own, the calls, reports to the front end.
- `backend.py`: `RayManager`, the front end's side: the ModelManager's API over deployment handles.
"""
