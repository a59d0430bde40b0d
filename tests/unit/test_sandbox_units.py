"""The sandbox layer without a Docker engine: validation, error translation, caching."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import provision.sandbox as sandbox
from provision.errors import CommandError, ConfigError
from provision.sandbox import hosts, images, localdocker


def _fake_bin(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)


def test_public_names_exist() -> None:
    for name in sandbox.__all__:
        assert hasattr(sandbox, name), name


@pytest.mark.parametrize("bad", ["Web", "a_b", "-a", "a-", "a b", "x" * 43, "", "a;rm", "ä"])
def test_bad_host_names_are_refused_before_docker(bad: str) -> None:
    with pytest.raises(ConfigError, match="invalid sandbox host name"):
        hosts.start_host(bad, public_key="ssh-ed25519 AAAA test")


def test_unknown_distro_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown sandbox distro 'sid'"):
        images.sshhost_image("sid")
    with pytest.raises(ConfigError):
        images.ensure_images(("bookworm", "jessie"))


def test_public_key_must_look_like_one() -> None:
    with pytest.raises(ConfigError, match="public_key"):
        hosts.start_host("ok-name", public_key="-----BEGIN OPENSSH PRIVATE KEY-----")


def test_missing_docker_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(localdocker.EngineUnavailable, match="not installed"):
        localdocker.docker("info")
    assert localdocker.available() is False


def test_unreachable_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_bin(
        tmp_path, "docker", "echo 'Cannot connect to the Docker daemon at unix:///x' >&2; exit 1\n"
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(localdocker.EngineUnavailable) as info:
        localdocker.image_exists("x")
    assert info.value.host == localdocker.ENGINE


def test_failed_subcommand_carries_its_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_bin(tmp_path, "docker", 'echo "boom: $*" >&2; exit 3\n')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CommandError) as info:
        localdocker.docker("volume", "create", "a b")
    result = info.value.result
    assert result.exit_code == 3
    assert result.command == "docker volume create 'a b'"
    assert "boom: volume create a b" in result.stderr
    assert localdocker.docker("x", check=False).exit_code == 3


def test_existing_images_are_never_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every image is looked at, none is built, pulled or imported (recorded, not raised, so
    # that an error handler inside ensure_images cannot hide a forbidden call).
    looked: list[str] = []
    forbidden: list[str] = []

    def exists(ref: str) -> bool:
        looked.append(ref)
        return True

    monkeypatch.setattr(localdocker, "image_exists", exists)
    for name in ("build", "pull", "import_rootfs"):
        monkeypatch.setattr(localdocker, name, lambda *a, _n=name, **k: forbidden.append(_n))  # type: ignore[misc]
    images.ensure_images(("bookworm", "trixie"))
    assert forbidden == []
    assert {
        "provision/sshhost:bookworm",
        "provision/sshhost:trixie",
        "redis:latest",
        "openresty/openresty:latest",
    } <= set(looked)


def test_missing_images_are_pulled_then_built(monkeypatch: pytest.MonkeyPatch) -> None:
    present: set[str] = {"provision/debian-base:bookworm"}
    calls: list[str] = []

    def build(tag: str, **kwargs: object) -> None:
        calls.append(f"build {tag} {kwargs['build_args']}")
        present.add(tag)

    monkeypatch.setattr(localdocker, "image_exists", lambda ref: ref in present)
    monkeypatch.setattr(localdocker, "pull", lambda ref, timeout: calls.append(f"pull {ref}"))
    monkeypatch.setattr(localdocker, "build", build)
    monkeypatch.setattr(images, "_debootstrap_import", lambda s, r: calls.append(f"boot {r}"))
    images.ensure_images(("trixie",))
    assert calls == [
        "pull redis:latest",
        "build redis:latest {'SUITE': 'bookworm'}",
        "pull openresty/openresty:latest",
        "build openresty/openresty:latest {'SUITE': 'bookworm'}",
        "boot provision/debian-base:trixie",
        "build provision/sshhost:trixie {'SUITE': 'trixie'}",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "redis-server --protected-mode no --bind 0.0.0.0 --dir /data"),
        (
            ["redis-server", "--appendonly", "yes", "--requirepass", "s3cret"],
            "redis-server --protected-mode no --bind 0.0.0.0 --dir /data "
            "--appendonly yes --requirepass s3cret",
        ),
        (
            ["--appendonly", "yes"],
            "redis-server --protected-mode no --bind 0.0.0.0 --dir /data --appendonly yes",
        ),
        (["redis-cli", "ping"], "redis-cli ping"),
    ],
)
def test_redis_entrypoint_behaves_like_the_official_one(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    for tool in ("redis-server", "redis-cli"):
        _fake_bin(tmp_path, tool, f'echo {tool} "$@"\n')
    entrypoint = images.FILES / "redis-entrypoint.sh"
    argv = ["sh", str(entrypoint), *(args or ["redis-server"])]
    done = subprocess.run(
        argv, capture_output=True, text=True, check=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}
    )
    assert done.stdout.strip() == expected


def test_every_file_the_dockerfiles_copy_is_shipped() -> None:
    for dockerfile in images.FILES.glob("*.Dockerfile"):
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            if line.startswith("COPY "):
                source = line.split()[1]
                for suite in images.SUPPORTED_DISTROS:
                    assert (images.FILES / source.replace("${SUITE}", suite)).is_file(), line


def test_the_docker_ready_image_installs_what_docker_engine_would_pick():
    """The Docker-ready host image installs the packages `docker_engine` picks, with the very
    same script (copied into its Dockerfile): the two cannot drift apart unseen."""
    from provision.sandbox.images import FILES
    from provision.tasks.docker_engine import PICK_PACKAGES

    dockerfile = (FILES / "sshhost-docker.Dockerfile").read_text()
    assert f"packages=$({PICK_PACKAGES})" in dockerfile
    assert "install -y --no-install-recommends docker.io $packages" in dockerfile
    assert "usermod -aG docker admin" in dockerfile
