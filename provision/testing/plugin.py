"""The pytest plugin: a cluster for the whole test session.

Options (``pytest --help``, group "provision"):

- ``--provision-inventory PATH``: the inventory (default: the local sandbox);
- ``--provision-extra-vars KEY=VALUE`` (repeatable; ``@file.yml`` loads a file): extra vars;
- ``--provision-state-dir DIR``: keys, known_hosts, cluster state (default ``.provision``);
- ``--provision-keep``: leave the cluster up at the end (tear it down with ``provision down``).

Each option can also be set in ``[tool.pytest.ini_options]`` (``provision_inventory``,
``provision_extra_vars`` (a list), ``provision_state_dir``, ``provision_keep``); the command
line wins.

The session fixture ``provision_cluster`` brings the cluster up once, verified, and yields the
``provision.Cluster`` (``url``, ``hosts``, ``routes``, ``connection()``, ``run_playbook()``).
The cluster is torn down at the end of the session whatever happened: failed tests, an ``up``
that failed halfway (torn down before the error is raised), Ctrl-C (pytest still runs the
session's finalizers). A teardown that fails is an error of the session (exit code 1) and is
named in the summary. While ``up`` runs, one line per task result goes to stderr
("provision: ..."); what happened is in the summary at the end ("provision" section). With
the local sandbox and no Docker engine, the tests that use the fixture are skipped, saying why.

Under pytest-xdist (``-n N``) the workers share one cluster: the first worker that needs it
brings it up while the others wait (a file lock in a folder of this session's own), the
others use it, and the controller tears it down once every worker is done. A failed ``up`` is
an error in each worker that asked for the cluster, and is not tried again.

Nothing is imported or started unless a test requests the fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from provision.api import Cluster

__all__ = [
    "provision_cluster",
    "pytest_addoption",
    "pytest_configure",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
]

_NOTES = pytest.StashKey[list[str]]()
#: Set by the xdist controller for its workers: the folder where they share the cluster.
SHARED_ENV = "PROVISION_PYTEST_SHARED"
#: ... and its pid: the workers write their progress to its stderr.
CONTROLLER_ENV = "PROVISION_PYTEST_CONTROLLER"


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
    parser.addini("provision_inventory", "inventory of the provision_cluster fixture")
    parser.addini("provision_extra_vars", "extra variables (KEY=VALUE each)", type="linelist")
    parser.addini("provision_state_dir", "where keys, known_hosts and cluster state live")
    parser.addini("provision_keep", "leave the cluster up after the session", type="bool")


def _option(config: pytest.Config, name: str) -> Any:
    """A setting: the command line's, else ``[tool.pytest.ini_options]``'s, else the default."""
    given = config.getoption(name)
    default = {"provision_extra_vars": [], "provision_state_dir": ".provision"}.get(name)
    if given not in (None, False, [], default):
        return given
    ini = config.getini(name)
    return ini if ini not in (None, "", []) else given


def pytest_configure(config: pytest.Config) -> None:
    """The xdist controller (``-n N``, not a worker) makes the folder its workers will share
    the cluster through, before it starts them (they inherit the environment)."""
    if getattr(config, "workerinput", None) is None and _xdist_workers(config):
        shared = Path(tempfile.gettempdir()) / f"provision-pytest-{uuid.uuid4().hex[:12]}"
        shared.mkdir(mode=0o700)
        os.environ[SHARED_ENV] = str(shared)
        os.environ[CONTROLLER_ENV] = str(os.getpid())
        config.stash[_SHARED] = shared


_SHARED = pytest.StashKey[Path]()


def _xdist_workers(config: pytest.Config) -> int:
    given = config.getoption("numprocesses", default=None)  # None: no pytest-xdist
    try:
        return int(given or 0)
    except (ValueError, TypeError):  # -n auto/logical: resolved later, some workers anyway
        return 1


def _notes(config: pytest.Config) -> list[str]:
    return config.stash.setdefault(_NOTES, [])


def _down_hint(config: pytest.Config) -> str:
    args = ["provision", "down"]
    if _option(config, "provision_inventory"):
        args += ["-i", str(_option(config, "provision_inventory"))]
    for var in _option(config, "provision_extra_vars"):
        args += ["-e", var]
    if _option(config, "provision_state_dir") != ".provision":
        args += ["--state-dir", str(_option(config, "provision_state_dir"))]
    return " ".join(args)


def _cluster(config: pytest.Config) -> Cluster:
    from provision.api import Cluster, Options
    from provision.load.inventory import parse_extra_vars

    options = Options(
        extra_vars=parse_extra_vars(_option(config, "provision_extra_vars")),
        state_dir=Path(_option(config, "provision_state_dir")),
    )
    return Cluster(_option(config, "provision_inventory"), options=options)


def _tear_down(cluster: Cluster, config: pytest.Config, why: str) -> tuple[str, Exception | None]:
    """``down`` the session's cluster: the summary's line, and the error when it failed (a
    refusal, a cloud error, a failed task), with the command that finishes by hand."""
    from provision.errors import ClusterFailed

    started = time.monotonic()
    try:
        report = cluster.down()
    except Exception as exc:  # refused (another run holds the lock), cloud error...
        return f"TEARDOWN FAILED ({why}): {exc}; remove it by hand: {_down_hint(config)}", exc
    if report.failed:
        failed = ClusterFailed(report, "provision_cluster: teardown failed")
        return f"TEARDOWN FAILED ({why}); remove it by hand: {_down_hint(config)}", failed
    return f"cluster torn down ({why}) in {time.monotonic() - started:.0f} s", None


def _progress(event: Any) -> None:
    """One line per task result on stderr while ``up`` runs (a run takes minutes). An xdist
    worker's own stderr goes nowhere: there, the controller's (``/proc/PID/fd/2``, Linux)."""
    if event.kind != "result":
        return
    line = f"provision: {event.data.get('status', '')} {event.host}: {event.task}\n"
    controller = os.environ.get(CONTROLLER_ENV)
    # Only in a worker of that controller (its child): a pytest session started by a test,
    # which inherits the variable, writes to its own stderr.
    if controller and controller == str(os.getppid()):
        with contextlib.suppress(OSError), open(f"/proc/{controller}/fd/2", "a") as theirs:
            theirs.write(line)
            return
    if sys.__stderr__ is not None:
        sys.__stderr__.write(line)
        sys.__stderr__.flush()


def _skip_without_engine(config: pytest.Config) -> None:
    if _option(config, "provision_inventory"):
        return  # a cloud or SSH hosts: no local engine needed
    from provision.sandbox import available

    if not available():
        pytest.skip("provision_cluster: the local sandbox needs a Docker engine, and none "
                    "answers (start dockerd, or give --provision-inventory)")  # fmt: skip


@contextlib.contextmanager
def _locked(shared: Path) -> Iterator[Path]:
    """The shared folder's state file, under an exclusive lock (the first worker holds it
    through ``up``: the others wait for its outcome)."""
    from provision.connection.flock import held  # nothing imported until a test asks

    with held(shared / "lock"):
        yield shared / "state.json"


@pytest.fixture(scope="session")
def provision_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster, up and verified, for the whole session; torn down at its end."""
    from provision.errors import ConfigError

    config = request.config
    _skip_without_engine(config)
    shared = os.environ.get(SHARED_ENV)
    if shared and getattr(config, "workerinput", None) is not None:
        yield _shared_cluster(config, Path(shared))
        return
    notes = _notes(config)
    keep = bool(_option(config, "provision_keep"))
    cluster = _cluster(config)

    def teardown(why: str) -> None:
        if keep:
            notes.append(f"cluster left up (--provision-keep); remove it: {_down_hint(config)}")
            return
        note, error = _tear_down(cluster, config, why)
        notes.append(note)
        if error is not None:
            raise error

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

    report = up(cluster.inventory, cluster.options, on_event=_progress)
    if report.failed:
        raise ClusterFailed(report, "provision_cluster: up failed")
    failed = [c.name for c in report.checks if not c.passed]
    if failed:
        raise ClusterFailed(report, f"provision_cluster: checks failed: {', '.join(failed)}")
    return report


def _shared_cluster(config: pytest.Config, shared: Path) -> Cluster:
    """A worker's cluster under xdist: up by the first worker that asks (the others wait on
    the lock), then used by all; the controller tears it down (``pytest_sessionfinish``)."""
    from provision.errors import ConfigError

    cluster = _cluster(config)
    worker = str(getattr(config, "workerinput", {}).get("workerid", "?"))
    with _locked(shared) as state_file:
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        if not state:
            started = time.monotonic()
            try:
                cluster.report = _up(cluster)
            except ConfigError:
                raise  # bad input: nothing was made; each worker finds it again
            except BaseException as exc:
                # What the failed up made comes down first; then its outcome is recorded for
                # the other workers (and the controller's summary).
                cleanup, _ = _tear_down(cluster, config, "setup failed")
                state = {"state": "failed", "error": str(exc), "by": worker, "cleanup": cleanup}
                with contextlib.suppress(OSError):  # the session's folder may be gone (Ctrl-C)
                    state_file.write_text(json.dumps(state))
                raise
            state = {"state": "up", "by": worker, "url": cluster.url,
                     "seconds": round(time.monotonic() - started)}  # fmt: skip
            # The up's report, for the workers that did not run it (``cluster.report``): this
            # session's own folder (0700), read back by the same code.
            (shared / "report.pickle").write_bytes(pickle.dumps(cluster.report))
            state_file.write_text(json.dumps(state))
        elif state["state"] == "up":
            cluster.report = pickle.loads((shared / "report.pickle").read_bytes())
    if state["state"] != "up":
        raise RuntimeError(f"provision_cluster: up failed in worker {state['by']}: "
                           f"{state['error']}")  # fmt: skip
    return cluster


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The xdist controller, once every worker is done: the shared cluster comes down (unless
    kept); a teardown that fails makes the session fail."""
    config = session.config
    shared = config.stash.get(_SHARED, None)
    if shared is None:
        return
    os.environ.pop(SHARED_ENV, None)
    os.environ.pop(CONTROLLER_ENV, None)
    with _locked(shared) as state_file:  # an up still running in a worker: wait for it
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
    notes = _notes(config)
    try:
        if state.get("state") == "failed":
            notes.append(f"up failed in {state['by']}: {state['error']}; what it made: "
                         f"{state['cleanup']}")  # fmt: skip
            if state["cleanup"].startswith("TEARDOWN FAILED"):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if state.get("state") != "up":
            return
        notes.append(f"one cluster for every worker: up and verified by {state['by']} in "
                     f"{state['seconds']} s: {state['url']}")  # fmt: skip
        if _option(config, "provision_keep"):
            notes.append(f"cluster left up (--provision-keep); remove it: {_down_hint(config)}")
            return
        note, error = _tear_down(_cluster(config), config, "end of session, by the controller")
        notes.append(note)
        if error is not None:  # said, and the session fails
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        for leftover in shared.iterdir():
            leftover.unlink()
        shared.rmdir()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    notes = config.stash.get(_NOTES, [])
    if not notes:
        return
    terminalreporter.section("provision")
    for line in notes:
        terminalreporter.write_line(line, red=line.startswith("TEARDOWN FAILED"))
