"""The checks' parsers and verdicts, from recorded output (a fake host; real ones are in
tests/integration/test_router_local.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from provision.cluster.layout import Layout
from provision.cluster.lookup import parse_container_ip, parse_password
from provision.cluster.routes import validate
from provision.errors import ConfigError
from provision.models import Result
from provision.verify import (
    check_containers,
    check_dns,
    check_negative_control,
    check_ping,
    run_suite,
)
from provision.verify.basic import health_argv, parse_probe, parse_ps
from provision.verify.probes import parse_gateway, parse_getent, parse_http
from tests.unit.fakes import Answer, FakeRemote

CONFIG = Layout(sudo=False, deadline=0)
NETWORKS = json.dumps({"shared-network": {"IPAddress": "172.20.0.3"}, "other": {"IPAddress": "x"}})


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("172.20.0.3      redis\n", ["172.20.0.3"]),
        ("172.20.0.3 redis r1\nfe80::1 redis\n", ["172.20.0.3", "fe80::1"]),
        ("", []),
        ("getent: no such host\n", []),
    ],
)
def test_parse_getent(stdout: str, expected: list[str]) -> None:
    assert parse_getent(stdout) == expected


@pytest.mark.parametrize(
    ("text", "network", "expected"),
    [
        (NETWORKS, "shared-network", "172.20.0.3"),
        (NETWORKS, "missing", ""),
        ("", "shared-network", ""),
        ("not json", "shared-network", ""),
    ],
)
def test_parse_container_ip(text: str, network: str, expected: str) -> None:
    assert parse_container_ip(text, network) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("172.20.0.1,172.20.0.0/16 \n", "172.20.0.1"),
        (",172.17.0.0/16 \n", "172.17.0.1"),  # the default bridge on a 20.10 engine
        ("", ""),
    ],
)
def test_parse_gateway(text: str, expected: str) -> None:
    assert parse_gateway(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("REDIS_PASSWORD=abc123\n", "abc123"),
        ("# generated\nexport REDIS_PASSWORD='q9'\n", "q9"),
        ("REDIS_PASSWORD=old\nREDIS_PASSWORD=new\n", "new"),
        ("OTHER=1\n", None),
        ("", None),
    ],
)
def test_parse_password(text: str, expected: str | None) -> None:
    assert parse_password(text) == expected


@pytest.mark.parametrize(
    ("stdout", "status", "header", "body"),
    [
        (
            '{"status": 200, "headers": {"X-Route-Source": "stale-cache"}, "body": "ok"}',
            200,
            "stale-cache",
            "ok",
        ),
        (
            '{"status": 0, "headers": {}, "body": "ConnectionRefusedError(111)"}',
            0,
            None,
            "ConnectionRefusedError(111)",
        ),
        (
            "Traceback (most recent call last): boom",
            0,
            None,
            "Traceback (most recent call last): boom",
        ),
    ],
)
def test_parse_http(stdout: str, status: int, header: str | None, body: str) -> None:
    reply = parse_http(stdout)
    assert (reply.status, reply.headers.get("x-route-source"), reply.body) == (status, header, body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "redis redis running Up 5 seconds (healthy)\n",
            {("redis", "redis"): ("running", "healthy")},
        ),
        (
            "echo echo-a running Up 3 seconds (health: starting)",
            {("echo", "echo-a"): ("running", "starting")},
        ),
        (
            "o openresty running Up 2 minutes (unhealthy)",
            {("o", "openresty"): ("running", "unhealthy")},
        ),
        ("o x running Up 2 minutes", {("o", "x"): ("running", "")}),
        ("r redis exited Exited (137) 3 seconds ago", {("r", "redis"): ("exited", "")}),
        (
            "r redis exited Exited (1) 9 s ago\nr redis running Up 1 second (healthy)",
            {("r", "redis"): ("running", "healthy")},
        ),
        ("", {}),
    ],
)
def test_parse_ps(text: str, expected: dict[tuple[str, str], tuple[str, str]]) -> None:
    assert parse_ps(text) == expected


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("refused [Errno 111] Connection refused\n", "refused"),
        ("open\n", "open"),
        ("error timed out\n", "error"),
        ("", "error"),
    ],
)
def test_parse_probe(stdout: str, expected: str) -> None:
    assert parse_probe(stdout) == expected


@pytest.mark.parametrize(
    ("strategy", "redis_files", "openresty_files"),
    [
        ("shared-network", ["r/redis/docker-compose.yml"], ["r/openresty/docker-compose.yml"]),
        (
            "host-gateway",
            ["r/redis/docker-compose.yml", "r/redis/strategy-host-gateway.yml"],
            ["r/openresty/docker-compose.yml", "r/openresty/strategy-host-gateway.yml"],
        ),
        (
            "host-docker-internal",
            ["r/redis/docker-compose.yml", "r/redis/strategy-host-gateway.yml"],
            ["r/openresty/docker-compose.yml", "r/openresty/strategy-host-docker-internal.yml"],
        ),
    ],
)
def test_compose_files_per_strategy(
    strategy: str, redis_files: list[str], openresty_files: list[str]
) -> None:
    config = Layout(root="r", strategy=strategy)  # type: ignore[arg-type]
    assert config.compose_files("redis") == redis_files
    assert config.compose_files("openresty") == openresty_files
    assert config.compose_argv("echo", "ps") == [
        "docker",
        "compose",
        "-p",
        "echo",
        "-f",
        "r/echo/docker-compose.yml",
        "ps",
    ]


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ConfigError, match="redis_strategy: must be one of"):
        Layout(strategy="bridge")  # type: ignore[arg-type]


def _host(redis_host: str = "redis", resolved: str = "172.20.0.3") -> FakeRemote:
    fake = FakeRemote()
    fake.answer(r"project=openresty .*service=openresty", "oc1 running\n")
    fake.answer(r"project=redis .*service=redis", "rc1 running\n")
    fake.answer(r"inspect -f \{\{json .NetworkSettings.Networks\}\} rc1", NETWORKS)
    fake.answer(r"exec oc1 getent hosts redis", f"{resolved}  redis\n")
    fake.answer(
        r"inspect -f \{\{json .Config.Env\}\} oc1",
        json.dumps([f"REDIS_HOST={redis_host}", "PATH=/usr/bin"]),
    )
    fake.answer(
        r"exec oc1 curl .*telnet://127.0.0.1:6379",
        code=7,
        stderr="* connect to 127.0.0.1 port 6379 failed: Connection refused\n",
    )
    return fake


def test_dns_passes_when_the_name_gives_the_container_address() -> None:
    result = check_dns(_host(), CONFIG)
    assert result.passed, result
    assert result.evidence["resolved"] == ["172.20.0.3"]


def test_dns_fails_on_another_address_with_compose_ps_and_logs() -> None:
    result = check_dns(_host(resolved="172.20.0.9"), CONFIG)
    assert not result.passed
    assert set(result.evidence["logs"]) == {"openresty/openresty", "redis/redis"}
    assert set(result.evidence["compose_ps"]) == {"openresty", "redis"}


@pytest.mark.parametrize(
    ("redis_host", "passed"), [("redis", True), ("127.0.0.1", False), ("localhost", False)]
)
def test_negative_control(redis_host: str, passed: bool) -> None:
    result = check_negative_control(_host(redis_host=redis_host), CONFIG)
    assert result.passed is passed
    refused = "* connect to 127.0.0.1 port 6379 failed: Connection refused"
    assert result.evidence["error"] == [refused]


def test_ping_failure_carries_health_and_logs() -> None:
    fake = _host()
    reply = {"status": 502, "headers": {}, "body": "ERR connect 127.0.0.1:6379: refused\n"}
    fake.answer(r"(?s)^python3 -c .* http://127.0.0.1:80/ping ", json.dumps(reply))
    details = {"status": "degraded", "redis": {"host": "127.0.0.1", "error": "refused"}}
    # The details come from inside the container, not from the public /health.
    fake.answer(r"exec oc1 curl -sS -m 3 http://127.0.0.1:8081/health$", json.dumps(details))
    result = check_ping(fake, CONFIG)
    assert not result.passed and result.evidence["status"] == 502
    assert result.evidence["health"] == details
    assert not any("http://127.0.0.1:80/health" in c for c in fake.commands())
    assert "openresty/openresty" in result.evidence["logs"]


def test_run_suite_refuses_unknown_checks() -> None:
    with pytest.raises(ConfigError, match="unknown check"):
        run_suite(FakeRemote(), CONFIG, checks=["dns", "nope"])


def test_run_suite_turns_a_missing_secret_into_a_failed_check() -> None:
    fake = _host()
    fake.answer(r"^cat /opt/provision/secrets/redis.env", code=1, stderr="No such file")
    [result] = run_suite(fake, CONFIG, checks=["route-roundtrip"])
    assert not result.passed and "no REDIS_PASSWORD" in result.summary


@pytest.mark.parametrize(
    ("prefix", "service", "endpoints", "field"),
    [
        ("api", "echo", ["echo-a:80"], "prefix"),
        ("/a b", "echo", ["echo-a:80"], "prefix"),
        ("/api", "bad\tname", ["echo-a:80"], "service"),
        ("/api", "echo", ["echo-a"], "endpoints"),
        ("/api", "echo", ["echo a:80"], "endpoints"),
    ],
)
def test_route_values_the_router_cannot_read_are_refused(
    prefix: str, service: str, endpoints: list[str], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        validate(prefix, service, endpoints)
    assert info.value.field == field


def _config(test: list[str], shell: list[str] | None = None, timeout: int = 0) -> str:
    """``docker inspect -f '{{json .Config}}'`` of a container with this health check."""
    check = {"Test": test, **({"Timeout": timeout} if timeout else {})}
    return json.dumps({"Healthcheck": check, "Shell": shell, "Image": "x"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            _config(["CMD", "curl", "-fsS", "http://127.0.0.1/health"], timeout=3_000_000_000),
            (["curl", "-fsS", "http://127.0.0.1/health"], 3.0),
        ),
        (
            _config(["CMD-SHELL", "redis-cli ping | grep -q PONG"]),
            (["/bin/sh", "-c", "redis-cli ping | grep -q PONG"], 30.0),
        ),
        (  # the image's SHELL, as Docker uses it for CMD-SHELL
            _config(["CMD-SHELL", "exit 0"], shell=["/bin/bash", "-o", "pipefail", "-c"]),
            (["/bin/bash", "-o", "pipefail", "-c", "exit 0"], 30.0),
        ),
        (_config(["NONE"]), None),
        ('{"Healthcheck":null}', None),
        ("null", None),
        ("", None),
        ("not json", None),
        ('{"Healthcheck":{"Test":"curl x"}}', None),
    ],
)
def test_health_argv(text: str, expected: tuple[list[str], float] | None) -> None:
    assert health_argv(text) == expected


_SERVICES = (("redis", "redis"), ("openresty", "openresty"), ("echo", "echo-a"), ("echo", "echo-b"))


def _ps(health: str) -> str:
    return "\n".join(f"{p} {s} running Up 1 second ({health})" for p, s in _SERVICES)


def _starting_host(probe: Result | Callable[[list[str]], Result], ps: Answer | None = None):
    """Four containers just started (or ``ps``), each's health check answering ``probe``."""
    remote = FakeRemote()
    remote.answer(r"^docker ps -a --filter label=com.docker.compose.project --form",
                  _ps("health: starting"))  # fmt: skip
    if ps is not None:
        remote.answers.insert(0, (r"^docker ps -a --filter label=com.docker.compose.project --form",
                                  ps))  # fmt: skip
    remote.answer(r"^docker ps -a --filter label=com.docker.compose.project=\S+ --filter",
                  "c0ffee running\n")  # fmt: skip
    remote.answer(r"^docker inspect -f \{\{json \.Config\}\}",
                  _config(["CMD-SHELL", "exit 0"], timeout=3_000_000_000))  # fmt: skip
    remote.answers.insert(0, (r"^docker exec c0ffee /bin/sh -c", probe))
    return remote


def test_containers_just_started_pass_when_their_own_check_passes_now() -> None:
    """Right after `up`, Docker's first health check is an interval away: the check runs the
    container's own (as Docker does: an exec), and a pass is Docker's verdict to come."""
    remote = _starting_host(Result("", 0))
    result = check_containers(remote, CONFIG)
    assert result.passed, result
    assert result.evidence["containers"]["redis/redis"].startswith("running healthy (its check")
    probes = [c for c in remote.commands() if c.startswith("docker exec c0ffee")]
    assert probes == ["docker exec c0ffee /bin/sh -c exit 0"] * 4, probes


def test_containers_whose_own_check_fails_are_not_healthy() -> None:
    result = check_containers(_starting_host(Result("", 1)), CONFIG)  # deadline 0: no wait
    assert not result.passed and "redis/redis" in result.summary, result


def test_a_check_that_fails_at_first_is_run_again_until_it_passes(monkeypatch) -> None:
    """A service still starting fails its check until it is ready: run again each second."""
    monkeypatch.setattr("provision.verify.basic.time.sleep", lambda _: None)
    codes = iter([1] * 4 + [0] * 4)  # the four fail once, then pass
    remote = _starting_host(lambda argv: Result("", next(codes)))
    result = check_containers(remote, Layout(sudo=False, deadline=30))
    assert result.passed, result
    assert len([c for c in remote.commands() if c.startswith("docker exec c0ffee")]) == 8


def test_a_container_docker_then_calls_unhealthy_fails_though_its_check_passed_once(
    monkeypatch,
) -> None:
    """redis passes its check here, openresty does not yet; waiting for Docker's verdict on
    openresty, the next ``docker ps`` has Docker call every container unhealthy: Docker's
    verdict wins, redis's pass included."""
    monkeypatch.setattr("provision.verify.basic.time.sleep", lambda _: None)
    verdicts = iter([_ps("health: starting"), _ps("unhealthy")])
    codes = iter([0, 1, 0, 0])  # redis, openresty, echo-a, echo-b
    remote = _starting_host(lambda argv: Result("", next(codes, 1)),
                            ps=lambda argv: Result("", 0, next(verdicts)))  # fmt: skip
    result = check_containers(remote, Layout(sudo=False, deadline=30))
    assert not result.passed, result
    assert "redis/redis" in result.summary and "openresty/openresty" in result.summary, result
