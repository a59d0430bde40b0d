"""The sandbox's moto server: never signal a process that is not ours, and a read-only
command leaves no server behind that it started itself. Also: ``--trust-on-first-use`` reaches
the cloud task (it was parsed and dropped before)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from moto_tests.conftest import REGION, new_session
from provision.sandbox.moto_server import ensure_server, running_server, stop_server

ROOT = Path(__file__).resolve().parent.parent


def test_stop_server_never_signals_a_foreign_pid(tmp_path: Path) -> None:
    # After a reboot server.json may name a pid that now belongs to another process.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = tmp_path / "moto"
        folder.mkdir()
        (folder / "server.json").write_text(
            json.dumps({"pid": other.pid, "url": "http://127.0.0.1:9"})
        )
        assert stop_server(tmp_path) is False
        time.sleep(0.2)
        assert other.poll() is None, "stop_server killed a process that was not its server"
        assert running_server(tmp_path) is None
    finally:
        other.kill()
        other.wait()


def _server_processes(sandbox: Path) -> set[int]:
    """The sandbox moto servers that record into ``sandbox``: this test's own, not those of
    other tests running at the same time (another xdist worker, another checkout)."""
    found = set()
    mine = f"MOTO_RECORDER_FILEPATH={sandbox / 'moto' / 'recording.jsonl'}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"provision.sandbox.moto_server" in argv and mine in environ:
                found.add(int(entry.name))
    return found


def test_a_read_only_command_leaves_no_server_it_started(tmp_path: Path) -> None:
    state = tmp_path / "state"
    sandbox = state / "_sandbox-cloud"
    url = ensure_server(sandbox)  # a cloud with a recording, as after `up` ...
    ec2 = new_session().client("ec2", REGION, endpoint_url=url)
    ec2.create_security_group(GroupName="kept", Description="recorded")
    stop_server(sandbox)  # ... and then a reboot: no server running
    assert (sandbox / "moto" / "recording.jsonl").exists()
    before = _server_processes(sandbox)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "provision.cli", "status", "--state-dir", str(state)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no running host" in done.stderr
    assert _server_processes(sandbox) - before == set()
    assert running_server(sandbox) is None
    assert (sandbox / "moto" / "recording.jsonl").exists()  # the cloud's state is kept


def test_trust_on_first_use_reaches_the_cloud_task(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The cloud itself is replaced: what is under test is the flag's way from the options,
    # through playbooks/up.yml, to provision.cloud.up.
    from provision import cloud
    from provision.api import Options, up
    from provision.aws.results import ClusterResult

    seen: dict[str, Any] = {}

    def fake_up(target: Any, spec_vars: Any, *, trust_on_first_use: bool, say: Any) -> Any:
        seen["trust_on_first_use"] = trust_on_first_use
        return ClusterResult(cluster=target.cluster, region=target.region, run_id="r",
                             instances=(), created=(), security_group_id="sg-1",
                             key_name="k", ami_id="ami-1")  # fmt: skip

    monkeypatch.setattr(cloud, "up", fake_up)
    for trust in (True, False):
        report = up(None, Options(trust_on_first_use=trust, state_dir=tmp_path,
                                  tags=frozenset({"cloud"})))  # fmt: skip
        assert not report.failed, report.errors
        assert seen == {"trust_on_first_use": trust}
