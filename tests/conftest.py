"""Shared fixtures: hermetic environment, an SSH key pair, and sandbox hosts.

Integration tests (``@pytest.mark.integration``, and everything under
``tests/integration``) run against EC2-like hosts that are containers of the
local Docker engine. Without an engine they are skipped, except in CI
(``CI=true``), where they fail: CI must never go green by skipping them.

Everything the tests create carries ``io.provision.test=<session id>`` and is
removed at the end of the session, even after failures.
"""

from __future__ import annotations

import compileall
import contextlib
import itertools
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.connection.flock import held
from provision.sandbox import cloud, hosts, images, localdocker
from provision.sandbox.hosts import SandboxHost
from tests import bounds
from tests.clirun import failure, provision_cli
from tests.helpers import hermetic_env, remove_sandbox_cluster
from tests.wheel import install_wheel, user_env

TEST_LABEL = "io.provision.test"
log = logging.getLogger("provision.tests")


def pytest_configure(config: pytest.Config) -> None:
    # The tools installed beside the Python that runs the tests (ansible-playbook, mypy in
    # the checkout's .venv) are found as in an activated environment, also when pytest runs
    # as `.venv/bin/python -m pytest` (the README's test command) without one.
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if here not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(p for p in (here, path) if p)
    if not hasattr(config, "workerinput"):  # once, in the controller, before the workers
        _compile_the_package()


def _compile_the_package() -> None:
    """The package's bytecode, as an installed wheel has it (pip compiles at install): the
    checkout's package is installed editable, and where PYTHONDONTWRITEBYTECODE is set (this
    machine sets it) each of the suite's hundreds of ``provision`` processes would compile
    every module it imports again (a quarter of the CLI tests' time). Python reads the files
    whatever that variable says, and one whose recorded source time or size no longer match
    (a source edited since) is not used."""
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "provision", quiet=1)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


# The longest test files first, as measured (seconds of their tests in an unloaded run on
# three workers, 2026-12-08): pytest-xdist hands whole groups to its workers in collection
# order (`--no-loadscope-reorder`; by default it orders them by their number of tests, which
# left the swarm module to the end, one worker running it while the others had nothing to
# do). The rest follow in their own order, the quick unit and moto tests last, to fill the gaps.
LONGEST_FIRST = (
    # ~65 s, nearly all of it waiting for the host's power-off at its ttl: first, so that the
    # other workers have the machine meanwhile.
    "integration/test_sandbox_ttl.py",
    # ~70 s, most of it apt and pip in a bare host reaching Debian's mirror and PyPI.
    "integration/test_newcomer.py",
    "integration/test_swarm.py",  # ~210 s
    # The shared cluster's group (this file's tests and those of day_two, reads_once,
    # host_restart, router_under_load: one worker, SHARED_CLUSTER_GROUP): ~150 s.
    "faults/test_host_lock.py",
    "integration/test_sandbox_e2e.py",  # ~145 s
    "integration/test_pipeline.py",  # ~120 s
    "integration/test_pytest_plugin_faults.py",  # ~100 s
    "integration/test_redis_cluster.py",  # ~90 s
    "integration/test_pytest_plugin.py",  # ~65 s
    "integration/test_router_local.py",  # ~60 s
    "integration/test_strategies.py",  # ~55 s
    "integration/test_sandbox.py",  # ~50 s
    "packaging/test_light_install.py",  # ~45 s, pip from the package index
    "faults/test_disk_full.py",  # ~45 s
    "faults/test_dpkg_lock.py",  # ~45 s
    "faults/test_concurrent_up.py",  # ~45 s
    "integration/test_router_cluster_local.py",  # ~40 s
    "integration/test_readme_examples.py",  # ~40 s
    "faults/test_ssh_dropped.py",  # ~35 s
)


def _run_order(item: pytest.Item) -> tuple[int, int]:
    path = item.path.as_posix()
    for rank, name in enumerate(LONGEST_FIRST):
        if path.endswith("/tests/" + name):
            return (0, rank)
    quick = "unit" in item.path.parts or "moto_tests" in item.path.parts
    return (2 if quick else 1, 0)


#: The shared cluster's check after each test that used it (``SharedCluster.health``).
HEALTH_PLAYBOOK = Path(__file__).resolve().parent / "health.yml"

#: Files whose tests share nothing made per module (each makes its own in tmp_path): each test
#: is a group of its own, so that they fill the workers' gaps instead of holding one worker
#: for the whole file (the Ansible oracle: ~35 tests of ~3 s).
SPREAD = ("/tests/oracle/test_ansible_playbook.py",)

#: The xdist group (``--dist loadgroup``) of every test that uses the session's shared cluster:
#: one worker runs them all, so that the cluster is made once, not once per worker.
SHARED_CLUSTER_GROUP = "shared-cluster"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Everything under tests/integration is an integration test, marked or not; every
    # integration test is slow (a Docker engine, hosts, clusters): `-m "not slow"` leaves
    # the unit, moto and packaging tests, the quick loop. Each test's xdist group is its file
    # (a file stays whole on one worker: a module's host or cluster is made once), or the
    # shared cluster's.
    for item in items:
        shared = "shared_cluster" in getattr(item, "fixturenames", ())
        group = SHARED_CLUSTER_GROUP if shared else item.path.as_posix()
        if item.path.as_posix().endswith(SPREAD):
            group = item.nodeid
        item.add_marker(pytest.mark.xdist_group(group))
        if "integration" in item.path.parts and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") is not None:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_run_order)  # stable: each file's tests keep their order


# ---------------------------------------------------------------- hermetic


@pytest.fixture(autouse=True)
def _hermetic_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Fake AWS credentials, no AWS/SSH config or agent of the user's, a scratch HOME.

    Note: the `ssh` binary reads ~/.ssh/config from the passwd entry, not HOME;
    build ssh commands with ``ssh_argv`` (it passes ``-F none``).
    """
    hermetic_env(monkeypatch, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
def test_session_id() -> str:
    """Unique per pytest session; the value of the ``io.provision.test`` label."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def sandbox_labels(test_session_id: str, _sweep_test_resources: None) -> dict[str, str]:
    """Labels to put on anything a test creates in the local engine."""
    return {TEST_LABEL: test_session_id}


@pytest.fixture(scope="session")
def _sweep_test_resources(test_session_id: str) -> Iterator[None]:
    """At session end, remove every container/volume/network this session labelled.

    Requested by ``docker_engine``, so a run of unit tests alone never calls ``docker``."""
    yield
    if shutil.which("docker") is None:
        return
    with contextlib.suppress(localdocker.EngineUnavailable):
        hosts.remove_all(f"{TEST_LABEL}={test_session_id}")


# ---------------------------------------------------------------- engine, images


@pytest.fixture(scope="session")
def docker_engine(_sweep_test_resources: None) -> None:
    """A local Docker engine that answers: skip without one, fail in CI."""
    if localdocker.available():
        return
    reason = "no local Docker engine answers (`docker info` failed)"
    if _in_ci():
        pytest.fail(f"{reason}; CI=true, so integration tests must not be skipped")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _integration_needs_docker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is not None:
        request.getfixturevalue("docker_engine")


@pytest.fixture(scope="session")
def sandbox_images(docker_engine: None) -> None:
    """SSH host images for bookworm and trixie, bare and Docker-ready, and the
    redis/openresty stand-ins."""
    images.ensure_images(("bookworm", "trixie"), docker_ready=True, progress=log.info)


@pytest.fixture(scope="session")
def _wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once for the whole run: under pytest-xdist, the first worker that needs it
    builds it in the folder the workers' temporary folders share, under a lock; the others
    wait for it and use it (it is only read)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # basetemp/popen-gwN: the run's basetemp
    top, done = shared / "wheel-venv", shared / "wheel-venv.done"
    with held(shared / "wheel-venv.lock"):
        if not done.exists():
            shutil.rmtree(top, ignore_errors=True)  # a worker that failed halfway
            top.mkdir()
            bindir, _ = install_wheel(top)
            done.write_text(str(bindir))
    return Path(done.read_text())


@pytest.fixture
def installed_package(_wheel_venv: Path) -> tuple[Path, dict[str, str]]:
    """The package as a user installs it: the wheel built from this checkout, installed into a
    fresh venv (``tests/wheel.py``), made once per session and only used, never changed, by
    the tests: the venv's bin/ folder, and this test's (hermetic) environment without the
    checkout on PYTHONPATH."""
    return _wheel_venv, user_env()


# ---------------------------------------------------------------- keys


@dataclass(frozen=True)
class SSHKeyPair:
    private_key: Path
    public_key_file: Path
    public_key: str


@pytest.fixture(scope="session")
def ssh_keypair(tmp_path_factory: pytest.TempPathFactory) -> SSHKeyPair:
    """An ed25519 key pair without passphrase; the private key file is mode 0600."""
    folder = tmp_path_factory.mktemp("ssh-key")
    folder.chmod(0o700)
    private = folder / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "provision-test", "-f", str(private)],
        check=True,
        capture_output=True,
    )
    private.chmod(0o600)
    public_file = private.with_suffix(".pub")
    return SSHKeyPair(private, public_file, public_file.read_text(encoding="utf-8").strip())


# ---------------------------------------------------------------- hosts

_host_numbers = itertools.count(1)


class HostFactory:
    """Starts sandbox hosts (ready for SSH) and removes all of them on ``close``.

    >>> host = ssh_host_factory()                        # doctest: +SKIP
    >>> host = ssh_host_factory("db", distro="trixie")   # doctest: +SKIP
    """

    def __init__(self, keypair: SSHKeyPair, labels: dict[str, str], session_id: str) -> None:
        self._keypair = keypair
        self._labels = labels
        self._prefix = f"t{session_id[:6]}"
        self.started: list[SandboxHost] = []

    def __call__(
        self,
        name: str | None = None,
        *,
        distro: str = "bookworm",
        wait: bool = True,
        bare: bool = False,
        preloaded: bool = True,
        apt_daily: float = 0,
    ) -> SandboxHost:
        """A host with Docker and Compose installed (the Docker-ready image) whose engine
        holds the service images, or without them (``preloaded=False``: for the tests of
        sending images), or with ``bare`` neither: only the tests of the install path need
        a bare host. ``apt_daily``: seconds its apt-daily stand-in holds the apt lists
        lock from boot (the realism layer's host row)."""
        name = f"{self._prefix}-{name or 'host'}-{next(_host_numbers)}"
        host = hosts.start_host(
            name,
            distro=distro,
            public_key=self._keypair.public_key,
            labels=self._labels,
            docker_ready=not bare,
            preloaded=preloaded and not bare,
            apt_daily=apt_daily,
        )
        self.started.append(host)
        if wait:
            hosts.wait_for_ssh(host, timeout=bounds.SSH_BANNER)
        return host

    def close(self) -> None:
        errors: list[BaseException] = []
        for host in reversed(self.started):
            try:
                hosts.remove_host(host.name)
            except Exception as exc:  # keep removing the others
                errors.append(exc)
        self.started.clear()
        if errors:
            raise errors[0]


def _factory(keypair: SSHKeyPair, labels: dict[str, str], session_id: str) -> Iterator[HostFactory]:
    factory = HostFactory(keypair, labels, session_id)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def ssh_host_factory(
    sandbox_images: None, ssh_keypair: SSHKeyPair, sandbox_labels: dict[str, str],
    test_session_id: str,
) -> Iterator[HostFactory]:  # fmt: skip
    """Hosts for one test; removed when the test ends, pass or fail."""
    yield from _factory(ssh_keypair, sandbox_labels, test_session_id)


@pytest.fixture(scope="module")
def module_ssh_host_factory(
    sandbox_images: None, ssh_keypair: SSHKeyPair, sandbox_labels: dict[str, str],
    test_session_id: str,
) -> Iterator[HostFactory]:  # fmt: skip
    """Hosts shared by the tests of one module (e.g. one host with Docker installed)."""
    yield from _factory(ssh_keypair, sandbox_labels, test_session_id)


@pytest.fixture
def ssh_host(ssh_host_factory: HostFactory) -> SandboxHost:
    """One fresh Docker-ready bookworm host, answering SSH."""
    return ssh_host_factory()


@pytest.fixture
def bare_ssh_host(ssh_host_factory: HostFactory) -> SandboxHost:
    """One fresh bare bookworm host (no Docker), answering SSH."""
    return ssh_host_factory(bare=True)


@pytest.fixture
def ssh_argv(
    ssh_keypair: SSHKeyPair, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., list[str]]:
    """``ssh_argv(host, "sudo", "true")`` -> an argv for the ``ssh`` binary.

    The remote words are quoted (``shlex.join``), so they arrive as that argv;
    for a shell script pass ``"sh", "-c", SCRIPT``. Ignores the user's ssh
    config and agent, and pins the host key read from the container
    (StrictHostKeyChecking=yes).
    """
    folder = tmp_path_factory.mktemp("known-hosts")

    def build(host: SandboxHost, *remote: str) -> list[str]:
        known = folder / f"{host.name}"
        known.write_text(hosts.known_hosts_line(host) + "\n", encoding="utf-8")
        return [
            "ssh", "-F", "none", "-i", str(ssh_keypair.private_key),
            "-p", str(host.port), "-l", host.user,
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
            "-o", "ConnectTimeout=10", host.address, "--", shlex.join(remote),
        ]  # fmt: skip

    return build


@pytest.fixture
def empty_docker_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """For unit tests of commands that ask the local engine what exists: a ``docker`` first
    on PATH that answers every call with success and nothing listed (an engine with no
    sandbox in it), and records each call's arguments in the returned file."""
    folder = tmp_path / "empty-docker"
    folder.mkdir()
    calls = folder / "calls"
    stub = folder / "docker"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(calls))}\nexit 0\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return calls


# ---------------------------------------------------------------- a shared sandbox cluster


@dataclass
class SharedCluster:
    """A sandbox cluster made once per session by ``provision up``, for the
    tests that only read it or restore what they change: ``cwd`` holds its state, ``name`` is
    its ``cluster_name``, ``url`` its OpenResty, ``container`` its host's container id."""

    cwd: Path
    name: str
    url: str
    container: str
    broken_by: str = ""

    @property
    def var(self) -> str:
        return f"cluster_name={self.name}"

    def health(self, *, full: bool = False) -> str:
        """ "" when every check passes; else what failed. The read-only checks
        (``tests/health.yml``, run by ``provision play``, which also takes the cluster's run
        lock for a moment: a lock a test left held fails it too), or with ``full`` all of
        ``provision verify``'s, the two that restart Redis and change the route table for a
        moment too."""
        argv = ("verify",) if full else ("play", str(HEALTH_PLAYBOOK))
        done = provision_cli(*argv, "-e", self.var, "--json", cwd=self.cwd,
                             timeout=bounds.CLI_RUN)  # fmt: skip
        if done.returncode != 0:
            return failure(done)
        failed = [c["summary"] for c in json.loads(done.stdout)["checks"] if not c["passed"]]
        return "; ".join(failed)


@pytest.fixture(scope="session")
def _shared_cluster(
    sandbox_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedCluster]:
    cwd = tmp_path_factory.mktemp("shared-cluster")
    name = f"shared-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as monkeypatch:  # made before any test's own env
        hermetic_env(monkeypatch, tmp_path_factory.mktemp("home"))
        try:
            done = provision_cli("up", "-e", f"cluster_name={name}", "--json", cwd=cwd,
                                 timeout=bounds.CLI_RUN)  # fmt: skip
            assert done.returncode == 0, failure(done)
            url = json.loads(done.stdout)["resources"]["url"]
            (container,) = localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
            shared = SharedCluster(cwd, name, url, container)
            yield shared
            # After every test only the read-only checks ran (shared_cluster): the whole
            # suite once, at the end, so that Redis still restarts and routes still change.
            if not shared.broken_by:
                problem = shared.health(full=True)
                assert not problem, (
                    f"the shared cluster {name} fails `provision verify` at the end of the "
                    f"session (its last check, not this test's): {problem}"
                )
        finally:
            remove_sandbox_cluster(cwd, name, unlock=True)


@pytest.fixture
def shared_cluster(
    _shared_cluster: SharedCluster, request: pytest.FixtureRequest
) -> Iterator[SharedCluster]:
    """The session's shared sandbox cluster, verified healthy around each test that uses it.

    A test must leave it as it found it (or restore it): after the test, the read-only checks
    of ``provision verify`` run (``tests/health.yml``; the whole suite once, at the end of the
    session), and a test that leaves it failing errors at teardown, naming itself; the later tests
    that ask for it then fail at once, naming that test, instead of failing for its reasons.
    Tests that must own a cluster (they break it for good or tear it down) make their own and
    carry the ``own_cluster`` marker."""
    shared = _shared_cluster
    if shared.broken_by:
        pytest.fail(f"the shared cluster {shared.name} was left broken by {shared.broken_by}")
    yield shared
    problem = shared.health()
    if problem:
        shared.broken_by = request.node.nodeid
        pytest.fail(
            f"{request.node.nodeid} left the shared cluster {shared.name} broken: {problem}"
        )
