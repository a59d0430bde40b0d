from __future__ import annotations

from typing import Any

import pytest

from provision.errors import ConfigError
from provision.load.templating import evaluate, is_template, render, undeclared
from provision.load.yamlsource import Location

VARS: dict[str, Any] = {
    "network": "shared-network", "port": 6379, "ports": [80, 443], "enabled": "yes",
    "result": {"rc": 0, "changed": True, "failed": False, "stdout": "ok"},
    "empty": "", "cfg": {"a": 1},
}  # fmt: skip


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "plain"),
        (42, 42),
        (None, None),
        ("{{ port }}", 6379),  # one expression: its native value
        ("{{ ports }}", [80, 443]),
        ("{{ port + 1 }}", 6380),
        ("{{port}}", 6379),
        (" {{ port }}", " 6379"),  # anything around it: a string
        ("{{ port }}:{{ port }}", "6379:6379"),
        ("net={{ network }}", "net=shared-network"),
        ("{{ ports | join(',') }}", "80,443"),
        ("{{ network | upper }}", "SHARED-NETWORK"),
        ("{{ 'ABC' | lower }}", "abc"),
        ("{{ '7' | int }}", 7),
        ("{{ enabled | bool }}", True),
        ("{{ 'off' | bool }}", False),
        ("{{ missing | default('x') }}", "x"),
        ("{{ empty | default('x', true) }}", "x"),
        ("{{ cfg | to_json }}", '{"a": 1}'),
        ("{% if port > 1 %}big{% endif %}", "big"),
        ("{{ result is changed }}", True),
        ("{{ result is succeeded }}", True),
        ("{{ result is failed }}", False),
        (["{{ port }}", {"k": "{{ network }}"}], [6379, {"k": "shared-network"}]),
        ({"nested": ("{{ ports }}",)}, {"nested": [[80, 443]]}),
        ("line\n", "line\n"),
    ],
)
def test_render(template: Any, expected: Any) -> None:
    assert render(template, VARS) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("result.rc == 0", True),
        ("result.rc != 0", False),
        ("enabled | bool and port > 1000", True),
        ("'{{ network }}' == 'x'", False),  # quoted: a plain string, as in Ansible
        ("{{ port == 6379 }}", True),  # braces around a bare expression are tolerated
        ("network in ['shared-network']", True),
        (True, True),
        (False, False),
    ],
)
def test_evaluate(expr: str | bool, expected: Any) -> None:
    assert evaluate(expr, VARS) == expected


LOC = Location("up.yml", 7, 9)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: render("{{ nope }}", VARS, loc=LOC, field="t.when"),
            "up.yml:7:9: t.when: undefined variable 'nope'",
        ),
        (lambda: render("x {{ nope }}", VARS, loc=LOC), "up.yml:7:9: undefined variable 'nope'"),
        (lambda: evaluate("nope == 1", VARS, loc=LOC), "up.yml:7:9: undefined variable 'nope'"),
        (lambda: render("{{ cfg.b }}", VARS), "'dict object' has no attribute 'b'"),
        (
            lambda: render("{{ port +}}", VARS),
            "template syntax error: unexpected 'end of template'",
        ),
        (lambda: evaluate("1 / 0", VARS), "template error: ZeroDivisionError: division by zero"),
        (
            lambda: render("{{ cfg.__class__ }}", VARS),
            "template error: SecurityError: access to attribute '__class__' of 'dict' object "
            "is unsafe.",
        ),
    ],
)
def test_errors_are_config_errors(call: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        call()
    assert str(caught.value) == message


def test_there_is_no_quote_filter() -> None:
    # Quoting belongs at the connection boundary; a template must not pretend to do it.
    with pytest.raises(ConfigError, match="quote"):
        render("{{ network | quote }}", VARS)


@pytest.mark.parametrize(
    ("value", "expression", "names"),
    [
        ("plain", False, set()),
        ("{{ a }} {{ b.c }}", False, {"a", "b"}),
        ("{{ a | default(x) }}", False, {"x"}),  # `a` is optional: it has a default
        ("{% for i in items %}{{ i }}{% endfor %}", False, {"items"}),
        ("{{ range(3) | list }}", False, set()),  # Jinja globals are not variables
        ({"k": ["{{ a }}", "{{ b }}"]}, False, {"a", "b"}),
        ("result.rc == 0 and flag", True, {"result", "flag"}),
        ("{{ result.rc == 0 }}", True, {"result"}),
        (42, False, set()),
    ],
)
def test_undeclared(value: Any, expression: bool, names: set[str]) -> None:
    assert undeclared(value, expression=expression) == names


def test_undeclared_syntax_error() -> None:
    with pytest.raises(ConfigError, match="template syntax error"):
        undeclared("{{ a +}}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("{{ a }}", True), ("{% if %}", True), ("a", False), (1, False), ("{ a }", False)],
)
def test_is_template(value: Any, expected: bool) -> None:
    assert is_template(value) is expected


def test_a_defaulted_variable_is_optional():
    from provision.load.templating import undeclared

    assert undeclared("{{ ssh_cidrs | default([]) }}-{{ x | d('y') }}-{{ z }}") == {"z"}
