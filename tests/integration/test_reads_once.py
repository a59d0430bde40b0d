"""Reads once (#27): a no-op ``up`` reads each host in one batch.

Each module declares what it reads (``ModuleSpec.reads``); the runner sends every task's
declared reads to a host in one round trip (``run_many``) at the start of a play, and each
task's ``apply`` is answered from that batch while nothing has changed. On a no-op ``up``
nothing changes, so no task of the converge may send a read of its own. The test runs a
no-op ``up`` of the shared cluster in this process, every SSH command recorded by the task
that sent it, and checks each module of the converge: one test per module.

Not converge reads, so not counted: ``verify`` (the proof looks at the live cluster, each
check after the one before), and ``routes`` when this controller recorded routes (it asks
Redis, through a tunnel, whether it still holds them). The swarm's modules are checked the
same way in ``tests/integration/test_swarm.py``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.helpers import recorded_up

pytestmark = pytest.mark.integration

CONVERGE = ["docker_engine", "docker_network", "docker_images", "secret", "copy", "compose"]
_runs: dict[str, Any] = {}


@pytest.fixture
def no_op_up(shared_cluster, monkeypatch) -> Any:
    """The log of one no-op ``up`` of the shared cluster, made once for this module's tests."""
    if "log" not in _runs:
        report, log = recorded_up(monkeypatch, shared_cluster.cwd,
                                  {"cluster_name": shared_cluster.name})  # fmt: skip
        assert not report.failed
        assert all(r.changed == 0 for r in report.recap.values()), report.recap
        _runs["log"] = log
    return _runs["log"]


def test_a_no_op_up_sends_one_read_batch_per_host_for_the_converge(no_op_up):
    batches = Counter(on for host, module, on, what in no_op_up if what.startswith("BATCH"))
    assert batches and set(batches.values()) == {1}, batches  # one per host, the whole run


@pytest.mark.parametrize("module", CONVERGE)
def test_a_module_reads_only_from_the_batch_on_a_no_op_up(no_op_up, module):
    ran = [r for r in no_op_up if r[1] == module]
    assert ran == [], ran  # no command of its own: its reads came from the batch
