"""The runner: ok/changed/failed, check mode, handlers (also pending from a failed run), tags,
when, register, retries; driven with test modules and a fake connection (no host)."""

from __future__ import annotations

import json
import textwrap

import pytest

from provision.load.inventory import load_inventory
from provision.load.playbook import load_playbook
from provision.run.options import Options
from provision.run.runner import Runner
from provision.tasks.base import ModuleSpec
from provision.tasks.facts import PENDING_HANDLERS_FILE
from tests.unit.fakes import INVENTORY, MODULES, FakeRemote, FileArgs, Hosts, ensure_file
from tests.unit.fakes import load_play as load
from tests.unit.fakes import run_play as run

PLAY = """
- name: files
  hosts: cluster
  gather_facts: false
  tasks:
    - name: conf
      ensure_file: {path: /etc/app.conf, content: "{{ greeting }}"}
      notify: reload
    - name: other
      ensure_file: {path: /etc/other, content: "o"}
      tags: [other]
  handlers:
    - name: reload
      ensure_file: {path: /reloaded, content: "{{ greeting }}-reloaded"}
"""


def test_first_run_changes_second_run_is_ok(tmp_path):
    book, inv = load(tmp_path, PLAY)
    hosts = Hosts()
    first = run(book, inv, hosts)
    assert {h: (r.ok, r.changed, r.failed) for h, r in first.recap.items()} == {
        "h1": (0, 3, 0),
        "h2": (0, 3, 0),
    }
    assert hosts.files[("h1", "/etc/app.conf")] == "hello"
    assert hosts.files[("h2", "/reloaded")] == "hello-reloaded"
    second = run(book, inv, hosts)
    assert second.changed == 0
    assert {h: r.ok for h, r in second.recap.items()} == {"h1": 2, "h2": 2}


def test_check_mode_changes_nothing(tmp_path):
    book, inv = load(tmp_path, PLAY)
    hosts = Hosts()
    report = run(book, inv, hosts, check=True)
    assert report.recap["h1"].changed == 3  # would change: both files and the handler
    assert hosts.files == {}
    assert all("write" not in c for r in hosts.remotes.values() for c in r.commands())
    assert any("write /etc/app.conf hello" in c for c in report.results[0].commands)


def test_extra_vars_win_and_tags_select(tmp_path):
    book, inv = load(tmp_path, PLAY, {"greeting": "hi"})
    hosts = Hosts()
    report = run(book, inv, hosts, extra_vars={"greeting": "hi"}, tags=frozenset({"other"}))
    assert [r.task for r in report.results if r.host == "h1"] == ["other"]
    assert ("h1", "/etc/app.conf") not in hosts.files
    report = run(book, inv, hosts, extra_vars={"greeting": "hi"})
    assert hosts.files[("h1", "/etc/app.conf")] == "hi"


FAILING = """
- name: fails
  hosts: cluster
  gather_facts: false
  tasks:
    - name: conf
      ensure_file: {path: /etc/app.conf, content: "v2"}
      notify: reload
    - name: broken
      fail: {}
      when: inventory_hostname == 'h1'
    - name: after
      ensure_file: {path: /after}
  handlers:
    - name: reload
      ensure_file: {path: /reloaded, content: "yes"}
"""


def test_failure_stops_the_host_and_reports_the_command(tmp_path):
    book, inv = load(tmp_path, FAILING)
    hosts = Hosts()
    report = run(book, inv, hosts)
    assert report.failed
    assert (report.recap["h1"].failed, report.recap["h2"].failed) == (1, 0)
    assert report.recap["h2"].skipped == 1
    failed = next(r for r in report.results if r.status.value == "failed")
    assert failed.host == "h1" and failed.task == "broken"
    assert "exit code 1: false" in failed.msg and "really wrong" in failed.msg
    assert ("h1", "/after") not in hosts.files and ("h2", "/after") in hosts.files
    # h1's handler did not run, but it was recorded on the host as pending...
    assert ("h1", "/reloaded") not in hosts.files
    put = [c for c in hosts.remotes["h1"].commands() if c.startswith("put ")]
    assert put == [f"put {PENDING_HANDLERS_FILE} 600"]
    assert hosts.remotes["h1"].stdin[-1] == b"reload\n"


BLOCKS = """
- name: blocks
  hosts: cluster
  gather_facts: false
  tasks:
    - name: guarded
      block:
        - name: breaks on h1
          fail: {}
          when: inventory_hostname == 'h1'
        - name: rest of the block
          ensure_file: {path: /block}
      rescue:
        - name: rescue
          ensure_file: {path: /rescued, content: "{{ ansible_failed_task.name }}"}
      always:
        - name: always
          ensure_file: {path: /always}
    - name: unguarded
      block:
        - name: breaks on h2
          fail: {}
          when: inventory_hostname == 'h2'
      always:
        - name: always again
          ensure_file: {path: /always-again}
    - name: after
      ensure_file: {path: /after}
"""


def test_a_block_s_rescue_takes_care_of_a_failure_and_its_always_runs_anyway(tmp_path):
    book, inv = load(tmp_path, BLOCKS)
    hosts = Hosts()
    report = run(book, inv, hosts)
    files = {host: {path for h, path in hosts.files if h == host} for host in ("h1", "h2")}
    # h1: rescued (the rest of the block skipped), always ran, and it went on to the end
    assert files["h1"] == {"/rescued", "/always", "/always-again", "/after"}
    assert hosts.files[("h1", "/rescued")] == "breaks on h1"
    # h2: no failure in the first block (no rescue); the second has no rescue: its always
    # runs, then the host stops before "after"
    assert files["h2"] == {"/block", "/always", "/always-again"}
    assert (report.recap["h1"].rescued, report.recap["h1"].failed) == (1, 0)
    assert (report.recap["h2"].rescued, report.recap["h2"].failed) == (0, 1)
    assert report.failed and "h1" not in report.errors


def test_pending_handler_runs_on_the_next_run(tmp_path):
    book, inv = load(tmp_path, PLAY.replace("gather_facts: false", "gather_facts: true"))
    hosts = Hosts()
    hosts.files[("h1", "/etc/app.conf")] = "hello"
    hosts.files[("h1", "/etc/other")] = "o"
    hosts.files[("h2", "/etc/app.conf")] = "hello"
    hosts.files[("h2", "/etc/other")] = "o"
    original = hosts.connect

    def connect(spec):
        remote = original(spec)
        if spec.name == "h1":  # the previous run failed after notifying `reload`
            remote.answer(r"os_id", "os_id=debian\npending=reload\n")
        return remote

    hosts.connect = connect
    report = run(book, inv, hosts)
    assert hosts.files.get(("h1", "/reloaded")) == "hello-reloaded"
    assert ("h2", "/reloaded") not in hosts.files
    assert [c for c in hosts.remotes["h1"].commands() if c.startswith("rm ")] == [
        f"rm -f {PENDING_HANDLERS_FILE}"
    ]
    assert report.recap["h1"].changed == 1 and report.recap["h2"].changed == 0


RETRIES = """
- name: retries
  hosts: h1
  gather_facts: false
  tasks:
    - name: count until three
      count: {key: c}
      register: counted
      until: counted.n >= 3
      retries: 5
      delay: 0
    - name: use it
      ensure_file: {path: /n, content: "{{ counted.n }}"}
      when: counted.n == 3
"""


def test_register_until_and_when(tmp_path):
    book, inv = load(tmp_path, RETRIES)
    hosts = Hosts()
    report = run(book, inv, hosts)
    assert not report.failed
    assert hosts.files[("h1", "/n")] == "3"
    assert report.results[0].msg == "n=3"


def test_unreachable_host_is_reported(tmp_path):
    from provision.errors import ConnectError

    book, inv = load(tmp_path, PLAY)

    def connect(spec):
        remote = FakeRemote(host=spec)

        def refuse(argv):
            raise ConnectError("unreachable after 1s: connection refused", host=spec.target)

        remote.answers.append((r".", refuse))
        return remote

    runner = Runner(Options(), connector=connect, modules=MODULES)
    report = runner.run(book, inv)
    assert report.failed
    assert report.recap["h1"].unreachable == 1
    assert "connection refused" in report.errors["h1"]


def test_undefined_variable_is_caught_before_any_host(tmp_path):
    from provision.errors import ConfigError

    with pytest.raises(ConfigError, match="nope"):
        load(tmp_path, PLAY.replace('"{{ greeting }}"', '"{{ nope }}"'))


def test_undefined_attribute_of_a_known_value_is_caught_at_load_time(tmp_path):
    from provision.errors import ConfigError

    # The value can be rendered before any call (an inventory variable): so it is.
    with pytest.raises(ConfigError, match=r"play\.yml:7:\d+: .*has no attribute 'missing'"):
        load(tmp_path, PLAY.replace('"{{ greeting }}"', '"x{{ greeting.missing }}"'))


def test_undefined_attribute_at_run_time_fails_the_task_with_its_location(tmp_path):
    # A value only known at run time (a registered result) is checked at its task's turn.
    play = PLAY.replace(
        "    - name: conf\n",
        '    - name: first\n      ensure_file: {path: /first, content: "1"}\n'
        "      register: first\n    - name: conf\n",
    ).replace('content: "{{ greeting }}"}', 'content: "x{{ first.missing }}"}', 1)
    book, inv = load(tmp_path, play)
    report = run(book, inv, Hosts())
    assert report.failed
    for host in report.recap:
        first, conf = [r for r in report.results if r.host == host]
        assert (first.task, first.status.value, conf.task, conf.status.value) == (
            "first",
            "changed",
            "conf",
            "failed",
        )
        assert "play.yml:" in conf.msg and "missing" in conf.msg


LOOKING = {
    **MODULES,
    "ensure_file": ModuleSpec(
        "ensure_file",
        FileArgs,
        ensure_file,
        reads=lambda args, variables: {"file": ["cat", args.path]},
    ),
}

SAME_FILE_TWICE = """
- name: reads ahead
  hosts: h1
  gather_facts: false
  tasks:
    - name: first
      ensure_file: {path: /f, content: "a"}
    - name: second, same file
      ensure_file: {path: /f, content: "a"}
    - name: other
      ensure_file: {path: /g, content: "g"}
"""


def test_reads_are_fetched_ahead_and_dropped_on_the_first_change(tmp_path):
    (tmp_path / "inv.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(textwrap.dedent(SAME_FILE_TWICE))
    book = load_playbook(tmp_path / "play.yml", modules=LOOKING)
    inv = load_inventory(tmp_path / "inv.yml")
    hosts = Hosts()
    runner = Runner(Options(), connector=hosts.connect, modules=LOOKING)
    report = runner.run(book, inv)
    # one batch with each distinct look; the second task saw the first one's write (a fresh
    # read, not the stale read-ahead), so it is ok
    assert hosts.remotes["h1"].batches == [["cat /f", "cat /g"]]
    assert [r.status.value for r in report.results] == ["changed", "ok", "changed"]
    # a no-op run: every look is answered by the one batch, no other read reaches the host
    hosts.remotes.clear()
    report = Runner(Options(), connector=hosts.connect, modules=LOOKING).run(book, inv)
    assert [r.status.value for r in report.results] == ["ok", "ok", "ok"]
    assert hosts.remotes["h1"].commands() == ["cat /f", "cat /g"]  # run_many's own runs
    assert len(hosts.remotes["h1"].batches) == 1


def _lock_answers(hosts: Hosts, held_first: int) -> list[str]:
    """The run lock's take on h1: refused (held by a live run) ``held_first`` times, then
    taken. Returns the list the takes are recorded in."""
    import os
    import socket
    import time

    from provision.models import Result

    takes: list[str] = []
    connect = hosts.connect

    def take(argv):
        takes.append(argv[-1])
        if len(takes) <= held_first:
            holder = {"pid": os.getpid(), "host": socket.gethostname(),
                      "command": "provision up", "started": time.time()}  # fmt: skip
            return Result("take", 3, json.dumps(holder))
        return Result("take", 0, "taken\n")

    def connect_with_lock(spec):
        remote = connect(spec)
        remote.answers.insert(0, (r"mkdir -m 700", take))
        return remote

    hosts.connect = connect_with_lock  # type: ignore[method-assign]
    return takes


BECOME = SAME_FILE_TWICE.replace("gather_facts: false\n", "gather_facts: false\n  become: true\n")


def test_the_run_lock_is_taken_in_the_batch_of_the_first_reads(tmp_path):
    (tmp_path / "inv.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(textwrap.dedent(BECOME))
    book = load_playbook(tmp_path / "play.yml", modules=LOOKING)
    inv = load_inventory(tmp_path / "inv.yml")
    hosts = Hosts()
    takes = _lock_answers(hosts, held_first=0)
    options = Options(lock_wait=0.0, lock_command="provision up")
    report = Runner(options, connector=hosts.connect, modules=LOOKING).run(book, inv)
    assert [r.status.value for r in report.results] == ["changed", "ok", "changed"]
    (batch,) = hosts.remotes["h1"].batches
    assert "mkdir -m 700" in batch[0] and batch[1:] == ["cat /f", "cat /g"]
    assert len(takes) == 1  # no round trip of its own
    released = [c for c in hosts.remotes["h1"].commands() if "grep -qF" in c]
    assert len(released) == 1 and json.loads(takes[0])["token"] in released[0]


def test_a_run_lock_waited_for_drops_the_reads_sent_with_it(tmp_path):
    (tmp_path / "inv.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(textwrap.dedent(BECOME))
    book = load_playbook(tmp_path / "play.yml", modules=LOOKING)
    inv = load_inventory(tmp_path / "inv.yml")
    hosts = Hosts()
    hosts.files[("h1", "/f")] = "a"
    takes = _lock_answers(hosts, held_first=1)
    options = Options(lock_wait=10.0, lock_command="provision up")
    report = Runner(options, connector=hosts.connect, modules=LOOKING).run(book, inv)
    assert len(takes) == 2  # refused in the batch, taken by the next attempt
    assert [r.status.value for r in report.results] == ["ok", "ok", "changed"]
    cats = [c for c in hosts.remotes["h1"].commands() if c == "cat /f"]
    # the batch's read of /f was dropped: both tasks that look at /f read it at their turn
    # (with the lock free, the batch answers both: one read in all)
    assert len(cats) == 3
