"""The suite's own arrangement (tests/conftest.py): under pytest-xdist's ``--dist loadgroup``
each test runs in its file's group (or the shared cluster's), so that a module's host or
cluster is made once and the shared cluster once per session. pytest 9.2.0 silently lost that
(every test handed out on its own: three shared clusters, each module's host made on every
worker), which only this test tells at once."""

from __future__ import annotations

import os

import pytest


def test_this_test_runs_in_its_file_s_xdist_group(request: pytest.FixtureRequest) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("not under pytest-xdist (-n 0)")
    argv = " ".join(getattr(request.config, "workerinput", {}).get("mainargv", ()))
    if "--dist" in argv and "--dist loadgroup" not in argv and "--dist=loadgroup" not in argv:
        pytest.skip("another --dist than the project's (addopts: --dist loadgroup)")
    assert request.node.nodeid.endswith(f"@{request.node.path.as_posix()}"), request.node.nodeid
