"""``template``: a Jinja2 template file (``src``, beside the playbook), rendered with the
task's variables, written to ``dest`` on the host — Ansible's ``template``. The rendered text is
then handled exactly as ``copy`` with ``content`` (manifest, only a changed file travels, mode,
owner, diff).

>>> # - template: {src: templates/redis-cluster.yml.j2, dest: /opt/p/redis/compose.yml}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ConfigError, TaskError
from provision.models.names import check_path
from provision.tasks import copy
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext

__all__ = ["SPEC", "TemplateArgs"]


@dataclass(frozen=True)
class TemplateArgs:
    src: str
    dest: str
    mode: str | None = None
    owner: str = "root"
    group: str = "root"

    def __post_init__(self) -> None:
        check_path(self.dest, "template.dest")


def _source(args: TemplateArgs, variables: Mapping[str, Any]) -> Path:
    src = Path(args.src)
    src = src if src.is_absolute() else Path(str(variables.get("playbook_dir", "."))) / src
    if not src.is_file():
        raise ConfigError(f"template {src} does not exist", field="template.src")
    return src


def _as_copy(args: TemplateArgs, content: str) -> copy.CopyArgs:
    return copy.CopyArgs(dest=args.dest, content=content, mode=args.mode, owner=args.owner,
                         group=args.group)  # fmt: skip


def apply(ctx: TaskContext, args: TemplateArgs) -> Outcome:
    if ctx.render is None:
        raise TaskError("the template task needs a run that renders templates")
    text = ctx.render(_source(args, ctx.vars).read_text(encoding="utf-8"))
    return copy.apply(ctx, _as_copy(args, text))


def reads(args: TemplateArgs, variables: Mapping[str, Any]) -> Reads:
    _source(args, variables)
    return copy.reads(_as_copy(args, ""), variables)


def sources(args: TemplateArgs, variables: Mapping[str, Any]) -> None:
    """At load: the template file exists."""
    _source(args, variables)


SPEC = ModuleSpec("template", TemplateArgs, apply, reads=reads, sources=sources)
