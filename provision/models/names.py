"""Checks for values that reach a host or the cloud: names, paths, image references, ports.

Every pattern is matched whole (``fullmatch``): ``re.match`` with ``^...$`` lets a trailing
newline through, and a newline in a name is how a catch-all route or a second command is made.
"""

from __future__ import annotations

import math
import re
from typing import Any

from provision.errors import ConfigError

__all__ = [
    "check_address",
    "check_image",
    "check_name",
    "check_path",
    "check_port",
    "check_region",
    "check_seconds",
    "is_ip",
    "is_loopback",
    "shown",
    "truth",
    "whole_number",
]

_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?(@sha256:[0-9a-f]{64})?")
_PATH = re.compile(r"/[A-Za-z0-9_./@+-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def check_region(value: Any, field: str) -> str:
    """An AWS region's name, as AWS writes them (``eu-west-1``, ``us-gov-west-1``,
    ``ap-southeast-3``): checked before a client is made for it (``mars-1`` reached for an
    endpoint that does not exist, and waited for it).

    >>> check_region("mars-1", "region")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    provision.errors.ConfigError: region: not an AWS region name: 'mars-1' ...
    """
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise ConfigError(
            f"not an AWS region name: {shown(value, 40)} (like eu-west-1 or us-east-2)",
            field=field,
        )
    return value


def check_name(value: str, field: str) -> str:
    """A Docker-style name: letters, digits, ``_ . -``; nothing a shell would read.

    Quoting at the connection makes any value safe to send; this rejects the ones that are
    surely mistakes (``web;rm -rf /``) before a host is touched.

    >>> check_name("demo\\n", "cluster_name")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    provision.errors.ConfigError: cluster_name: invalid name 'demo\\n': ...
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(
            f"invalid name {value!r}: use letters, digits, '_', '.', '-' only", field=field
        )
    return value


def check_image(value: str, field: str) -> str:
    if not isinstance(value, str) or not _IMAGE.fullmatch(value):
        raise ConfigError(f"invalid image reference {value!r}", field=field)
    return value


def check_path(value: str, field: str) -> str:
    if not isinstance(value, str) or not _PATH.fullmatch(value) or "/../" in value + "/":
        raise ConfigError(f"invalid absolute path {value!r}", field=field)
    return value


_WHOLE = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only: str.isdigit() takes '²', int() not


def whole_number(value: Any) -> int | None:
    """``value`` as an int when it is one, or text of at most 18 ASCII digits (``-e`` and
    inventories give numbers as text); None for anything else (``'²'``, 5000 digits, a bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(10**18) < value < 10**18 else None
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip())
    return None


_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f"})


def truth(value: Any) -> bool | None:
    """``value`` as a boolean, as Ansible's ``boolean()`` reads one: true/false, 1/0, and the
    texts yes/no, on/off, true/false, y/n, t/f, 1/0 in any case (``-e key=value`` gives text,
    as Ansible's does); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about hostile input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]} ({len(text)} chars)"


def check_port(value: Any, field: str) -> int:
    """A TCP port, 1 to 65535 (a whole number, or a string of ASCII digits)."""
    number = whole_number(value)
    if number is not None and 1 <= number <= 65535:
        return number
    raise ConfigError(f"must be a port from 1 to 65535, got {shown(value)}", field=field)


def check_seconds(value: Any, field: str, *, limit: float = 86400.0) -> float:
    """A finite, non-negative number of seconds no larger than ``limit`` (a day by default):
    ``nan`` and ``inf`` would make a wait never end, or overflow ``time.sleep``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"must be a number of seconds, got {value!r}", field=field)
    if not math.isfinite(value) or not 0 <= value <= limit:
        raise ConfigError(
            f"must be a number of seconds from 0 to {limit:g}, got {value!r}", field=field
        )
    return float(value)


def check_address(value: Any, field: str) -> str:
    """A host to connect to: a DNS name, an IPv4 or an IPv6 address (nothing else)."""
    import ipaddress

    if isinstance(value, str) and len(value) <= 253:
        if _HOSTNAME.fullmatch(value):
            return value
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
    raise ConfigError(f"invalid host address {value!r}: a DNS name or an IP address", field=field)


def is_ip(value: str) -> bool:
    """Whether ``value`` is an IPv4 or IPv6 address (not a name)."""
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: inside a container, the container itself."""
    import ipaddress

    return host == "localhost" or (is_ip(host) and ipaddress.ip_address(host).is_loopback)
