"""How to run: the knobs the CLI's flags set, shared by the API and the runner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    @property
    def known_hosts(self) -> Path:
        return self.state_dir.resolve() / "known_hosts"
