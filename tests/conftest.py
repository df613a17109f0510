import pytest  # noqa: F401


def pytest_configure(config):
    config.addinivalue_line("markers", "network: needs PyPI (deselect with -m 'not network')")
