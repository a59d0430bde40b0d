"""Ctrl-C: the current step finishes, the run stops there with exit 130 and says how to finish
or undo; nothing after that step runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ssh, state_for

pytestmark = pytest.mark.integration

PLAYBOOK = """
- name: slow
  hosts: cluster
  gather_facts: false
  tasks:
    - name: a slow step
      command: {argv: [sleep, "4"]}
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
    )
    time.sleep(2.5)  # inside `sleep 4`
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
