"""``verify``: the verification suite on a host (``provision.verify``), each check with its
evidence in the result. Never changes anything; fails when a check fails. Skipped in check
mode, where the cluster it would look at may not exist yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provision.models.names import check_name, check_path
from provision.tasks.base import ModuleSpec, Outcome, TaskContext
from provision.tasks.hostfacts import host_facts
from provision.verify import DEFAULT_CHECKS, FIRST_CHECKS, SLOW_CHECKS, VerifyConfig, run_suite

__all__ = ["SPEC", "VerifyArgs"]

SUITES = {
    "first": FIRST_CHECKS,
    "default": DEFAULT_CHECKS,
    "full": (*DEFAULT_CHECKS, *SLOW_CHECKS),
}


@dataclass(frozen=True)
class VerifyArgs:
    network: str = "shared-network"
    project_root: str = "/opt/provision"
    strategy: Literal["shared-network", "host-gateway", "host-docker-internal"] = "shared-network"
    http_port: int = 80
    suite: Literal["first", "default", "full"] = "first"
    checks: tuple[str, ...] = ()  # explicit check names; overrides ``suite``

    def __post_init__(self) -> None:
        check_name(self.network, "verify.network")
        check_path(self.project_root, "verify.project_root")


def apply(ctx: TaskContext, args: VerifyArgs) -> Outcome:
    if ctx.check:
        return Outcome(False, "not run in check mode", skipped=True)
    config = VerifyConfig(
        network=args.network,
        root=args.project_root,
        compose=host_facts(ctx).compose_command or ("docker", "compose"),
        http_url=f"http://127.0.0.1:{args.http_port}",
        strategy=args.strategy,
        sudo=ctx.become,
        secrets_dir=f"{args.project_root}/secrets",
    )
    results = run_suite(ctx.conn, config, checks=args.checks or SUITES[args.suite])
    passed = sum(r.passed for r in results)
    failed = [r.name for r in results if not r.passed]
    msg = f"{passed}/{len(results)} checks passed" + (f"; failed: {', '.join(failed)}"
                                                      if failed else "")
    return Outcome(False, msg, checks=tuple(results), failed=bool(failed))


SPEC = ModuleSpec("verify", VerifyArgs, apply, __doc__ or "")
