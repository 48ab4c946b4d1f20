"""Fixtures shared by several integration test modules (session-wide ones: tests/conftest.py)."""
from __future__ import annotations

import pytest

from chain_helpers import bridge_conf, ok, run


@pytest.fixture
def attached(tmp_path, host_ns, cont_ns, built_bins):
    """Container "ctr1" attached by bridge (chain_helpers.bridge_conf); yields the ADD result,
    DELs it afterwards. The start of a chain for the meta plugins' tests."""
    prev = ok(run("bridge", "ADD", bridge_conf(tmp_path), host_ns, cont_ns, "ctr1"))
    yield prev
    run("bridge", "DEL", bridge_conf(tmp_path), host_ns, cont_ns, "ctr1")
