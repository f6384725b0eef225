"""The session guard itself: off-machine connections fail naming the test; this machine stays reachable."""

import os
import socket

import pytest

from tests.hermetic import PROXY_VARS, NetworkBlocked


def test_connections_off_this_machine_fail_naming_the_test():
    with pytest.raises(NetworkBlocked, match="test_connections_off_this_machine_fail_naming_the_test.*93.184.215.14"):
        socket.create_connection(("93.184.215.14", 443), timeout=1)


def test_this_machine_stays_reachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


def test_no_proxy_variable_of_the_outer_environment_reaches_the_tests():
    assert not [v for v in PROXY_VARS if v in os.environ]
