"""The Python API for pipelines: bring a cluster up, verify it, reach its routes, tear it down.

>>> from provision import Cluster
>>> with Cluster(inventory="inventory/aws.yml", teardown=True) as cluster:
...     cluster.routes.add("/api", "users", ["echo-a:80"])
...     assert cluster.report.checks and all(c.passed for c in cluster.report.checks)

Everything is loaded and validated before any host or cloud call. Each function returns a
``RunReport``; a failed task does not raise (``report.failed`` says so), bad input does
(``ConfigError``).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from provision.errors import ClusterFailed, ConfigError
from provision.load.inventory import Inventory, InventoryHost, load_inventory
from provision.load.playbook import Playbook, load_playbook
from provision.load.variables import RunVars
from provision.models import HostSpec
from provision.models.names import (
    check_address,
    check_name,
    check_port,
    check_seconds,
    shown,
    whole_number,
)
from provision.run.events import EventSink
from provision.run.lock import RunLock
from provision.run.options import Options
from provision.run.report import RunReport

if TYPE_CHECKING:
    from provision.api.routes import ClusterRoutes

__all__ = [
    "PLAYBOOKS",
    "SANDBOX_INVENTORY",
    "Cluster",
    "Options",
    "down",
    "host_inventory",
    "load",
    "run_lock",
    "run_playbook",
    "status",
    "sweep",
    "up",
    "verify",
]

# The project's playbooks and inventories (``playbooks/``, ``inventory/`` at the top of the
# checkout), shipped inside the package through the links in ``provision/_bundle/``.
BUNDLE = Path(__file__).resolve().parents[1] / "_bundle"
PLAYBOOKS = BUNDLE / "playbooks"
SANDBOX_INVENTORY = BUNDLE / "inventory" / "sandbox.yml"


def host_inventory(target: str, key_file: Path | None, *, name: str = "host1") -> Inventory:
    """A one-host inventory (group ``cluster``, no cloud) from ``user@address:port``."""
    user, _, rest = target.rpartition("@")
    address, _, port = rest.partition(":")
    if not address or (port and whole_number(port) is None):
        raise ConfigError(f"expected user@address[:port], got {shown(target, 60)}", field="--host")
    check_address(address, "--host")
    check_port(port or 22, "--host")
    if user:
        check_name(user, "--host")
    host_vars: dict[str, Any] = {
        "ansible_host": address,
        "ansible_port": check_port(port or 22, "--host"),
        "ansible_user": user or "admin",
        "cloud": "none",
    }
    if key_file is not None:
        from provision.connection.keys import key_file_problem

        problem = key_file_problem(Path(key_file).expanduser())
        if problem:
            raise ConfigError(problem, field="--key")
        host_vars["ansible_ssh_private_key_file"] = str(key_file)
    defaults = load_inventory(BUNDLE / "inventory" / "host.yml")
    return defaults.with_hosts([InventoryHost(name, host_vars, (), host_vars)], "cluster")


def load(
    playbook: str | Path, inventory: str | Path | Inventory | None, options: Options
) -> tuple[Playbook, Inventory]:
    """Load and check everything (no host or cloud call): playbook, inventory, variables."""
    book, inv, _ = _load(playbook, inventory, options)
    return book, inv


def _load(
    playbook: str | Path, inventory: str | Path | Inventory | None, options: Options
) -> tuple[Playbook, Inventory, RunVars]:
    """``load``, and the run's variables, resolved here once: validation, the run lock and
    the runner read them."""
    from provision.load.validate import validate

    book = load_playbook(playbook)
    # The group_vars/ and host_vars/ beside the playbook, as Ansible's (after the inventory's).
    beside = Path(playbook).parent
    inv = (
        inventory.with_playbook_dir(beside)
        if isinstance(inventory, Inventory)
        else load_inventory(inventory or SANDBOX_INVENTORY, playbook_dir=beside)
    )
    variables = RunVars(inv, options.extra_vars, options.runtime_vars())
    validate(book, inv, options.extra_vars, variables=variables)
    if options.limit is not None and inv.hosts and not inv.select(options.limit):
        # As Ansible: a limit that leaves no host is an error (with hosts known before the
        # run; a cloud's hosts are added at run time, and the limit is applied then).
        raise ConfigError(f"{options.limit!r} matches no host of the inventory", field="--limit")
    return book, inv, variables


def run_playbook(
    playbook: str | Path,
    inventory: str | Path | Inventory | None = None,
    options: Options | None = None,
    *,
    on_event: EventSink | None = None,
    stop: threading.Event | None = None,
    lock_wait: float | None = None,
) -> RunReport:
    """Run a playbook (with no inventory: the local sandbox).

    With ``lock_wait`` (seconds), the run holds the cluster's run lock (``run_lock``), waiting
    up to that long for another run to release it (``LockHeld`` when it does not), and each
    host's run lock before that host's first task (a host held by another run fails)."""
    from provision.run.events import Event

    options = options or Options()
    book, inv, variables = _load(playbook, inventory, options)
    if lock_wait is None:
        return _run_loaded(book, inv, variables, options, on_event, stop)
    check_seconds(lock_wait, "--lock-wait")

    def waiting(msg: str) -> None:
        if on_event is not None:
            on_event(Event("wait", data={"msg": msg}))

    # The same wait for each host's own run lock (``provision.run.host_lock``).
    options = dataclasses.replace(options, lock_wait=lock_wait, lock_command=_command())
    lock = _run_lock(variables, options)
    with lock.acquire(wait=lock_wait, command=_command(), on_wait=waiting):
        return _run_loaded(book, inv, variables, options, on_event, stop)


def _run_loaded(
    book: Playbook,
    inv: Inventory,
    variables: RunVars,
    options: Options,
    on_event: EventSink | None,
    stop: threading.Event | None,
) -> RunReport:
    from provision.run.runner import Runner

    inv = resolve_sources(inv, options.state_dir.resolve())
    runner = Runner(options, on_event=on_event)
    if stop is not None:
        runner.stop = stop
    return runner.run(book, inv, variables)


def run_lock(inventory: str | Path | Inventory | None, options: Options) -> RunLock:
    """The run lock of the inventory's cluster: ``<state_dir>/<cluster_name>/run.lock``."""
    return _run_lock(run_vars(inventory, options), options)


def _run_lock(variables: RunVars, options: Options) -> RunLock:
    cluster = check_name(str(variables.cluster.get("cluster_name", "")), "cluster_name")
    return RunLock(options.state_dir.resolve() / cluster / "run.lock", cluster)


def _command(argv: list[str] | None = None) -> str:
    """This run's command line, for the lock's holder record (``python -m provision.cli``
    and the ``provision`` script both read ``provision ...``), with the values of its extra
    variables masked: the record is kept on disk and on each host, and shown to the next run,
    so a secret given with ``-e`` must not be in it (``-e redis_password=x`` reads
    ``-e redis_password=…``; a JSON or YAML ``-e`` reads ``-e …``; ``-e @FILE`` is kept)."""
    argv = list(sys.argv if argv is None else argv)
    name = Path(argv[0]).name if argv else ""
    if name in ("", "__main__.py", "-c"):
        name = "provision"
    words, masking = [name], False
    for arg in argv[1:]:
        if masking:
            words.append(_masked_vars(arg))
        elif arg.startswith("--extra-vars="):
            words.append("--extra-vars=" + _masked_vars(arg.partition("=")[2]))
        elif arg.startswith("-e") and not arg.startswith("--") and len(arg) > 2:
            words.append("-e" + _masked_vars(arg[2:]))
        else:
            words.append(arg)
        masking = not masking and arg in ("-e", "--extra-vars")
    return " ".join(words)[:300]


def _masked_vars(value: str) -> str:
    """An ``-e`` value with its values replaced by ``…``: ``a=1 b=2`` -> ``a=… b=…``."""
    text = value.strip()
    if text.startswith("@"):
        return value  # a file's name, not its content
    if text.startswith(("{", "[")) or "=" not in text:
        return "…"
    return " ".join(f"{word.partition('=')[0]}=…" for word in text.split())


def resolve_sources(inventory: Inventory, state_dir: Path) -> Inventory:
    """Fill the groups of dynamic sources (``plugin: provision.aws_ec2``, like Ansible's
    aws_ec2 plugin): the cluster's running instances, found by their tags."""
    from provision import cloud

    for source in inventory.sources:
        opts = source.options
        extra = dict(opts.get("vars") or {})
        target = cloud.Target.from_vars(
            {
                "cloud": extra.get("cloud", "aws"),
                "cluster_name": opts["cluster"],
                "region": opts.get("region") or extra.get("region") or "us-east-1",
            },
            state_dir,
        )
        hosts = [cloud.host_entry(i, target) for i in cloud.find(target)]
        inventory = inventory.with_hosts(
            [InventoryHost(h["name"], {**extra, **h["vars"]}, ()) for h in hosts],
            str(opts.get("group") or "cluster"),
        )
    return inventory


class RunKeywords(TypedDict, total=False):
    """The keywords ``up``, ``down`` and ``verify`` take, as ``run_playbook`` does."""

    on_event: EventSink | None
    stop: threading.Event | None
    lock_wait: float | None


def up(
    inventory: str | Path | Inventory | None = None,
    options: Options | None = None,
    **keywords: Unpack[RunKeywords],
) -> RunReport:
    """Provision, converge and verify the cluster (``playbooks/up.yml``); holds the cluster's
    run lock (``lock_wait`` 0 unless given: refused at once while another run holds it)."""
    keywords.setdefault("lock_wait", 0.0)
    return run_playbook(PLAYBOOKS / "up.yml", inventory, options, **keywords)


def down(
    inventory: str | Path | Inventory | None = None,
    options: Options | None = None,
    **keywords: Unpack[RunKeywords],
) -> RunReport:
    """Tear the cluster down (``playbooks/down.yml``); found by tags, no local state needed.
    Holds the run lock as ``up`` does. The whole cluster: a ``limit`` is refused."""
    if options is not None and options.limit is not None:
        raise ConfigError(
            "down removes the whole cluster (its instances go with the cloud's play, whatever "
            "the limit): --limit is not taken",
            field="--limit",
        )
    keywords.setdefault("lock_wait", 0.0)
    return run_playbook(PLAYBOOKS / "down.yml", inventory, options, **keywords)


def verify(
    inventory: str | Path | Inventory | None = None,
    options: Options | None = None,
    **keywords: Unpack[RunKeywords],
) -> RunReport:
    """Run the verification suite only (``playbooks/verify.yml``); takes no lock unless
    ``lock_wait`` is given."""
    return run_playbook(PLAYBOOKS / "verify.yml", inventory, options, **keywords)


def run_vars(inventory: str | Path | Inventory | None, options: Options) -> RunVars:
    """The variables of a command that runs no playbook (``status``, ``routes``, ``unlock``,
    ``sweep``), resolved once from the inventory and the extra variables."""
    return RunVars(_inventory(inventory), options.extra_vars, options.runtime_vars())


def cluster_vars(inventory: str | Path | Inventory | None, options: Options) -> dict[str, Any]:
    """The variables of the cluster as a whole (``all``'s, with extra vars on top)."""
    return dict(run_vars(inventory, options).cluster)


def sweep(
    inventory: str | Path | Inventory | None = None,
    options: Options | None = None,
    *,
    all_regions: bool = False,
) -> dict[str, list[str]]:
    """Remove every cluster of the inventory's cloud and region past its expires-at tag (with
    ``all_regions``, of every region enabled for the account: keys ``cluster@region``)."""
    from provision import cloud

    options = options or Options()
    target = cloud.Target.from_vars(
        {**cluster_vars(inventory, options), "cluster_name": "any"}, options.state_dir
    )
    return cloud.sweep(target.cloud, target.region, target.state_dir, all_regions=all_regions)


def status(
    inventory: str | Path | Inventory | None = None,
    options: Options | None = None,
    *,
    services: bool = False,
) -> list[dict[str, Any]]:
    """The cluster's running hosts, found by their tags; with no cloud (``--host``, an
    inventory of SSH hosts), the inventory's ``cluster`` hosts (state ``inventory``), as a
    run reaches them. With ``services``, each running host's entry has its compose
    projects' and stacks' containers with their state and health (``services``; ``None``
    when the host did not answer)."""
    from provision import cloud
    from provision.api.hosts import cluster_hosts
    from provision.cluster.layout import layout_from_vars

    options = options or Options()
    inv = _inventory(inventory)
    variables = run_vars(inv, options)
    probe = _services_probe(options) if services else None
    if variables.cluster.get("cloud", "none") == "none":
        port = layout_from_vars(variables.cluster).http_port
        suffix = "" if port == 80 else f":{port}"
        specs = cluster_hosts(inv, variables, options)
        entries = [{"name": h.name, "target": h.target, "state": "inventory",
                    "state_reason": "", "url": f"http://{h.address}{suffix}"}
                   for h in specs]  # fmt: skip
        if probe is not None:
            probe(entries, specs)
        return entries
    target = cloud.Target.from_vars(dict(variables.cluster), options.state_dir)
    return cloud.status(target, probe=probe)


def _services_probe(
    options: Options,
) -> Callable[[Sequence[dict[str, Any]], Sequence[HostSpec]], None]:
    """Asks every host at once for its containers and adds them to its entry, as
    ``services`` (``status(services=True)``)."""
    from concurrent.futures import ThreadPoolExecutor

    from provision.api.shell import service_containers

    def probe(entries: Sequence[dict[str, Any]], specs: Sequence[HostSpec]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, min(len(specs), options.forks))) as pool:
            found = pool.map(lambda s: service_containers(s, known_hosts=options.known_hosts),
                             specs)  # fmt: skip
            for entry, containers in zip(entries, found, strict=True):
                entry["services"] = containers

    return probe


class Cluster:
    """A cluster for the length of a ``with`` block: up (and verified) on entry; down on exit
    when ``teardown`` is true. ``report`` is the ``up`` report; ``routes`` the route table."""

    def __init__(
        self,
        inventory: str | Path | Inventory | None = None,
        *,
        options: Options | None = None,
        teardown: bool = False,
        on_event: EventSink | None = None,
    ) -> None:
        self.inventory = inventory
        self.options = options or Options()
        self.teardown = teardown
        self.on_event = on_event
        self.report = RunReport()

    def __enter__(self) -> Cluster:
        self.report = up(self.inventory, self.options, on_event=self.on_event)
        if self.report.failed:
            if self.teardown:
                self.down()
            raise ClusterFailed(self.report)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.teardown:
            return
        report = self.down()
        if report.failed and et is None:  # a teardown that failed must not go unseen
            raise ClusterFailed(report, "teardown failed")

    def down(self) -> RunReport:
        return down(self.inventory, self.options, on_event=self.on_event)

    def verify(self) -> RunReport:
        return verify(self.inventory, self.options, on_event=self.on_event)

    @property
    def routes(self) -> ClusterRoutes:
        from provision.api.routes import ClusterRoutes

        return ClusterRoutes(self.inventory, self.options)

    @property
    def urls(self) -> list[str]:
        """The OpenResty URLs the ``up`` run reported, one a host."""
        return sorted({str(r.data["url"]) for r in self.report.results if r.data.get("url")})

    @property
    def url(self) -> str:
        """The first host's OpenResty URL (``http://ADDRESS[:PORT]``)."""
        if not self.urls:
            raise ConfigError("the cluster reported no URL; is it up?", field="url")
        return self.urls[0]

    @property
    def hosts(self) -> list[HostSpec]:
        """How to reach each host of the cluster (found by tags where there is a cloud)."""
        from provision.api.hosts import cluster_hosts

        inv = _inventory(self.inventory)
        return cluster_hosts(inv, run_vars(inv, self.options), self.options)

    def connection(self, host: str | HostSpec | None = None) -> Any:
        """A ``fabric.Connection`` to ``host`` (a name, a ``HostSpec``; default: the first),
        with the cluster's user, key and port; only host keys pinned in the project's
        ``known_hosts`` are accepted (Fabric's default would add unknown ones)."""
        from provision.connection.fabric import fabric_connection

        spec = host if isinstance(host, HostSpec) else self._host(host)
        return fabric_connection(spec, known_hosts=self.options.known_hosts)

    def _host(self, name: str | None) -> HostSpec:
        from provision.api.shell import pick_host

        return pick_host(self.hosts, name)

    def run_playbook(
        self,
        playbook: str | Path,
        *,
        stop: threading.Event | None = None,
        lock_wait: float | None = None,
    ) -> RunReport:
        """Run one more playbook on the cluster (same inventory, options and events)."""
        return run_playbook(playbook, self.inventory, self.options, on_event=self.on_event,
                            stop=stop, lock_wait=lock_wait)  # fmt: skip


def _inventory(inventory: str | Path | Inventory | None) -> Inventory:
    if isinstance(inventory, Inventory):
        return inventory
    return load_inventory(inventory or SANDBOX_INVENTORY)


def _names(values: Iterable[str] | None) -> frozenset[str]:
    return frozenset(v for item in (values or ()) for v in item.split(",") if v)


def tag_set(values: Sequence[str] | None) -> frozenset[str]:
    """``--tags a,b --tags c`` → {a, b, c}."""
    return _names(values)
