from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool (tests/run.sh installs the `prometheus` package); absent means a broken setup."""
    path = shutil.which("promtool")
    assert path, "promtool not found: run tests/run.sh or `apt-get install prometheus`"
    return path
