"""``verify``: the verification suite on a host (``provision.verify``), each check with its
evidence in the result. Never changes anything; fails when a check fails. Skipped in check
mode, where the cluster it would look at may not exist yet. The cluster it looks at is the
layout of the host's variables (``provision.cluster.layout``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provision.cluster.layout import layout_from_vars
from provision.tasks.base import ModuleSpec, Outcome, TaskContext
from provision.tasks.facts import host_facts
from provision.verify import DEFAULT_CHECKS, FIRST_CHECKS, SLOW_CHECKS, run_suite

__all__ = ["SPEC", "VerifyArgs"]

SUITES = {
    "first": FIRST_CHECKS,
    "default": DEFAULT_CHECKS,
    "full": (*DEFAULT_CHECKS, *SLOW_CHECKS),
}


@dataclass(frozen=True)
class VerifyArgs:
    suite: Literal["first", "default", "full"] = "first"
    checks: tuple[str, ...] = ()  # explicit check names; overrides ``suite``


def apply(ctx: TaskContext, args: VerifyArgs) -> Outcome:
    if ctx.check:
        return Outcome(False, "not run in check mode", skipped=True)
    layout = layout_from_vars(ctx.vars).with_host(host_facts(ctx).compose_command, ctx.become)
    results = run_suite(ctx.conn, layout, checks=args.checks or SUITES[args.suite])
    passed = sum(r.passed for r in results)
    failed = [r.name for r in results if not r.passed]
    msg = f"{passed}/{len(results)} checks passed" + (
        f"; failed: {', '.join(failed)}" if failed else ""
    )
    return Outcome(False, msg, checks=tuple(results), failed=bool(failed))


SPEC = ModuleSpec("verify", VerifyArgs, apply)
