"""The ``provision`` command. The only module that prints or picks exit codes.

Exit codes: 0 ok, 1 a failed task or check, 2 bad input, 3 (with --detailed-exitcode)
changes made or, with --check, pending, 130 interrupted.
Heavy imports (boto3, paramiko, rich) happen inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from provision.api import Options
    from provision.models import HostSpec
    from provision.run.events import Event
    from provision.run.report import RunReport

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
#: With --detailed-exitcode: the run succeeded and changed something (with --check: would).
#: Terraform's plan says 2 for that; 2 is bad input here, so 3.
EXIT_CHANGED = 3
RESUME_HINT = (
    "Interrupted: state is saved. Run the same command again to finish, "
    "or `provision down{inv}` to tear everything down."
)


# The flags that playbook commands and cluster commands share, defined once.
INVENTORY_OPTION = click.option(
    "-i",
    "--inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory file (default: the local sandbox).",
)
EXTRA_VARS_OPTION = click.option(
    "-e",
    "--extra-vars",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra variables (highest precedence); @file.yml loads a file.",
)
HOST_OPTION = click.option(
    "--host",
    "host_target",
    metavar="USER@ADDR[:PORT]",
    help="Act on this one SSH host instead of an inventory (no cloud).",
)
KEY_OPTION = click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Private key for --host.",
)
STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".provision"),
    show_default=True,
    help="Where keys, known_hosts and cluster state live.",
)


def run_options(func: F) -> F:
    """The flags every playbook command takes."""
    options = [
        INVENTORY_OPTION,
        HOST_OPTION,
        KEY_OPTION,
        click.option("--check", is_flag=True, help="Change nothing; report what would change."),
        click.option("--diff", is_flag=True, help="Show file differences."),
        click.option(
            "--detailed-exitcode",
            is_flag=True,
            help="Exit 3 when a task changed something (with --check: would), 0 when none did; "
            "1 and 2 keep their meaning. Drift detection in a pipeline: up --check "
            "--detailed-exitcode.",
        ),
        click.option("--tags", multiple=True, help="Only tasks with these tags (a,b)."),
        click.option("--skip-tags", multiple=True, help="Skip tasks with these tags."),
        EXTRA_VARS_OPTION,
        click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON."),
        click.option(
            "--events",
            type=click.Path(path_type=Path),
            metavar="PATH",
            help="Write events as JSON lines to PATH ('-' for stderr).",
        ),
        click.option(
            "--trust-on-first-use", is_flag=True, help="Accept and record unknown SSH host keys."
        ),
        click.option(
            "--limit",
            metavar="PATTERN",
            help="Only these hosts (an Ansible host pattern: cluster-2, 'cluster:!cluster-1'); "
            "the controller's own plays (the cloud's) still run.",
        ),
        click.option(
            "--forks",
            type=click.IntRange(min=1),
            default=10,
            show_default=True,
            metavar="N",
            help="How many hosts run a play at once.",
        ),
        click.option(
            "-v",
            "--verbose",
            "verbosity",
            count=True,
            help="-v: each command sent to a host and its exit code; -vv: its output too.",
        ),
        click.option(
            "--connect-deadline",
            type=float,
            default=120.0,
            show_default=True,
            metavar="SECONDS",
            help="How long to keep retrying an SSH connection.",
        ),
        STATE_DIR_OPTION,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="provision")
def main() -> None:
    """Stand up, prove and tear down an OpenResty + Redis cluster, Ansible-style.

    With no -i, commands run against a local sandbox: a moto server as the cloud and
    EC2-like SSH host containers (only a local Docker engine is needed).

    \b
    Examples:
      provision up                                  # the sandbox cluster, verified
      provision routes add /api users users-a:80    # a route, in Redis
      provision up -i inventory/aws.yml -e cluster_name=ci-42
      provision up --check --detailed-exitcode      # drift: exit 3 when up would change
      provision down -i inventory/aws.yml -e cluster_name=ci-42 --yes
    \b
    Exit codes: 0 done, 1 a task or check failed, 2 bad input (refused before any host or
    cloud call), 3 changes made or pending (--detailed-exitcode), 130 interrupted.
    """


def lock_option(func: F) -> F:
    """``--lock-wait``: how long ``up``, ``down`` and ``play`` wait for another run of the
    cluster."""
    return click.option(
        "--lock-wait",
        type=float,
        default=0.0,
        show_default=True,
        metavar="SECONDS",
        help="Wait this long for another run of the same cluster to finish (0: refuse at once).",
    )(func)


@main.command()
@run_options
@lock_option
def up(**kw: Any) -> None:
    """Provision, converge and verify the cluster (playbooks/up.yml).

    \b
    Examples:
      provision up                                      # the local sandbox
      provision up -i inventory/aws.yml -e cluster_name=ci-42
      provision up --host admin@203.0.113.7 --key ~/.ssh/id_ed25519
      provision up --check --detailed-exitcode          # drift: 3 when up would change
    Exit codes: 0 done, 1 a task or check failed, 2 bad input, 3 changes made or pending
    (with --detailed-exitcode), 130 interrupted.
    """
    _run_named("up.yml", kw)


@main.command()
@run_options
@lock_option
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask before destroying an AWS cluster. Asked only when stdin is a terminal: "
    "scripts and CI are never asked.",
)
def down(yes: bool, **kw: Any) -> None:
    """Tear the cluster down: containers, network, instance, security group, key pair.

    \b
    Examples:
      provision down                          # the local sandbox's cluster
      provision down -i inventory/aws.yml -y  # an EC2 cluster, found by its tags
    Exit codes: 0 done, 1 a task failed (or you answered no), 2 bad input, 130 interrupted.
    """
    if kw.get("limit") is not None:
        click.echo(
            "error: --limit: down removes the whole cluster (its instances go with the "
            "cloud's play, whatever the limit): --limit is not taken",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    if not yes and not kw["check"] and sys.stdin.isatty():
        _confirm_destroy(kw)
    _run_named("down.yml", kw)


def _confirm_destroy(kw: dict[str, Any]) -> None:
    """On a terminal, ask before an AWS cluster is destroyed (the sandbox is never asked)."""
    from provision.api import cluster_vars

    with _bad_input():
        options, inventory = _options(kw)
        cluster = cluster_vars(inventory, options)
    if cluster.get("cloud", "none") == "aws":
        click.confirm(
            f"Destroy cluster {cluster.get('cluster_name')!r} in {cluster.get('region')} "
            "(its instances, security group and key pair)?",
            abort=True,
            err=True,
        )


@main.command()
@run_options
def verify(**kw: Any) -> None:
    """Prove the cluster works: DNS, Lua to Redis by name, routing, the 127.0.0.1 trap.

    \b
    Example: provision verify -i inventory/aws.yml -e cluster_name=ci-42 --json
    Exit codes: 0 done, 1 a task or check failed, 2 bad input, 3 changes made or pending
    (with --detailed-exitcode), 130 interrupted.
    """
    _run_named("verify.yml", kw)


@main.command()
@click.argument("playbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@run_options
@lock_option
def play(playbook: Path, **kw: Any) -> None:
    """Run any playbook. On a cluster (an inventory that names a cluster_name, such as the
    sandbox's) it holds the cluster's run lock as up and down do; on other hosts, none.

    \b
    Examples:
      provision play playbooks/verify.yml
      provision play site.yml -i hosts.ini --limit web1 -e "version=1.2 env=ci" -v
    Exit codes: 0 done, 1 a task or check failed, 2 bad input, 3 changes made or pending
    (with --detailed-exitcode), 130 interrupted.
    """
    _run(playbook, kw, lock_needs_cluster=True)


def _run_named(name: str, kw: dict[str, Any]) -> None:
    from provision.api.project import playbooks_dir

    _run(playbooks_dir() / name, kw)


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Write into a non-empty DIR (same names replaced).")
def init(directory: Path, force: bool) -> None:
    """Write a project you own into DIR: playbooks, compose projects, router, inventories.

    Run `provision up` etc. from DIR and its playbooks are used instead of the packaged ones.
    It prints what it wrote (no --json: it reports nothing else).

    \b
    Example: provision init my-cluster && cd my-cluster && provision up --check
    Exit codes: 0 done, 2 DIR is not empty (without --force) or cannot be written.
    """
    from provision.api.project import init_project

    with _bad_input():
        written = init_project(directory, force=force)
    click.echo(f"wrote {len(written)} files into {directory}", err=True)
    click.echo(f"next: cd {directory} && provision up --check", err=True)


def _run(playbook: Path, kw: dict[str, Any], *, lock_needs_cluster: bool = False) -> None:
    """Run ``playbook`` with the CLI's flags; with ``lock_needs_cluster``, no run lock when the
    inventory names no ``cluster_name`` (``play`` on hosts that are no cluster)."""
    with _bad_input():
        options, inventory = _options(kw)
        lock_wait = kw.get("lock_wait")
        if lock_needs_cluster and lock_wait is not None:
            from provision.api import cluster_vars

            if not cluster_vars(inventory, options).get("cluster_name"):
                lock_wait = None
        from provision.api import run_playbook
        from provision.cli.console import Console, JsonLines

        console = Console()
        sinks: list[Callable[[Event], None]] = [console]
        events_file = _events_stream(kw.get("events"))
        if events_file is not None:
            sinks.append(JsonLines(events_file))
        stop = threading.Event()
        previous = _install_interrupt(stop)
        try:
            report = run_playbook(
                playbook,
                inventory,
                options,
                on_event=_fanout(sinks),
                stop=stop,
                lock_wait=lock_wait,
            )
        except KeyboardInterrupt:
            _interrupted(kw)
        finally:
            signal.signal(signal.SIGINT, previous)
    _finish(report, console, kw)


def _fanout(sinks: list[Callable[[Event], None]]) -> Callable[[Event], None]:
    def emit(event: Event) -> None:
        for sink in sinks:
            sink(event)

    return emit


def _finish(report: RunReport, console: Any, kw: dict[str, Any]) -> None:
    console.recap(report)
    for url in _urls(report):
        console.rich.print(f"\nOpenResty: [bold]{url}[/bold]")
    if kw.get("as_json"):
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    if report.failed:
        sys.exit(EXIT_FAILED)
    sys.exit(EXIT_CHANGED if kw.get("detailed_exitcode") and report.changed else EXIT_OK)


def _urls(report: RunReport) -> list[str]:
    return sorted({str(r.data["url"]) for r in report.results if r.data.get("url")})


def _options(kw: dict[str, Any]) -> tuple[Options, Any]:
    from provision.api import Options, tag_set
    from provision.load.inventory import parse_extra_vars

    inventory = _inventory_of(kw)
    options = Options(
        check=kw["check"],
        diff=kw["diff"],
        tags=tag_set(kw["tags"]),
        skip_tags=tag_set(kw["skip_tags"]),
        extra_vars=parse_extra_vars(kw["extra"]),
        state_dir=kw["state_dir"],
        trust_on_first_use=kw["trust_on_first_use"],
        connect_deadline=kw["connect_deadline"],
        limit=kw.get("limit"),
        forks=kw.get("forks") or 10,
        verbosity=kw.get("verbosity") or 0,
    )
    return options, inventory


def _inventory_of(kw: dict[str, Any]) -> Any:
    """``--host`` (a one-host inventory, as ``up --host`` made the cluster), else ``-i``, else
    the current project's sandbox inventory (None: the packaged one)."""
    from provision.api import host_inventory
    from provision.api.project import project_inventory

    if kw.get("host_target"):
        if kw.get("inventory"):
            raise click.UsageError("give either --host or -i, not both")
        return host_inventory(kw["host_target"], kw.get("key"))
    if kw.get("key"):  # it would be ignored: the inventory's hosts name their own keys
        raise click.UsageError(
            "--key goes with --host; an inventory names a host's key with "
            "ansible_ssh_private_key_file"
        )
    inventory: Path | None = kw.get("inventory")
    return inventory or project_inventory()


def _events_stream(path: Path | None) -> Any:
    if path is None:
        return None
    if str(path) == "-":
        return sys.stderr
    import os
    import stat

    from provision.errors import ConfigError

    try:
        # Non-blocking: a FIFO nobody reads fails here (ENXIO) instead of blocking the run.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
    except OSError as exc:  # a missing folder, a folder, no permission: before any call
        reason = "nobody reads this FIFO" if exc.errno == errno.ENXIO else exc.strerror
        raise ConfigError(f"cannot write events to {path}: {reason}", field="--events") from exc
    mode = os.fstat(fd).st_mode
    device = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
    if device and not os.isatty(fd) and os.path.realpath(path) != os.devnull:
        os.close(fd)  # /dev/full fails only at the first event, after the lock was taken
        raise ConfigError(
            f"cannot write events to {path}: a device (use a file, a FIFO, a terminal or -)",
            field="--events",
        )
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a")


def _install_interrupt(stop: threading.Event) -> Any:
    """First Ctrl-C: finish the current step, then stop. Second: stop now."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo("\nStopping after the current step (Ctrl-C again to stop now)...", err=True)

    return signal.signal(signal.SIGINT, handler)


def _interrupted(kw: dict[str, Any]) -> None:
    inv = f" -i {kw['inventory']}" if kw.get("inventory") else ""
    click.echo(RESUME_HINT.format(inv=inv), err=True)
    sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def _bad_input() -> Iterator[None]:
    """Bad input → its message (file:line:column: field: ...) and exit 2, no traceback.
    Other expected errors → exit 1 with their message; an interrupted run → 130."""
    from provision.errors import ConfigError, Interrupted, ProvisionError

    try:
        yield
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Interrupted:
        click.echo(RESUME_HINT.format(inv=""), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except ProvisionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:  # Ctrl-C in a read (inventory --list, doctor...): 130, as a run
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


# -- routes, sweep, status ------------------------------------------------------------------
def target_options(func: F) -> F:
    """The flags that find an existing cluster (no --json: these commands print what the
    host prints)."""
    options = [INVENTORY_OPTION, HOST_OPTION, KEY_OPTION, EXTRA_VARS_OPTION, STATE_DIR_OPTION]
    for option in reversed(options):
        func = option(func)
    return func


def cluster_options(func: F) -> F:
    """The flags of commands that act on an existing cluster and report: ``target_options``
    and ``--json``."""
    json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    return target_options(json_option(func))


def _cluster_options(kw: dict[str, Any]) -> Options:
    from provision.api import Options
    from provision.load.inventory import parse_extra_vars

    return Options(extra_vars=parse_extra_vars(kw["extra"]), state_dir=kw["state_dir"])


@main.group()
def routes() -> None:
    """The service-discovery route table in Redis (through an SSH tunnel; no port opened)."""


@routes.command("add")
@click.argument("prefix")
@click.argument("service")
@click.argument("endpoints", nargs=-1, required=True)
@click.option(
    "--allow-local",
    is_flag=True,
    help="Accept loopback and link-local endpoints (refused by default).",
)
@cluster_options
def routes_add(
    prefix: str, service: str, endpoints: tuple[str, ...], allow_local: bool, **kw: Any
) -> None:
    """Route PREFIX to SERVICE, whose endpoints are ENDPOINTS (host:port ...).

    \b
    Examples:
      provision routes add /api/users users users-a:8080 users-b:8080
      provision routes add /api/users users 10.0.0.5:8080 -i inventory/aws.yml -e cluster_name=ci-42
    Exit codes: 0 done, 1 Redis or the host could not be reached, 2 bad input.
    """
    from provision.api.routes import ClusterRoutes

    with _bad_input():
        ClusterRoutes(_inventory_of(kw), _cluster_options(kw)).add(
            prefix, service, endpoints, allow_local=allow_local
        )
    if kw["as_json"]:
        route = {"service": service, "endpoints": list(endpoints)}
        click.echo(json.dumps({"added": {prefix: route}}, indent=2))
        return
    click.echo(f"{prefix} -> {service} ({', '.join(endpoints)})")


@routes.command("rm")
@click.argument("prefix")
@cluster_options
def routes_rm(prefix: str, **kw: Any) -> None:
    """Remove the route of PREFIX.

    \b
    Example: provision routes rm /api/users --json
    Exit codes: 0 done (also when there was no such route: see "removed"), 1 Redis or the
    host could not be reached, 2 bad input.
    """
    from provision.api.routes import ClusterRoutes

    with _bad_input():
        removed = ClusterRoutes(_inventory_of(kw), _cluster_options(kw)).remove(prefix)
    if kw["as_json"]:
        click.echo(json.dumps({"prefix": prefix, "removed": bool(removed)}, indent=2))
        return
    click.echo(f"removed {prefix}" if removed else f"no route {prefix}")


@routes.command("ls")
@cluster_options
def routes_ls(**kw: Any) -> None:
    """List the routes.

    \b
    Example: provision routes ls --json
    Exit codes: 0 done, 1 Redis or the host could not be reached, 2 bad input.
    """
    from provision.api.routes import ClusterRoutes

    with _bad_input():
        table = ClusterRoutes(_inventory_of(kw), _cluster_options(kw)).list()
    if kw["as_json"]:
        click.echo(
            json.dumps(
                {
                    p: {"service": r.service, "endpoints": list(r.endpoints)}
                    for p, r in sorted(table.items())
                },
                indent=2,
            )
        )
        return
    for prefix, route in sorted(table.items()):
        click.echo(f"{prefix:<24} {route.service:<16} {' '.join(route.endpoints)}")


@main.command()
@cluster_options
@click.option("--all-regions", is_flag=True,
              help="Every region enabled for the account, not only the inventory's.")  # fmt: skip
def sweep(all_regions: bool, **kw: Any) -> None:
    """Remove every cluster of the inventory's region whose expires-at tag has passed.

    \b
    Examples:
      provision sweep -i inventory/aws.yml                 # its region
      provision sweep -i inventory/aws.yml --all-regions   # every region enabled
    Exit codes: 0 done, 1 a cloud call failed, 2 bad input.
    """
    from provision.api import sweep as sweep_expired

    with _bad_input():
        removed = sweep_expired(_inventory_of(kw), _cluster_options(kw), all_regions=all_regions)
    if kw["as_json"]:
        click.echo(json.dumps(removed, indent=2))
        return
    for cluster, ids in removed.items():
        click.echo(f"{cluster}: removed {', '.join(ids) or 'nothing'}")
    if not removed:
        click.echo("no expired cluster", err=True)


@main.command()
@click.option(
    "--no-services",
    "no_services",
    is_flag=True,
    help="Do not ask the hosts for their containers (the cloud's record only).",
)
@cluster_options
def status(no_services: bool, **kw: Any) -> None:
    """The cluster's hosts, found by their tags (or the inventory), its URL, when it
    expires, and each host's containers (project/service, state, health), asked over SSH.

    \b
    Examples:
      provision status
      provision status -i inventory/aws.yml -e cluster_name=ci-42 --json
    Exit codes: 0 done, 1 a cloud call failed, 2 bad input.
    """
    from provision.api import status as cluster_status

    with _bad_input():
        hosts = cluster_status(_inventory_of(kw), _cluster_options(kw), services=not no_services)
    if kw["as_json"]:
        click.echo(json.dumps(hosts, indent=2))
        return
    running = [h for h in hosts if h["state"] in ("running", "inventory")]
    for host in running:
        click.echo(f"{host['name']:<20} {host['target']:<28} {host.get('url', '')}")
        if "services" in host and host["services"] is None:
            click.echo("  (its containers are unknown: ssh or docker failed)")
        for c in host.get("services") or ():
            service = f"{c['project']}/{c['service']}"
            click.echo(f"  {service:<24} {c['container']:<36} {c['state']:<10} {c['health']}")
    for host in hosts:
        if host not in running:
            click.echo(f"{host['name']:<20} {host['state']:<28} {host['state_reason']}")
    if not running:
        click.echo("no running host", err=True)
    if any(h.get("expired") for h in hosts):
        what = "power themselves off" if running else "powered themselves off"
        click.echo(f"the cluster expired at {hosts[0]['expires_at']}: its hosts {what}; "
                   "`provision down` removes what is left", err=True)  # fmt: skip
    elif running and running[0].get("expires_at"):
        click.echo(f"expires at {hosts[0]['expires_at']}", err=True)


@main.command()
@click.option("--force", is_flag=True, help="Break the lock even if its holder still runs.")
@cluster_options
def unlock(force: bool, **kw: Any) -> None:
    """Break the run locks a gone run left: the controller's and each host's (names the
    holders). A lock whose holder still runs is kept unless --force.

    \b
    Example: provision unlock -e cluster_name=ci-42
    Exit codes: 0 done, 1 a holder still runs (without --force), 2 bad input.
    """
    import time

    from provision.api.unlock import unlock as break_locks

    with _bad_input():
        done = break_locks(_inventory_of(kw), _cluster_options(kw), force=force)
    now = time.time()
    if kw["as_json"]:
        broken = [{"host": lock.host, "pid": lock.holder.pid, "holder_host": lock.holder.host,
                   "command": lock.holder.command, "started": lock.holder.started,
                   "message": lock.describe(now)} for lock in done.broken]  # fmt: skip
        summary = {"cluster": done.cluster, "broken": broken, "unreachable": done.unreachable}
        click.echo(json.dumps(summary, indent=2))
        return
    for lock in done.broken:
        click.echo(lock.describe(now))
    for name in done.unreachable:
        click.echo(f"warning: host {name!r} did not answer; its run lock, if any, stays", err=True)
    if not done.broken:
        click.echo(f"cluster {done.cluster!r} is not locked", err=True)


# -- day two: ssh, exec, logs --------------------------------------------------------------
def _cluster_hosts(kw: dict[str, Any]) -> tuple[list[HostSpec], Options]:
    from provision.api import Cluster

    options = _cluster_options(kw)
    return Cluster(_inventory_of(kw), options=options).hosts, options


class _CommandAfterDashes(click.Command):
    """A command whose words after ``--`` are a command line to run elsewhere, kept whole
    (``ctx.meta["command"]``) and never taken for its own arguments or options."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        cut = args.index("--") if "--" in args else len(args)
        ctx.meta["command"] = tuple(args[cut + 1 :])
        return super().parse_args(ctx, args[:cut])


def _ssh(argv: list[str]) -> None:
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        click.echo(f"error: cannot run ssh: {exc.strerror}", err=True)
        sys.exit(EXIT_FAILED)


@main.command("ssh", cls=_CommandAfterDashes)
@click.argument("host", required=False)
@target_options
@click.pass_context
def ssh_command(ctx: click.Context, /, host: str | None, **kw: Any) -> None:
    """A shell on HOST (default: the cluster's first), or COMMAND run there after `--`:
    the cluster's user, key and port, and only its pinned host keys (an unknown one is
    refused). Exits with the command's (or ssh's 255) code.

    \b
    provision ssh                        # a shell on the first host
    provision ssh demo-2 -- docker ps    # one command on demo-2
    """
    from provision.api.shell import pick_host, ssh_argv

    with _bad_input():
        hosts, options = _cluster_hosts(kw)
        spec = pick_host(hosts, host)
        argv = ssh_argv(spec, known_hosts=options.known_hosts, command=ctx.meta["command"])
    _ssh(argv)


@main.command("exec", cls=_CommandAfterDashes)
@click.argument("service")
@click.option("--node", metavar="HOST", help="The host whose container to use (default: first).")
@target_options
@click.pass_context
def exec_command(ctx: click.Context, /, service: str, node: str | None, **kw: Any) -> None:
    """Run COMMAND (after `--`) in SERVICE's container, with a terminal when run on one.

    \b
    provision exec openresty -- nginx -t
    provision exec redis --node demo-1 -- sh
    """
    from provision.api.shell import exec_command as remote
    from provision.api.shell import pick_host, ssh_argv

    tty = sys.stdin.isatty() and sys.stdout.isatty()
    with _bad_input():
        # checked before any host is asked
        in_container = remote(service, ctx.meta["command"], tty=tty)
        hosts, options = _cluster_hosts(kw)
        spec = pick_host(hosts, node)
        argv = ssh_argv(spec, known_hosts=options.known_hosts, tty=tty, command=in_container)
    _ssh(argv)


@main.command()
@click.argument("service", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="The last N lines only.")
@click.option("--since", metavar="TIME", help="Lines since TIME (10m, 2026-12-07T10:00:00).")
@target_options
def logs(service: str | None, follow: bool, tail: int | None, since: str | None, **kw: Any) -> None:
    """The logs of SERVICE's containers (default: every service's) on every host, each line
    prefixed with its host and container. Ctrl-C ends a --follow.

    \b
    provision logs openresty --tail 20
    provision logs -f
    """
    import subprocess

    from provision.api.shell import logs_command, ssh_argv

    with _bad_input():
        remote = logs_command(service, tail=tail, since=since, follow=follow)
        hosts, options = _cluster_hosts(kw)
    lock = threading.Lock()

    def relay(spec: HostSpec, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                click.echo(f"{spec.name} {line}", nl=False)

    procs = [(spec, subprocess.Popen(ssh_argv(spec, known_hosts=options.known_hosts,
                                              command=remote),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     text=True, errors="replace"))
             for spec in hosts]  # fmt: skip
    threads = [threading.Thread(target=relay, args=pair, daemon=True) for pair in procs]
    for thread in threads:
        thread.start()
    try:
        codes = [proc.wait() for _, proc in procs]
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:  # the end of a --follow: stop every host's ssh, exit 0
        for _, proc in procs:
            proc.terminate()
        for _, proc in procs:
            proc.wait()
        return
    failed = [spec.name for (spec, _), code in zip(procs, codes, strict=True) if code != 0]
    if failed:
        click.echo(f"error: no logs from {', '.join(failed)} (ssh or docker failed)", err=True)
        sys.exit(EXIT_FAILED)


# -- inventory ------------------------------------------------------------------------------
@main.command("inventory")
@click.option(
    "-i",
    "--inventory",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory file, YAML or INI (default: the local sandbox).",
)
@click.option("--list", "as_list", is_flag=True, help="Every group and host, as JSON.")
@click.option("--host", metavar="HOST", help="One host's variables, as JSON.")
@click.option(
    "--playbook-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also read the group_vars/ and host_vars/ in DIR (beside the playbooks).",
)
def inventory(
    path: Path | None, as_list: bool, host: str | None, playbook_dir: Path | None
) -> None:
    """Show the inventory as provision reads it, in ansible-inventory's JSON shape.

    The inventory's own variables (group and host vars, group_vars/, host_vars/), without
    the layout's defaults, the play's vars or extra vars.

    \b
    Examples:
      provision inventory --list -i inventory/aws.yml
      provision inventory --host web1 -i hosts.ini --playbook-dir playbooks
    Exit codes: 0 done, 2 bad input (the file, line and field named).
    """
    if as_list == bool(host):
        raise click.UsageError("give one of --list or --host HOST")
    from provision.api import SANDBOX_INVENTORY
    from provision.load.inventory import load_inventory

    with _bad_input():
        path = path or _inventory_of({}) or SANDBOX_INVENTORY
        loaded = load_inventory(path, playbook_dir=playbook_dir)
        data = loaded.to_ansible_list() if as_list else dict(loaded.host(str(host)).vars)
    click.echo(json.dumps(data, indent=4, sort_keys=True, default=str))


# -- doctor ---------------------------------------------------------------------------------
@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the findings as JSON: a list of {file, line, code, message, hint}.",
)
def doctor(paths: tuple[Path, ...], as_json: bool) -> None:
    """Find the classic traps in nginx.conf, Lua and compose files (default: the project's).

    \b
    Examples:
      provision doctor                 # the project's playbooks/files
      provision doctor ./my-router     # any folder or file
    Exit codes: 0 nothing found, 1 problems found, 2 bad input.
    """
    from provision.api.project import playbooks_dir
    from provision.doctor import diagnose, format_finding

    with _bad_input():
        findings = diagnose(list(paths) or [playbooks_dir() / "files"])
    if as_json:
        click.echo(json.dumps([{"file": str(f.file), "line": f.line, "code": f.code,
                                "message": f.message, "hint": f.hint} for f in findings],
                              indent=2))  # fmt: skip
    else:
        for finding in findings:
            click.echo(format_finding(finding))
    if findings:
        click.echo(f"{len(findings)} problem(s) found", err=True)
        sys.exit(EXIT_FAILED)
    click.echo("no problems found", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
