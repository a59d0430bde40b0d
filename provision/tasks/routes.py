"""``routes``: the route table restored from the controller's record when Redis has none.

Redis keeps the table on the volume of the host that runs it. When that host is gone for good
and ``up`` replaced it, Redis starts empty on the newcomer; this task puts back the routes
that ``provision routes add/rm`` last recorded on this controller
(``provision.cluster.route_record``). A Redis that holds any route is left alone: ok.
Nothing recorded (a fresh cluster, another controller): ok. Check mode looks, and says it
would restore when Redis is empty or not there yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provision.errors import RouteError, VerifyError
from provision.models.names import check_name
from provision.tasks.base import ModuleSpec, Outcome, TaskContext
from provision.tasks.facts import host_layout

__all__ = ["SPEC", "RoutesArgs"]


@dataclass(frozen=True)
class RoutesArgs:
    state_dir: str  # the controller's state folder
    cluster: str  # the cluster's name: its record is <state_dir>/<cluster>/routes.json

    def __post_init__(self) -> None:
        check_name(self.cluster, "routes.cluster")


def apply(ctx: TaskContext, args: RoutesArgs) -> Outcome:
    # Imported here: redis-py costs 0.1 s at every start-up, and most runs restore nothing.
    from provision.cluster import route_record
    from provision.cluster.routes import RouteTable

    record = route_record.load(route_record.path(Path(args.state_dir), args.cluster))
    if not record:
        return ctx.ok("no routes recorded by this controller")
    layout = host_layout(ctx)
    try:
        with RouteTable(ctx.conn, layout) as table:
            held = table.list_routes()
            if held:
                return ctx.ok(f"{len(held)} route(s) in Redis")
            ctx.executed += [f"restore route {p} -> {r.service}" for p, r in record.items()]
            if not ctx.check:
                for prefix, route in record.items():
                    # validated when they were added (some perhaps with --allow-local)
                    table.add_route(prefix, route.service, route.endpoints, allow_local=True)
    except (RouteError, VerifyError):
        if not ctx.check:
            raise
    verb = "would restore" if ctx.check else "restored"
    return ctx.changed(f"{verb} {len(record)} route(s) this controller recorded: Redis had none")


SPEC = ModuleSpec("routes", RoutesArgs, apply)
