"""The doctor finds each trap of the corpus at its file and line, and nothing in our own files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provision.doctor import (
    CLUSTER_NO_ANNOUNCE,
    CLUSTER_SPLIT_NETWORKS,
    CODES,
    HOST_DOCKER_INTERNAL,
    LOOPBACK_REDIS,
    LUA_NO_REDIRECT,
    LUA_NO_RESOLVER,
    SPLIT_NETWORKS,
    STATIC_PROXY_PASS,
    Finding,
    diagnose,
    format_finding,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "doctor_corpus"

# trap folder -> every finding expected there: (file relative to the folder, line, code)
EXPECTED: dict[str, set[tuple[str, int, str]]] = {
    "loopback-redis": {
        ("nginx.conf", 6, LOOPBACK_REDIS),  # upstream server 127.0.0.1:6379
        ("nginx.conf", 13, LOOPBACK_REDIS),  # inline red:connect("127.0.0.1", ...)
        ("lua/store.lua", 4, LOOPBACK_REDIS),  # the default of the variable connect uses
        ("docker-compose.yml", 5, LOOPBACK_REDIS),  # REDIS_HOST=127.0.0.1 (not network_mode: host)
    },
    "lua-no-resolver": {("lua/ping.lua", 5, LUA_NO_RESOLVER)},
    "proxy-pass-static-host": {
        ("nginx.conf", 5, STATIC_PROXY_PASS),  # upstream server without resolve
        ("nginx.conf", 13, STATIC_PROXY_PASS),  # proxy_pass http://echo-a:80
    },
    "split-networks": {
        ("openresty/docker-compose.yml", 5, SPLIT_NETWORKS),  # env names another project's service
        ("app/docker-compose.yml", 6, SPLIT_NETWORKS),  # depends_on across networks
    },
    "host-docker-internal": {
        ("docker-compose.yml", 7, HOST_DOCKER_INTERNAL),
        ("lua/store.lua", 4, HOST_DOCKER_INTERNAL),
    },
    # Redis Cluster in Docker: a published node that announces no name (flags, and a mounted
    # redis.conf), nodes on different networks, a Lua client that never follows MOVED
    "cluster-no-announce": {
        ("docker-compose.yml", 7, CLUSTER_NO_ANNOUNCE),  # redis-1: --cluster-enabled, no announce
        ("docker-compose.yml", 14, CLUSTER_NO_ANNOUNCE),  # redis-2: cluster-enabled in redis.conf
    },
    "cluster-split-networks": {("a/docker-compose.yml", 2, CLUSTER_SPLIT_NETWORKS)},
    "lua-cluster-no-redirect": {("lua/routes.lua", 4, LUA_NO_REDIRECT)},
}


def _found(folder: Path) -> set[tuple[str, int, str]]:
    return {(f.file.relative_to(folder).as_posix(), f.line, f.code) for f in diagnose([folder])}


def test_every_code_has_a_corpus_folder() -> None:
    assert set(CODES) == set(EXPECTED) == {p.name for p in CORPUS.iterdir() if p.is_dir()}


@pytest.mark.parametrize("trap", sorted(EXPECTED))
def test_trap_found_at_file_and_line(trap: str) -> None:
    assert _found(CORPUS / trap) == EXPECTED[trap]


def test_project_files_are_clean() -> None:
    findings = diagnose([ROOT / "playbooks" / "files"])
    assert findings == [], "\n".join(map(format_finding, findings))


def test_resolver_fixes_lua_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "fixed"
    shutil.copytree(CORPUS / "lua-no-resolver", folder)
    conf = folder / "nginx.conf"
    conf.write_text(conf.read_text().replace("http {", "http {\n    resolver 127.0.0.11;", 1))
    assert diagnose([folder]) == []


def test_extra_hosts_fixes_host_docker_internal(tmp_path: Path) -> None:
    folder = tmp_path / "fixed"
    shutil.copytree(CORPUS / "host-docker-internal", folder)
    compose = folder / "docker-compose.yml"
    compose.write_text(
        compose.read_text() + '    extra_hosts: ["host.docker.internal:host-gateway"]\n'
    )
    assert diagnose([folder]) == []


def test_shared_external_network_fixes_split(tmp_path: Path) -> None:
    folder = tmp_path / "fixed"
    shutil.copytree(CORPUS / "split-networks", folder)
    shutil.rmtree(folder / "app")
    shared = "networks:\n  default:\n    external: true\n    name: shared-network\n"
    for project in ("redis", "openresty"):
        compose = folder / project / "docker-compose.yml"
        compose.write_text(compose.read_text() + shared)
    assert diagnose([folder]) == []


def test_a_single_file_is_diagnosed_on_its_own() -> None:
    findings = diagnose([CORPUS / "proxy-pass-static-host" / "nginx.conf"])
    assert [(f.line, f.code) for f in findings] == [(5, STATIC_PROXY_PASS), (13, STATIC_PROXY_PASS)]


def test_format_names_file_line_code_and_hint() -> None:
    finding = Finding(Path("a/nginx.conf"), 7, STATIC_PROXY_PASS, "proxy_pass to 'x'", "use $v")
    assert format_finding(finding) == (
        "a/nginx.conf:7: proxy-pass-static-host: proxy_pass to 'x'\n    hint: use $v"
    )


@pytest.mark.parametrize(
    "line",
    ['REDIS_HOST="127.0.0.1"', "REDIS_HOST='127.0.0.1'", "export REDIS_HOST=127.0.0.1",
     "REDIS_HOST=127.0.0.1  # the trap", 'LOOP=127.0.0.1\nREDIS_HOST="${LOOP}"'],
)  # fmt: skip
def test_a_dotenv_value_is_read_as_compose_reads_it(tmp_path: Path, line: str) -> None:
    """#28: the .env was split on "=", so a quoted REDIS_HOST="127.0.0.1" (or an `export`, an
    inline comment, a ${VAR}) passed unflagged while the plain form was found."""
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  openresty:\n    image: openresty/openresty:latest\n"
        "    environment:\n      - REDIS_HOST=${REDIS_HOST}\n"
    )
    (tmp_path / ".env").write_text(line + "\n")
    # the compose line that takes it (the .env line itself may be flagged as well)
    assert ("docker-compose.yml", 5, LOOPBACK_REDIS) in _found(tmp_path)
