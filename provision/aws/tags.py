"""The tags that mark what provision owns, and the guard that keeps deletes inside one cluster.

Every resource is tagged at creation (TagSpecifications), so teardown can find it again from a
shell that never saw the run. Deletes go through ``cluster_filters`` and ``require_owned``: a
filter that could match anything outside the cluster is refused before any call is made.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provision.errors import CloudError, ConfigError

CLUSTER = "provision:cluster"
RUN_ID = "provision:run-id"
CREATED_BY = "provision:created-by"
EXPIRES_AT = "provision:expires-at"
# Recorded on instances so the dynamic inventory knows the login user without local state.
USER = "provision:user"

CLUSTER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")  # matched whole


def check_cluster_name(cluster: str, *, source: str = "", field: str = "cluster") -> str:
    """Return ``cluster`` if it is safe in a tag, a key name and a shell; else raise ConfigError."""
    if not isinstance(cluster, str) or not CLUSTER_NAME.fullmatch(cluster):
        raise ConfigError(
            f"cluster name {cluster!r} must be 1-40 characters of a-z, 0-9 and '-' "
            "(not starting or ending with '-')",
            file=source or None,
            field=field,
        )
    return cluster


def cluster_filters(cluster: str) -> list[dict[str, Any]]:
    """The describe filter for one cluster; refuses an empty or unsafe name."""
    check_cluster_name(cluster)
    return [{"Name": f"tag:{CLUSTER}", "Values": [cluster]}]


def require_cluster_filter(filters: Sequence[Mapping[str, Any]], cluster: str) -> None:
    """Refuse a filter list that could match resources outside ``cluster``.

    An empty list, or one without an exact ``tag:provision:cluster`` = cluster entry, would let
    a describe-then-delete loop reach other people's resources.
    """
    wanted = {"Name": f"tag:{CLUSTER}", "Values": [cluster]}
    if not cluster or not any(dict(f) == wanted for f in filters):
        raise CloudError(
            f"refusing to delete with filter {list(filters)!r}: it must contain "
            f"tag:{CLUSTER}={cluster!r}, or it could match resources outside the cluster",
            code="UnsafeFilter",
        )


def tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as a plain dict."""
    return {t["Key"]: t.get("Value", "") for t in tags or ()}


def require_owned(resources: Iterable[Mapping[str, Any]], cluster: str, *, id_key: str) -> None:
    """Refuse if any resource about to be deleted is not tagged as part of ``cluster``."""
    for resource in resources:
        if tag_dict(resource.get("Tags")).get(CLUSTER) != cluster:
            raise CloudError(
                f"refusing to delete {resource.get(id_key)}: it is not tagged "
                f"{CLUSTER}={cluster!r}",
                code="UnsafeFilter",
            )


def tag_specifications(resource_types: Iterable[str], tags: Mapping[str, str]) -> list[Any]:
    """TagSpecifications that tag each resource type at creation."""
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    return [{"ResourceType": rt, "Tags": tag_list} for rt in resource_types]


def expiry_time(text: str | None) -> dt.datetime | None:
    """The time of an ``provision:expires-at`` tag (``2026-12-07T05:00:00Z``), in UTC; None when
    it is missing or not a time."""
    try:
        moment = dt.datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def is_expired(expires_at: str | None, now: dt.datetime) -> bool:
    """``expires_at`` is past at ``now``; an unknown expiry is not."""
    moment = expiry_time(expires_at)
    return moment is not None and moment <= now
