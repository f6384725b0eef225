"""Who may use the hub's Ray cluster: token authentication, on every path that starts or joins one.

A Ray cluster runs whatever code a caller sends it; without authentication anyone who can reach its ports (the
GCS, the raylets, the dashboard's job API) runs programs as the cluster's user. Ray (>= 2.52) checks a shared token
on every control-plane call when `RAY_AUTH_MODE=token` is set on every node and every client, and reads the token
from `RAY_AUTH_TOKEN`, the file `RAY_AUTH_TOKEN_PATH`, or `~/.ray/auth_token`.

- **A Ray the hub starts itself** (no address, no `ray start` on this machine) gets a fresh random token in a file
  only the hub's user can read (a 0700 folder, the file 0600), `RAY_AUTH_MODE=token`, and no dashboard. Ray 2.60
  listens on every interface for its GCS and raylet ports and turns a loopback node address into the machine's own
  (`resolve_ip_for_localhost`), so the token is what keeps other machines out (SECURITY.md says so; firewall the
  ports on a shared network).
- **Joining a cluster** (`--ray-address`, `RAY_ADDRESS`, a `ray start --head` here) needs token mode: when
  `RAY_AUTH_MODE` is unset and a token is available, the hub switches it on; without a token it refuses to start
  with a sentence naming the fix. An operator who has decided the network is the boundary says so with Ray's own
  switch, `RAY_AUTH_MODE=disabled` (logged as a warning).
Nothing here imports Ray at module level.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from hub.errors import SettingsError

log = logging.getLogger("demohub")

MODE, TOKEN, TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN = Path.home() / ".ray" / "auth_token"


def write_token(folder: str | os.PathLike | None = None) -> Path:
    """A new random token in a file only this user can read (created 0600 inside a 0700 folder)."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="demohub-ray-"))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / "auth_token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path


def local_init_options(env=os.environ) -> dict:
    """Switch on token auth with a fresh private token for a Ray this process starts; its `ray.init` options:
    no dashboard (its job API is the easiest way in), and the replicas at the hub's own priority. Ray starts its
    workers at nice 15, meant for a node that does nothing else; on a hub's machine any other busy process then takes
    the model work's CPU (under 3 busy loops on 2 vCPUs the Ray test file was unfinished after 50 minutes;
    at the hub's priority it took 8)."""
    if env.get(MODE, "").lower() != "disabled":
        env[MODE] = "token"
        if not env.get(TOKEN):
            env[TOKEN_PATH] = str(write_token())
        _refresh_ray_config()
    return {"include_dashboard": False, "_system_config": {"worker_niceness": 0}}


def check_join(address: str, env=os.environ) -> None:
    """Refuse to join a cluster without token auth (unless the operator switched it off with Ray's own variable)."""
    mode = env.get(MODE, "").lower()
    if mode == "disabled":
        log.warning("Joining the Ray cluster at %s without authentication (RAY_AUTH_MODE=disabled): anyone who can "
                    "reach its ports can run code on it. Keep it behind a firewall.", address)
        return
    if mode in ("", "token") and token_available(env):
        if mode == "":
            env[MODE] = "token"
            _refresh_ray_config()
        return
    if mode not in ("", "token"):
        raise SettingsError(f"RAY_AUTH_MODE={env[MODE]!r} is not a mode the hub knows: use token (or disabled on a "
                            "network you trust).")
    raise SettingsError(
        "The hub joins Ray clusters only with token authentication (an unauthenticated cluster runs code for anyone "
        "who reaches it): start the cluster with RAY_AUTH_MODE=token on every node (see the README's Ray section), "
        "and give the hub the same token with RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; or set "
        "RAY_AUTH_MODE=disabled to join without authentication on a network you trust.")


def token_available(env=os.environ) -> bool:
    if env.get(TOKEN):
        return True
    path = Path(env[TOKEN_PATH]).expanduser() if env.get(TOKEN_PATH) else DEFAULT_TOKEN
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _refresh_ray_config() -> None:
    """Ray caches its config (the auth mode among it) per process; re-read it after the environment changed."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # Ray is not installed: the caller's import of ray fails with its own message
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
