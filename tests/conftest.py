import socket

import pytest

from tests.peers.moto import CountingProxy, MotoServer


@pytest.fixture(scope="session")
def moto_server():
    """One moto server (no-auth mode) for the whole run; tests reset state they depend on."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def sts(moto_server):
    """A counting proxy in front of the shared moto server, fresh for each test."""
    proxy = CountingProxy(moto_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def dead_url():
    """A loopback URL where nothing listens (bound, not listening: connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
