"""``down`` and ``sweep``: remove a cluster found by its tags, with or without local state.

Every delete is scoped twice: the describe filter must carry ``tag:provision:cluster=<name>``
(an empty filter or a missing tag is refused before any call), and each resource the describe
returns must carry that tag itself before it is deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from provision.aws import hostkeys, waits
from provision.aws import state as statefile
from provision.aws.calls import Clients, call, make_clients, pages
from provision.aws.instances import LIVE_STATES, find_instances
from provision.aws.results import DEFAULT_TIMEOUTS, OnEvent, TeardownResult, Timeouts, no_events
from provision.aws.tags import (
    CLUSTER,
    CLUSTER_NAME,
    EXPIRES_AT,
    check_cluster_name,
    cluster_filters,
    expiry_time,
    require_cluster_filter,
    require_owned,
    tag_dict,
)

# kind -> (describe method, answer key, id field, delete method)
_KINDS = {
    "security-group": (
        "describe_security_groups",
        "SecurityGroups",
        "GroupId",
        "delete_security_group",
    ),
    # By name: AWS also takes KeyPairId, but moto silently ignores it.
    "key-pair": ("describe_key_pairs", "KeyPairs", "KeyName", "delete_key_pair"),
}
# A group still attached to a terminating instance's network interface cannot go yet.
_NOT_YET = waits.EVENTUALLY_CONSISTENT | {"DependencyViolation"}


def down(
    cluster: str,
    *,
    region: str,
    state_dir: Path | None = None,
    session: Any = None,
    endpoint_url: str | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    on_event: OnEvent | None = None,
) -> TeardownResult:
    """Terminate the cluster's instances, then delete its security group and key pair.

    >>> down("demo", region="eu-west-1").removed  # doctest: +SKIP
    ('i-0123...', 'sg-0456...', 'provision-demo')

    Needs no local state. With ``state_dir``, the cluster's folder and known_hosts lines go too.
    An empty ``removed`` means there was nothing left to remove.
    """
    check_cluster_name(cluster)
    clients = make_clients(region, session=session, endpoint_url=endpoint_url)
    return _down(clients, cluster, state_dir, timeouts, on_event or no_events)


def _down(
    clients: Clients, cluster: str, state_dir: Path | None, timeouts: Timeouts, emit: OnEvent
) -> TeardownResult:
    removed = _terminate(clients, cluster, timeouts, emit)
    filters = cluster_filters(cluster)
    for kind in _KINDS:
        removed += delete_tagged(clients, kind, filters, cluster, timeouts=timeouts, emit=emit)
    if state_dir is not None:
        _forget_local(state_dir, cluster)
    emit("teardown finished" if removed else "nothing to remove", {"cluster": cluster})
    return TeardownResult(cluster, clients.region, tuple(removed))


def _terminate(clients: Clients, cluster: str, timeouts: Timeouts, emit: OnEvent) -> list[str]:
    found = find_instances(clients, cluster, states=[*LIVE_STATES, "shutting-down"])
    require_owned(found, cluster, id_key="InstanceId")
    ids = [str(i["InstanceId"]) for i in found]
    if not ids:
        return []
    emit("terminating instances", {"instances": ids})
    # An instance launched a moment ago may be listed by its tags yet unknown to
    # TerminateInstances (EC2's eventual consistency): "not yet", asked again.
    waits.poll(
        partial(call, clients.ec2, "terminate_instances", {"InstanceIds": ids}),
        what=f"TerminateInstances to see {', '.join(ids)}",
        timeout=timeouts.terminated,
        interval=timeouts.poll,
    )
    emit("waiting for instances terminated", {"instances": ids})
    waits.wait_state(
        clients, ids, "terminated", timeout=timeouts.terminated, interval=timeouts.poll
    )
    return ids


def delete_tagged(
    clients: Clients,
    kind: str,
    filters: Sequence[Mapping[str, Any]],
    cluster: str,
    *,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    emit: OnEvent = no_events,
) -> list[str]:
    """Delete every ``kind`` resource matching ``filters``, refusing any unscoped filter."""
    require_cluster_filter(filters, cluster)
    describe, answer_key, id_key, delete = _KINDS[kind]
    found = call(clients.ec2, describe, {"Filters": list(filters)})[answer_key]
    require_owned(found, cluster, id_key=id_key)
    removed = []
    for resource in found:
        resource_id = str(resource[id_key])
        emit(f"deleting {kind}", {"id": resource_id})
        waits.poll(
            partial(call, clients.ec2, delete, {id_key: resource_id}),
            what=f"{kind} {resource_id} to be deletable",
            timeout=timeouts.delete,
            interval=timeouts.poll,
            retry_codes=_NOT_YET,
        )
        removed.append(resource_id)
    return removed


def _forget_local(state_dir: Path, cluster: str) -> None:
    saved = statefile.load_state(state_dir, cluster)
    if saved is not None:
        names = [hostkeys.known_hosts_name(i.address, i.port) for i in saved.instances if i.address]
        hostkeys.forget_known_hosts(state_dir / "known_hosts", names)
    statefile.forget_cluster(state_dir, cluster)


def enabled_regions(
    region: str, *, session: Any = None, endpoint_url: str | None = None
) -> list[str]:
    """The regions enabled for the account (DescribeRegions, asked in ``region``): where
    its instances can be."""
    clients = make_clients(region, session=session, endpoint_url=endpoint_url)
    answer = call(clients.ec2, "describe_regions", {})
    return sorted(str(r["RegionName"]) for r in answer.get("Regions", []))


def sweep(
    region: str,
    *,
    now: dt.datetime | None = None,
    state_dir: Path | None = None,
    session: Any = None,
    endpoint_url: str | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    on_event: OnEvent | None = None,
) -> list[TeardownResult]:
    """Tear down every cluster in ``region`` whose ``provision:expires-at`` has passed."""
    emit = on_event or no_events
    clients = make_clients(region, session=session, endpoint_url=endpoint_url)
    moment = now or dt.datetime.now(dt.timezone.utc)
    expired = sorted(c for c, at in cluster_expiry(clients).items() if at <= moment)
    emit("expired clusters", {"clusters": expired})
    return [_down(clients, c, state_dir, timeouts, emit) for c in expired]


def cluster_expiry(clients: Clients) -> dict[str, dt.datetime]:
    """Each tagged cluster's earliest expiry, over its instances, groups and key pairs."""
    has_expiry = [{"Name": "tag-key", "Values": [EXPIRES_AT]}]
    instance_filters = [*has_expiry, {"Name": "instance-state-name", "Values": LIVE_STATES}]
    reservations = pages(
        clients.ec2, "describe_instances", {"Filters": instance_filters}, "Reservations"
    )
    resources = [i for r in reservations for i in r.get("Instances", [])]
    for describe, answer_key, _id, _delete in _KINDS.values():
        resources += call(clients.ec2, describe, {"Filters": has_expiry})[answer_key]
    expiry: dict[str, dt.datetime] = {}
    for resource in resources:
        tags = tag_dict(resource.get("Tags"))
        cluster, at = tags.get(CLUSTER, ""), expiry_time(tags.get(EXPIRES_AT))
        # Without a valid cluster tag there is no safe filter to delete with: leave it alone.
        if at is not None and CLUSTER_NAME.fullmatch(cluster):
            expiry[cluster] = min(at, expiry.get(cluster, at))
    return expiry
