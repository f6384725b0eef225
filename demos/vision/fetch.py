"""Opt-in download of the http(s) image URLs of `/v1/chat/completions` image parts (`DEMOHUB_VISION_FETCH_URLS=1`).

Off by default: a hub that downloads what a request names can be made to reach the machines around it (server-side
request forgery). When the operator turns it on, each URL is fetched with httpx in the request's worker thread (never
on the event loop), and:

- the host name is resolved first and every address it has must be a public one: loopback, private, link-local
  (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast, reserved and unspecified addresses are refused;
  the connection then goes to the address that was checked (the name is sent as Host and as the TLS server name,
  and the certificate is checked against it), so a DNS answer that changes between the check and the connection
  (rebinding) cannot reach another machine;
- no proxy from the environment is used (it would resolve the name itself);
- redirects are followed by hand, at most `MAX_REDIRECTS`, each to http(s) only and each checked the same way;
- the body is read in pieces and refused beyond the byte cap (a Content-Length over it is refused before any byte),
  and the whole download, redirects included, must end within the time limit;
- the answer must say it is an image (Content-Type image/*); the hub's decoder then checks the bytes themselves.

The bytes stay in memory, as a data URL's do. `resolve` is injectable (tests point a name at a local server).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Callable
from urllib.parse import urljoin, urlsplit

from hub.errors import UserError

LIMIT_S = 10.0  # the whole download of one image, redirects included
MAX_REDIRECTS = 3
Resolver = Callable[[str, int], list[str]]


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses of `host`, each a public one; UserError when the name does not resolve or any address is not
    public (a name that resolves to both is refused: the connection could be steered to either)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UserError(f"The image URL's host {host[:100]} could not be found; check the URL.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for a in addresses:
        check_public(a, host)
    if not addresses:
        raise UserError(f"The image URL's host {host[:100]} could not be found; check the URL.")
    return addresses


def check_public(address: str, host: str) -> None:
    """UserError unless `address` is a global unicast address (not loopback, private, link-local, shared or
    reserved)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        raise UserError(f"The image URL's host {host[:100]} is a local or private address, which this hub never "
                        "downloads from; send a public URL or the picture as a data URL.")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def fetch_image(url: str, max_bytes: int, resolve: Resolver | None = None, limit_s: float = LIMIT_S) -> bytes:
    """The bytes of the image at the http(s) `url`, at most `max_bytes`; UserError with one sentence for anything
    the caller can fix (a private host, a redirect elsewhere, too large, too slow, not an image, an HTTP error)."""
    import httpx

    resolve = resolve or resolve_public
    deadline = time.monotonic() + limit_s
    timeout = httpx.Timeout(limit_s, connect=min(5.0, limit_s))
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with _request(client, url, resolve) as response:
                    if response.is_redirect and response.headers.get("location"):
                        url = urljoin(url, response.headers["location"])
                        continue
                    return _body(response, url, max_bytes, deadline, limit_s)
            except httpx.TimeoutException:
                raise UserError(f"The image URL did not answer within {limit_s:g} s; try again or send the picture "
                                "as a data URL.") from None
            except httpx.HTTPError:
                raise UserError("The image URL could not be downloaded (the connection failed); check the URL or "
                                "send the picture as a data URL.") from None
    raise UserError(f"The image URL redirects more than {MAX_REDIRECTS} times; send the final URL.")


def _request(client, url: str, resolve: Resolver):
    """A streamed GET of `url` sent to an address of its host that `resolve` approved."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UserError("An image URL must be an http or https address (a redirect to anything else is refused).")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UserError("The image URL has an invalid port; check the URL.") from None
    host = parts.hostname
    if _is_address(host):  # an address written in the URL
        check_public(host, host)
        address = host
    else:  # a name: resolved and checked here, and the connection goes to what was checked
        address = resolve(host, port)[0]
    shown = f"[{address}]" if ":" in address else address
    target = f"{scheme}://{shown}:{port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    default = port == (443 if scheme == "https" else 80)
    name = f"[{host}]" if ":" in host else host
    headers = {"Host": name if default else f"{name}:{port}", "Accept": "image/*", "Accept-Encoding": "identity"}
    return client.stream("GET", target, headers=headers, extensions={"sni_hostname": host})


def _body(response, url: str, max_bytes: int, deadline: float, limit_s: float) -> bytes:
    if response.status_code != 200:
        raise UserError(f"The image URL answered HTTP {response.status_code}, not the picture; check the URL.")
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not kind.startswith("image/"):
        raise UserError(f"The image URL is not an image (its server says {kind[:60] or 'nothing'}); send the URL of "
                        "the picture itself.")
    too_big = UserError(f"The image at the URL is larger than {max_bytes / 2**20:g} MB; send a smaller picture.")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_big
    data = bytearray()
    for piece in response.iter_bytes():  # each read as it comes (a chunk size would wait for a trickle to fill it)
        data += piece
        if len(data) > max_bytes:
            raise too_big
        if time.monotonic() > deadline:
            raise UserError(f"The image URL did not finish within {limit_s:g} s; send a smaller picture or a data "
                            "URL.")
    return bytes(data)
