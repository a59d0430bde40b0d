"""Fault case 7: the router under load while Redis is killed, then while one of two echo
backends is killed.

A sandbox cluster is stood up and a route to both echo backends added, with the CLI, as a user
would. A bounded load loop (8 threads, keep-alive, loopback only) runs against the host's
OpenResty while, inside the host, Redis's container is killed: no request gets a 5xx or goes
unanswered; every answer is either fresh or marked ``stale-cache``, and some are stale (the kill
was felt). Then, under load again, ``echo-a`` is killed: every request still gets a 2xx
(the router retries it on ``echo-b`` and marks ``echo-a`` down), and after the kill only
``echo-b`` answers."""

from __future__ import annotations

import time
import urllib.request

import pytest

from bench.loadgen import Load
from provision.sandbox import localdocker
from tests.clirun import provision_cli

pytestmark = pytest.mark.integration

ROUTE = "/api/load"


def _in_host(host: str, *argv: str) -> str:
    return localdocker.docker("exec", host, *argv).stdout.strip()


def _service(host: str, service: str) -> str:
    return _in_host(host, "docker", "ps", "-aq", "--filter",
                    f"label=com.docker.compose.service={service}")  # fmt: skip


def _get(url: str) -> tuple[int, dict[str, str]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except OSError:
        return 0, {}


def _until(url: str, done, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done(*_get(url)):
        assert time.monotonic() < deadline, f"{url} did not settle within {seconds} s"
        time.sleep(0.3)


def test_no_5xx_when_redis_dies_and_no_error_when_a_backend_dies_under_load(shared_cluster):
    """On the session's shared cluster: the route is removed and echo-a started again at the
    end, so the cluster is left as found (the fixture verifies it)."""
    cwd, var, host = shared_cluster.cwd, shared_cluster.var, shared_cluster.container
    added = provision_cli("routes", "add", ROUTE, "load", "echo-a:80", "echo-b:80", "-e", var,
                          cwd=cwd)  # fmt: skip
    assert added.returncode == 0, added.stderr
    echo_a = _service(host, "echo-a")
    try:
        _under_load(shared_cluster.url, host, echo_a)
    finally:
        _in_host(host, "docker", "start", echo_a, _service(host, "redis"))
        removed = provision_cli("routes", "rm", ROUTE, "-e", var, cwd=cwd)
        assert removed.returncode == 0, removed.stderr


def _under_load(base: str, host: str, echo_a: str) -> None:
    url = f"{base}{ROUTE}/x"
    _until(url, lambda status, _h: status == 200)

    redis = _service(host, "redis")
    with Load(url, workers=8, max_seconds=60) as load:
        time.sleep(1.5)
        _in_host(host, "docker", "kill", redis)
        time.sleep(4)
    redis_kill = load.tally
    _in_host(host, "docker", "start", redis)
    assert redis_kill.requests > 200, redis_kill
    assert redis_kill.server_errors == 0, redis_kill.statuses
    assert redis_kill.statuses[0] == 0, redis_kill.errors
    assert set(redis_kill.sources) <= {"fresh", "stale-cache"}, redis_kill.sources
    assert redis_kill.sources["stale-cache"] > 0, redis_kill.sources
    assert redis_kill.non_2xx == 0, redis_kill.statuses
    _until(url, lambda status, h: status == 200 and "x-route-source" not in h, 60)

    with Load(url, workers=8, max_seconds=60) as load:
        time.sleep(1.5)
        _in_host(host, "docker", "kill", echo_a)
        time.sleep(4)
    backend_kill = load.tally
    assert backend_kill.requests > 200, backend_kill
    assert backend_kill.non_2xx == 0, (backend_kill.statuses, backend_kill.errors)
    assert set(backend_kill.endpoints) == {"echo-a:80", "echo-b:80"}, backend_kill.endpoints
    answered_by = {_get(url)[1].get("x-upstream-endpoint") for _ in range(6)}
    assert answered_by == {"echo-b:80"}, answered_by
    print(
        f"\nredis kill: {redis_kill.requests} requests, {redis_kill.non_2xx} non-2xx, "
        f"{redis_kill.sources['stale-cache']} stale-cache, p99 {redis_kill.p99_ms():.1f} ms\n"
        f"echo-a kill: {backend_kill.requests} requests, {backend_kill.non_2xx} non-2xx, "
        f"p99 {backend_kill.p99_ms():.1f} ms, {dict(backend_kill.endpoints)}"
    )
