"""How to run: the knobs the CLI's flags set, shared by the API and the runner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ConfigError
from provision.models.names import check_address, check_name, check_port, check_seconds

__all__ = ["Options"]


@dataclass(frozen=True)
class Options:
    """How to run: check mode, diffs, tags, extra vars, where state lives, host-key trust.

    >>> Options(check=True, extra_vars={"cluster_name": "ci-42"}).known_hosts.name
    'known_hosts'
    """

    check: bool = False
    diff: bool = False
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    state_dir: Path = Path(".provision")  # keys, known_hosts, cluster state
    trust_on_first_use: bool = False
    connect_deadline: float = 120.0  # seconds of retrying SSH to a host that is booting
    forks: int = 10  # hosts run in parallel
    #: Ansible's ``--limit``: a host pattern (``cluster-2``, ``cluster:!cluster-1``) the plays'
    #: hosts are narrowed to; the controller's own plays (``localhost``) still run.
    limit: str | None = None
    #: ``-v``: each command sent to a host, with its exit code (``command`` events); ``-vv``:
    #: its output too (none for a module whose output is a secret).
    verbosity: int = 0
    #: seconds to wait for each host's run lock (``provision.run.host_lock``); None: no lock.
    #: ``up`` and ``down`` set it (``--lock-wait``), check mode never takes it.
    lock_wait: float | None = None
    lock_command: str = "provision"  # the command named in the lock's holder record

    def __post_init__(self) -> None:
        # nan or inf would retry forever; checked here so that the API refuses them too
        check_seconds(self.connect_deadline, "--connect-deadline")
        if isinstance(self.forks, bool) or not isinstance(self.forks, int) or self.forks < 1:
            raise ConfigError(f"must be a whole number from 1, got {self.forks!r}", field="forks")
        if self.lock_wait is not None:
            check_seconds(self.lock_wait, "--lock-wait")
        if self.limit is not None and (not isinstance(self.limit, str) or not self.limit.strip()):
            raise ConfigError(f"must be a host pattern, got {self.limit!r}", field="--limit")
        if isinstance(self.verbosity, bool) or not isinstance(self.verbosity, int):
            raise ConfigError(f"must be a whole number, got {self.verbosity!r}", field="verbosity")
        _check_state_dir(Path(self.state_dir))
        _check_connection_vars(self.extra_vars)
        _check_reserved(self.extra_vars)

    def runtime_vars(self) -> dict[str, Any]:
        """The variables every task sees from these options (``{{ state_dir }}``...)."""
        return {
            "state_dir": str(self.state_dir.resolve()),
            "trust_on_first_use": self.trust_on_first_use,
        }

    @property
    def known_hosts(self) -> Path:
        return self.state_dir.resolve() / "known_hosts"


def _check_state_dir(path: Path) -> None:
    """The state folder is a folder, or can be made as one: checked before a lock is taken or
    anything written (``/dev/null``, or a path under a file, fails here, not halfway)."""
    import os

    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder", field="--state-dir")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot make {path}: {ancestor} is not a folder", field="--state-dir")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {path}: {ancestor} is not writable", field="--state-dir")


def _check_reserved(extra: Mapping[str, Any]) -> None:
    """The names the runner defines for every task (``layout``, ``inventory_hostname``, ...)
    cannot be given with ``-e``: the runner's value would win, so the user's was silently
    ignored (``-e layout=x`` ran on as if not given)."""
    from provision.load.validate import MAGIC

    for name in sorted(MAGIC.intersection(extra)):
        raise ConfigError(
            "a name the runner defines for every task; it cannot be set", field=f"-e {name}"
        )


def _check_connection_vars(extra: Mapping[str, Any]) -> None:
    """Connection settings given with ``-e`` (which win over the inventory's, as in Ansible)
    are checked at load, like the inventory's: not found out at connect time (a port 0 was
    retried until the connect deadline)."""
    if "ansible_port" in extra:
        check_port(extra["ansible_port"], "-e ansible_port")
    if "ansible_host" in extra:
        check_address(extra["ansible_host"], "-e ansible_host")
    if "ansible_user" in extra:
        check_name(extra["ansible_user"], "-e ansible_user")
