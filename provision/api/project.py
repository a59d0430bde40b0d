"""A project a user owns: ``provision init DIR`` writes the playbooks (with the compose
projects and the router under ``playbooks/files/``) and the inventories; the CLI then uses
the playbooks of the project it runs in.

A directory is a project when it holds ``playbooks/up.yml``; the CLI looks only at the
current directory (not its parents), so what runs is never a surprise. There, its playbooks
run and its ``inventory/sandbox.yml`` is the default inventory; elsewhere the packaged ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from provision.errors import ConfigError

__all__ = ["find_project", "init_project", "playbooks_dir", "project_inventory"]

_GITIGNORE = "# keys, known_hosts and cluster state (provision --state-dir)\n.provision/\n"


def find_project(cwd: Path | None = None) -> Path | None:
    """``cwd`` (default: the current directory) when it is a project, else None."""
    root = (cwd or Path.cwd()).resolve()
    return root if (root / "playbooks" / "up.yml").is_file() else None


def playbooks_dir(cwd: Path | None = None) -> Path:
    """The current project's ``playbooks/``, else the packaged ones."""
    from provision.api import PLAYBOOKS

    project = find_project(cwd)
    return project / "playbooks" if project else PLAYBOOKS


def project_inventory(cwd: Path | None = None) -> Path | None:
    """The current project's ``inventory/sandbox.yml`` (the default ``-i`` there), else None
    (then the packaged sandbox inventory is the default)."""
    project = find_project(cwd)
    path = project / "inventory" / "sandbox.yml" if project else None
    return path if path is not None and path.is_file() else None


def init_project(target: Path, *, force: bool = False) -> list[Path]:
    """Write a project into ``target`` (created if missing); the files written, relative.

    A non-empty ``target`` is refused unless ``force``: then the project's files are written
    over (files of the same name replaced), and every other file is left alone.
    """
    from provision.api import BUNDLE

    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory", field="DIR")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(
            f"{target} is not empty; pass --force to write the project's files into it",
            field="DIR",
        )
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for part in ("playbooks", "inventory"):
        source = (BUNDLE / part).resolve()
        for path in sorted(source.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = Path(part) / path.relative_to(source)
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            written.append(rel)
    gitignore = target / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(_GITIGNORE)
        written.append(Path(".gitignore"))
    return written
