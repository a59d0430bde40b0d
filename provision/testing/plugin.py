"""The pytest plugin: a cluster for the whole test session.

Options (``pytest --help``, group "provision"):

- ``--provision-inventory PATH``: the inventory (default: the local sandbox);
- ``--provision-extra-vars KEY=VALUE`` (repeatable; ``@file.yml`` loads a file): extra vars;
- ``--provision-state-dir DIR``: keys, known_hosts, cluster state (default ``.provision``);
- ``--provision-keep``: leave the cluster up at the end (tear it down with ``provision down``).

The session fixture ``provision_cluster`` brings the cluster up once, verified, and yields the
``provision.Cluster`` (``url``, ``hosts``, ``routes``, ``connection()``, ``run_playbook()``).
The cluster is torn down at the end of the session whatever happened: failed tests, an ``up``
that failed halfway (torn down before the error is raised), Ctrl-C (pytest still runs the
session's finalizers). A teardown that fails is an error of the session (exit code 1) and is
named in the summary. The runs print nothing while tests run; what happened is in the
summary at the end ("provision" section).

Nothing is imported or started unless a test requests the fixture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from provision.api import Cluster

__all__ = ["provision_cluster", "pytest_addoption", "pytest_terminal_summary"]

_NOTES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("provision", "provision: a cluster for the test session")
    group.addoption(
        "--provision-inventory",
        metavar="PATH",
        default=None,
        help="inventory of the provision_cluster fixture (default: the local sandbox)",
    )
    group.addoption(
        "--provision-extra-vars",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="extra variables for the cluster (repeatable; @file.yml loads a file)",
    )
    group.addoption(
        "--provision-state-dir",
        metavar="DIR",
        default=".provision",
        help="where keys, known_hosts and cluster state live (default: .provision)",
    )
    group.addoption(
        "--provision-keep",
        action="store_true",
        default=False,
        help="leave the cluster up after the session (remove it with `provision down`)",
    )


def _notes(config: pytest.Config) -> list[str]:
    return config.stash.setdefault(_NOTES, [])


def _down_hint(config: pytest.Config) -> str:
    args = ["provision", "down"]
    if config.getoption("provision_inventory"):
        args += ["-i", str(config.getoption("provision_inventory"))]
    for var in config.getoption("provision_extra_vars"):
        args += ["-e", var]
    if config.getoption("provision_state_dir") != ".provision":
        args += ["--state-dir", str(config.getoption("provision_state_dir"))]
    return " ".join(args)


@pytest.fixture(scope="session")
def provision_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster, up and verified, for the whole session; torn down at its end."""
    from provision.api import Cluster, Options
    from provision.errors import ClusterFailed, ConfigError, ProvisionError
    from provision.load.inventory import parse_extra_vars

    config = request.config
    notes = _notes(config)
    keep = bool(config.getoption("provision_keep"))
    options = Options(
        extra_vars=parse_extra_vars(config.getoption("provision_extra_vars")),
        state_dir=Path(config.getoption("provision_state_dir")),
    )
    inventory = config.getoption("provision_inventory")
    cluster = Cluster(inventory, options=options)

    def teardown(why: str) -> None:
        if keep:
            notes.append(f"cluster left up (--provision-keep); remove it: {_down_hint(config)}")
            return
        started = time.monotonic()
        try:
            report = cluster.down()
        except ProvisionError as exc:  # refused (another run holds the lock), cloud error...
            notes.append(f"TEARDOWN FAILED ({why}): {exc}; remove it by hand: {_down_hint(config)}")
            raise
        if report.failed:
            notes.append(f"TEARDOWN FAILED ({why}); remove it by hand: {_down_hint(config)}")
            raise ClusterFailed(report, "provision_cluster: teardown failed")
        notes.append(f"cluster torn down ({why}) in {time.monotonic() - started:.0f} s")

    started = time.monotonic()
    try:
        cluster.report = _up(cluster)
    except ConfigError:  # bad input: refused before any host or cloud call, nothing to remove
        raise
    except BaseException:  # a failed or interrupted up: what it made is removed first
        teardown("setup failed")
        raise
    notes.append(f"cluster up and verified in {time.monotonic() - started:.0f} s: {cluster.url}")
    yield cluster
    teardown("end of session")


def _up(cluster: Cluster) -> Any:
    from provision.api import up
    from provision.errors import ClusterFailed

    report = up(cluster.inventory, cluster.options)
    if report.failed:
        raise ClusterFailed(report, "provision_cluster: up failed")
    failed = [c.name for c in report.checks if not c.passed]
    if failed:
        raise ClusterFailed(report, f"provision_cluster: checks failed: {', '.join(failed)}")
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    notes = config.stash.get(_NOTES, [])
    if not notes:
        return
    terminalreporter.section("provision")
    for line in notes:
        terminalreporter.write_line(line, red=line.startswith("TEARDOWN FAILED"))
