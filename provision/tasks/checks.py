"""``debug``, ``assert`` and ``fail``: Ansible's modules that only look at variables. They run
on the controller (no command reaches the host), in check mode too, and never report changed.

>>> # - debug: {msg: "port {{ http_port }}"}
>>> # - assert: {that: ["http_port | int > 0"], fail_msg: "no port"}
>>> # - fail: {msg: "not on this host"}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.errors import ConfigError, TaskError
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["ASSERT_SPEC", "DEBUG_SPEC", "FAIL_SPEC"]


@dataclass(frozen=True)
class DebugArgs:
    msg: Any = None
    var: str | None = None

    def __post_init__(self) -> None:
        if self.msg is not None and self.var is not None:
            raise ConfigError("give 'msg' or 'var', not both", field="debug.var")


def debug(ctx: TaskContext, args: DebugArgs) -> Outcome:
    """As Ansible: ``msg`` (rendered) or the value of the expression ``var``; default
    "Hello world!"."""
    if args.var is not None:
        value = _evaluate(ctx, args.var)
        return Outcome(False, f"{args.var}: {value!r}", data={args.var: value})
    msg = "Hello world!" if args.msg is None else args.msg
    return Outcome(False, str(msg), data={"msg": msg})


@dataclass(frozen=True)
class AssertArgs:
    that: tuple[str, ...] | str
    fail_msg: str | None = None
    msg: str | None = None  # Ansible's older name of fail_msg
    success_msg: str = "All assertions passed"
    quiet: bool = False

    @property
    def conditions(self) -> tuple[str, ...]:
        return (self.that,) if isinstance(self.that, str) else self.that


def assert_(ctx: TaskContext, args: AssertArgs) -> Outcome:
    """Each expression of ``that``, in order; the first false one fails the task, with
    ``fail_msg`` (or ``msg``) or "Assertion failed", and names it (``assertion``)."""
    for condition in args.conditions:
        if not _evaluate(ctx, condition):
            msg = args.fail_msg or args.msg or "Assertion failed"
            data = {"assertion": condition, "evaluated_to": False, "msg": msg}
            return Outcome(False, msg, data=data, failed=True)
    return Outcome(False, "" if args.quiet else args.success_msg, data={"msg": args.success_msg})


@dataclass(frozen=True)
class FailArgs:
    msg: str = "Failed as requested from task"


def fail(ctx: TaskContext, args: FailArgs) -> Outcome:
    return Outcome(False, args.msg, data={"msg": args.msg}, failed=True)


def _evaluate(ctx: TaskContext, expression: str) -> Any:
    if ctx.evaluate is None:
        raise TaskError("no variables to evaluate an expression with")
    return ctx.evaluate(expression)


DEBUG_SPEC = ModuleSpec("debug", DebugArgs, debug)
ASSERT_SPEC = ModuleSpec("assert", AssertArgs, assert_)
FAIL_SPEC = ModuleSpec("fail", FailArgs, fail)
