"""The sandbox layer without a Docker engine: validation, error translation, caching."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import provision.sandbox as sandbox
from provision.aws.results import Instance
from provision.errors import CommandError, ConfigError
from provision.sandbox import cloud, hosts, images, localdocker, realism


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


class _Engine:
    """A fake local engine for ``ensure_images``: images by ref (labels, ID); every build,
    pull, import and removal recorded, and a build tags a new image (a new ID)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, images_: dict[str, dict[str, str]]):
        self.images = dict(images_)
        self.ids = {ref: f"sha256:{n}" for n, ref in enumerate(images_)}
        self.calls: list[str] = []
        monkeypatch.setattr(localdocker, "image_exists", lambda ref: ref in self.images)
        monkeypatch.setattr(localdocker, "image_labels", self.images.get)
        monkeypatch.setattr(localdocker, "image_id", self.ids.__getitem__)
        monkeypatch.setattr(localdocker, "build", self.build)
        monkeypatch.setattr(
            localdocker, "pull", lambda ref, timeout: self.calls.append(f"pull {ref}")
        )
        monkeypatch.setattr(localdocker, "docker", self.docker)
        monkeypatch.setattr(images, "_debootstrap_import", self.boot)

    def record(self, call: str) -> None:
        self.calls.append(call)

    def build(self, tag: str, **kwargs: Any) -> None:
        self.calls.append(f"build {tag} {kwargs['build_args']}")
        self.images[tag] = {"io.provision.sandbox": "1", **kwargs["labels"]}
        self.ids[tag] = f"sha256:{len(self.calls)}-{tag}"  # each build a new ID

    def boot(self, suite: str, ref: str) -> None:
        self.calls.append(f"boot {ref}")
        self.images[ref] = {"io.provision.sandbox": "1"}
        self.ids[ref] = f"sha256:boot-{ref}"

    def docker(self, *argv: str, check: bool = True, **_: Any) -> Any:
        self.calls.append("docker " + " ".join(argv))
        return localdocker.Result("docker", 0, "", "")


ALL_REFS = (
    "provision/debian-base:bookworm", "provision/debian-base:trixie",
    "redis:latest", "openresty/openresty:latest",
    "provision/sshhost:bookworm", "provision/sshhost:trixie",
    "provision/sshhost-docker:bookworm", "provision/sshhost-docker:trixie",
)  # fmt: skip


def _current(monkeypatch: pytest.MonkeyPatch) -> _Engine:
    """An engine holding every image, each built from its recipe as it is now."""
    engine = _Engine(monkeypatch, {ref: {"io.provision.sandbox": "1"} for ref in ALL_REFS})
    images.ensure_images(("bookworm", "trixie"), docker_ready=True)  # labels them all
    engine.calls.clear()
    return engine


def test_current_images_are_never_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _current(monkeypatch)
    images.ensure_images(("bookworm", "trixie"), docker_ready=True)
    assert engine.calls == []


def test_missing_images_are_pulled_then_built(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _Engine(monkeypatch, {"provision/debian-base:bookworm": {}})
    images.ensure_images(("trixie",))
    assert engine.calls == [
        "pull redis:latest",
        "build redis:latest {'SUITE': 'bookworm'}",
        "pull openresty/openresty:latest",
        "build openresty/openresty:latest {'SUITE': 'bookworm'}",
        "boot provision/debian-base:trixie",
        "build provision/sshhost:trixie {'SUITE': 'trixie'}",
    ]


def test_an_edited_dockerfile_rebuilds_its_image_and_what_starts_from_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The engine is a cache keyed by the recipe: an edited file that the sshhost image
    copies rebuilds it (never pulled), then the Docker-ready image built FROM it; the images
    they replace are removed; the rest are left as they are."""
    engine = _current(monkeypatch)
    files = tmp_path / "files"
    shutil.copytree(images.FILES, files)
    monkeypatch.setattr(images, "FILES", files)
    (files / "sudoers-admin").write_text("admin ALL=(ALL) NOPASSWD:ALL # edited\n")
    old = dict(engine.ids)
    images.ensure_images(("bookworm", "trixie"), docker_ready=True)
    assert engine.calls == [
        line
        for distro in ("bookworm", "trixie")
        for ref in (f"provision/sshhost:{distro}", f"provision/sshhost-docker:{distro}")
        for line in (f"build {ref} {{'SUITE': '{distro}'}}", f"docker image rm {old[ref]}")
    ]


def test_a_pulled_service_image_is_kept_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    # From a registry (no sandbox label): not ours to rebuild, whatever our recipe says.
    engine = _current(monkeypatch)
    engine.images["redis:latest"] = {"org.opencontainers.image.source": "docker-library"}
    images.ensure_images(("bookworm",))
    assert engine.calls == []


def test_the_recipe_digest_follows_each_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    shutil.copytree(images.FILES, files)
    monkeypatch.setattr(images, "FILES", files)
    parents = {"base": "sha256:1"}
    monkeypatch.setattr(localdocker, "image_id", parents.__getitem__)
    before = images.recipe_digest("sshhost.Dockerfile", "trixie", "base")
    assert images.recipe_digest("sshhost.Dockerfile", "trixie", "base") == before
    assert images.recipe_digest("sshhost.Dockerfile", "bookworm", "base") != before
    (files / "sources-trixie.list").write_text("deb http://example.invalid trixie main\n")
    edited = images.recipe_digest("sshhost.Dockerfile", "trixie", "base")
    assert edited != before
    parents["base"] = "sha256:2"
    assert images.recipe_digest("sshhost.Dockerfile", "trixie", "base") != edited


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


def test_a_sandbox_cloud_s_hosts_hold_it_only_under_the_realism_layer(monkeypatch):
    """``endpoint_for`` starts each host with apt-daily's hold from the layer's sandbox
    timings, and none with the layer off."""
    seen: list[float] = []

    def start_host(name: str, **kwargs: object) -> object:
        seen.append(float(kwargs["apt_daily"]))  # type: ignore[arg-type]
        raise RuntimeError("stop here")

    monkeypatch.setattr(cloud.hosts, "start_host", start_host)
    monkeypatch.setattr(cloud.hosts, "find_host", lambda name: None)
    monkeypatch.setattr(cloud.images, "ensure_images", lambda *a, **k: None)
    monkeypatch.setattr(cloud, "ensure_key_file", lambda path: "ssh-ed25519 AAAA test")
    instance = Instance("c-1", "i-0123456789abcdef0", None, "10.0.0.1", 22, "admin", Path("k"))
    for value, want in (("1", realism.SANDBOX.apt_lists), ("0", 0.0)):
        monkeypatch.setenv(realism.REALISM_ENV, value)
        with pytest.raises(RuntimeError):
            cloud.endpoint_for("c")(instance)
        assert seen.pop() == want
