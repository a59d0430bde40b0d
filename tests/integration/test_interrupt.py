"""Ctrl-C: the current step finishes, the run stops there with exit 130 and says how to finish
or undo; nothing after that step runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from provision.sandbox import localdocker
from tests import bounds
from tests.helpers import sigint_default, ssh, state_for

pytestmark = pytest.mark.integration

PLAYBOOK = """
- name: slow
  hosts: cluster
  gather_facts: false
  tasks:
    - name: a slow step
      command: {argv: [sleep, "6"]}
    - name: the next step
      command: {argv: [touch, /tmp/next-step-ran]}
"""


def test_ctrl_c_stops_after_the_current_step(ssh_host, ssh_keypair, tmp_path):
    state = state_for(ssh_host, tmp_path / "state")
    book = tmp_path / "slow.yml"
    book.write_text(PLAYBOOK)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provision.cli",
            "play",
            str(book),
            "--host",
            f"admin@127.0.0.1:{ssh_host.port}",
            "--key",
            str(ssh_keypair.private_key),
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_default,
    )
    # Inside `sleep 6`: wait (bounded) until the step runs on the host, then interrupt.
    deadline = time.monotonic() + bounds.STEP_STARTS
    while not localdocker.docker("exec", ssh_host.container_id, "pgrep", "-x", "sleep",
                                 check=False).ok:  # fmt: skip
        assert time.monotonic() < deadline, "the slow step never started on the host"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Stopping after the current step" in err
    assert "Interrupted: state is saved" in err and "provision down" in err
    assert "Traceback" not in err
    done = ssh(
        ssh_host,
        ssh_keypair.private_key,
        state,
        "sh",
        "-c",
        "test -e /tmp/next-step-ran && echo ran || echo not-run",
    )
    assert done.strip() == "not-run"
