"""The Ray Serve backend (`demohub serve --backend ray`): each demo's engine in its own Serve deployment.

Imported only when that backend is switched on: `ray[serve]` is an optional extra (`pip install 'demohub[ray]'`).
- `config.py`: per-demo replicas, GPUs, autoscaling and queue bounds (TOML/YAML, pydantic).
- `files.py`: files named in requests and results, as bytes between nodes (no Ray import).
- `replica.py`: the deployment class: a ModelManager of its own; (method, request) in, items out; reports.
- `backend.py`: `RayManager`, the front end's side: the Backend protocol (hub.contract) over deployment handles.
"""
