"""Run a loaded playbook against an inventory: play by play, task by task, hosts in parallel.

No planning pass: each task looks at the host as the previous task left it, then acts at once.
A failed task stops that host's play. Handlers notified by changed tasks run once at the end of
the play; the names of notified handlers are kept on the host until they ran, so a restart that
was pending when a run failed still happens on the next run.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from provision.cluster.layout import layout_from_vars
from provision.connection.base import BaseConnection, Remote
from provision.connection.local import LocalConnection
from provision.errors import (
    CommandError,
    ConfigError,
    ConnectError,
    Interrupted,
    ProvisionError,
    TaskError,
)
from provision.load.inventory import Inventory, InventoryHost, to_host_spec
from provision.load.playbook import Location, Play, Playbook, TaskDef
from provision.load.templating import evaluate, is_template, render
from provision.load.variables import RunVars
from provision.models import HostSpec, Result, Status, TaskResult
from provision.run.blocks import HostBlocks
from provision.run.events import Event, EventSink
from provision.run.host_lock import HostLock
from provision.run.options import Options
from provision.run.phases import PhaseClock
from provision.run.report import RunReport
from provision.tasks import ModuleSpec, Outcome, TaskContext, registry
from provision.tasks.base import build_args
from provision.tasks.facts import PENDING_HANDLERS_FILE, HostFacts, fact_command, gather

__all__ = ["Runner"]

Connector = Callable[[HostSpec], Remote]


@dataclass
class _HostState:
    """What one host carries across plays: its registered variables and facts."""

    registered: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    failed: bool = False


@dataclass
class _HostPlay:
    """One host's run of one play: where it is, what it notified, what it brought in."""

    play: Play
    host: InventoryHost
    inventory: Inventory
    ctx: TaskContext
    blocks: HostBlocks
    notified: list[str] = field(default_factory=list)
    ran_includes: set[Location] = field(default_factory=set)  # the include_tasks that ran
    added: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)


class Runner:
    """Runs playbooks. One SSH connection per host for the whole run.

    >>> report = Runner(Options(check=True)).run(playbook, inventory)
    >>> report.recap["web1"].changed
    """

    def __init__(
        self,
        options: Options | None = None,
        *,
        on_event: EventSink | None = None,
        connector: Connector | None = None,
        modules: Mapping[str, ModuleSpec] | None = None,
    ) -> None:
        self.options = options or Options()
        sink = on_event or (lambda event: None)
        self._phases = PhaseClock()

        def both(event: Event) -> None:
            self._phases(event)
            sink(event)

        self.on_event: EventSink = both
        self.connector = connector or self._ssh
        self.modules = modules if modules is not None else registry()
        self.stop = threading.Event()  # set by the CLI on Ctrl-C: stop after the current step
        self.connections: dict[str, Remote] = {}
        self._hosts: dict[str, _HostState] = {}
        self._host_locks: dict[str, HostLock] = {}
        self._lock = threading.Lock()
        self._variables: RunVars | None = None  # the run's, set by run()
        self._running = threading.local()  # per host thread: the task it runs now (for -v)

    # -- connections ---------------------------------------------------------------------------
    def _ssh(self, spec: HostSpec) -> Remote:
        from provision.connection.ssh import Connection

        return Connection(
            spec,
            known_hosts=self.options.known_hosts,
            trust_on_first_use=self.options.trust_on_first_use,
            retry_deadline=self.options.connect_deadline,
        )

    def _resolved(self) -> RunVars:
        assert self._variables is not None, "run() sets the run's variables"
        return self._variables

    def _connection(self, host: InventoryHost, inventory: Inventory) -> Remote:
        """The host's connection, opened once per run; reached as its variables say
        (``ansible_host``, ``ansible_user``...: the inventory's, extra variables on top, as
        the API's host lookups read them)."""
        with self._lock:
            conn = self.connections.get(host.name)
            if conn is None:
                spec = to_host_spec(host, self._resolved().host(inventory, host.name))
                if _on_controller(host):
                    conn = LocalConnection(spec)
                else:
                    conn = self.connector(spec)
                    self.on_event(Event("connect", host=host.name, data={
                        "target": conn.host.target}))  # fmt: skip
                if self.options.verbosity > 0 and isinstance(conn, BaseConnection):
                    conn.observe = self._observer(host.name)
                self.connections[host.name] = conn
            return conn

    def _observer(self, name: str) -> Callable[[Result], None]:
        """``-v``: a ``command`` event for each command sent to host ``name`` (its exit code;
        with ``-vv`` its output, unless the module's output is a secret)."""

        def observe(result: Result) -> None:
            # The task of the thread that sent the command: a task may send commands over
            # another host's connection (secret reads its peer's copy there).
            task, module = getattr(self._running, "task", ("", ""))
            data: dict[str, Any] = {"command": result.command[:2000], "exit": result.exit_code}
            if self.options.verbosity >= 2:
                spec = self.modules.get(module)
                if spec is not None and spec.secret_output:
                    data["hidden"] = f"the output of a {module} task is not shown"
                else:
                    data.update(stdout=result.stdout[-4000:], stderr=result.stderr[-4000:])
            self.on_event(Event("command", host=name, task=task, data=data))

        return observe

    def _peer(self, inventory: Inventory, name: str) -> Remote:
        """Another host's connection (opened once, shared with its own play)."""
        found = [h for h in inventory.select(name) if h.name == name]
        if not found or _on_controller(found[0]):
            raise ConfigError(f"no host {name!r} in the inventory", field="peer")
        return self._connection(found[0], inventory)

    def _host_lock(self, host: InventoryHost, conn: Remote) -> HostLock | None:
        """The run lock this run must take on the host before its first task (``up``/``down``);
        None when there is none to take (check mode, the controller, a lock already held)."""
        if self.options.lock_wait is None or self.options.check or _on_controller(host):
            return None
        if host.name in self._host_locks:
            return None
        return HostLock(conn, host.name, self.options.lock_command)

    def _take_lock(
        self,
        play: Play,
        host: InventoryHost,
        lock: HostLock,
        ctx: TaskContext,
        report: RunReport,
        first: Result | None,
    ) -> bool:
        """Take the host's lock (``first``: the attempt sent with the play's reads); a refusal
        fails the host, naming the holder. False when refused. A lock that had to be waited
        for drops the reads sent with it: the other run may have changed the host since."""
        wait = self.options.lock_wait
        assert wait is not None

        def waiting(msg: str) -> None:
            self.on_event(Event("wait", host=host.name, data={"msg": msg}))

        started = time.monotonic()
        try:
            at_once = lock.acquire(wait=wait, on_wait=waiting, first=first)
        except ProvisionError as exc:
            task = TaskDef(name="Run lock", module="run_lock", args={}, loc=play.loc)
            result = self._result(task, host, Status.FAILED, str(exc), started)
            report.add(result)
            self.on_event(Event("task", host=host.name, task=task.name, data={
                "module": task.module, "handler": False}))  # fmt: skip
            self.on_event(Event("result", host=host.name, task=task.name,
                                data=_event_data(result)))  # fmt: skip
            return False
        if not at_once:
            ctx.reads.clear()
        with self._lock:
            self._host_locks[host.name] = lock
        return True

    def _unlock_hosts(self) -> None:
        for name, lock in list(self._host_locks.items()):
            if not lock.release():
                self.on_event(Event("info", host=name, data={"msg": (
                    f"warning: could not remove this run's lock on host {name!r}; "
                    "`provision unlock` removes it")}))  # fmt: skip
        self._host_locks.clear()

    def close(self) -> None:
        for conn in self.connections.values():
            close = getattr(conn, "close", None)
            if close:
                close()
        self.connections.clear()

    # -- plays ---------------------------------------------------------------------------------
    def run(
        self, playbook: Playbook, inventory: Inventory, variables: RunVars | None = None
    ) -> RunReport:
        """Run ``playbook``'s plays on ``inventory``'s hosts; ``variables``: the run's,
        resolved once by the caller (the API's, which validation read), else here."""
        report = RunReport()
        self._variables = variables or RunVars(
            inventory, self.options.extra_vars, self.options.runtime_vars()
        )
        self._playbook_dir = str(playbook.path.parent)
        try:
            for play in playbook.plays:
                inventory = self._play(play, inventory, report)
                if self.stop.is_set():
                    raise Interrupted("interrupted")
        finally:
            self._unlock_hosts()
            self.close()
            report.phases = self._phases.phases()
            if report.phases:
                self.on_event(Event("phases", data={"phases": report.phase_rows()}))
        return report

    def _play(self, play: Play, inventory: Inventory, report: RunReport) -> Inventory:
        hosts = [h for h in inventory.select(play.hosts) if not self._state(h.name).failed]
        if self.options.limit is not None:
            # Unlike Ansible, the implicit localhost's plays (the cloud's, which find the
            # cluster's hosts) still run: `up --limit cluster-2` needs them.
            allowed = {h.name for h in inventory.select(self.options.limit)}
            implicit = "localhost" not in inventory.hosts
            hosts = [h for h in hosts if h.name in allowed or (implicit and h.name == "localhost")]
        self.on_event(Event("play", data={"name": play.name, "hosts": [h.name for h in hosts]}))
        if not hosts:
            return inventory
        added: list[tuple[str, list[dict[str, Any]]]] = []

        def one(host: InventoryHost) -> None:
            added.extend(self._host_play(play, host, inventory, report))

        if len(hosts) == 1:
            one(hosts[0])
        else:
            with ThreadPoolExecutor(max_workers=self.options.forks) as pool:
                list(pool.map(one, hosts))
        for group, new_hosts in added:
            inventory = inventory.with_hosts(
                [InventoryHost(str(h["name"]), dict(h.get("vars", {})), ()) for h in new_hosts],
                group,
            )
        return inventory

    def _state(self, name: str) -> _HostState:
        with self._lock:
            return self._hosts.setdefault(name, _HostState())

    def _vars(self, play: Play, host: InventoryHost, inventory: Inventory) -> dict[str, Any]:
        state = self._state(host.name)
        resolved = self._resolved()
        variables = resolved.host(inventory, host.name, play)
        variables.update(
            **resolved.runtime,
            inventory_hostname=host.name,
            groups={g: list(names) for g, names in inventory.groups.items()},
            play_hosts=[h.name for h in inventory.select(play.hosts)],
            playbook_dir=self._playbook_dir,
            facts=_facts_dict(state.facts.get("host")),
        )
        variables.update(state.registered)  # register and set_fact, host-scoped
        variables.update(resolved.extra_vars)  # as in Ansible: extra vars always win
        # Variables may be templates of other variables (Ansible renders them lazily):
        # render them here, in order, so that `{{ redis_files }}` gives the list, not its text.
        for name, value in list(variables.items()):
            if is_template(value):
                variables[name] = render(value, variables, loc=play.loc, field=f"vars.{name}")
        variables["layout"] = layout_from_vars(variables).as_vars()
        return variables

    def _host_play(
        self, play: Play, host: InventoryHost, inventory: Inventory, report: RunReport
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        state = self._state(host.name)
        added: list[tuple[str, list[dict[str, Any]]]] = []
        if play.when is not None and not self._play_applies(play, host, inventory):
            return added
        try:
            conn = self._connection(host, inventory)
            ctx = TaskContext(
                conn,
                check=self.options.check,
                diff=self.options.diff,
                become=play.become,
                facts=state.facts,
                progress=self._progress(host),
                peers=lambda name: self._peer(inventory, name),
            )
            lock = self._host_lock(host, conn)
            run = _HostPlay(play, host, inventory, ctx, HostBlocks(play.tasks, self._selected))
            added = run.added
            # Facts once per host per run (later plays see them as tasks left them:
            # docker_engine refreshes them after an install), read in the same round trip as
            # the play's looks, and the run lock's first attempt with them.
            gathering = play.gather_facts and "host" not in state.facts
            first: Result | None = None
            if not _on_controller(host):
                take = [lock.take_argv()] if lock is not None and ctx.become else []
                facts = [fact_command(ctx)] if gathering else []
                results = self._prefetch(play, ctx, host, inventory, take + facts)
                if take:
                    first = results[0]
                    ctx.reads.pop((ctx.become, tuple(take[0])), None)
            if lock is not None and not self._take_lock(play, host, lock, ctx, report, first):
                state.failed = True
                return added
            if gathering and not _on_controller(host):
                run.notified += list(gather(ctx).pending_handlers)
            for index, task in enumerate(play.tasks):
                if self.stop.is_set():
                    break
                if not self._in_play(task, run, report) or not run.blocks.leave(index, task):
                    state.failed = True
                    return added
            if not self.stop.is_set():  # interrupted: handlers stay pending on the host
                self._handlers(play, ctx, host, inventory, run.notified, report)
        except ConnectError as exc:
            state.failed = True
            report.unreachable(host.name, str(exc))
            self.on_event(Event("unreachable", host=host.name, data={"msg": str(exc)}))
        return added

    def _in_play(self, task: TaskDef, run: _HostPlay, report: RunReport) -> bool:
        """One task of the play on one host, if it is due there; False when the host has
        failed (a failure outside any block, or failed handlers at a flush)."""
        if not self._selected(task) or not run.blocks.runs(task):
            return True
        if task.included_by is not None and task.included_by not in run.ran_includes:
            return True  # its include_tasks did not run here: it was never brought in
        play, host, inventory, ctx = run.play, run.host, run.inventory, run.ctx
        if task.module == "meta":  # no result of its own, as in Ansible's recap
            if task.args.get("action") == "flush_handlers":
                self._handlers(play, ctx, host, inventory, run.notified, report)
                if self._state(host.name).failed:
                    return False
                run.notified.clear()
            return True
        result, outcome = self._task(task, ctx, play, host, inventory)
        failed = result.status is Status.FAILED
        if failed and task.blocks and run.blocks.fail(task):
            result = dataclasses.replace(result, status=Status.RESCUED)
            self._state(host.name).registered.update(
                ansible_failed_task={"name": task.name, "module": task.module},
                ansible_failed_result=_registered_result(result, outcome),
            )
        report.add(result)
        if task.module == "include_tasks" and result.status is not Status.SKIPPED:
            run.ran_includes.add(task.loc)
        if outcome is not None and "add_hosts" in outcome.data:
            run.added.append(
                (str(outcome.data.get("group", "cluster")), list(outcome.data["add_hosts"]))
            )
        if failed:
            return bool(task.blocks)  # in a block: its rescue and always decide
        # A task forced into check mode changed nothing: it notifies no handler.
        forced_check = task.check_mode is True and not self.options.check
        if result.status is Status.CHANGED and task.notify and not forced_check:
            self._notify(ctx, run.notified, task.notify)
        return True

    def _play_applies(self, play: Play, host: InventoryHost, inventory: Inventory) -> bool:
        assert play.when is not None
        variables = self._vars(play, host, inventory)
        if evaluate(play.when, variables, loc=play.loc):
            return True
        self.on_event(Event("info", host=host.name, data={
            "msg": f"play {play.name!r} skipped: {play.when}"}))  # fmt: skip
        return False

    def _prefetch(
        self,
        play: Play,
        ctx: TaskContext,
        host: InventoryHost,
        inventory: Inventory,
        commands: list[list[str]],
    ) -> list[Result]:
        """Read ahead, in one round trip, what the play's tasks will look at first (after
        ``commands``, whose results come first in the list returned).

        Not a plan: each task still looks, then acts, in turn. The reads only answer its looks
        while the host is as it was — the first change (``ctx.changing``) drops them all; and a
        look whose arguments differ at its turn (a value registered meanwhile) just misses.
        """
        variables = self._vars(play, host, inventory)
        for task in play.tasks:
            spec = self.modules.get(task.module)
            if spec is None or spec.reads is None or not self._selected(task):
                continue
            try:
                if task.when is not None and not evaluate(task.when, variables, loc=task.loc):
                    continue
                args = build_args(spec, _render_known(task.args, variables))
                commands += [c for c in spec.look(args, variables) if c not in commands]
            except ProvisionError:
                continue  # needs what an earlier task registers: read at its turn
        if not commands:
            return []
        results = ctx.conn.run_many(commands, sudo=ctx.become)
        pairs = zip(commands, results, strict=True)
        ctx.reads.update({(ctx.become, tuple(c)): r for c, r in pairs})
        return results

    def _selected(self, task: TaskDef) -> bool:
        """Ansible's rule (``Taggable.evaluate_tags``): ``--tags`` defaults to ``all``; a task
        tagged ``always`` runs unless ``always`` (or ``all``) is skipped; one tagged ``never``
        runs only when one of its tags is asked for; ``tagged``/``untagged`` select by
        whether a task has tags."""
        tags = set(task.tags) or {"untagged"}
        only = set(self.options.tags) or {"all"}
        skip = set(self.options.skip_tags)
        untagged = tags == {"untagged"}
        run = (
            "always" in tags
            or ("all" in only and "never" not in tags)
            or bool(tags & only)
            or ("tagged" in only and not untagged and "never" not in tags)
        )
        if run and skip:
            if "all" in skip:
                run = "always" in tags and "always" not in skip
            else:
                run = not (tags & skip) and not ("tagged" in skip and not untagged)
        return run

    def _progress(self, host: InventoryHost) -> Callable[[str, int, int], None]:
        def progress(label: str, done: int, total: int) -> None:
            self.on_event(
                Event(
                    "progress", host=host.name, data={"label": label, "done": done, "total": total}
                )
            )

        return progress

    # -- handlers ------------------------------------------------------------------------------
    def _notify(self, ctx: TaskContext, notified: list[str], names: tuple[str, ...]) -> None:
        new = [n for n in names if n not in notified]
        if not new:
            return
        notified.extend(new)
        if not self.options.check and not isinstance(ctx.conn, LocalConnection):
            data = "".join(f"{n}\n" for n in notified).encode()
            ctx.conn.put_bytes(data, PENDING_HANDLERS_FILE, mode=0o600, sudo=True)

    def _handlers(
        self,
        play: Play,
        ctx: TaskContext,
        host: InventoryHost,
        inventory: Inventory,
        notified: list[str],
        report: RunReport,
    ) -> None:
        if not notified:
            return
        for handler in play.handlers:
            if handler.name in notified or set(handler.listen) & set(notified):
                result, _ = self._task(handler, ctx, play, host, inventory, handler=True)
                report.add(result)
                if result.status is Status.FAILED and not handler.ignore_errors:
                    self._state(host.name).failed = True
                    return  # still pending on the host: the next run restarts
        if not self.options.check and not isinstance(ctx.conn, LocalConnection):
            ctx.conn.run(["rm", "-f", PENDING_HANDLERS_FILE], sudo=True)

    # -- tasks ---------------------------------------------------------------------------------
    def _task(
        self,
        task: TaskDef,
        ctx: TaskContext,
        play: Play,
        host: InventoryHost,
        inventory: Inventory,
        *,
        handler: bool = False,
    ) -> tuple[TaskResult, Outcome | None]:
        self._running.task = (task.name, task.module)
        self.on_event(
            Event(
                "task",
                host=host.name,
                task=task.name,
                data={"module": task.module, "handler": handler},
            )
        )
        started = time.monotonic()
        variables = self._vars(play, host, inventory)
        outcome: Outcome | None = None
        try:
            if task.loop is not None:
                outcome = self._loop(task, ctx, variables)
                status = _status(outcome)
                result = self._result(task, host, status, outcome.msg, started, outcome, ctx)
            elif task.when is not None and not evaluate(task.when, variables, loc=task.loc):
                result = self._result(task, host, Status.SKIPPED, "condition false", started)
            else:
                outcome = self._apply(task, ctx, variables)
                status = _status(outcome)
                result = self._result(task, host, status, outcome.msg, started, outcome, ctx)
        except ConnectError as exc:
            # The host is gone for this run (its SSH session dropped, say): name the task.
            raise ConnectError(f"task {task.name!r}: {exc.message}", host=exc.host) from exc
        except CommandError as exc:
            result = self._result(task, host, Status.FAILED, str(exc), started, ctx=ctx)
        except ProvisionError as exc:
            if isinstance(exc, ConfigError) and exc.file is None:
                exc = ConfigError(
                    exc.message,
                    file=task.loc.file,
                    line=task.loc.line,
                    column=task.loc.column,
                    field=exc.field,
                )
            result = self._result(task, host, Status.FAILED, str(exc), started, ctx=ctx)
        if result.status is Status.FAILED and task.ignore_errors:
            result = dataclasses.replace(result, status=Status.IGNORED)  # "...ignoring"
        if task.register:
            self._register(host, task.register, result, outcome)
        facts = outcome.data.get("ansible_facts") if outcome is not None else None
        if isinstance(facts, dict) and result.status is not Status.FAILED:  # set_fact
            self._state(host.name).registered.update(facts)
        self.on_event(Event("result", host=host.name, task=task.name, data=_event_data(result)))
        return result, outcome

    def _apply(self, task: TaskDef, ctx: TaskContext, variables: dict[str, Any]) -> Outcome:
        spec = self.modules[task.module]
        ctx.vars = variables
        ctx.executed = []
        # As Ansible: `check_mode: true` never changes the host, `false` runs even in --check.
        ctx.check = self.options.check if task.check_mode is None else task.check_mode
        ctx.render = lambda text: str(render(text, variables, loc=task.loc, field="template"))
        ctx.evaluate = lambda expr: evaluate(expr, variables, loc=task.loc, field=task.module)
        args = build_args(spec, render(dict(task.args), variables, loc=task.loc))
        if task.until is None:
            return self._judged(task, spec.apply(ctx, args), variables, ctx.check)
        # As Ansible: `until` is asked of every attempt's result, a failed one too (a command
        # that exits non-zero is tried again); `attempts` is in the result; when the attempts
        # run out, the task fails, however its last attempt ended.
        attempts = max(1, task.retries + 1)
        for attempt in range(1, attempts + 1):
            outcome = spec.apply(ctx, args)
            outcome = dataclasses.replace(outcome, data={**outcome.data, "attempts": attempt})
            outcome = self._judged(task, outcome, variables, ctx.check)
            if evaluate(task.until, _probe(task, variables, outcome), loc=task.loc):
                return outcome
            if attempt < attempts:
                time.sleep(task.delay)
        return dataclasses.replace(
            outcome,
            failed=True,
            msg=f"still not true after {attempts} attempts: {task.until} ({outcome.msg})",
        )

    def _loop(self, task: TaskDef, ctx: TaskContext, variables: dict[str, Any]) -> Outcome:
        """The task once per item of its loop, as Ansible runs it: ``when`` asked per item, every
        item run even after one failed; registered: ``results`` (each item's result with its
        item), changed if one changed, failed if one failed, skipped if every item was (or
        there was none)."""
        results: list[dict[str, Any]] = []
        failures: list[str] = []
        executed: list[str] = []
        for index, item in enumerate(task.loop_items(variables)):
            scope = task.item_scope(variables, index, item)
            label = render(task.label, scope, loc=task.loc) if task.label else item
            base = {task.loop_var: item, "ansible_loop_var": task.loop_var}
            if task.when is not None and not evaluate(task.when, scope, loc=task.loc):
                results.append({**base, "changed": False, "failed": False, "skipped": True})
                continue
            try:
                one = self._apply(task, ctx, scope)
            except (CommandError, TaskError) as exc:  # an item's failure: the others still run
                one = Outcome(False, str(exc), failed=True)
            executed += ctx.executed
            results.append({**base, **_registered(one), "skipped": False})
            if one.failed:
                failures.append(f"{label}: {one.msg}")
        ctx.executed = executed
        changed = any(r["changed"] for r in results)
        skipped = all(r.get("skipped") for r in results)  # and an empty loop
        msg = "; ".join(failures) or ("no items" if not results else f"{len(results)} item(s)")
        done = "One or more items failed" if failures else "All items completed"
        return Outcome(changed, msg, data={"results": results, "msg": done},
                       failed=bool(failures), skipped=skipped and not failures)  # fmt: skip

    def _judged(
        self, task: TaskDef, outcome: Outcome, variables: Mapping[str, Any], check: bool
    ) -> Outcome:
        """``changed_when``, then ``failed_when``, on the module's result (the registered name
        gives it, as in Ansible; ``failed_when`` sees what ``changed_when`` decided). Not in
        check mode when the module did not run (no result data: a command's "would run"), as
        Ansible does not judge a skipped result."""
        if check and not outcome.data:
            return outcome
        for key in ("changed_when", "failed_when"):
            expression = getattr(task, key)
            if expression is None:
                continue
            probe = _probe(task, variables, outcome)
            verdict = bool(evaluate(expression, probe, loc=task.loc, field=key))
            if key == "changed_when":
                outcome = dataclasses.replace(outcome, changed=verdict)
            elif verdict != outcome.failed:
                msg = f"failed_when: {expression}" if verdict else outcome.msg
                outcome = dataclasses.replace(outcome, failed=verdict, msg=msg)
        return outcome

    def _result(
        self,
        task: TaskDef,
        host: InventoryHost,
        status: Status,
        msg: str,
        started: float,
        outcome: Outcome | None = None,
        ctx: TaskContext | None = None,
    ) -> TaskResult:
        return TaskResult(
            host=host.name,
            task=task.name,
            module=task.module,
            status=status,
            msg=msg,
            diff=outcome.diff if outcome else "",
            commands=tuple(ctx.executed) if ctx else (),
            data=dict(outcome.data) if outcome else {},
            checks=outcome.checks if outcome else (),
            elapsed=round(time.monotonic() - started, 3),
        )

    def _register(
        self, host: InventoryHost, name: str, result: TaskResult, outcome: Outcome | None
    ) -> None:
        self._state(host.name).registered[name] = _registered_result(result, outcome)


def _registered_result(result: TaskResult, outcome: Outcome | None) -> dict[str, Any]:
    """A task's result as ``register`` keeps it (Ansible's shape)."""
    value = _registered(outcome) if outcome else {}
    value.update(
        changed=result.status is Status.CHANGED,
        failed=result.status in (Status.FAILED, Status.IGNORED, Status.RESCUED),
        skipped=result.status is Status.SKIPPED,
        msg=result.msg,
    )
    return value


def _render_known(args: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """Render what can be rendered now; a value that needs a later register becomes ""
    (a look keyed on it will simply not match the real one)."""
    rendered: dict[str, Any] = {}
    for name, value in args.items():
        try:
            rendered[name] = render(value, variables)
        except ProvisionError:
            rendered[name] = ""
    return rendered


def _facts_dict(facts: Any) -> dict[str, Any]:
    return facts.as_dict() if isinstance(facts, HostFacts) else {}


def _status(outcome: Outcome) -> Status:
    if outcome.failed:
        return Status.FAILED
    if outcome.skipped:
        return Status.SKIPPED
    return Status.CHANGED if outcome.changed else Status.OK


def _probe(task: TaskDef, variables: Mapping[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The variables an ``until``/``changed_when``/``failed_when`` expression sees: the task's,
    with its own result under its ``register`` name, as Ansible gives it."""
    return {**variables, **({task.register: _registered(outcome)} if task.register else {})}


def _registered(outcome: Outcome) -> dict[str, Any]:
    return {
        **outcome.data,
        "changed": outcome.changed,
        "failed": outcome.failed,
        "msg": outcome.msg,
    }


def _event_data(result: TaskResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "status": result.status.value,
        "msg": result.msg,
        "elapsed": result.elapsed,
    }
    if result.diff:
        data["diff"] = result.diff
    if result.checks:
        data["checks"] = [replace(c, evidence={}).__dict__ for c in result.checks]
    return data


def _on_controller(host: InventoryHost) -> bool:
    """The host is this machine: Ansible's implicit ``localhost``, or any host with
    ``ansible_connection: local``. An inventory entry *named* ``localhost`` is a host like
    any other (SSH to its ``ansible_host``), as in Ansible: the name alone never runs
    anything on the controller."""
    return host.vars.get("ansible_connection") == "local"
