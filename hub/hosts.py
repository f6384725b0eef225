"""The outermost guard of every route, gradio's included: which names (Host) and which pages (Origin) the hub
answers, and who the client is behind a proxy (issue #33).

- DNS rebinding: a web page on `attacker.example` whose name the attacker points at 127.0.0.1 is, to the browser,
  the same site as the hub; only the Host header it sends (`attacker.example:7860`) tells. A hub bound to loopback,
  and any request arriving from this machine, answers only Host 127.0.0.1 / localhost / [::1] (port or not), the
  share link's own name, and the names in `DEMOHUB_ALLOWED_HOSTS` (as Ollama fixed CVE-2024-28224); with
  `DEMOHUB_ALLOWED_HOSTS` set, a hub on the network answers those names and IP addresses only.
- Other websites: a request whose Origin is neither the hub's own address (the Host it names, or a name of
  `DEMOHUB_ALLOWED_HOSTS`) nor a site of `DEMOHUB_ALLOWED_ORIGINS` is refused (`null` too, as sandboxed frames and
  local files send), whatever its method: no upload, no queue join, no read of a reply with the visitor's cookie.
- Proxies: X-Forwarded-For/-Proto/-Host count only from `DEMOHUB_TRUSTED_PROXIES`; they give the client's real
  address (not this machine's), so neither the login throttle nor the operator check can be steered by a header.
  From anyone else the URL-building ones are dropped, so no URL the hub writes names a host the client made up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from urllib.parse import urlsplit

from hub.settings import Settings

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
URL_HEADERS = (b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-prefix")  # for URLs
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def hostname(host: str) -> str:
    """The name of a Host header or URL netloc, lower case, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""
    name, sep, port = host.rpartition(":")
    return name if sep and ":" not in name else host


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(address: str | None) -> bool:
    """A loopback name or address (127.0.0.0/8, ::1, ::ffff:127.x, localhost)."""
    if not address:
        return False
    if address.lower() == "localhost":
        return True
    ip = _ip(address)
    if ip is not None and getattr(ip, "ipv4_mapped", None) is not None:
        ip = ip.ipv4_mapped
    return ip is not None and ip.is_loopback


def loopback_hub(settings: Settings) -> bool:
    """The hub listens on a loopback address only (nobody else can connect; a web page still can, by rebinding)."""
    return is_loopback(settings.host)


def host_ok(host: str | None, settings: Settings, peer_local: bool, extra: frozenset = frozenset()) -> bool:
    """Whether the hub answers a request naming `host` (its Host header) from a client on this machine or not."""
    if host is None:  # HTTP/1.0 without Host: a program, never a browser
        return True
    name = hostname(host)
    allowed = set(settings.allowed_hosts)
    if "*" in allowed or name in LOOPBACK_NAMES or name in allowed or name in extra:
        return True
    if _ip(name) is not None:  # an address is no name an attacker can point elsewhere
        return not loopback_hub(settings)
    return not (loopback_hub(settings) or peer_local or allowed)


def origin_ok(origin: str, host: str | None, settings: Settings, forwarded_host: str | None = None,
              extra: frozenset = frozenset()) -> bool:
    """Whether a browser request from page `origin` is the hub's own page: served under the Host this request names
    (or a trusted proxy's X-Forwarded-Host), a name of DEMOHUB_ALLOWED_HOSTS or `extra` (the share link's); or a
    site of DEMOHUB_ALLOWED_ORIGINS."""
    origin = origin.strip().rstrip("/").lower()
    allowed = {o.strip().rstrip("/").lower() for o in settings.allowed_origins}
    if origin in allowed:
        return True
    if origin == "null" or "://" not in origin:
        return False
    if "*" in allowed:
        return True
    parts = urlsplit(origin)
    own = {_netloc(parts.scheme, h) for h in (host, forwarded_host) if h}
    names = {h for h in settings.allowed_hosts if h != "*"} | extra
    return _netloc(parts.scheme, parts.netloc) in own or hostname(parts.netloc) in names


def _netloc(scheme: str, netloc: str) -> str:
    netloc = netloc.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    return netloc[:-len(default)] if default and netloc.endswith(default) else netloc


def forwarded(request) -> bool:
    """Whether `request` (a starlette or gradio Request) names forwarding headers: it came through a proxy."""
    headers = getattr(request, "headers", None) or {}
    return any(headers.get(h) for h in FORWARDING_HEADERS)


class Proxies:
    """The operator's trusted proxies (`DEMOHUB_TRUSTED_PROXIES`)."""

    def __init__(self, networks: tuple[str, ...]):
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def trusted(self, address: str | None) -> bool:
        ip = _ip(address or "")
        return ip is not None and any(ip.version == n.version and ip in n for n in self.networks)

    def client(self, peer: str, chain: str) -> str:
        """The client behind trusted proxy `peer`: the right-most address of X-Forwarded-For that is not a trusted
        proxy; a proxy that names no client gives 'unknown' (never this machine)."""
        hops = [h.strip() for h in chain.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else "unknown"


@contextlib.contextmanager
def uvicorn_trusts_no_proxy():
    """While gradio starts its server: uvicorn would take X-Forwarded-For from any loopback client (its default
    FORWARDED_ALLOW_IPS), so one more header per try would reset the login throttle; the hub's guard does it."""
    before = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FORWARDED_ALLOW_IPS", None)
        else:
            os.environ["FORWARDED_ALLOW_IPS"] = before


def install(app, settings: Settings, share_url: str | None = None) -> None:
    """Put the Host / Origin / proxy guard outside every other layer of `app` (gradio's FastAPI app, launched)."""
    proxies = Proxies(settings.trusted_proxies)
    extra = frozenset({hostname(urlsplit(share_url).netloc)} if share_url else ())
    inner = app.middleware_stack or app.build_middleware_stack()

    async def gate(scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await inner(scope, receive, send)
        peer = (scope.get("client") or ("",))[0]
        via_proxy = proxies.trusted(peer)
        headers = _resolve(scope, proxies, via_proxy)
        host, origin = headers.get(b"host"), headers.get(b"origin")
        local = is_loopback(peer) and not via_proxy
        if not host_ok(host, settings, local, extra):
            return await _refuse(scope, receive, send, _host_sentence(scope, settings, host, local))
        if origin is not None and not origin_ok(origin, host, settings, headers.get(b"x-forwarded-host"), extra):
            return await _refuse(scope, receive, send, _origin_sentence(scope))
        return await inner(scope, receive, send)

    app.middleware_stack = gate


def _resolve(scope, proxies: Proxies, via_proxy: bool) -> dict:
    """Apply (trusted proxy) or drop (anyone else) the forwarding headers in `scope`; its headers as a dict of
    first values (decoded)."""
    raw = scope.get("headers") or []
    if via_proxy:
        chain = ", ".join(v.decode("latin-1") for k, v in raw if k == b"x-forwarded-for")
        scope["client"] = (proxies.client(scope["client"][0], chain), 0)
        proto = next((v.decode("latin-1").split(",")[0].strip() for k, v in raw if k == b"x-forwarded-proto"), "")
        if proto in ("http", "https"):
            scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
    else:
        raw = scope["headers"] = [(k, v) for k, v in raw if k not in URL_HEADERS]
    first: dict = {}
    for k, v in raw:
        first.setdefault(k, v.decode("latin-1"))
    if b"x-forwarded-host" in first:
        first[b"x-forwarded-host"] = first[b"x-forwarded-host"].split(",")[0].strip()
    return first


def _host_sentence(scope, settings: Settings, host: str, local: bool) -> str:
    port = (scope.get("server") or (None, settings.port))[1]
    where = (f"open http://127.0.0.1:{port}/ instead" if local or loopback_hub(settings) else
             "use the hub's IP address or a name its operator listed")
    return (f"This hub does not answer to the name {hostname(host)[:80]!r} (a web page may be trying to reach it "
            f"through a name of its own): {where}, or the operator can add the name to DEMOHUB_ALLOWED_HOSTS.")


def _origin_sentence(scope) -> str:
    what = "API requests" if scope.get("path", "").startswith("/v1/") else "requests"
    return (f"This hub does not take {what} from other websites; open the hub's own page or call it from your own "
            "code, or the operator can allow the site with DEMOHUB_ALLOWED_ORIGINS.")


async def _refuse(scope, receive, send, sentence: str) -> None:
    """403 with `sentence`: in OpenAI's error shape on /v1, plain text elsewhere; a WebSocket is closed."""
    if scope["type"] == "websocket":
        return await send({"type": "websocket.close", "code": 1008, "reason": sentence[:120]})
    if scope.get("path", "").startswith("/v1/"):
        body = json.dumps({"error": {"message": sentence, "type": "permission_error", "param": None,
                                     "code": None}}).encode()
        ctype = b"application/json"
    else:
        body, ctype = sentence.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
