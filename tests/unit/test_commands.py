"""run_batched: several commands in one shell, each with its own output and exit code — run
for real through the local backend (no SSH needed to test the framing)."""

from __future__ import annotations

from provision.connection.commands import put_argv, run_batched
from provision.connection.local import LocalConnection


def test_outputs_and_exit_codes_are_kept_apart():
    commands = [
        ["printf", "no newline"],
        ["sh", "-c", "echo one; echo two; exit 3"],
        ["echo", 'it\'s "quoted" $HOME; rm -rf /'],  # values arrive as data, never as code
        ["sh", "-c", "echo err >&2; true"],
        ["false"],
        ["printf", ""],
    ]
    results = run_batched(LocalConnection(), commands)
    assert [(r.stdout, r.exit_code) for r in results] == [
        ("no newline", 0),
        ("one\ntwo\n", 3),
        ('it\'s "quoted" $HOME; rm -rf /\n', 0),
        ("", 0),  # stderr is not kept
        ("", 1),
        ("", 0),
    ]


def test_nothing_to_run():
    assert run_batched(LocalConnection(), []) == []


def test_put_writes_atomically_with_its_mode(tmp_path):
    target = tmp_path / "sub" / "f.env"
    LocalConnection().run(put_argv(str(target), 0o600), stdin=b"A=1\n")
    assert target.read_bytes() == b"A=1\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["f.env"]  # no temporary file left
