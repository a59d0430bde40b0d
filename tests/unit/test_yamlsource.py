from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import ConfigError
from provision.load.yamlsource import (
    Location,
    YList,
    YMap,
    key_loc,
    load_file,
    load_text,
    loc_of,
    suggest,
    value_loc,
)

DOC = """\
play:
  hosts: cluster
  ports: [80, 443]
  tasks:
    - name: first
      become: yes
"""


def test_values_are_plain_python() -> None:
    data = load_text(DOC, "pb.yml")
    assert data == {
        "play": {
            "hosts": "cluster",
            "ports": [80, 443],
            "tasks": [{"name": "first", "become": True}],
        }
    }
    assert isinstance(data, dict) and isinstance(data, YMap)
    assert isinstance(data["play"]["ports"], list) and isinstance(data["play"]["ports"], YList)
    assert type(data["play"]["hosts"]) is str


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("play",), "key 1:1"),
        (("play",), "value 2:3"),
        (("play", "hosts"), "key 2:3"),
        (("play", "hosts"), "value 2:10"),
        (("play", "ports", 1), "value 3:15"),
        (("play", "tasks", 0), "value 5:7"),
        (("play", "tasks", 0, "become"), "key 6:7"),
        (("play", "tasks", 0, "become"), "value 6:15"),
    ],
)
def test_every_key_and_value_has_a_location(path: tuple[object, ...], where: str) -> None:
    data = load_text(DOC, "pb.yml")
    container = data
    for step in path[:-1]:
        container = container[step]
    kind, expected = where.split()
    finder = key_loc if kind == "key" else value_loc
    loc = finder(container, path[-1])
    assert loc is not None and f"{loc.line}:{loc.column}" == expected
    assert loc.file == "pb.yml"


def test_containers_know_where_they_start() -> None:
    data = load_text(DOC, "pb.yml")
    assert loc_of(data) == Location("pb.yml", 1, 1)
    assert loc_of(data["play"]["tasks"]) == Location("pb.yml", 5, 5)
    assert loc_of("scalar") is None
    assert key_loc({"a": 1}, "a") is None  # hand-built data has no location


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "f.yml:2:1: duplicate key 'a' (first defined at line 1)"),
        ("a: {b: 1, b: 2}\n", "f.yml:1:11: duplicate key 'b' (first defined at line 1)"),
        ("a: b: c\n", "f.yml:1:5: invalid YAML: mapping values are not allowed in this context"),
        (
            "a: [1\n",
            "f.yml:2:1: invalid YAML: did not find expected ',' or ']' "
            "(while parsing a flow sequence)",
        ),
        (
            "- x\ny: 1\n",
            "f.yml:2:1: invalid YAML: did not find expected '-' indicator "
            "(while parsing a block collection)",
        ),
        ("{[1]: 2}\n", "f.yml:1:2: a mapping key must be a scalar"),
        (
            "a: !!python/object:os.system x\n",
            "f.yml:1:4: invalid YAML: could not determine a "
            "constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
    ],
)
def test_bad_yaml_is_a_config_error_with_a_place(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "f.yml")
    assert str(caught.value) == message


def test_merge_keys_may_be_overridden_without_a_duplicate() -> None:
    data = load_text("base: &b {k: 1, j: 1}\nmine: {<<: *b, k: 2}\n")
    assert data["mine"] == {"k": 2, "j": 1}


def test_an_empty_document_is_none() -> None:
    assert load_text("") is None


def test_load_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text("a: [1, 2]\n", encoding="utf-8")
    assert value_loc(load_file(path), "a") == Location(str(path), 1, 4)
    with pytest.raises(ConfigError, match=r"missing\.yml: cannot read file"):
        load_file(tmp_path / "missing.yml")


@pytest.mark.parametrize(
    ("word", "hint"),
    [("dockr", " (did you mean 'docker'?)"), ("zzz", ""), ("notfy", " (did you mean 'notify'?)")],
)
def test_suggest(word: str, hint: str) -> None:
    assert suggest(word, ["docker", "notify", "when"]) == hint
