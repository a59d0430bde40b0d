"""Polling with a deadline: each wait says what it waited for when it gives up.

botocore's ``standard`` retry mode already retries throttling and 5xx answers inside one call;
these loops add the EC2-specific part: an id that AWS has just returned may not be visible to
the next call yet (eventual consistency), so ``...NotFound`` right after a create means "not yet".
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from provision.aws.calls import Clients, pages
from provision.errors import CloudError, ConnectError, ProvisionError

T = TypeVar("T")

EVENTUALLY_CONSISTENT = frozenset(
    {
        "InvalidInstanceID.NotFound",
        "InvalidGroup.NotFound",
        "InvalidKeyPair.NotFound",
        "InvalidVolume.NotFound",
    }
)


def poll(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    interval: float,
    retry_codes: Collection[str] = EVENTUALLY_CONSISTENT,
    on_timeout: Callable[[str], ProvisionError] | None = None,
) -> T:
    """Call ``check`` until it returns something other than None, or the deadline passes.

    A ``CloudError`` whose code is in ``retry_codes`` counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            result = check()
        except CloudError as exc:
            if exc.code not in retry_codes:
                raise
            result, last = None, f" (last answer: {exc})"
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            message = f"gave up after {timeout:g}s waiting for {what}{last}"
            raise on_timeout(message) if on_timeout else CloudError(message, code="Timeout")
        time.sleep(interval)


def describe(clients: Clients, instance_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The instances with these ids (raises InvalidInstanceID.NotFound while AWS catches up)."""
    reservations = pages(
        clients.ec2, "describe_instances", {"InstanceIds": list(instance_ids)}, "Reservations"
    )
    return [i for r in reservations for i in r.get("Instances", [])]


def wait_state(
    clients: Clients, instance_ids: Sequence[str], state: str, *, timeout: float, interval: float
) -> list[dict[str, Any]]:
    """Wait until every instance is in ``state`` (running, terminated).

    Waiting for ``running``, an instance that is shutting down or terminated instead (it died
    at launch: a KMS key it may not use, no capacity, a bad image) fails the wait at once,
    with AWS's ``StateReason``, rather than at the deadline."""

    def check() -> list[dict[str, Any]] | None:
        found = describe(clients, instance_ids)
        if state == "running":
            _raise_if_died(found)
        ready = len(found) == len(instance_ids) and all(i["State"]["Name"] == state for i in found)
        return found if ready else None

    what = f"instance(s) {', '.join(instance_ids)} to be {state}"
    return poll(check, what=what, timeout=timeout, interval=interval)


def wait_status_ok(
    clients: Clients, instance_ids: Sequence[str], *, timeout: float, interval: float
) -> None:
    """Wait until both EC2 status checks (system and instance) pass for every instance: two
    to four minutes after launch on real EC2, long after SSH answers. Only asked for
    (``wait_status_checks: true``): readiness is SSH answering with the pinned key."""

    def check() -> bool | None:
        answer = list(pages(clients.ec2, "describe_instance_status",
                       {"InstanceIds": list(instance_ids), "IncludeAllInstances": True},
                       "InstanceStatuses"))  # fmt: skip
        ok = len(answer) == len(instance_ids) and all(
            s["InstanceStatus"]["Status"] == "ok" and s["SystemStatus"]["Status"] == "ok"
            for s in answer
        )
        return True if ok else None

    poll(check, what=f"the status checks of {', '.join(instance_ids)} to pass",
         timeout=timeout, interval=interval)  # fmt: skip


def _raise_if_died(found: Sequence[dict[str, Any]]) -> None:
    dead = [i for i in found if i["State"]["Name"] in ("shutting-down", "terminated")]
    if not dead:
        return
    reasons = []
    for instance in dead:
        reason = instance.get("StateReason") or {}
        why = reason.get("Message") or instance.get("StateTransitionReason") or "no reason given"
        code = f"{reason['Code']}: " if reason.get("Code") else ""
        reasons.append(f"{instance['InstanceId']} is {instance['State']['Name']} ({code}{why})")
    raise CloudError(
        "an instance died at launch instead of running: "
        + "; ".join(reasons)
        + ". Run `provision down` to remove what this run made, fix the cause, then `up` again",
        code="InstanceDiedAtLaunch",
        operation="DescribeInstances",
    )


def read_ssh_banner(address: str, port: int, *, timeout: float = 5.0) -> str | None:
    """The server's ``SSH-`` identification line, or None if it is not answering yet."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    # RFC 4253 lets a server send other lines before its identification string.
    for line in data.decode("latin-1").splitlines():
        if line.startswith("SSH-"):
            return line.strip()
    return None


def wait_ssh_banner(address: str, port: int, *, timeout: float, interval: float) -> str:
    """Wait until ``address:port`` answers with an SSH banner; ConnectError if it never does."""
    target = address if port == 22 else f"[{address}]:{port}"
    return poll(
        lambda: read_ssh_banner(address, port, timeout=min(5.0, max(timeout, 0.1))),
        what=f"an SSH banner from {target}",
        timeout=timeout,
        interval=interval,
        on_timeout=lambda message: ConnectError(message, host=target),
    )
