import os
import socket
import sys

# What users install is what we test: `import credproc` must be the installed wheel in site-packages,
# not this checkout. pytest runs with --import-mode=append (pyproject.toml), but `python -m pytest`
# still puts the current directory first: move the checkout to the end, before anything imports
# credproc. tests/test_installed.py checks it.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_here = [p for p in sys.path if os.path.abspath(p or os.curdir) == _ROOT]
sys.path[:] = [p for p in sys.path if p not in _here] + [_ROOT]


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
