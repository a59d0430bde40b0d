"""The controller's record of a cloud cluster's routes, and the ``routes`` task that puts them
back into a Redis that came back empty (its volume lost with its host). The Redis side is
faked here (a table in memory); tests/integration/test_swarm.py restores through a real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from provision.cluster import route_record
from provision.cluster.routes import Route
from provision.errors import ConfigError, RouteError
from provision.tasks import routes as routes_task
from provision.tasks.base import TaskContext
from tests.unit.fakes import FakeRemote

ECHO = Route("/api/echo", "echo", ("echo-a:80", "echo-b:80"))


def test_the_record_round_trips_and_a_missing_one_is_empty(tmp_path: Path) -> None:
    where = route_record.path(tmp_path, "demo")
    assert route_record.load(where) == {}
    route_record.save(where, {ECHO.prefix: ECHO})
    assert route_record.load(where) == {ECHO.prefix: ECHO}
    assert where.parent.stat().st_mode & 0o077 == 0  # beside the state: private
    where.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="unreadable route record") as caught:
        route_record.load(where)
    assert caught.value.file == str(where)


class FakeTable:
    """RouteTable's surface the task uses, over a dict; ``fail`` raises on open."""

    held: ClassVar[dict[str, Route]] = {}
    added: ClassVar[list[tuple[str, str, tuple[str, ...]]]] = []
    fail = False

    def __init__(self, conn: Any, layout: Any) -> None:
        pass

    def __enter__(self) -> FakeTable:
        if FakeTable.fail:
            raise RouteError("no redis container")
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def list_routes(self) -> dict[str, Route]:
        return dict(FakeTable.held)

    def add_route(self, prefix: str, service: str, endpoints: Any, allow_local: bool) -> None:
        FakeTable.added.append((prefix, service, tuple(endpoints)))


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> type[FakeTable]:
    monkeypatch.setattr("provision.cluster.routes.RouteTable", FakeTable)
    monkeypatch.setattr(routes_task, "host_layout", lambda ctx: None)  # FakeTable ignores it
    FakeTable.held, FakeTable.added, FakeTable.fail = {}, [], False
    return FakeTable


def _apply(tmp_path: Path, check: bool = False):  # type: ignore[no-untyped-def]
    ctx = TaskContext(FakeRemote(), check=check, become=True, vars={})
    args = routes_task.RoutesArgs(state_dir=str(tmp_path), cluster="demo")
    return routes_task.apply(ctx, args)


def test_restored_only_into_an_empty_table(tmp_path: Path, table: type[FakeTable]) -> None:
    assert not _apply(tmp_path).changed  # nothing recorded: nothing asked of Redis
    route_record.save(route_record.path(tmp_path, "demo"), {ECHO.prefix: ECHO})
    out = _apply(tmp_path)
    assert out.changed and "restored 1 route(s)" in out.msg
    assert table.added == [("/api/echo", "echo", ("echo-a:80", "echo-b:80"))]
    table.held, table.added = {ECHO.prefix: ECHO}, []
    again = _apply(tmp_path)
    assert not again.changed and table.added == []  # Redis holds routes: left alone


def test_check_mode_says_it_would_restore_and_writes_nothing(
    tmp_path: Path, table: type[FakeTable]
) -> None:
    route_record.save(route_record.path(tmp_path, "demo"), {ECHO.prefix: ECHO})
    out = _apply(tmp_path, check=True)
    assert out.changed and out.msg.startswith("would restore 1 route(s)") and not table.added
    table.fail = True  # no Redis yet (a cluster still to make)
    assert _apply(tmp_path, check=True).changed
    with pytest.raises(RouteError):
        _apply(tmp_path)
