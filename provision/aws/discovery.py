"""The hosts of a cluster, found by their tags: a dynamic inventory like Ansible's aws_ec2."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from provision.aws import state as statefile
from provision.aws.calls import make_clients
from provision.aws.instances import find_instances, host_name
from provision.aws.results import EndpointFor, Instance
from provision.aws.tags import EXPIRES_AT, USER, check_cluster_name, tag_dict


def find_hosts(
    cluster: str,
    *,
    region: str,
    state_dir: Path | None = None,
    endpoint_for: EndpointFor | None = None,
    session: Any = None,
    endpoint_url: str | None = None,
) -> list[Instance]:
    """The cluster's running instances, in launch order, ready for the SSH layer.

    >>> [h.address for h in find_hosts("demo", region="eu-west-1")]  # doctest: +SKIP
    ['203.0.113.7']

    The login user comes from the instance's ``provision:user`` tag; with ``state_dir``, the
    key file and pinned host key come from the local state.
    """
    check_cluster_name(cluster)
    clients = make_clients(region, session=session, endpoint_url=endpoint_url)
    saved = statefile.load_state(state_dir, cluster) if state_dir else None
    key_file = state_dir / cluster / "id_ed25519" if state_dir else None
    hosts = []
    for described in find_instances(clients, cluster, states=["running"]):
        instance_id = str(described["InstanceId"])
        record = saved.instance(instance_id) if saved else None
        public_ip = described.get("PublicIpAddress")
        host = Instance(
            name=record.name if record else host_name(cluster, described),
            instance_id=instance_id,
            public_ip=public_ip,
            address=public_ip or "",
            port=22,
            user=tag_dict(described.get("Tags")).get(USER, "admin"),
            expires_at=tag_dict(described.get("Tags")).get(EXPIRES_AT),
            key_file=key_file if key_file and key_file.exists() else None,
            host_key=record.host_keys[0] if record and record.host_keys else None,
        )
        if endpoint_for is not None:
            address, port = endpoint_for(host)
            host = replace(host, address=address, port=port)
        hosts.append(host)
    return hosts


def find_ended(
    cluster: str, *, region: str, session: Any = None, endpoint_url: str | None = None
) -> list[dict[str, Any]]:
    """The cluster's instances that are no longer running (EC2 shows a terminated one for about
    an hour): name, ID, state, AWS's ``StateReason`` and the expiry tag, in launch order. An
    instance that reached its ttl powers itself off and is terminated
    (``Client.InstanceInitiatedShutdown``)."""
    check_cluster_name(cluster)
    clients = make_clients(region, session=session, endpoint_url=endpoint_url)
    states = ["shutting-down", "terminated", "stopping", "stopped"]
    return [{"name": host_name(cluster, described),
             "instance_id": str(described["InstanceId"]),
             "state": described.get("State", {}).get("Name", ""),
             "state_reason": described.get("StateReason", {}).get("Message", ""),
             "expires_at": tag_dict(described.get("Tags")).get(EXPIRES_AT)}
            for described in find_instances(clients, cluster, states=states)]  # fmt: skip
