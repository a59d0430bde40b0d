"""Modules driven with a fake connection: facts in, commands out (table-driven, no host)."""

from __future__ import annotations

import json

import pytest

from provision.errors import ConfigError, ProvisionError
from provision.tasks import registry
from provision.tasks.base import TaskContext, build_args
from provision.tasks.compose import parse_project_state
from provision.tasks.copy import Entry, parse_remote, plan
from provision.tasks.facts import parse_host_facts
from tests.unit.fakes import AL2023, DEBIAN12_BARE, DEBIAN13_DOCKER, FakeRemote, run

MODULES = registry()


def changing(remote: FakeRemote) -> list[str]:
    """Commands that are not reads (reads are: inspect, ps, test, sh -c facts)."""
    reads = ("inspect", "test -", "apt-cache", "cloud-init status", "HOST", "fingerprint=")
    return [c for c in remote.commands() if not any(r in c for r in reads)]


# -- docker_engine ---------------------------------------------------------------------------
def test_engine_installs_on_bare_debian():
    remote = FakeRemote()
    bare = parse_host_facts(DEBIAN12_BARE)
    remote.answer(r"os_id", DEBIAN13_DOCKER)  # the re-gather after install
    remote.answer(r"apt-cache show", "docker-compose\n")
    outcome, _ = run("docker_engine", {}, remote, facts=bare)
    assert outcome.changed
    cmds = remote.commands()
    assert any("apt-get -q -y -o DPkg::Lock::Timeout=300 update" in c for c in cmds)
    assert any("install --no-install-recommends docker.io docker-compose" in c for c in cmds)
    assert "systemctl enable --now docker" in cmds
    assert "usermod -aG docker admin" in cmds
    assert remote.reconnects == 1


def test_engine_installs_the_split_cli_on_debian_13():
    remote = FakeRemote()
    remote.answer(r"os_id", DEBIAN13_DOCKER)
    remote.answer(r"apt-cache show", "docker-compose\ndocker-cli\n")
    run("docker_engine", {}, remote, facts=parse_host_facts(DEBIAN12_BARE))
    assert any(
        c.endswith("install --no-install-recommends docker.io docker-compose docker-cli")
        for c in remote.commands()
    )


def test_engine_ok_when_present():
    remote = FakeRemote()
    outcome, _ = run("docker_engine", {}, remote, facts=parse_host_facts(DEBIAN13_DOCKER))
    assert not outcome.changed
    assert remote.calls == []


def test_engine_check_mode_runs_nothing():
    remote = FakeRemote()
    remote.answer(r"apt-cache show", "docker-compose\n")
    outcome, ctx = run(
        "docker_engine", {}, remote, check=True, facts=parse_host_facts(DEBIAN12_BARE)
    )
    assert outcome.changed
    assert any("docker.io" in c for c in ctx.executed)
    assert not any("install" in c for c in remote.commands())


def test_engine_amazon_linux_command_sequence():
    # Amazon Linux 2023 cannot be booted here: its path is tested as a command sequence only.
    remote = FakeRemote()
    bare = AL2023 + "user=ec2-user\nuser_groups=ec2-user\n"
    installed = ("os_id=amzn\ndocker_server=25.0\ncompose_v2=2.29.7\nuser=ec2-user\n"
                 "user_groups=ec2-user docker\n")  # fmt: skip
    looks = iter([bare, installed])  # after cloud-init (no user-data install), after ours
    remote.answers.insert(0, (r"os_id", lambda argv: _result(next(looks))))
    facts = parse_host_facts(bare)
    outcome, _ = run("docker_engine", {}, remote, facts=facts)
    cmds = remote.commands()
    assert cmds[0] == "cloud-init status --wait"
    assert "dnf install -y docker" in cmds
    release = "https://github.com/docker/compose/releases/download/v2.29.7/"
    binary = "/var/tmp/provision-compose/docker-compose-linux-x86_64"
    fetch = f"curl -fsSL --retry 5 -o {binary} {release}docker-compose-linux-x86_64"
    checksum = (
        f"curl -fsSL --retry 5 -o {binary}.sha256 {release}docker-compose-linux-x86_64.sha256"
    )
    check = next(i for i, c in enumerate(cmds) if "sha256sum --check" in c)
    installed = cmds.index(
        f"install -m 0755 {binary} /usr/local/lib/docker/cli-plugins/docker-compose"
    )
    # downloaded with its published checksum, checked, and only then installed
    assert cmds.index(fetch) < check and cmds.index(checksum) < check < installed
    assert "usermod -aG docker ec2-user" in cmds
    assert outcome.changed


def test_engine_finds_docker_installed_while_the_instance_booted():
    """SSH answers before cloud-init is done: Docker is not there yet; the task waits for
    cloud-init, looks again, and finds what the user-data installed: ok, and it says so."""
    remote = FakeRemote()
    remote.answer(r"os_id", DEBIAN13_DOCKER)
    facts = parse_host_facts(DEBIAN12_BARE + "cloud_init=1\n")
    outcome, _ = run("docker_engine", {}, remote, facts=facts)
    assert not outcome.changed and "installed while the instance booted" in outcome.msg
    cmds = remote.commands()
    assert cmds[0] == "cloud-init status --wait"
    assert not any("apt-get" in c or "usermod" in c for c in cmds), cmds


def test_engine_installs_over_ssh_when_the_user_data_failed_and_says_why():
    remote = FakeRemote()
    remote.answer(r"cloud-init status", "status: error\n", code=1)
    remote.answer(r"^tail -n 6 /var/log/cloud-init-output.log",
                  "E: Unable to locate package docker.io\nuser-data script failed\n")  # fmt: skip
    bare = DEBIAN12_BARE + "cloud_init=1\n"
    looks = iter([bare, DEBIAN13_DOCKER])
    remote.answers.insert(0, (r"os_id", lambda argv: _result(next(looks))))
    remote.answer(r"apt-cache show", "docker-compose\n")
    outcome, _ = run("docker_engine", {}, remote, facts=parse_host_facts(bare))
    assert outcome.changed
    assert "over SSH: the user-data's install failed (cloud-init reported status: error" in (
        outcome.msg
    )
    assert "user-data script failed" in outcome.msg
    assert any("install --no-install-recommends docker.io" in c for c in remote.commands())


def test_engine_unknown_distribution():
    with pytest.raises(ProvisionError, match="unsupported distribution 'arch'"):
        run("docker_engine", {}, FakeRemote(), facts=parse_host_facts("os_id=arch\nuser=a\n"))


# -- docker_network --------------------------------------------------------------------------
def _net(driver="bridge", containers=(), options=None):
    return json.dumps(
        [
            {
                "Name": "shared-network",
                "Driver": driver,
                "Options": options or {},
                "IPAM": {"Config": [{"Gateway": "172.18.0.1", "Subnet": "172.18.0.0/16"}]},
                "Containers": {c: {"Name": c} for c in containers},
            }
        ]
    )


@pytest.mark.parametrize(
    ("existing", "args", "changed", "expected"),
    [
        (
            None,
            {"name": "shared-network"},
            True,
            ["docker network create --driver bridge shared-network"],
        ),
        (_net(), {"name": "shared-network"}, False, []),
        (
            _net("macvlan"),
            {"name": "shared-network"},
            True,
            [
                "docker network rm shared-network",
                "docker network create --driver bridge shared-network",
            ],
        ),
        (
            _net(),
            {"name": "shared-network", "options": {"com.docker.network.mtu": "1400"}},
            True,
            [
                "docker network rm shared-network",
                "docker network create --driver bridge --opt com.docker.network.mtu=1400 "
                "shared-network",
            ],
        ),
        (None, {"name": "shared-network", "state": "absent"}, False, []),
        (
            _net(),
            {"name": "shared-network", "state": "absent"},
            True,
            ["docker network rm shared-network"],
        ),
        (
            _net(containers=["redis-1"]),
            {"name": "shared-network", "state": "absent", "force": True},
            True,
            [
                "docker network disconnect --force shared-network redis-1",
                "docker network rm shared-network",
            ],
        ),
    ],
)
def test_network(existing, args, changed, expected):
    remote = FakeRemote()
    remote.answer(r"network inspect", existing or "[]", 0 if existing else 1)
    outcome, _ = run("docker_network", args, remote)
    assert outcome.changed is changed
    assert [c for c in remote.commands() if "inspect" not in c] == expected


def test_network_absent_refuses_with_containers():
    remote = FakeRemote()
    remote.answer(r"network inspect", _net(containers=["redis-1"]))
    with pytest.raises(ProvisionError, match="containers are attached: redis-1"):
        run("docker_network", {"name": "shared-network", "state": "absent"}, remote)
    assert not any("rm" in c for c in remote.commands())


def test_network_gateway_is_registered():
    remote = FakeRemote()
    remote.answer(r"network inspect", _net())
    outcome, _ = run("docker_network", {"name": "shared-network"}, remote)
    assert outcome.data["gateway"] == "172.18.0.1"


@pytest.mark.parametrize("name", ["web;rm -rf /", "$(id)", "a b", "", "-rf"])
def test_network_names_with_shell_characters_are_refused(name):
    with pytest.raises(ConfigError, match="invalid name"):
        build_args(MODULES["docker_network"], {"name": name})


# -- copy -------------------------------------------------------------------------------------
def test_copy_plan():
    want = {"a.conf": Entry(b"A", 0o644), "lua/r.lua": Entry(b"R", 0o644)}
    have = {
        "a.conf": (Entry(b"A", 0o644).sha, 0o644, "root:root"),
        "lua/r.lua": (Entry(b"old", 0o644).sha, 0o644, "root:root"),
        "stale.txt": ("x" * 64, 0o644, "root:root"),
    }
    assert plan(want, have, "root:root", only=False) == (["lua/r.lua"], ["stale.txt"])
    assert plan(want, have, "root:root", only=True) == (["lua/r.lua"], [])
    assert plan(want, have, "admin:admin", only=True) == (["a.conf", "lua/r.lua"], [])


def test_copy_remote_manifest_parser():
    sha = "b" * 64
    out = f"stat 644 root root ./nginx.conf\nstat 755 root root ./lua/x.lua\n{sha}  ./nginx.conf\n"
    assert parse_remote(out) == {
        "nginx.conf": (sha, 0o644, "root:root"),
        "lua/x.lua": ("", 0o755, "root:root"),
    }


def test_copy_sends_only_changed_files(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "same.conf").write_text("same\n")
    (tmp_path / "proj" / "new.conf").write_text("new\n")
    same = Entry(b"same\n", 0o644).sha
    remote = FakeRemote()
    remote.answer(r"find \. -type f", f"stat 644 root root ./same.conf\n{same}  ./same.conf\n")
    spec = MODULES["copy"]
    ctx = TaskContext(remote, become=True, vars={"playbook_dir": str(tmp_path)})
    outcome = spec.apply(ctx, build_args(spec, {"src": "proj", "dest": "/opt/p", "mode": "0644"}))
    assert outcome.changed and outcome.data["files"] == ["new.conf"]
    assert any(c.endswith("/opt/p root:root new.conf") for c in remote.commands())


def test_copy_diff_in_check_mode():
    remote = FakeRemote()
    remote.answer(r"^cat ", "a=1\n")
    spec = MODULES["copy"]
    ctx = TaskContext(remote, check=True, diff=True, become=True)
    outcome = spec.apply(ctx, build_args(spec, {"content": "a=2\n", "dest": "/opt/p/.env"}))
    assert outcome.changed
    assert "-a=1" in outcome.diff and "+a=2" in outcome.diff
    assert not any("tar" in c for c in remote.commands())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"dest": "/x"}, "exactly one of 'src' and 'content'"),
        ({"dest": "relative", "content": ""}, "invalid absolute path"),
        ({"dest": "/x;reboot", "content": ""}, "invalid absolute path"),
        ({"dest": "/x", "content": "", "mode": "rwx"}, "not octal"),
    ],
)
def test_copy_bad_args(args, message):
    with pytest.raises(ConfigError, match=message):
        build_args(MODULES["copy"], args)


# -- compose ----------------------------------------------------------------------------------
STATE = "fingerprint=f1\nstored=f1:a1,b2\nc a1 redis-redis-1 running redis\nc b2 x-1 running x\n"


@pytest.mark.parametrize(
    ("stdout", "converged"),
    [
        (STATE, True),
        (STATE.replace("stored=f1", "stored=f0"), False),  # compose files or images changed
        (STATE.replace("b2 x-1 running", "b2 x-1 exited"), False),
        ("fingerprint=f1\nstored=f1:\n", False),  # no containers
        (STATE.replace("c b2 x-1 running x\n", ""), False),  # a container was removed
        (STATE.replace("running redis", "running redis redis:latest"), True),
        (STATE.replace("running redis", "running redis 5f1bd3c4a2e9"), False),  # tag moved on
    ],
)
def test_compose_converged(stdout, converged):
    assert parse_project_state(stdout).converged is converged


def test_compose_noop_runs_no_compose():
    remote = FakeRemote()
    remote.answer(r"fingerprint=", STATE)
    outcome, _ = run(
        "compose",
        {"project_src": "/opt/provision/redis", "project_name": "redis"},
        remote,
        facts=parse_host_facts("compose_v1=1.29.2\n"),
    )
    assert not outcome.changed
    assert len(remote.calls) == 1


def test_compose_up_with_v1_and_v2():
    for facts, flavour in (
        ("compose_v1=1.29.2", "docker-compose"),
        ("compose_v2=2.26.1\ncompose_v1=1.29", "docker compose"),
    ):
        states = iter(["fingerprint=f1\nstored=\n", STATE.replace("stored=f1:a1,b2", "stored=")])
        remote = FakeRemote()
        remote.answers.append((r"fingerprint=", lambda argv, s=states: _result(next(s))))
        outcome, _ = run(
            "compose",
            {"project_src": "/opt/p", "project_name": "p"},
            remote,
            facts=parse_host_facts(facts),
        )
        assert outcome.changed
        assert any(
            f"/opt/p {flavour} -p p -f docker-compose.yml up -d --remove-orphans" in c
            for c in remote.commands()
        )
        assert any("/var/lib/provision/compose/p f1:a1,b2" in c for c in remote.commands())


def _result(stdout: str):
    from provision.models import Result

    return Result("state", 0, stdout)


# -- secret, command --------------------------------------------------------------------------
def test_secret_generated_once_and_never_logged():
    remote = FakeRemote()
    remote.answer(r"sha256sum", "")  # no file yet
    outcome, ctx = run(
        "secret", {"path": "/opt/provision/secrets/redis.env", "key": "REDIS_PASSWORD"}, remote
    )
    assert outcome.changed
    value = remote.stdin[0].decode()
    assert value.startswith("REDIS_PASSWORD=") and len(value.strip()) == len("REDIS_PASSWORD=") + 32
    secret = value.split("=", 1)[1].strip()
    assert all(secret not in c for c in remote.commands() + ctx.executed + [outcome.msg])
    again = FakeRemote()
    again.answer(r"sha256sum", "ab" * 32 + "\n")
    outcome, _ = run(
        "secret", {"path": "/opt/provision/secrets/redis.env", "key": "REDIS_PASSWORD"}, again
    )
    assert not outcome.changed and not again.stdin


SECRET = {"path": "/opt/provision/secrets/redis.env", "key": "REDIS_PASSWORD"}
KEPT = "REDIS_PASSWORD=kept-value-kept-value-kept-value\n"


def _secret_host(name: str, digest: str) -> FakeRemote:
    from provision.models import HostSpec

    remote = FakeRemote(host=HostSpec(name, "127.0.0.1", user="admin"))
    remote.answer(r"sha256sum", digest)
    remote.answer(r"^cat /opt/provision/secrets/redis.env", KEPT)
    return remote


def _secret_ctx(remote: FakeRemote, peers: dict[str, FakeRemote]) -> TaskContext:
    return TaskContext(remote, become=True, peers=lambda name: peers[name])


def test_a_secret_is_kept_on_the_other_managers_and_a_replacement_takes_it_from_them():
    """The first host makes the value and keeps a copy on the others (once); its
    replacement, whose file is missing, takes the kept value instead of making a new one,
    which would not match what the swarm's services were deployed with."""
    spec = registry()["secret"]
    args = build_args(spec, {**SECRET, "keep_on": ["c-2", "c-3"]})
    first = _secret_host("c-1", "")
    peers = {"c-2": _secret_host("c-2", ""), "c-3": _secret_host("c-3", "")}
    outcome = spec.apply(_secret_ctx(first, peers), args)
    assert outcome.changed and "a copy kept on c-2, c-3" in outcome.msg
    made = first.stdin[0]
    assert peers["c-2"].stdin == [made] and peers["c-3"].stdin == [made]
    assert all(made.decode().split("=")[1].strip() not in c for c in peers["c-2"].commands())

    same = "cd" * 32
    kept = {"c-2": _secret_host("c-2", same), "c-3": _secret_host("c-3", same)}
    again = spec.apply(_secret_ctx(_secret_host("c-1", same), kept), args)
    assert not again.changed and not kept["c-2"].stdin and not kept["c-3"].stdin

    unread = {"c-2": _secret_host("c-2", ""), "c-3": _secret_host("c-3", "")}
    unread["c-2"].answer(r"sha256sum", "", code=255)  # the read failed: not "no copy"
    with pytest.raises(ProvisionError, match=r"could not read .* on c-2"):
        spec.apply(_secret_ctx(_secret_host("c-1", ""), unread), args)
    assert not unread["c-3"].stdin  # nothing made, nothing overwritten

    replacement = _secret_host("c-1", "")
    healed = spec.apply(_secret_ctx(replacement, kept), args)
    assert healed.changed and "copied from c-2 (value kept)" in healed.msg, healed.msg
    assert replacement.stdin == [KEPT.encode()]  # the kept value, not a new one
    assert not kept["c-2"].stdin and not kept["c-3"].stdin


def test_command_creates_and_read_only():
    remote = FakeRemote()
    remote.answer(r"^test -e /done", code=0)
    outcome, _ = run("command", {"argv": ["touch", "/done"], "creates": "/done"}, remote)
    assert not outcome.changed
    remote = FakeRemote()
    remote.answer(r"^uname", "Linux\n")
    outcome, _ = run("command", {"argv": ["uname"], "changes": False}, remote, check=True)
    # As Ansible registers it: without the trailing newline (#22)
    assert not outcome.changed and outcome.data["stdout"] == "Linux"
    assert outcome.data["stdout_lines"] == ["Linux"] and outcome.data["rc"] == 0


# -- docker_images ----------------------------------------------------------------------------
def test_images_sends_only_missing_or_different(monkeypatch):
    from provision.tasks import docker_images

    monkeypatch.setattr(
        docker_images,
        "local_images",
        lambda images: {
            "redis:latest": ("sha256:r", 10),
            "openresty/openresty:latest": ("sha256:o2", 20),
        },
    )
    monkeypatch.setattr(docker_images, "_stream", lambda images, on_raw: iter([b"tar"]))
    remote = FakeRemote()
    remote.answer(
        r"image inspect", "sha256:r redis:latest redis:7\nsha256:o1 openresty/openresty:latest\n"
    )
    outcome, _ = run(
        "docker_images", {"images": ["redis:latest", "openresty/openresty:latest"]}, remote
    )
    assert outcome.changed and outcome.data["sent"] == ["openresty/openresty:latest"]
    assert remote.commands()[-1] == "sh -c gunzip | docker load"
    assert docker_images.parse_remote_ids("\nsha256:a x:1 y:2\n\n") == {
        "x:1": "sha256:a",
        "y:2": "sha256:a",
    }


@pytest.mark.parametrize("tampered", [False, True])
def test_the_compose_download_is_installed_only_when_its_checksum_matches(tmp_path, tampered):
    import hashlib
    import subprocess

    from provision.tasks.docker_engine import verify_command

    name = "docker-compose-linux-x86_64"
    (tmp_path / name).write_bytes(b"the release binary")
    digest = hashlib.sha256(b"the release binary").hexdigest()
    (tmp_path / f"{name}.sha256").write_text(f"{digest} *{name}\n")  # Docker's format
    if tampered:
        (tmp_path / name).write_bytes(b"something else")
    done = subprocess.run(["sh", "-c", verify_command(str(tmp_path), name)],
                          capture_output=True, check=False, timeout=10)  # fmt: skip
    assert (done.returncode != 0) is tampered
