"""A project a user owns: ``provision init DIR`` writes the playbooks (with the compose
projects and the router under ``playbooks/files/``), the inventories and the least-privilege
IAM policy for real AWS (``policy/iam-policy.json``); the CLI then uses the playbooks of the
project it runs in.

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
    over (files of the same name replaced), and every other file is left alone. Nothing is
    ever written through a symbolic link inside ``target`` (a planted ``playbooks/up.yml ->
    ../../x`` would write outside it): every destination is checked before the first write,
    and the files are written all or nothing (each to a temporary name beside it, then all
    renamed into place).
    """
    from provision.api import BUNDLE

    if target.is_symlink() and not target.exists():
        raise ConfigError(f"{target} is a dangling symbolic link", field="DIR")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory", field="DIR")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(
            f"{target} is not empty; pass --force to write the project's files into it",
            field="DIR",
        )
    plan: list[tuple[Path, Path | None]] = []  # (relative destination, source or None)
    for part in ("playbooks", "inventory", "policy"):
        source = (BUNDLE / part).resolve()
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                plan.append((Path(part) / path.relative_to(source), path))
    gitignore = target / ".gitignore"
    if gitignore.is_symlink() or not gitignore.exists():
        plan.append((Path(".gitignore"), None))
    for rel, _ in plan:
        _check_destination(target, rel)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # under a file, in /proc, read-only: before anything is written
        raise ConfigError(f"cannot make {target}: {exc.strerror or exc}", field="DIR") from exc
    _write_all(target, plan)
    return [rel for rel, _ in plan]


def _check_destination(target: Path, rel: Path) -> None:
    """``target/rel`` can be written without leaving ``target``: no part of it (below
    ``target``) is a symbolic link, the folders are folders and the file is not one."""
    here = target
    for i, name in enumerate(rel.parts):
        here = here / name
        last = i == len(rel.parts) - 1
        if here.is_symlink():
            raise ConfigError(
                f"{here} is a symbolic link; refusing to write through it (remove it, or "
                "init into another folder)",
                field="DIR",
            )
        if here.exists() and (here.is_dir() if last else not here.is_dir()):
            kind = "a folder" if last else "not a folder"
            raise ConfigError(f"{here} is {kind}; cannot write {rel} there", field="DIR")


def _write_all(target: Path, plan: list[tuple[Path, Path | None]]) -> None:
    made: list[Path] = []  # folders this call created, to remove again on failure
    staged: list[tuple[Path, Path]] = []
    try:
        for rel, source in plan:
            dest = target / rel
            for folder in reversed(dest.parents):
                if folder == target or target not in folder.parents:
                    continue
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
            temp = dest.with_name(f".{dest.name}.provision-init")
            temp.unlink(missing_ok=True)  # a link planted there is removed, never followed
            with open(temp, "xb") as out:  # created here, exclusively
                staged.append((temp, dest))
                if source is None:
                    out.write(_GITIGNORE.encode())
                else:
                    with source.open("rb") as data:
                        shutil.copyfileobj(data, out)
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        for folder in reversed(made):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    for temp, dest in staged:
        temp.replace(dest)
