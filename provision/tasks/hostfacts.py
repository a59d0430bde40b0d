"""The host facts, gathered once per host per run and refreshed after Docker is installed."""

from __future__ import annotations

from provision.tasks.base import TaskContext
from provision.tasks.facts import HOST_FACTS_SCRIPT, HostFacts, parse_host_facts

__all__ = ["fact_command", "gather", "host_facts"]


def fact_command(ctx: TaskContext) -> list[str]:
    """The read that gathers the host facts (a runner may fetch it ahead with others)."""
    return ["sh", "-c", HOST_FACTS_SCRIPT, "sh", ctx.host.user]


def gather(ctx: TaskContext) -> HostFacts:
    """Read the host facts now (one round trip) and keep them in ``ctx.facts``."""
    result = ctx.read(fact_command(ctx))
    facts = parse_host_facts(result.stdout)
    ctx.facts["host"] = facts
    return facts


def host_facts(ctx: TaskContext) -> HostFacts:
    """The host facts of this run, gathered on first use."""
    facts = ctx.facts.get("host")
    return facts if isinstance(facts, HostFacts) else gather(ctx)
