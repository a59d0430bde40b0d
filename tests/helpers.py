"""Helpers shared by the test modules (test modules import from here, never from each other).

Hosts and state: ``state_for``, ``up``, ``ssh``, ``container_id``. The CLI on a sandbox
cluster: ``provision``, ``moto_running``, ``left_behind``, ``alive_moto``, ``docker_ls``.
Swarm: ``assert_verified_on_every_node``, ``wait_routed``. The hermetic environment's
values: ``AWS_FAKE_ENV``, ``UNSET_ENV``. Every bound a test waits on: ``bounds``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from provision.api import PLAYBOOKS, Options, host_inventory, run_playbook
from provision.sandbox import cloud, hosts, localdocker
from provision.sandbox.hosts import SandboxHost
from tests import bounds
from tests.clirun import ROOT, provision_cli

__all__ = [
    "AWS_FAKE_ENV",
    "NODE_CHECKS",
    "UNSET_ENV",
    "alive_moto",
    "assert_verified_on_every_node",
    "container_id",
    "docker_ls",
    "hermetic_env",
    "left_behind",
    "moto_running",
    "provision",
    "sigint_default",
    "ssh",
    "state_for",
    "up",
    "wait_routed",
]

AWS_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
UNSET_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_ENDPOINT_URL", "SSH_AUTH_SOCK", "SSH_AGENT_PID")  # fmt: skip


def hermetic_env(monkeypatch: Any, home: Path) -> None:
    """The tests' environment: fake AWS credentials, no AWS/SSH config or agent of the user's,
    a scratch HOME, and Docker-ready sandbox hosts whose engines hold the service images (only
    the tests of the install path, which delete ``PROVISION_SANDBOX_DOCKER_READY``, start bare
    ones and install Docker over SSH; only the tests of sending images delete
    ``PROVISION_SANDBOX_PRELOADED``)."""
    monkeypatch.setenv("HOME", str(home))
    for key, value in AWS_FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    for key in UNSET_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config-absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials-absent"))
    monkeypatch.setenv(cloud.DOCKER_READY_ENV, "1")
    monkeypatch.setenv(cloud.PRELOADED_ENV, "1")


# ---------------------------------------------------------------- one host, through the API


def state_for(host: SandboxHost, folder: Path) -> Path:
    """A state folder whose known_hosts pins the host's key (read from the container)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "known_hosts").write_text(hosts.known_hosts_line(host) + "\n")
    return folder


def up(
    host: SandboxHost, key: Path, state: Path, playbook: Path = PLAYBOOKS / "up.yml", **options: Any
) -> Any:
    """The project's ``up`` playbook (or ``playbook``) run on ``host`` through the API."""
    inventory = host_inventory(f"admin@127.0.0.1:{host.port}", key)
    return run_playbook(playbook, inventory, Options(state_dir=state, **options))


def ssh(host: SandboxHost, key: Path, state: Path, *argv: str) -> str:
    """``argv`` run with sudo on ``host`` over provision's own SSH connection; its stdout."""
    from provision.connection.ssh import Connection

    with Connection(host.host_spec(key), known_hosts=state / "known_hosts") as conn:
        return conn.run(list(argv), sudo=True).stdout


def container_id(host: SandboxHost, key: Path, state: Path, project: str, service: str) -> str:
    """The id of the compose ``project``'s ``service`` container on ``host`` ("" if none)."""
    return ssh(
        host, key, state, "docker", "ps", "-q", "--no-trunc",
        "--filter", f"label=com.docker.compose.project={project}",
        "--filter", f"label=com.docker.compose.service={service}",
    ).strip()  # fmt: skip


# ---------------------------------------------------------------- the CLI on a sandbox cluster


def provision(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``provision ARGS`` in ``cwd``, bounded by ``bounds.CLI_RUN``."""
    return provision_cli(*args, cwd=cwd, timeout=bounds.CLI_RUN)


def moto_running(state: Path) -> bool:
    return (cloud.sandbox_dir(state) / "moto" / "server.json").exists()


def alive_moto(pid: int) -> bool:
    try:
        return b"provision.sandbox.moto_server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def remove_sandbox_cluster(cwd: Path, name: str, *, unlock: bool = False) -> None:
    """Everything of sandbox cluster ``name`` made from ``cwd`` gone, also after a failed test:
    ``provision down`` (after ``unlock --force`` with ``unlock``: a killed run's lock), then
    whatever of it the engine still holds, then the sandbox's moto server."""
    from provision.sandbox.moto_server import stop_server

    if unlock:
        provision_cli("unlock", "--force", "-e", f"cluster_name={name}", cwd=cwd)
    provision(cwd, "down", "-e", f"cluster_name={name}")
    cloud.remove_cluster(name)
    stop_server(cloud.sandbox_dir(cwd / ".provision"), forget=True)


def output_schema(name: str) -> dict[str, Any]:
    """The JSON schema of ``name``'s ``--json`` (provision/cli/outputs.schema.json, shipped
    in the package), for ``jsonschema.validate``."""
    whole = json.loads((ROOT / "provision" / "cli" / "outputs.schema.json").read_text())
    return {"$defs": whole["$defs"], "$ref": f"#/$defs/{name}"}


def left_behind(name: str) -> list[str]:
    """The containers, volumes and networks of sandbox cluster ``name`` still in the engine."""
    label = f"{cloud.CLUSTER_LABEL}={name}"
    networks = localdocker.docker("network", "ls", "-q", "--filter", f"label={label}").stdout
    return [
        *localdocker.container_ids(label),
        *localdocker.volume_names(label),
        *networks.split(),
    ]


def docker_ls(kind: str, flt: str) -> list[str]:
    argv = ["docker", kind, "ls", "-q", "--filter", flt]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


# ---------------------------------------------------------------- swarm

#: what `up` verifies on every node of a swarm (provision/verify/swarm.py)
NODE_CHECKS = {"swarm-nodes", "containers", "dns", "ping", "negative-control", "swarm-routing"}


def assert_verified_on_every_node(report: dict[str, Any], hosts: list[str]) -> None:
    """Each node passed each check, with its own evidence: `redis` resolved inside ITS
    OpenResty task to Redis's task, PONG by name, 127.0.0.1:6379 refused there, every node
    Ready, a route through ITS port 80 answered by both echo replicas."""
    n = len(hosts)
    by_host: dict[str, dict[str, dict[str, Any]]] = {}
    for check in report["checks"]:
        by_host.setdefault(check["host"], {})[check["name"]] = check
    assert sorted(by_host) == sorted(hosts)
    nodes, remote = set(), 0
    for host, checks in by_host.items():
        assert set(checks) >= NODE_CHECKS, (host, sorted(checks))
        failed = {name: c["summary"] for name, c in checks.items() if not c["passed"]}
        assert not failed, (host, failed)
        dns = checks["dns"]["evidence"]
        assert dns["resolved"] and set(dns["resolved"]) <= set(dns["expected"]), dns
        assert checks["ping"]["evidence"]["body"] == "PONG"
        assert checks["negative-control"]["evidence"]["exit_code"] == 7  # refused
        listed = checks["swarm-nodes"]["evidence"]["nodes"]
        assert len(listed) == n and all(" Ready Active " in row for row in listed), listed
        routing = checks["swarm-routing"]["evidence"]
        assert routing["answered"] == ["echo-a", "echo-b"], routing
        assert routing["after_removal"][0] == 404
        nodes.add(routing["node"])
        remote += bool(routing["from_other_nodes"])
    assert len(nodes) == n  # each host's checks ran on its own node
    # Two echo replicas on n nodes: at least n-1 nodes reached one running elsewhere.
    assert remote >= n - 1, by_host


def wait_routed(url: str, deadline: float = bounds.ROUTE_PROPAGATION) -> None:
    """A new route reaches each node's router within its refresh (bounded: ``deadline`` s);
    until then the path is unknown there (404)."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                if reply.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > end:
                raise
        time.sleep(0.5)


def sigint_default() -> None:
    """``preexec_fn`` for a child that must see Ctrl-C as a user's terminal sends it: SIGINT
    back to its default. A shell that starts a job in the background (``cmd &``, no job
    control) makes it ignore SIGINT, the ignore is inherited across exec, and Python then
    installs no KeyboardInterrupt handler: the child would sleep through the test's SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Route entries, one rule for the CLI (provision.cluster.routes) and the router
# (playbooks/files/openresty/lua/helpers.lua): one corpus, tests/route_corpus.json, goes
# through both (tests/unit/test_route_corpus.py, tests/lua/helpers_spec.lua, and the refused
# endpoints written straight into Redis in tests/integration/test_router_local.py).
ROUTE_CORPUS = json.loads((Path(__file__).parent / "route_corpus.json").read_text())
ENDPOINTS_REFUSED = tuple(ROUTE_CORPUS["endpoints"]["invalid"])
ENDPOINTS_ACCEPTED = tuple(ROUTE_CORPUS["endpoints"]["valid"])


class Recording:
    """A connection that records each command sent, as (host of the task that sent it, its
    module, this connection's host, "BATCH of N" or the command), attributed by thread: each
    host's play runs in its own thread, which announces its task (``Event("task")``)."""

    def __init__(
        self, conn: Any, current: dict[int | str, tuple[str, str]], log: list[Any]
    ) -> None:
        self._conn, self._current, self._log = conn, current, log

    def _note(self, what: str) -> None:
        # A thread a module started itself (verify's checks run side by side): the task of
        # this connection's host.
        mine = self._conn.host.name
        host, module = self._current.get(threading.get_ident()) or self._current.get(mine, ("", ""))
        self._log.append((host, module, mine, what))

    def run(self, argv: Any, **kwargs: Any) -> Any:
        self._note(" ".join(argv)[:100])
        return self._conn.run(argv, **kwargs)

    def run_many(self, commands: Any, **kwargs: Any) -> Any:
        self._note(f"BATCH of {len(commands)}")
        return self._conn.run_many(commands, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def recorded_up(monkeypatch: Any, cwd: Path, extra_vars: dict[str, Any]) -> tuple[Any, list[Any]]:
    """``up`` of the sandbox cluster whose state is in ``cwd``, in this process, every SSH
    command recorded (``Recording``): (the report, the log)."""
    from provision.run.events import Event
    from provision.run.runner import Runner

    current: dict[int | str, tuple[str, str]] = {}  # by thread, and by host
    log: list[Any] = []
    real = Runner._ssh

    def ssh(self: Runner, spec: Any) -> Any:
        return Recording(real(self, spec), current, log)

    def on_event(event: Event) -> None:
        if event.kind == "task" and event.host:
            task = (event.host, str(event.data.get("module", "")))
            current[threading.get_ident()] = current[event.host] = task

    monkeypatch.setattr(Runner, "_ssh", ssh)
    monkeypatch.chdir(cwd)
    options = Options(state_dir=cwd / ".provision", extra_vars=extra_vars)
    return run_playbook(PLAYBOOKS / "up.yml", None, options, on_event=on_event), log
