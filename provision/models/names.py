"""Checks for names that reach a host: networks, projects, paths, image references."""

from __future__ import annotations

import re

from provision.errors import ConfigError

__all__ = ["check_image", "check_name", "check_path"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?(@sha256:[0-9a-f]{64})?$")
_PATH = re.compile(r"^/[A-Za-z0-9_./@+-]*$")


def check_name(value: str, field: str) -> str:
    """A Docker-style name: letters, digits, ``_ . -``; nothing a shell would read.

    Quoting at the connection makes any value safe to send; this rejects the ones that are
    surely mistakes (``web;rm -rf /``) before a host is touched.
    """
    if not _NAME.match(value):
        raise ConfigError(
            f"invalid name {value!r}: use letters, digits, '_', '.', '-' only", field=field
        )
    return value


def check_image(value: str, field: str) -> str:
    if not _IMAGE.match(value):
        raise ConfigError(f"invalid image reference {value!r}", field=field)
    return value


def check_path(value: str, field: str) -> str:
    if not _PATH.match(value) or "/../" in value + "/":
        raise ConfigError(f"invalid absolute path {value!r}", field=field)
    return value
