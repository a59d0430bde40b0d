from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from provision.errors import ConfigError
from provision.load.inventory import (
    DynamicSource,
    Inventory,
    InventoryHost,
    load_inventory,
    parse_extra_vars,
    resolve_vars,
    to_host_spec,
)

GOOD = """\
all:
  vars: {level: all, ansible_user: admin}
  hosts:
    solo: {ansible_host: 10.0.0.9}
  children:
    cluster:
      vars: {level: cluster, network: shared-network}
      hosts:
        web1: {ansible_host: 10.0.0.5, ansible_port: 2201, level: host}
        web2: {host: 10.0.0.6, port: "2202", user: debian, key_file: ~/.ssh/k}
      children:
        db:
          vars: {level: db}
          hosts:
            db1:
        empty:
"""


def _write(tmp_path: Path, text: str, name: str = "inv.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    return load_inventory(_write(tmp_path, GOOD))


def test_hosts_and_groups(inventory: Inventory) -> None:
    assert list(inventory.hosts) == ["solo", "web1", "web2", "db1"]
    assert inventory.groups["all"] == ("solo", "web1", "web2", "db1")
    assert inventory.groups["cluster"] == ("web1", "web2", "db1")  # children's hosts too
    assert inventory.groups["db"] == ("db1",)
    assert inventory.groups["empty"] == ()
    assert inventory.groups["ungrouped"] == ("solo",)
    assert inventory.hosts["db1"].groups == ("all", "cluster", "db")
    assert inventory.sources == ()


@pytest.mark.parametrize(
    ("host", "level", "user"),
    [
        ("solo", "all", "admin"),
        ("web2", "cluster", "debian"),
        ("db1", "db", "admin"),
        ("web1", "host", "admin"),
    ],
)
def test_inventory_vars_go_from_all_to_the_host(
    inventory: Inventory, host: str, level: str, user: str
) -> None:
    assert inventory.hosts[host].vars["level"] == level
    assert inventory.hosts[host].vars["ansible_user"] == user


def test_short_connection_names_only_in_a_host_entry(tmp_path: Path) -> None:
    inv = load_inventory(
        _write(
            tmp_path,
            """\
        all:
          vars: {port: 6379, user: redis}
          hosts: {h1: {port: 2222}, h2: }
        """,
        )
    )
    assert inv.hosts["h1"].host_vars == {"ansible_port": 2222}
    assert to_host_spec(inv.hosts["h1"]).port == 2222
    h2 = to_host_spec(inv.hosts["h2"])
    assert (h2.port, h2.user) == (22, "admin")  # a group's `port` is just a variable


def test_the_three_precedence_levels(inventory: Inventory) -> None:
    assert resolve_vars(inventory, "web1", {}, {})["level"] == "host"
    assert resolve_vars(inventory, "web1", {"level": "play"}, {})["level"] == "play"
    assert resolve_vars(inventory, "web1", {"level": "play"}, {"level": "cli"})["level"] == "cli"
    assert resolve_vars(inventory, "localhost", {}, {})["level"] == "all"


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("all", ["solo", "web1", "web2", "db1"]),
        ("*", ["solo", "web1", "web2", "db1"]),
        ("cluster", ["web1", "web2", "db1"]),
        ("web1", ["web1"]),
        ("localhost", ["localhost"]),
        ("web1:solo", ["web1", "solo"]),
        ("web1,solo,web1", ["web1", "solo"]),
        ("cluster:!db", ["web1", "web2"]),
        ("all:!cluster", ["solo"]),
        ("cluster:&db", ["db1"]),
        ("web*", ["web1", "web2"]),
        ("empty", []),
        ("not-there", []),  # hosts may be added at run time
        ("db:localhost", ["db1", "localhost"]),
    ],
)
def test_select(inventory: Inventory, pattern: str, hosts: list[str]) -> None:
    assert [h.name for h in inventory.select(pattern)] == hosts


def test_localhost_is_implicit(inventory: Inventory) -> None:
    local = inventory.host("localhost")
    assert local.groups == ()
    assert local.vars["ansible_connection"] == "local"
    assert "localhost" not in inventory.groups["all"]
    with pytest.raises(ConfigError, match="no host named 'nope'"):
        inventory.host("nope")


def test_to_host_spec(inventory: Inventory, tmp_path: Path) -> None:
    web1 = to_host_spec(inventory.hosts["web1"])
    assert (web1.name, web1.address, web1.port, web1.user, web1.key_file) == (
        "web1",
        "10.0.0.5",
        2201,
        "admin",
        None,
    )
    web2 = to_host_spec(inventory.hosts["web2"])
    assert (web2.address, web2.port, web2.user) == ("10.0.0.6", 2202, "debian")
    assert web2.key_file == Path.home() / ".ssh/k"
    db1 = to_host_spec(inventory.hosts["db1"])
    assert (db1.address, db1.port) == ("db1", 22)
    cli = to_host_spec(
        inventory.hosts["web1"], resolve_vars(inventory, "web1", {}, {"ansible_user": "root"})
    )
    assert cli.user == "root"
    with pytest.raises(ConfigError, match=r"web1.ansible_port: port must be an integer"):
        to_host_spec(InventoryHost("web1", {"ansible_port": "{{ p }}"}, ()))


def test_with_hosts_adds_hosts_at_run_time(inventory: Inventory) -> None:
    new = inventory.with_hosts([InventoryHost("ec2a", {"ansible_host": "3.3.3.3"}, ())], "db")
    assert new.groups["db"] == ("db1", "ec2a")
    assert "ec2a" in new.groups["cluster"] and "ec2a" in new.groups["all"]
    assert new.hosts["ec2a"].vars["level"] == "db"
    assert new.hosts["ec2a"].groups == ("all", "cluster", "db")
    assert "ec2a" not in inventory.hosts  # the old one is unchanged
    fresh = new.with_hosts([InventoryHost("ec2b", {}, ())], "brand_new")
    assert fresh.groups["brand_new"] == ("ec2b",)
    assert fresh.vars_of_group("brand_new") == {"level": "all", "ansible_user": "admin"}
    moved = new.with_hosts([InventoryHost("solo", {"x": 1}, ())], "db")
    assert "solo" not in moved.groups["ungrouped"]
    assert moved.hosts["solo"].vars["x"] == 1 and moved.hosts["solo"].vars["level"] == "db"
    with pytest.raises(ConfigError, match="invalid host name"):
        new.with_hosts([InventoryHost("a b", {}, ())], "db")


def test_a_dynamic_source(tmp_path: Path) -> None:
    inv = load_inventory(
        _write(
            tmp_path,
            """\
        plugin: provision.aws_ec2
        cluster: demo
        region: eu-west-1
        vars: {ansible_user: admin}
        all:
          vars: {network: shared-network}
        """,
        )
    )
    (source,) = inv.sources
    assert isinstance(source, DynamicSource)
    assert source.plugin == "provision.aws_ec2"
    assert source.options == {
        "cluster": "demo",
        "region": "eu-west-1",
        "vars": {"ansible_user": "admin"},
    }
    assert source.loc is not None and source.loc.line == 1
    assert inv.groups["cluster"] == ()
    assert inv.vars_of_group("cluster") == {"network": "shared-network"}


# Each case: an inventory and the exact error after "inv.yml:".
BAD = [
    ("", " an inventory must be a mapping of groups, got NoneType"),
    ("- a\n", "1:1: an inventory must be a mapping of groups, got YList"),
    ("all: [a]\n", "1:6: all: a group must be a mapping of hosts, vars, children"),
    ("all: {hosts: [a]}\n", "1:14: all.hosts: hosts must be a mapping, got YList"),
    ("all: {hosts: {a: [1]}}\n", "1:18: all.hosts.a: vars must be a mapping, got YList"),
    (
        "all: {hosts: {'a b': }}\n",
        "1:15: all.hosts: invalid host name 'a b' (use letters, digits, '_', '.', '-')",
    ),
    (
        "all: {children: {'g$': }}\n",
        "1:18: all.children: invalid group name 'g$' (use letters, digits, '_', '.', '-')",
    ),
    ("all: {children: {all: }}\n", "1:18: all.children: 'all' is no one's child"),
    (
        "all: {vars: {ansible_port: 0}}\n",
        "1:28: all.vars.ansible_port: must be an integer port from 1 to 65535, got 0",
    ),
    (
        "all: {hosts: {h: {port: true}}}\n",
        "1:25: all.hosts.h.port: must be an integer port from 1 to 65535, got True",
    ),
    (
        "all: {vars: {ansible_host: [a]}}\n",
        "1:28: all.vars.ansible_host: must be a string, got ['a']",
    ),
    ("all: {vars: {a-b: 1}}\n", "1:13: all.vars: invalid variable name 'a-b'"),
    ("plugin: provision.aws_ec2\n", "1:1: cluster: provision.aws_ec2 needs 'cluster'"),
    (
        "plugin: provision.aws_ec2\ncluster: demo\nregoin: x\n",
        "1:1: regoin: unknown option 'regoin' of provision.aws_ec2 (did you mean 'region'?)",
    ),
    ("plugin: provision.aws_ec2\ncluster: 'a;b'\n", "2:10: cluster: must be a name, got 'a;b'"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_inventories(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_inventory("inv.yml")
    assert str(caught.value) == f"inv.yml:{message}"


def test_templated_connection_vars_are_checked_later(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, "all: {vars: {ansible_port: '{{ p }}'}}\n"))
    assert inv.group_vars["all"]["ansible_port"] == "{{ p }}"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        # As Ansible's parse_kv: key=value values are strings, pairs split at spaces (quotes
        # and templates keep theirs); JSON and YAML mappings are typed.
        (["port=6380"], {"port": "6380"}),
        (["debug=true", "debug=no"], {"debug": "no"}),
        (["name=web", "ratio=0.5"], {"name": "web", "ratio": "0.5"}),
        (["a=1 b=2"], {"a": "1", "b": "2"}),
        (["empty="], {"empty": ""}),
        (["msg='hello world'"], {"msg": "hello world"}),
        (['msg="hello world" n=1'], {"msg": "hello world", "n": "1"}),
        (["x={{ a + b }} y=2"], {"x": "{{ a + b }}", "y": "2"}),
        (["url=http://x:1/a=b"], {"url": "http://x:1/a=b"}),
        (["list='[1, 2]'"], {"list": "[1, 2]"}),  # text: a list comes as JSON or YAML
        (["bad=:x"], {"bad": ":x"}),
        (['{"a": 1, "b": [2]}'], {"a": 1, "b": [2]}),
        # Escapes as Ansible decodes them: a quote after a backslash is text, \t a tab, \= an
        # equals sign that does not split the key from the value.
        ([r'q="it\"s"'], {"q": 'it"s'}),
        ([r"q='it\'s' n=1"], {"q": "it's", "n": "1"}),
        ([r'x="a\"b c"'], {"x": 'a"b c'}),
        ([r"t=a\tb u=\u00e9"], {"t": "a\tb", "u": "\u00e9"}),
        ([r"p=a\=b"], {"p": r"a\=b"}),
    ],
)
def test_parse_extra_vars(items: list[str], expected: dict[str, Any]) -> None:
    assert parse_extra_vars(items) == expected


@pytest.mark.parametrize("item", [r"a=\N{NOSUCHNAME}", r"a=\U00110000"])
def test_an_escape_that_decodes_to_nothing_is_refused_as_bad_input(item: str) -> None:
    with pytest.raises(ConfigError, match="bad escape"):
        parse_extra_vars([item])


def test_parse_extra_vars_from_a_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "region: eu-west-1\ncount: 2\n", "extra.yml")
    assert parse_extra_vars([f"@{path}"]) == {"region": "eu-west-1", "count": 2}  # YAML: typed
    assert parse_extra_vars([f"@{path}", "count=3"]) == {"region": "eu-west-1", "count": "3"}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("foo", "-e: expected key=value, @file.yml or a mapping, got 'foo'"),
        ("=1", "-e: expected key=value, @file.yml or a mapping, got '=1'"),
        ("a b=1", "-e: expected key=value, @file.yml or a mapping, got 'a'"),
        ("a='x", '-e: unclosed quote or template in "a=\'x"'),
        ("a={{ x", "-e: unclosed quote or template in 'a={{ x'"),
        ("[1]", "-e: expected key=value, @file.yml or a mapping, got '[1]'"),
        ("{1: 2}", "-e: invalid variable name 1"),
        (
            "@/nonexistent/x.yml",
            "/nonexistent/x.yml: cannot read file: [Errno 2] No such file "
            "or directory: '/nonexistent/x.yml'",
        ),
    ],
)
def test_bad_extra_vars(item: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_extra_vars([item])
    assert str(caught.value) == message
