"""The playbook commands' flags as a user types them (#28): ``-e`` as Ansible parses it,
``--limit``, ``--forks``, ``-v``/``-vv``; on local-connection hosts (no SSH, no Docker)."""

from __future__ import annotations

import re
from pathlib import Path

from provision.models import Result
from provision.run.options import Options
from provision.run.runner import Runner
from provision.tasks import registry
from tests.clirun import provision_cli
from tests.helpers import output_schema

INVENTORY = (
    "all:\n  hosts:\n    h1: {ansible_connection: local}\n    h2: {ansible_connection: local}\n"
)


def _play(tmp_path: Path, tasks: str, hosts: str = "all") -> tuple[Path, Path]:
    book, inventory = tmp_path / "pb.yml", tmp_path / "inv.yml"
    book.write_text(f"- hosts: {hosts}\n  gather_facts: false\n  tasks:\n{tasks}")
    inventory.write_text(INVENTORY)
    return book, inventory


def _cli(tmp_path: Path, book: Path, inventory: Path, *args: str):
    return provision_cli("play", str(book), "-i", str(inventory), "--state-dir", "state", *args,
                         cwd=tmp_path, timeout=120)  # fmt: skip


def test_extra_vars_key_value_pairs_are_strings_split_at_spaces(tmp_path: Path):
    book, inventory = _play(tmp_path, '    - debug: {msg: "{{ a is string }} {{ b is string }}'
                            ' a={{ a }} b={{ b }} c={{ c }}"}\n', hosts="h1")  # fmt: skip
    done = _cli(tmp_path, book, inventory, "-e", "a=1 b=2", "-e", "c='x y'")
    assert done.returncode == 0, done.stderr
    assert "True True a=1 b=2 c=x y" in done.stderr


def test_limit_narrows_the_hosts_and_a_limit_that_is_no_pattern_is_refused(tmp_path: Path):
    book, inventory = _play(tmp_path, '    - debug: {msg: "ran on {{ inventory_hostname }}"}\n')
    done = _cli(tmp_path, book, inventory, "--limit", "all:!h1")
    assert done.returncode == 0, done.stderr
    assert "ran on h2" in done.stderr and "ran on h1" not in done.stderr
    assert re.search(r"^h2 ", done.stderr, re.M) and not re.search(r"^h1 ", done.stderr, re.M)
    empty = _cli(tmp_path, book, inventory, "--limit", " ")
    assert empty.returncode == 2 and "--limit" in empty.stderr, empty.stderr


def test_forks_one_runs_the_hosts_one_after_the_other(tmp_path: Path):
    book, inventory = _play(tmp_path, (
        "    - command: {argv: [sh, -c, 'echo start $(date +%s.%N) >> \"$1\"; sleep 0.5; "
        "echo end $(date +%s.%N) >> \"$1\"', sh,"
        " \"{{ playbook_dir }}/{{ inventory_hostname }}\"]}\n"
    ))  # fmt: skip
    done = _cli(tmp_path, book, inventory, "--forks", "1")
    assert done.returncode == 0, done.stderr
    spans = []
    for name in ("h1", "h2"):
        stamps = dict(line.split() for line in (tmp_path / name).read_text().splitlines())
        spans.append((float(stamps["start"]), float(stamps["end"])))
    first, second = sorted(spans)
    assert second[0] >= first[1], spans  # no overlap
    zero = _cli(tmp_path, book, inventory, "--forks", "0")
    assert zero.returncode == 2 and "--forks" in zero.stderr, zero.stderr


def test_verbose_shows_each_command_and_its_exit_and_vv_its_output(tmp_path: Path):
    book, inventory = _play(tmp_path, "    - command: {argv: [sh, -c, 'echo out-line; exit 0']}\n",
                            hosts="h1")  # fmt: skip
    quiet = _cli(tmp_path, book, inventory)
    assert "$ sh -c" not in quiet.stderr
    one = _cli(tmp_path, book, inventory, "-v")
    assert re.search(r"h1 \$ sh -c .*echo out-line.* \(exit 0\)", one.stderr), one.stderr
    assert "out| out-line" not in one.stderr
    two = _cli(tmp_path, book, inventory, "-vv")
    assert "out| out-line" in two.stderr, two.stderr


def test_vv_never_shows_the_output_of_a_module_whose_output_is_a_secret():
    """Also not over another host's connection: ``secret`` reads its peer's copy there, while
    the peer's own thread runs another task (or none)."""
    events = []
    runner = Runner(Options(verbosity=2), on_event=events.append, modules=registry())
    own, peer = runner._observer("h1"), runner._observer("h2")
    runner._running.task = ("The Redis password", "secret")  # this thread runs h1's secret
    own(Result("sha256sum /srv/secrets/redis.env", 0, "abc  /srv/secrets/redis.env\n"))
    peer(Result("cat /srv/secrets/redis.env", 0, "REDIS_PASSWORD=hunter2\n"))
    runner._running.task = ("Show", "command")
    own(Result("echo hi", 0, "hi\n"))
    secret_own, secret_peer, plain = [(e.host, e.data) for e in events if e.kind == "command"]
    assert secret_peer[0] == "h2" and "hunter2" not in repr(secret_peer)
    assert "not shown" in secret_peer[1]["hidden"] and "not shown" in secret_own[1]["hidden"]
    assert plain[1]["stdout"] == "hi\n"


def _down_on_a_terminal(tmp_path: Path, answer: bytes, *args: str) -> tuple[int, str]:
    """``provision down -i inventory/aws.yml ARGS`` with a terminal as stdin (a pty), typing
    ``answer`` once asked; its exit code and what it printed."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from tests.clirun import ROOT

    main, child = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision.cli", "down", "-i", str(ROOT / "inventory/aws.yml"),
         "--state-dir", "state", *args],
        stdin=child, stdout=child, stderr=child, cwd=tmp_path, env=env,
    )  # fmt: skip
    os.close(child)
    seen, answered, end = b"", False, time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < end:
        if select.select([main], [], [], 0.2)[0]:
            try:
                seen += os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
        if not answered and b"[y/N]" in seen:
            os.write(main, answer)
            answered = True
    code = proc.wait(timeout=60)
    os.close(main)
    return code, seen.decode(errors="replace")


def test_down_asks_on_a_terminal_before_destroying_an_aws_cluster(tmp_path: Path):
    code, out = _down_on_a_terminal(tmp_path, b"n\n")
    assert "Destroy cluster 'demo' in eu-west-1" in out, out
    assert code == 1 and "Aborted" in out and "PLAY" not in out, out  # nothing ran
    # --tags that select no task: the run itself does nothing (no cloud call).
    code, out = _down_on_a_terminal(tmp_path, b"y\n", "--tags", "nothing-has-this-tag")
    assert "Destroy cluster" in out and code == 0, out
    code, out = _down_on_a_terminal(tmp_path, b"", "--yes", "--tags", "nothing-has-this-tag")
    assert "Destroy cluster" not in out and code == 0, out


def test_down_never_asks_when_stdin_is_not_a_terminal(tmp_path: Path):
    from tests.clirun import ROOT

    done = provision_cli("down", "-i", str(ROOT / "inventory/aws.yml"), "--state-dir", "state",
                         "--tags", "nothing-has-this-tag", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0 and "Destroy cluster" not in done.stderr + done.stdout, done


def test_limit_follows_ansibles_pattern_order_and_a_limit_matching_no_host_is_refused(
    tmp_path: Path,
):
    book, inventory = _play(tmp_path, '    - debug: {msg: "ran on {{ inventory_hostname }}"}\n')
    for pattern in ("!h1", "!h1:all"):  # only exclusions: from all; exclusions applied last
        done = _cli(tmp_path, book, inventory, "--limit", pattern)
        assert done.returncode == 0 and "ran on h2" in done.stderr, (pattern, done.stderr)
        assert "ran on h1" not in done.stderr, (pattern, done.stderr)
    none = _cli(tmp_path, book, inventory, "--limit", "h9")
    assert none.returncode == 2 and "'h9' matches no host" in none.stderr, none.stderr


def test_down_refuses_a_limit_it_would_not_keep_to(tmp_path: Path):
    from tests.clirun import ROOT

    done = provision_cli("down", "-i", str(ROOT / "inventory/aws.yml"), "--limit", "demo-2",
                         "--state-dir", "state", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "--limit is not taken" in done.stderr, done.stderr


def test_a_cluster_made_with_host_is_found_by_status_and_unlock_with_host(tmp_path: Path):
    """``up --host`` makes a cluster of one SSH host; ``status``, ``unlock`` (and ``routes``,
    ``ssh``, ``exec``, ``logs``) find it with the same ``--host`` (port 1 here: nothing
    answers: status says its containers are unknown, ``services`` null, and unlock that it is
    unreachable)."""
    import json

    target = "admin@127.0.0.1:1"
    status = provision_cli("status", "--host", target, "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    expected = {"name": "host1", "target": target, "state": "inventory", "state_reason": "",
                "url": "http://127.0.0.1", "services": None}  # fmt: skip
    assert json.loads(status.stdout) == [expected]
    unlocked = provision_cli("unlock", "--host", target, "--json", cwd=tmp_path, timeout=120)
    assert unlocked.returncode == 0, unlocked.stderr
    assert json.loads(unlocked.stdout)["unreachable"] == ["host1"]
    both = provision_cli("status", "--host", target, "-i", "x.yml", cwd=tmp_path)
    assert both.returncode == 2 and "either --host or -i" in both.stderr, both.stderr


def test_doctor_reports_its_findings_as_json(tmp_path: Path):
    import json

    from tests.clirun import ROOT

    trap = ROOT / "tests" / "doctor_corpus" / "loopback-redis"
    found = provision_cli("doctor", str(trap), "--json", cwd=tmp_path)
    assert found.returncode == 1, found.stderr
    findings = json.loads(found.stdout)
    assert findings and {"file", "line", "code", "message", "hint"} == set(findings[0])
    assert any(f["code"] == "loopback-redis" for f in findings), findings
    clean = provision_cli("doctor", str(ROOT / "playbooks" / "files"), "--json", cwd=tmp_path)
    assert clean.returncode == 0 and json.loads(clean.stdout) == [], clean.stderr


def test_the_json_of_each_command_follows_the_schema_in_the_package(tmp_path: Path):
    """``provision/cli/outputs.schema.json`` (shipped in the package) against what status,
    unlock and doctor print here, and routes' as test_sandbox_e2e pins them on a cluster."""
    import json

    import jsonschema

    from tests.clirun import ROOT

    target, corpus = "admin@127.0.0.1:1", ROOT / "tests" / "doctor_corpus"
    outputs = {
        "status": provision_cli("status", "--host", target, "--json", cwd=tmp_path),
        "unlock": provision_cli("unlock", "--host", target, "--json", cwd=tmp_path, timeout=120),
        "doctor": provision_cli("doctor", str(corpus), "--json", cwd=tmp_path),
    }
    for name, done in outputs.items():
        jsonschema.validate(json.loads(done.stdout), output_schema(name))
    # routes' need a cluster: the outputs test_sandbox_e2e pins on a sandbox cluster.
    route = {"service": "users", "endpoints": ["echo-a:80"]}
    jsonschema.validate({"added": {"/api/users": route}}, output_schema("routes_add"))
    jsonschema.validate({"/api/users": route}, output_schema("routes_ls"))
    jsonschema.validate({"prefix": "/api/users", "removed": True}, output_schema("routes_rm"))
    bad = [{"name": "h", "state": "running", "surprise": 1}]
    try:
        jsonschema.validate(bad, output_schema("status"))
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("the schema takes a field no command prints")
