"""An exclusive ``flock`` on a file, held for a ``with`` block: one process at a time on this
machine (the file is created if missing and left in place; the lock goes with the process).

>>> with held(Path("/tmp/provision-example.lock")):   # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

__all__ = ["held"]


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Wait for the lock on ``path``, hold it for the block, release it."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
