"""Finding a cluster's instances by their tags, and launching them when there are none."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provision.aws import userdata, waits
from provision.aws.calls import Clients, call, pages
from provision.aws.tags import CLUSTER, USER, cluster_filters, tag_dict, tag_specifications
from provision.errors import CloudError

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def find_instances(
    clients: Clients, cluster: str, *, states: list[str] | None = None
) -> list[dict[str, Any]]:
    """The cluster's instances (not terminated), in launch order."""
    filters = [
        *cluster_filters(cluster),
        {"Name": "instance-state-name", "Values": states or LIVE_STATES},
    ]
    reservations = pages(clients.ec2, "describe_instances", {"Filters": filters}, "Reservations")
    found = [i for r in reservations for i in r.get("Instances", [])]
    # Belt and braces: keep only what carries our exact tag, whatever the filter matched.
    owned = [i for i in found if tag_dict(i.get("Tags")).get(CLUSTER) == cluster]
    return sorted(owned, key=lambda i: (i.get("AmiLaunchIndex", 0), i["InstanceId"]))


def host_name(cluster: str, instance: Mapping[str, Any]) -> str:
    """``<cluster>-1``, ``<cluster>-2``...: stable, from RunInstances' launch index."""
    return f"{cluster}-{int(instance.get('AmiLaunchIndex', 0)) + 1}"


def client_token(cluster: str, run_id: str) -> str:
    """RunInstances' idempotency token (<= 64 chars): a retried launch of one run is one launch."""
    digest = hashlib.sha256(f"{cluster}/{run_id}".encode()).hexdigest()[:32]
    return f"provision-{digest}"


@dataclass(frozen=True)
class LaunchRequest:
    cluster: str
    run_id: str
    ami_id: str
    root_device: str
    instance_type: str
    root_volume_gb: int
    count: int
    key_name: str
    security_group_id: str
    subnet_id: str | None
    user: str
    expires_at: str = ""  # the cluster's expiry (UTC): the instance powers itself off then
    docker_at_boot: bool = False  # the user-data installs Docker for ``user`` during boot
    pull_at_boot: tuple[str, ...] = ()  # ... then pulls these, in the background


#: RunInstances' answers while a key pair or security group made a moment ago is not yet
#: visible to it (EC2's eventual consistency): "not yet", not a failure.
LAUNCH_NOT_YET = frozenset({"InvalidGroup.NotFound", "InvalidKeyPair.NotFound"})


def launch(
    clients: Clients,
    request: LaunchRequest,
    tags: Mapping[str, str],
    *,
    timeout: float = 60.0,
    interval: float = 2.0,
) -> list[str]:
    """RunInstances: IMDSv2 only (hop limit 1), an encrypted root volume, tagged at creation.

    Right after ``CreateSecurityGroup`` or ``ImportKeyPair`` EC2 may answer that the group or
    key pair does not exist (eventual consistency): the call is repeated for up to
    ``timeout`` seconds. The ClientToken makes that safe: a repeat of a launch that did
    happen returns the same instances, never a second set."""
    instance_tags = {**tags, USER: request.user, "Name": request.cluster}
    params: dict[str, Any] = {
        "ImageId": request.ami_id,
        "InstanceType": request.instance_type,
        "MinCount": request.count,
        "MaxCount": request.count,
        "KeyName": request.key_name,
        "SecurityGroupIds": [request.security_group_id],
        "ClientToken": client_token(request.cluster, request.run_id),
        # An OS shutdown terminates the instance (an EBS-backed one would only stop, and its
        # volume keep costing); the user-data schedules one at the cluster's expiry.
        "InstanceInitiatedShutdownBehavior": "terminate",
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 1,
            "HttpEndpoint": "enabled",
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": request.root_device,
                "Ebs": {
                    "VolumeSize": request.root_volume_gb,
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [
            *tag_specifications(["instance"], instance_tags),
            *tag_specifications(["volume", "network-interface"], tags),
        ],
    }
    if request.expires_at or request.docker_at_boot:
        docker_user = request.user if request.docker_at_boot else ""
        params["UserData"] = userdata.user_data(
            request.expires_at, docker_user, pull=request.pull_at_boot
        )
    if request.subnet_id:
        # A chosen subnet may not map public IPs on launch (MapPublicIpOnLaunch false: the
        # default of a subnet that is not a default VPC's): ask for one on the interface, or
        # the instance comes up unreachable from here (found out only after launch).
        del params["SecurityGroupIds"]
        params["NetworkInterfaces"] = [
            {
                "DeviceIndex": 0,
                "SubnetId": request.subnet_id,
                "Groups": [request.security_group_id],
                "AssociatePublicIpAddress": True,
                "DeleteOnTermination": True,
            }
        ]
    answer = waits.poll(
        lambda: _run_instances(clients, params, request),
        what=f"RunInstances to see key pair {request.key_name} and security group "
        f"{request.security_group_id}",
        timeout=timeout,
        interval=interval,
        retry_codes=LAUNCH_NOT_YET,
    )
    return [str(i["InstanceId"]) for i in answer["Instances"]]


def _run_instances(
    clients: Clients, params: dict[str, Any], request: LaunchRequest
) -> dict[str, Any]:
    try:
        return call(clients.ec2, "run_instances", params)
    except CloudError as exc:
        if exc.code != "IdempotentParameterMismatch":
            raise
        subnet = f" in subnet {request.subnet_id}" if request.subnet_id else ""
        raise CloudError(
            f"an earlier, unfinished `up` of cluster {request.cluster} launched with this run's "
            f"ClientToken but other parameters; this one asks for {request.count} x "
            f"{request.instance_type} from {request.ami_id}{subnet}. Run `up` again with the "
            "earlier values to finish that launch, or `provision down` to remove it and then "
            "`up` (a new run, a new token)",
            code=exc.code,
            operation=exc.operation,
        ) from exc
