"""A bounded HTTP load loop on loopback, for the fault suite and ``bench/load_soak.py``.

``workers`` threads, each with one keep-alive connection, send GETs to one URL until stopped,
for at most ``max_seconds`` and ``max_requests``; every answer is counted by status, by the
router's ``X-Route-Source`` (absent: fresh from Redis; ``stale-cache``) and by its
``X-Upstream-Endpoint``, with its latency. A refused or dropped connection counts as status 0.

>>> with Load("http://127.0.0.1:8080/api/x") as load:  # doctest: +SKIP
...     time.sleep(2); kill_something(); time.sleep(3)
>>> load.tally.statuses, load.tally.p99_ms()
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["Load", "Tally"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)  # "fresh" or "stale-cache"
    endpoints: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # why a status 0 had no answer
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def p99_ms(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def add(self, other: Tally) -> None:
        self.statuses.update(other.statuses)
        self.sources.update(other.sources)
        self.endpoints.update(other.endpoints)
        self.latencies += other.latencies
        self.errors.update(other.errors)


class Load:
    """Load on ``url`` from ``workers`` threads while the ``with`` block runs."""

    def __init__(
        self,
        url: str,
        *,
        workers: int = 8,
        max_seconds: float = 120.0,
        max_requests: int = 1_000_000,
        timeout: float = 5.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname not in LOOPBACK:
            raise ValueError(f"load is sent to loopback only, not {parts.hostname!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.workers, self.timeout = workers, timeout
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.tally = Tally()
        self._stop = threading.Event()
        self._sent = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for _ in range(self.workers):
            thread = threading.Thread(target=self._worker, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        self.tally.seconds = time.monotonic() - self._started

    def _more(self) -> bool:
        if self._stop.is_set() or time.monotonic() - self._started > self.max_seconds:
            return False
        with self._lock:
            self._sent += 1
            return self._sent <= self.max_requests

    def _worker(self) -> None:
        mine = Tally()
        conn: http.client.HTTPConnection | None = None
        while self._more():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            start = time.monotonic()
            try:
                conn.request("GET", self.path)
                answer = conn.getresponse()
                answer.read()
            except (OSError, http.client.HTTPException) as exc:
                mine.statuses[0] += 1
                mine.errors[type(exc).__name__] += 1
                conn.close()
                conn = None
                time.sleep(0.01)
                continue
            mine.latencies.append(time.monotonic() - start)
            mine.statuses[answer.status] += 1
            mine.sources[answer.getheader("X-Route-Source") or "fresh"] += 1
            mine.endpoints[answer.getheader("X-Upstream-Endpoint") or "-"] += 1
            if answer.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with self._lock:
            self.tally.add(mine)
