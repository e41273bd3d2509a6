import pytest

from tests.sandbox import Sandbox


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path)
