"""The controller's record of a cloud cluster's route table, beside its state
(``<state_dir>/<cluster>/routes.json``): written by ``provision routes add/rm`` after each
change, read by ``up`` (the ``routes`` task) to restore the routes into a Redis that came
back empty, its volume lost with the host that held it (an instance gone for good and
replaced). ``down`` forgets it with the rest of the cluster's folder.

>>> save(tmp / "routes.json", {"/api": Route("/api", "echo", ("echo-a:80",))})  # doctest: +SKIP
>>> load(tmp / "routes.json")["/api"].endpoints                                   # doctest: +SKIP
('echo-a:80',)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from provision.cluster.routes import Route
from provision.errors import ConfigError

__all__ = ["RECORD", "load", "path", "save"]

RECORD = "routes.json"


def path(state_dir: Path, cluster: str) -> Path:
    return state_dir / cluster / RECORD


def save(where: Path, routes: Mapping[str, Route]) -> None:
    """Write the table (temp file, then ``os.replace``: a crash leaves the old or the new)."""
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = {p: {"service": r.service, "endpoints": list(r.endpoints)} for p, r in routes.items()}
    fd, tmp = tempfile.mkstemp(dir=where.parent, prefix=".routes.", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, where)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(where: Path) -> dict[str, Route]:
    """The recorded table; {} when there is no record."""
    if not where.exists():
        return {}
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
        return {str(p): Route(str(p), str(r["service"]), tuple(str(e) for e in r["endpoints"]))
                for p, r in data.items()}  # fmt: skip
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(
            f"unreadable route record ({exc}); move it away", file=str(where)
        ) from exc
