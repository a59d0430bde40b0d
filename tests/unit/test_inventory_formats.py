"""Inventories as Ansible writes them: INI, host ranges, group_vars/ and host_vars/ (files and
folders, beside the inventory and beside the playbook), Ansible's precedence among them, and a
group graph with exponentially many paths that loads in linear time."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from provision.api import Options, load
from provision.errors import ConfigError
from provision.load.hostrange import MAX_HOSTS, HostPatternError, expand_host_pattern
from provision.load.ini import parse_value
from provision.load.inventory import InventoryHost, load_inventory


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- host ranges ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "names", "port"),
    [
        ("web[01:03]", ["web01", "web02", "web03"], None),
        ("db-[a:c]", ["db-a", "db-b", "db-c"], None),
        ("n[1:10:3]", ["n1", "n4", "n7", "n10"], None),
        ("x[:2]", ["x0", "x1", "x2"], None),
        ("w[8:10]", ["w8", "w9", "w10"], None),  # no leading zero: no padding
        ("w[008:010]", ["w008", "w009", "w010"], None),
        ("l[y:B]", ["ly", "lz", "lA", "lB"], None),  # a-z then A-Z, as Ansible
        ("r[1:2]-[a:b].lan", ["r1-a.lan", "r1-b.lan", "r2-a.lan", "r2-b.lan"], None),
        ("api[1:2]:2222", ["api1", "api2"], 2222),
        ("plain:22", ["plain"], 22),
        ("plain", ["plain"], None),
    ],
)
def test_host_ranges(pattern: str, names: list[str], port: int | None) -> None:
    assert expand_host_pattern(pattern) == (names, port)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("w[1]", "host range must be begin:end or begin:end:step"),
        ("w[1:]", "host range must specify an end"),
        ("w[01:100]", "equal-length begin and end formats"),
        ("w[3:1]", "begin <= end"),
        ("w[c:a]", "begin <= end"),
        ("w[1:5:0]", "step must be at least 1"),
        ("w[1:5:x]", "step must be an integer"),
        ("w[a:5]", "two integers or two letters"),
        ("w[1:3", "unclosed '['"),
        ("w[1:3]]", "unopened ']'"),
        (f"w[1:{MAX_HOSTS + 1}]", f"names more than {MAX_HOSTS} hosts"),
        ("a[1:200]b[1:200]", f"names more than {MAX_HOSTS} hosts"),
    ],
)
def test_bad_host_ranges(pattern: str, message: str) -> None:
    with pytest.raises(HostPatternError, match=message.replace("[", r"\[")):
        expand_host_pattern(pattern)


def test_a_range_with_vars_and_a_port_in_yaml(tmp_path: Path) -> None:
    inv = load_inventory(
        _write(
            tmp_path / "inv.yml",
            """\
            all:
              children:
                web:
                  hosts:
                    "web[1:2]:2200": {role: web}
                    "web2:2300": {ansible_port: 2400}
            """,
        )
    )
    assert inv.groups["web"] == ("web1", "web2")
    assert inv.hosts["web1"].vars == {"ansible_port": 2200, "role": "web"}
    # The port of `host:port` counts where the host is first met; its own vars beat it.
    assert inv.hosts["web2"].vars == {"ansible_port": 2400, "role": "web"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("all: {hosts: {'w[3:1]': }}\n", "1:15: all.hosts: host range must have begin <= end"),
        (
            "all: {hosts: {'w[1:2];x': }}\n",
            "1:15: all.hosts: invalid host name 'w1;x' (use letters, digits, '_', '.', '-')",
        ),
        (
            "all: {hosts: {'w:0': }}\n",
            "1:15: all.hosts.w:0: must be an integer port from 1 to 65535, got 0",
        ),
    ],
)
def test_bad_ranges_point_at_the_host(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "inv.yml", text)
    with pytest.raises(ConfigError) as caught:
        load_inventory("inv.yml")
    assert str(caught.value).startswith(f"inv.yml:{message}")


# -- INI --------------------------------------------------------------------------------------
INI = """\
# ungrouped hosts first
solo ansible_host=10.0.0.9

[web]
web[1:2] ansible_user=debian http_port=8081
web3 note="a b" flag=True word=true quoted="'8080'"

[web:vars]
http_port=8080
greeting=hello world

[prod:children]
web
db

[db]
db1 ansible_port=2222

[all:vars]
ansible_user=admin
"""


def test_ini_inventory(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path / "hosts.ini", INI))
    assert list(inv.hosts) == ["solo", "web1", "web2", "web3", "db1"]
    assert inv.members["web"] == ("web1", "web2", "web3")
    assert inv.groups["prod"] == ("web1", "web2", "web3", "db1")
    assert inv.groups["ungrouped"] == ("solo",)
    assert inv.children["all"] == ("ungrouped", "prod")  # web and db have a parent
    assert inv.hosts["db1"].groups == ("all", "prod", "db")
    assert inv.hosts["web1"].vars == {
        "ansible_user": "debian", "http_port": 8081, "greeting": "hello world",
    }  # fmt: skip
    web3 = inv.hosts["web3"].vars
    assert [web3[k] for k in ("note", "flag", "word", "quoted")] == ["a b", True, "true", "8080"]
    assert web3["http_port"] == 8080 and web3["ansible_user"] == "admin"
    assert inv.hosts["db1"].vars == {"ansible_user": "admin", "ansible_port": 2222}


def test_a_file_with_no_extension_is_yaml_or_ini(tmp_path: Path) -> None:
    yaml_inv = load_inventory(_write(tmp_path / "a" / "hosts", "all: {hosts: {h1: {x: 1}}}\n"))
    ini_inv = load_inventory(_write(tmp_path / "b" / "hosts", "h1 x=1\n[g]\nh2\n"))
    assert yaml_inv.hosts["h1"].vars == {"x": 1}
    assert ini_inv.hosts["h1"].vars == {"x": 1} and ini_inv.groups["g"] == ("h2",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[web:hosts2]\n", "1:1: section [web:hosts2] has an unknown type 'hosts2'"),
        ("[web server]\n", "1:1: invalid section '[web server]'"),
        ("[p:children]\nghost\n", "2:1: [p:children] names group 'ghost', which no [ghost]"),
        ("[g:vars]\na=1\n", "1:1: [g:vars] is for group 'g', which no [g] or [g:children]"),
        ("[g]\n[g:vars]\njust-a-word\n", "3:1: expected key=value, got 'just-a-word'"),
        ("[g]\nh1 novalue\n", "2:4: h1: expected key=value after the host, got 'novalue'"),
        ("[g]\nh1 a='x\n", "2:1: cannot split the host line: No closing quotation"),
        ("[g]\n  h;1\n", "2:3: g.hosts: invalid host name 'h;1'"),
        ("[g$]\n", "1:1: [g$]: invalid group name 'g$'"),
        ("[g]\nh1 a-b=1\n", "2:1: g.hosts.h1: invalid variable name 'a-b'"),
        ("[g]\nh1 ansible_port=0\n", "2:17: g.hosts.h1.ansible_port: must be an integer port"),
        ("[g:vars]\nansible_port=x\n[g]\n", "2:14: g.vars.ansible_port: must be an integer port"),
        ("[g:children]\nall\n", "2:1: g.children: 'all' is no one's child"),
        (
            "[a:children]\nb\n[b:children]\na\n",
            "2:1: a.children.b: groups are each other's children: a -> b -> a",
        ),
    ],
)
def test_bad_ini_inventories(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "inv.ini", text)
    with pytest.raises(ConfigError) as caught:
        load_inventory("inv.ini")
    assert str(caught.value).startswith(f"inv.ini:{message}")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8080", 8080), ("'8080'", "8080"), ("True", True), ("yes", "yes"), ("None", None),
        ("1.5", 1.5), ("[1, (2, 3)]", [1, [2, 3]]), ("{'a': 1}", {"a": 1}), ("b'x'", "x"),
        ("1j", "1j"), ("...", "..."), ("a=b", "a=b"), ("[" * 5000, "[" * 5000),
    ],
)  # fmt: skip
def test_ini_values_are_python_literals_or_strings(text: str, value: object) -> None:
    assert parse_value(text) == value


# -- group_vars/ and host_vars/ --------------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        _write(root / name, text)


def test_vars_files_and_folders(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "inv.yml": "all: {children: {web: {hosts: {w1: , w2: }}, db: {hosts: {d1: }}}}\n",
            "group_vars/all.yml": "a: all-file\n",
            "group_vars/web/01.yml": "a: web-01\nfirst: 1\n",
            "group_vars/web/02.yaml": "a: web-02\n",
            "group_vars/web/sub/03.json": '{"deep": true}\n',
            "group_vars/web/.hidden.yml": "hidden: 1\n",
            "group_vars/web/old.yml~": "backup: 1\n",
            "group_vars/web/notes.txt": "txt: 1\n",
            "group_vars/db": "a: db-noext\n",
            "group_vars/db.yml": "never: read\n",  # `db` (no extension) is looked for first
            "host_vars/w2.json": '{"a": "w2-json"}\n',
            "host_vars/d1/x.yml": "",  # an empty file adds nothing
        },
    )
    inv = load_inventory(tmp_path / "inv.yml")
    assert inv.hosts["w1"].vars == {"a": "web-02", "first": 1, "deep": True}
    assert inv.hosts["w2"].vars["a"] == "w2-json"
    assert inv.hosts["d1"].vars == {"a": "db-noext"}
    assert inv.host("localhost").vars == {"a": "all-file", "ansible_connection": "local"}


def test_ansible_precedence_of_every_level(tmp_path: Path) -> None:
    """kNN is set at levels 1..NN, so its value names level NN, which beat those below."""
    levels = [
        "inventory all", "inventory g1", "inventory g2", "group_vars/all", "playbook all",
        "group_vars/g1", "group_vars/g2", "playbook g1", "playbook g2", "host", "host_vars",
        "playbook host_vars",
    ]  # fmt: skip

    def keys(level: int) -> str:
        names = range(level, len(levels) + 1)
        return "{" + ", ".join(f"k{n:02d}: '{levels[level - 1]}'" for n in names) + "}"

    _tree(
        tmp_path,
        {
            "inv.yml": f"""\
            all:
              vars: {keys(1)}
              children:
                g1:
                  vars: {keys(2)}
                  children:
                    g2:
                      vars: {keys(3)}
                      hosts:
                        h1: {keys(10)}
            """,
            "group_vars/all.yml": keys(4),
            "play/group_vars/all.yml": keys(5),
            "group_vars/g1.yml": keys(6),
            "group_vars/g2.yml": keys(7),
            "play/group_vars/g1.yml": keys(8),
            "play/group_vars/g2/main.yml": keys(9),
            "host_vars/h1.yml": keys(11),
            "play/host_vars/h1.yml": keys(12),
            "play/pb.yml": "- hosts: all\n  gather_facts: false\n  tasks: []\n",
        },
    )
    inv = load_inventory(tmp_path / "inv.yml", playbook_dir=tmp_path / "play")
    expected = {f"k{n:02d}": levels[n - 1] for n in range(1, len(levels) + 1)}
    assert inv.hosts["h1"].vars == expected
    # Without the playbook's folder, its levels are not there.
    alone = load_inventory(tmp_path / "inv.yml").hosts["h1"].vars
    assert [alone[k] for k in ("k05", "k08", "k12")] == [
        "group_vars/all",
        "group_vars/g2",
        "host_vars",
    ]
    # The API loads the playbook's group_vars/ and host_vars/ with it.
    _, loaded = load(tmp_path / "play" / "pb.yml", tmp_path / "inv.yml", Options())
    assert loaded.hosts["h1"].vars == expected
    _, given = load(tmp_path / "play" / "pb.yml", load_inventory(tmp_path / "inv.yml"), Options())
    assert given.hosts["h1"].vars == expected


def test_vars_files_reach_hosts_added_at_run_time(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "inv.yml": "plugin: provision.aws_ec2\ncluster: demo\n",
            "group_vars/cluster.yml": "role: member\nwho: group\n",
            "host_vars/ec2a.yml": "who: ec2a\n",
        },
    )
    inv = load_inventory(tmp_path / "inv.yml")
    assert inv.vars_of_group("cluster") == {"role": "member", "who": "group"}
    added = inv.with_hosts(
        [InventoryHost("ec2a", {"ansible_host": "3.3.3.3"}, ()), InventoryHost("ec2b", {}, ())],
        "cluster",
    )
    assert added.hosts["ec2a"].vars == {"role": "member", "who": "ec2a", "ansible_host": "3.3.3.3"}
    assert added.hosts["ec2b"].vars == {"role": "member", "who": "group"}
    assert added.members["cluster"] == ("ec2a", "ec2b")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("group_vars/all.yml", "- a\n", "group_vars/all.yml:1:1: a vars file must be a mapping"),
        ("group_vars/web/x.yml", "a-b: 1\n", "group_vars/web/x.yml:1:1: invalid variable name"),
        (
            "host_vars/w1.yml",
            "ansible_port: 99999\n",
            "host_vars/w1.yml:1:15: ansible_port: must be an integer port from 1 to 65535",
        ),
        ("group_vars/web.yml", "a: [1\n", "group_vars/web.yml:2:1: invalid YAML"),
    ],
)
def test_bad_vars_files(
    name: str, text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path, {"inv.yml": "all: {children: {web: {hosts: {w1: }}}}\n", name: text})
    with pytest.raises(ConfigError) as caught:
        load_inventory("inv.yml")
    assert str(caught.value).startswith(message)


def test_a_symlink_loop_or_a_fifo_in_group_vars_does_not_hang(tmp_path: Path) -> None:
    _tree(tmp_path, {"inv.yml": "all: {hosts: {h1: }}\n", "group_vars/all/a.yml": "a: 1\n"})
    (tmp_path / "group_vars" / "all" / "loop").symlink_to(tmp_path / "group_vars" / "all")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "group_vars" / "all" / "pipe.yml")  # reading it would block
    assert load_inventory(tmp_path / "inv.yml").hosts["h1"].vars == {"a": 1}


# -- the group graph ---------------------------------------------------------------------------
def _diamonds(levels: int) -> str:
    """Two groups a level, each a child of both groups above: 2**levels paths to the bottom."""
    lines = ["all:", " children:"]
    for n in range(levels):
        for side in "ab":
            below = f"{{a{n + 1}, b{n + 1}}}" if n + 1 < levels else "{leaf}"
            lines.append(f"  {side}{n}: {{vars: {{v: {side}{n}}}, children: {below}}}")
    lines.append("  leaf: {hosts: {h1}}")
    return "\n".join(lines) + "\n"


def test_a_group_graph_with_exponentially_many_paths_loads_fast(tmp_path: Path) -> None:
    text = _diamonds(25)
    assert len(text) < 2300  # a 2 KB file ...
    path = _write(tmp_path / "inv.yml", text)
    started = time.monotonic()
    inv = load_inventory(path)  # ... with 2**25 paths from leaf to all
    host = inv.hosts["h1"]
    listing = inv.to_ansible_list()
    assert time.monotonic() - started < 5.0
    # Depth: all 0, a0/b0 1, ..., a24/b24 25, leaf 26; at one depth, by name.
    assert host.groups[:5] == ("all", "a0", "b0", "a1", "b1")
    assert host.groups[-3:] == ("a24", "b24", "leaf")
    assert len(host.groups) == 52
    assert host.vars["v"] == "b24"  # the deepest groups' vars win, b24 after a24
    assert inv.parents["a3"] == ("all", "a2", "b2")  # all's children, written so
    assert listing["all"]["children"][:3] == ["ungrouped", "a0", "b0"]
    assert listing["a3"] == {"children": ["a4", "b4"]}
    assert inv.groups["a0"] == ("h1",) and inv.vars_of_group("leaf")["v"] == "b24"


def test_a_cycle_far_down_the_graph_is_still_found(tmp_path: Path) -> None:
    text = _diamonds(25).replace("leaf: {hosts: {h1}}", "leaf: {children: {a10}}")
    with pytest.raises(ConfigError, match=r"groups are each other's children: a10 -> .* -> a10"):
        load_inventory(_write(tmp_path / "inv.yml", text))


def test_a_deep_chain_of_groups_needs_no_recursion(tmp_path: Path) -> None:
    lines = ["[g0]", "h1"] + [f"[g{n + 1}:children]\ng{n}" for n in range(3000)]
    inv = load_inventory(_write(tmp_path / "inv.ini", "\n".join(lines) + "\n"))
    assert inv.hosts["h1"].groups[:3] == ("all", "g3000", "g2999")
    assert len(inv.hosts["h1"].groups) == 3002
