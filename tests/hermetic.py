"""The test session never reaches the network: TCP connections may go only to this machine (loopback or its own
addresses), and proxy variables of the outer environment are dropped, so no test behaves differently with network
or a proxy present. A test that tries anyway fails with its name and the address (installed by tests/conftest.py).
"""

from __future__ import annotations

import ipaddress
import os
import socket

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
              "FTP_PROXY")
CURRENT = {"test": "(collection)"}
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


class NetworkBlocked(OSError):
    """A test tried to open a connection off this machine."""


def own_addresses() -> set[str]:
    found = {"127.0.0.1", "::1"}
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # UDP connect sends nothing
            _connect(s, ("192.0.2.1", 9))
            found.add(s.getsockname()[0])
    except OSError:
        pass
    try:
        found |= {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return found


def _local(address, mine: set[str]) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", "") or host in mine:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: resolved elsewhere, and not this machine


def install() -> None:
    for var in PROXY_VARS:
        os.environ.pop(var, None)
    mine = own_addresses()

    def check(sock, address):
        if sock.type == socket.SOCK_STREAM and not _local(address, mine):
            raise NetworkBlocked(f"{CURRENT['test']} tried to connect to {address!r}: tests must not use the "
                                 "network (only this machine is allowed)")

    def connect(self, address):
        check(self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return _connect_ex(self, address)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
