"""How each demo is deployed on Ray Serve: replicas, GPUs, autoscaling, queue bounds. Typed (pydantic), read from a
TOML or YAML file (`--ray-config FILE` or `DEMOHUB_RAY_CONFIG`), with defaults that fit one GPU node.

```toml
queue_timeout_s = 300          # a request no replica could take within this is refused
[default]                      # every demo, unless its own table says otherwise
min_replicas = 1
max_replicas = 2
[demos.stable_diffusion]
num_gpus = 1                   # a whole GPU for each SD replica
max_replicas = 4
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.errors import SettingsError

# GPU share per replica when the cluster has GPUs and the file says `num_gpus = "auto"`: each demo declares its own
# (DemoSpec.gpu_share; they add up to 1.0, so one replica of every demo fits one GPU).


class Deployment(BaseModel):
    """One demo's Ray Serve deployment."""

    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(1, ge=0, le=1000, description="replicas kept running (0: scale to zero when idle)")
    max_replicas: int = Field(1, ge=1, le=1000, description="the autoscaler adds replicas up to this many")
    target_ongoing_requests: float | None = Field(None, gt=0, description="requests per replica the autoscaler "
                                                  "aims for (default: the demo's concurrency)")
    max_ongoing_requests: int | None = Field(None, ge=1, le=1000, description="requests one replica runs at once "
                                             "(default: the demo's concurrency)")
    max_queued_requests: int = Field(16, ge=-1, le=100_000, description="requests waiting for a replica before "
                                     "new ones are refused (-1: no bound)")
    num_gpus: float | Literal["auto"] = Field("auto", description="GPUs per replica (fractions share a GPU); auto: "
                                              "a share that fits every demo on one GPU, 0 without GPUs")
    num_cpus: float = Field(0, ge=0, description="CPUs Ray reserves per replica (0: models share the CPUs as in one "
                                               "process; raise it to spread replicas over nodes)")

    @model_validator(mode="after")
    def _bounds(self):
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is less than min_replicas ({self.min_replicas})")
        if isinstance(self.num_gpus, float) and self.num_gpus < 0:
            raise ValueError("num_gpus must be 0 or more, or 'auto'")
        return self

    def gpus(self, auto_share: float, cluster_gpus: float) -> float:
        if self.num_gpus != "auto":
            return float(self.num_gpus)
        return auto_share if cluster_gpus > 0 else 0.0

    def serve_options(self, auto_share: float, concurrency: int, cluster_gpus: float) -> dict:
        """Keyword arguments for `Deployment.options(...)`."""
        ongoing = self.max_ongoing_requests or concurrency
        scaling = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                   "target_ongoing_requests": self.target_ongoing_requests or concurrency,
                   "upscale_delay_s": 5.0, "downscale_delay_s": 300.0}
        if self.min_replicas == self.max_replicas:
            scaling = None
        opts = {"ray_actor_options": {"num_gpus": self.gpus(auto_share, cluster_gpus), "num_cpus": self.num_cpus},
                "max_ongoing_requests": ongoing, "max_queued_requests": self.max_queued_requests,
                "health_check_period_s": 2.0, "health_check_timeout_s": 30.0,
                "graceful_shutdown_timeout_s": 5.0}
        if scaling is None:
            opts["num_replicas"] = self.min_replicas
        else:
            opts["autoscaling_config"] = scaling
        return opts


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue_timeout_s: float = Field(300, gt=0, description="seconds a request may wait for a replica")
    default: Deployment = Field(default_factory=Deployment)
    demos: dict[str, dict] = Field(default_factory=dict, description="per-demo fields over `default`")

    def deployment(self, demo: str) -> Deployment:
        return Deployment(**{**self.default.model_dump(exclude_unset=True), **self.demos.get(demo, {})})

    def check_names(self, known: tuple[str, ...]) -> None:
        unknown = sorted(set(self.demos) - set(known))
        if unknown:
            raise SettingsError(f"The Ray config names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'}"
                                f" not a demo; use one of: {', '.join(known)}.")
        for name, fields in self.demos.items():
            try:
                self.deployment(name)
            except ValidationError as e:
                raise SettingsError(f"The Ray config's [demos.{name}] is invalid: {_first(e)}.") from None


def load(path: str | os.PathLike | None = None) -> ClusterConfig:
    """The config from `path` (TOML or YAML; None: DEMOHUB_RAY_CONFIG, else the defaults)."""
    path = path or os.environ.get("DEMOHUB_RAY_CONFIG") or None
    if path is None:
        return ClusterConfig()
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise SettingsError(f"Cannot read the Ray config {p.name}: {e.strerror}. Give a TOML or YAML file.") from None
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            import tomllib

            data = tomllib.loads(text)
    except Exception as e:  # the parsers' own errors say where
        raise SettingsError(f"The Ray config {p.name} is not valid {'YAML' if p.suffix != '.toml' else 'TOML'}: "
                            f"{e}") from None
    try:
        return ClusterConfig(**data)
    except (ValidationError, TypeError) as e:
        raise SettingsError(f"The Ray config {p.name} is invalid: "
                            f"{_first(e) if isinstance(e, ValidationError) else e}.") from None


def _first(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    return f"{where}: {err['msg']}" if where else err["msg"]
