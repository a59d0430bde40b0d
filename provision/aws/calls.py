"""The one place boto3 is touched: building clients and translating their errors.

Every AWS call in provision goes through ``call`` (or ``pages``), so every botocore error
becomes a ``CloudError`` carrying AWS's error code and the operation name, here and only here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from provision.errors import CloudError, ConfigError

# Hints added to AWS's own message for the errors users hit most.
_HINTS = {
    "UnauthorizedOperation": "the AWS identity is not allowed to do this; "
    "compare its policy with policy/iam-policy.json",
    "AuthFailure": "AWS rejected the credentials; check AWS_PROFILE or the access key",
    "RequestLimitExceeded": "AWS kept throttling after every retry; try again later",
}

_UNANSWERED = (
    "the cloud's endpoint does not answer (network down, or the sandbox's moto server gone) "
    "after every retry; run the same command again to finish, or `provision down` to undo"
)


@dataclass(frozen=True)
class Clients:
    """The boto3 clients of one region (typed ``Any``: boto3 ships no stubs here)."""

    region: str
    ec2: Any
    ssm: Any


def make_clients(
    region: str,
    *,
    session: Any = None,
    endpoint_url: str | None = None,
    max_attempts: int = 8,
) -> Clients:
    """Clients with botocore's ``standard`` retry mode, after checking credentials exist.

    ``session`` is a ``boto3.Session`` (tests register event hooks on it); ``endpoint_url``
    points every client at a moto server.
    """
    import boto3
    from botocore.config import Config

    if session is None and endpoint_url is not None:
        # A local endpoint (the sandbox's moto server) needs no real credentials: never send
        # the user's to it.
        session = boto3.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    session = session if session is not None else boto3.Session()
    if session.get_credentials() is None:
        raise ConfigError(
            "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or configure a profile with `aws configure`",
            field="credentials",
        )
    if endpoint_url is not None and _loopback(endpoint_url):
        # The sandbox's own moto server: one that refuses a connection is gone, not busy, and
        # eight retries with backoff (~35 s) only delay the error.
        max_attempts = min(max_attempts, LOCAL_RETRIES)
    config = Config(
        region_name=region,
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
    )
    return Clients(
        region=region,
        ec2=session.client("ec2", region_name=region, endpoint_url=endpoint_url, config=config),
        ssm=session.client("ssm", region_name=region, endpoint_url=endpoint_url, config=config),
    )


#: Retries (after the first attempt: botocore's ``max_attempts``) against a loopback endpoint.
LOCAL_RETRIES = 2


def _loopback(url: str) -> bool:
    import ipaddress
    import urllib.parse

    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def operation_name(client: Any, method: str) -> str:
    """``run_instances`` -> ``RunInstances`` (AWS's name, as in the IAM policy)."""
    mapping: Mapping[str, str] = client.meta.method_to_api_mapping
    return mapping.get(method, method)


def call(client: Any, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Call ``client.<method>(**params)``; any botocore error becomes a ``CloudError``."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    operation = operation_name(client, method)
    try:
        answer: dict[str, Any] = getattr(client, method)(**(params or {}))
        return answer
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or exc)
        hint = _HINTS.get(code)
        raise CloudError(
            f"{message} — {hint}" if hint else message, code=code, operation=operation
        ) from exc
    except NoCredentialsError as exc:
        raise CloudError(
            "no AWS credentials found", code="NoCredentials", operation=operation
        ) from exc
    except BotoCoreError as exc:
        message = str(exc)
        if isinstance(exc, EndpointConnectionError):
            message += f" — {_UNANSWERED}"
        raise CloudError(message, code=type(exc).__name__, operation=operation) from exc


def pages(
    client: Any, method: str, params: Mapping[str, Any], key: str
) -> Iterator[dict[str, Any]]:
    """Every item under ``key`` across NextToken pages, each page fetched through ``call``."""
    request = dict(params)
    while True:
        answer = call(client, method, request)
        yield from answer.get(key, [])
        token = answer.get("NextToken")
        if not token:
            return
        request["NextToken"] = token
