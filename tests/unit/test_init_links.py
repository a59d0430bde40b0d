"""``provision init DIR --force`` never writes through a symbolic link (#26 hole 2): a planted
``DIR/playbooks/up.yml -> ../../x`` made it overwrite a file outside DIR, and a dangling
``DIR/.gitignore`` link made it create one outside DIR. Now the command exits 2 naming the
link, and writes nothing at all (every destination is checked before the first write)."""

from __future__ import annotations

from pathlib import Path

from tests.clirun import provision_cli


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() if p.is_file() else "<dir>"
            for p in sorted(root.rglob("*")) if not p.is_symlink()}  # fmt: skip


def test_force_refuses_a_planted_link_to_a_file_outside_and_writes_nothing(tmp_path):
    outside = tmp_path / "x"
    outside.write_text("precious\n")
    project = tmp_path / "a" / "project"
    (project / "playbooks").mkdir(parents=True)
    (project / "playbooks" / "up.yml").symlink_to("../../../x")
    assert (project / "playbooks" / "up.yml").resolve() == outside
    before = _tree(project)
    done = provision_cli("init", str(project), "--force", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"{project}/playbooks/up.yml is a symbolic link; refusing to write through it" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert outside.read_text() == "precious\n"
    assert _tree(project) == before  # all or nothing: not one file written


def test_force_refuses_a_dangling_gitignore_link(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine\n")
    (project / ".gitignore").symlink_to(tmp_path / "created-outside")
    done = provision_cli("init", str(project), "--force", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"{project}/.gitignore is a symbolic link" in done.stderr
    assert not (tmp_path / "created-outside").exists()
    assert _tree(project) == {"notes.txt": "mine\n"}


def test_force_into_a_project_writes_every_file_and_keeps_the_users_own(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine\n")
    (project / ".gitignore").write_text("mine too\n")
    done = provision_cli("init", str(project), "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (project / "playbooks" / "up.yml").is_file()
    assert (project / "inventory" / "sandbox.yml").is_file()
    assert (project / "notes.txt").read_text() == "mine\n"
    assert (project / ".gitignore").read_text() == "mine too\n"
    assert not list(project.rglob("*.provision-init"))
