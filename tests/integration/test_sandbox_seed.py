"""Preloaded sandbox hosts (``provision.sandbox.seed``): each starts with the service images
in its own Docker engine, the very images of the local engine, and what one host does to
them (a container that writes over an image file, an image removed) reaches neither the seed
nor another host, although the layers are shared as hard links."""

from __future__ import annotations

import time

from provision.sandbox import images, localdocker
from provision.sandbox.seed import SERVICE_IMAGES
from tests import bounds

ID = "{{.Id}}"


def _inner(host, *argv: str) -> str:
    """``argv`` as root inside the host (its own Docker engine answers there)."""
    return localdocker.exec_in(host.container_id, list(argv), timeout=120).stdout.strip()


def _engine_up(host) -> None:
    deadline = time.monotonic() + bounds.ENGINE_ANSWERS
    while not localdocker.docker("exec", host.container_id, "docker", "info", check=False).ok:
        assert time.monotonic() < deadline, f"{host.name}: no Docker engine answered"
        time.sleep(0.2)


def test_preloaded_hosts_hold_the_local_images_and_share_nothing_they_change(
    ssh_host_factory,
):
    one, two = ssh_host_factory("seed-a"), ssh_host_factory("seed-b")
    for host in (one, two):
        _engine_up(host)
    local = localdocker.docker("image", "inspect", "--format", ID, *SERVICE_IMAGES).stdout.split()
    for host in (one, two):
        held = _inner(host, "docker", "image", "inspect", "--format", ID,
                      *SERVICE_IMAGES).split()  # fmt: skip
        assert held == local, host.name
    engine_ids = {_inner(h, "docker", "info", "--format", "{{.ID}}") for h in (one, two)}
    assert len(engine_ids) == 2, engine_ids  # each engine made its own ID

    # On one host: a container writes over a file of the image, then the image goes.
    release = "/etc/os-release"
    _inner(one, "docker", "run", "--rm", "--entrypoint", "sh", images.REDIS_IMAGE,
           "-c", f"echo changed-by-a-container >> {release}")  # fmt: skip
    _inner(one, "docker", "image", "rm", "--force", images.REDIS_IMAGE)
    _inner(one, "docker", "image", "prune", "--force", "--all")
    assert images.REDIS_IMAGE not in _inner(one, "docker", "image", "ls",
                                            "--format", "{{.Repository}}:{{.Tag}}")  # fmt: skip

    # The other host, and a host started after, still have the image as it was.
    three = ssh_host_factory("seed-c")
    _engine_up(three)
    for host in (two, three):
        text = _inner(host, "docker", "run", "--rm", "--entrypoint", "cat",
                      images.REDIS_IMAGE, release)  # fmt: skip
        assert "changed-by-a-container" not in text and "Debian" in text, host.name


def test_a_host_started_without_preloading_has_an_empty_engine(ssh_host_factory):
    host = ssh_host_factory("seed-none", preloaded=False)
    _engine_up(host)
    listed = _inner(host, "docker", "image", "ls", "--quiet")
    assert listed.strip() == ""
