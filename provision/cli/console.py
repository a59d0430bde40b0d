"""What a person sees: task lines, timers and bars on stderr, the recap. Only the CLI uses it.

Plain lines when stderr is not a terminal (CI logs), rich's live display when it is.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import IO, Any

from provision.run.events import Event
from provision.run.report import RunReport

__all__ = ["Console", "JsonLines"]

_COLOURS = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "cyan",
            "ignored": "magenta", "rescued": "magenta"}  # fmt: skip


class Console:
    """Renders events as they come. Thread-safe: hosts run in parallel."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console as RichConsole

        self.stream = stream or sys.stderr
        self.rich = RichConsole(file=self.stream, highlight=False, soft_wrap=True)
        self._lock = threading.Lock()
        self._bar: Any = None
        self._bar_task: Any = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            handler = getattr(self, f"_on_{event.kind}", None)
            if handler:
                handler(event)

    def _on_play(self, event: Event) -> None:
        hosts = ", ".join(event.data.get("hosts", [])) or "no hosts"
        self.rich.print(f"\n[bold]PLAY[/bold] {event.data.get('name', '')} [dim]({hosts})[/dim]")

    def _on_result(self, event: Event) -> None:
        self._end_bar()
        status = str(event.data.get("status", ""))
        colour = _COLOURS.get(status, "white")
        elapsed = event.data.get("elapsed", 0)
        msg = str(event.data.get("msg", ""))
        first = msg.splitlines()[0] if msg else ""
        self.rich.print(
            f"[{colour}]{status:>7}[/{colour}] {event.host}: {event.task} "
            f"[dim]{first} ({elapsed:.1f}s)[/dim]",
            markup=True,
        )
        if status == "failed" and "\n" in msg:
            self.rich.print(msg, markup=False, style="red")
        if event.data.get("diff"):
            self.rich.print(event.data["diff"], markup=False, style="dim")
        for check in event.data.get("checks", []):
            mark = "[green]PASS[/green]" if check["passed"] else "[red]FAIL[/red]"
            self.rich.print(f"        {mark} {check['name']}: {check['summary']}")

    def _on_command(self, event: Event) -> None:
        """A command sent to a host (``-v``; with ``-vv`` its output): the runner sends these
        only at the verbosity asked for, so every one that comes is shown."""
        data = event.data
        line = f"  {event.host} $ {data.get('command', '')} (exit {data.get('exit')})"
        self.rich.print(line, style="dim", markup=False, highlight=False)
        if data.get("hidden"):
            self.rich.print(f"    ({data['hidden']})", style="dim", markup=False)
        for stream in ("stdout", "stderr"):
            text = str(data.get(stream) or "").rstrip("\n")
            for line in text.splitlines()[-20:]:
                self.rich.print(f"    {stream[3:]}| {line}", markup=False, highlight=False)

    def _on_unreachable(self, event: Event) -> None:
        self.rich.print(f"[red]unreachable[/red] {event.host}: {event.data.get('msg', '')}")

    def _on_wait(self, event: Event) -> None:
        self.rich.print(f"[dim]  ... {event.data.get('msg', '')}[/dim]")

    _on_info = _on_wait

    def _on_progress(self, event: Event) -> None:
        done, total = int(event.data.get("done", 0)), int(event.data.get("total", 0))
        if not done and not total:  # a step of a wait ("waiting for SSH"), not a transfer
            self.rich.print(f"[dim]  ... {event.host}: {event.data.get('label', '')}[/dim]")
            return
        if not self.rich.is_terminal:
            return  # a bar in a log file is noise; the task line says what was sent
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn

        if self._bar is None:
            self._bar = Progress(
                "{task.description}",
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
                console=self.rich,
                transient=True,
            )
            self._bar.start()
            self._bar_task = self._bar.add_task(
                f"{event.host} {event.data.get('label')}", total=total or None
            )
        self._bar.update(self._bar_task, completed=done)

    def _end_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def recap(self, report: RunReport) -> None:
        self._end_bar()
        self.rich.print("\n[bold]RECAP[/bold]")
        for host, r in sorted(report.recap.items()):
            colour = "red" if r.failed or r.unreachable else "yellow" if r.changed else "green"
            self.rich.print(
                f"[{colour}]{host:<24}[/{colour}] ok={r.ok} changed={r.changed} "
                f"failed={r.failed} skipped={r.skipped} unreachable={r.unreachable}"
                + (f" ignored={r.ignored}" if r.ignored else "")
                + (f" rescued={r.rescued}" if r.rescued else "")
            )
        if report.phases:  # a cold run: where its time went
            total = sum(seconds for _, seconds in report.phases)
            steps = " · ".join(f"{name} {seconds:.1f}s" for name, seconds in report.phases)
            self.rich.print(f"\nphases: {steps} (total {total:.1f}s)", highlight=False)


class JsonLines:
    """The events stream for pipelines: one JSON object a line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.stream.write(json.dumps(event.as_dict(), default=str) + "\n")
            self.stream.flush()
