import os
import sys

import pytest

from tests.peers.oidc import OidcProvider, node_available
from tests.sandbox import Sandbox

ROLE_DEV = "arn:aws:iam::111111111111:role/dev"
ROLE_OPS = "arn:aws:iam::222222222222:role/ops"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path)


@pytest.fixture
def mfa_counter(tmp_path):
    """An mfa_command that prints a code and counts how often it ran: (command, count())."""
    log = tmp_path / "mfa-calls"
    script = tmp_path / "mfa.py"
    script.write_text(f"import sys\nopen({str(log)!r}, 'a').write('x\\n')\nprint('123456')\n")
    return f"{sys.executable} {script}", lambda: len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture
def op():
    """The real OIDC provider (npm oidc-provider) on loopback, offering two roles in aws_roles."""
    reason = node_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with OidcProvider(roles=[ROLE_DEV, ROLE_OPS], id_token_ttl=60) as provider:
        yield provider
