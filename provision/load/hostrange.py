"""Host patterns of an inventory: ranges (``web[01:03]``, ``db-[a:c]``, ``n[1:10:2]``) and an
optional ``:port``, with Ansible's semantics.

A range is ``[begin:end]`` or ``[begin:end:step]``, both ends included; an empty begin is 0.
Numbers keep a leading zero's width (``[01:10]`` gives ``01`` ... ``10``; both ends must then be
as wide); letters run through ``a``-``z`` then ``A``-``Z``. Several ranges multiply, left first.

>>> expand_host_pattern("web[01:03]")
(['web01', 'web02', 'web03'], None)
>>> expand_host_pattern("db-[a:c]:2222")
(['db-a', 'db-b', 'db-c'], 2222)
>>> expand_host_pattern("n[1:10:4]x[1:2]")[0]
['n1x1', 'n1x2', 'n5x1', 'n5x2', 'n9x1', 'n9x2']
"""

from __future__ import annotations

import re
import string

__all__ = ["MAX_HOSTS", "HostPatternError", "expand_host_pattern"]

#: the most hosts one pattern may name (``web[1:100000000]`` is a typo, not a fleet)
MAX_HOSTS = 10_000

# Ansible's parse_address: a name (brackets may hold ranges) and an optional `:port`.
_HOST_PORT = re.compile(r"\A((?:[^:\[\]]|\[[^\]]*\])+):(\d+)\Z")


class HostPatternError(ValueError):
    """A host pattern that names no host (the message says why)."""


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """The host names a pattern stands for, in order, and its port (``None`` when not given)."""
    port: int | None = None
    match = _HOST_PORT.match(pattern)
    if match:
        pattern, port = match.group(1), int(match.group(2))
    if "[" not in pattern:
        return [pattern], port
    names = [""]
    rest = pattern
    while "[" in rest:
        head, _, tail = rest.partition("[")
        body, closed, rest = tail.partition("]")
        if not closed:
            raise HostPatternError(f"unclosed '[' in host pattern {pattern!r}")
        values = _range(body, pattern)
        if len(names) * len(values) > MAX_HOSTS:
            raise HostPatternError(f"host pattern {pattern!r} names more than {MAX_HOSTS} hosts")
        names = [f"{name}{head}{value}" for name in names for value in values]
    if "]" in rest:
        raise HostPatternError(f"unopened ']' in host pattern {pattern!r}")
    return [f"{name}{rest}" for name in names], port


def _range(body: str, pattern: str) -> list[str]:
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise HostPatternError(f"host range must be begin:end or begin:end:step in {pattern!r}")
    begin, end = bounds[0] or "0", bounds[1]
    if not end:
        raise HostPatternError(f"host range must specify an end in {pattern!r}")
    try:
        step = int(bounds[2]) if len(bounds) == 3 else 1
    except ValueError:
        raise HostPatternError(f"host range step must be an integer in {pattern!r}") from None
    if step < 1:
        raise HostPatternError(f"host range step must be at least 1 in {pattern!r}")
    letters = string.ascii_letters
    if begin in letters and end in letters and len(begin) == len(end) == 1:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise HostPatternError(f"host range must have begin <= end in {pattern!r}")
        return list(letters[first : last + 1 : step])
    if not (begin.isdigit() and end.isdigit() and begin.isascii() and end.isascii()):
        raise HostPatternError(
            f"host range bounds must be two integers or two letters in {pattern!r}"
        )
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise HostPatternError(
            f"host range must specify equal-length begin and end formats in {pattern!r}"
        )
    low, high = int(begin), int(end)
    if low > high:
        raise HostPatternError(f"host range must have begin <= end in {pattern!r}")
    if (high - low) // step + 1 > MAX_HOSTS:
        raise HostPatternError(f"host pattern {pattern!r} names more than {MAX_HOSTS} hosts")
    return [str(n).zfill(width) for n in range(low, high + 1, step)]
