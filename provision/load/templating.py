"""``{{ var }}`` templating, as in Ansible: Jinja2, sandboxed, strict about undefined names.

``render`` walks dicts, lists and strings. A string that is exactly one ``{{ expr }}`` gives the
expression's native value (a list stays a list, an int an int); any other template gives a str.
``evaluate`` takes a bare expression, as ``when:`` and ``until:`` do.

>>> render({"port": "{{ base + 1 }}", "url": "http://{{ host }}:80"}, {"base": 6379, "host": "h"})
{'port': 6380, 'url': 'http://h:80'}
>>> evaluate("result.rc == 0 and enabled | bool", {"result": {"rc": 0}, "enabled": "yes"})
True
>>> sorted(undeclared(["{{ a }}", {"k": "{% for x in xs %}{{ x }}{% endfor %}"}]))
['a', 'xs']

Filters beyond Jinja's own (``default``, ``int``, ``join``, ``lower``, ``upper``...): ``bool``
(Ansible's yes/no/on/off/1/0) and ``to_json``. Tests: ``changed``, ``failed``, ``succeeded``
(and ``success``) on a registered result. No ``quote`` filter on purpose: values are quoted where
they reach a shell, at the connection boundary.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from provision.errors import ConfigError
from provision.load.yamlsource import Location

__all__ = ["evaluate", "is_template", "render", "undeclared"]

# One `{{ ... }}` and nothing else: its value is returned as is, not turned into a str.
_SINGLE = re.compile(r"\A\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\Z", re.DOTALL)
_UNDEFINED = re.compile(r"\A'(?P<name>[^']+)' is undefined\Z")


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "on", "1", "true", "y", "t")
    return bool(value)


def _to_json(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, sort_keys=sort_keys)


def _result_flag(key: str, default: bool) -> Any:
    def test(value: Any) -> bool:
        return bool(value.get(key, default)) if isinstance(value, Mapping) else default

    return test


@functools.cache  # built once: an Environment is immutable here and caches compiled templates
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.filters.update(bool=_to_bool, to_json=_to_json)
    succeeded = _result_flag("failed", False)
    env.tests.update(
        changed=_result_flag("changed", False),
        failed=_result_flag("failed", False),
        succeeded=lambda value: not succeeded(value),
        success=lambda value: not succeeded(value),
    )
    return env


def is_template(value: Any) -> bool:
    """Whether ``value`` is a string Jinja would change."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render(
    value: Any,
    variables: Mapping[str, Any],
    *,
    loc: Location | None = None,
    field: str | None = None,
) -> Any:
    """Render every template in ``value`` (recursively); errors name ``loc`` and ``field``."""
    if isinstance(value, Mapping):
        return {k: render(v, variables, loc=loc, field=field) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(v, variables, loc=loc, field=field) for v in value]
    if not is_template(value):
        return value
    single = _SINGLE.match(value)
    try:
        if single:
            return _expression(single["expr"], variables)
        return _environment().from_string(value).render(**variables)
    except Exception as exc:  # any template failure is bad input at this place
        raise _config_error(exc, loc, field) from exc


def evaluate(
    expr: str | bool,
    variables: Mapping[str, Any],
    *,
    loc: Location | None = None,
    field: str | None = None,
) -> Any:
    """Evaluate a bare Jinja expression (``when:``, ``until:``); ``{{ }}`` around it is allowed.

    >>> evaluate("'{{ x }}' == 'a'", {"x": "a"}), evaluate(True, {})
    (False, True)
    """
    if isinstance(expr, bool):
        return expr
    single = _SINGLE.match(expr.strip())
    source = single["expr"] if single else expr
    try:
        return _expression(source, variables)
    except Exception as exc:  # any template failure is bad input at this place
        raise _config_error(exc, loc, field) from exc


def _expression(source: str, variables: Mapping[str, Any]) -> Any:
    value = _environment().compile_expression(source, undefined_to_none=False)(**variables)
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises its UndefinedError (naming the variable) when used
    return value


def undeclared(value: Any, *, expression: bool = False) -> set[str]:
    """The variable names ``value``'s templates need (an ``expression`` is a bare ``when:``).

    Jinja's own globals (``range``, ``dict``...) are not counted. A syntax error is a
    ``ConfigError`` without a place: the caller adds it.
    """
    if isinstance(value, Mapping):
        return set().union(*(undeclared(v) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(undeclared(v) for v in value))
    if expression and isinstance(value, str):
        single = _SINGLE.match(value.strip())
        value = "{{ (" + (single["expr"] if single else value) + ") }}"
    if not is_template(value):
        return set()
    env = _environment()
    try:
        tree = env.parse(value)
    except jinja2.TemplateSyntaxError as exc:
        raise _config_error(exc, None, None) from exc
    names = meta.find_undeclared_variables(tree)
    return set(names) - set(env.globals) - _defaulted(tree)


def _defaulted(tree: nodes.Template) -> set[str]:
    """Names given a fallback with ``| default(...)``: optional, as in Ansible."""
    return {
        f.node.name
        for f in tree.find_all(nodes.Filter)
        if f.name in ("default", "d") and isinstance(f.node, nodes.Name)
    }


def _config_error(exc: Exception, loc: Location | None, field: str | None) -> ConfigError:
    if isinstance(exc, jinja2.UndefinedError):
        match = _UNDEFINED.match(exc.message or "")
        message = f"undefined variable {match['name']!r}" if match else str(exc.message)
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        message = f"template syntax error: {exc.message}"
    else:
        message = f"template error: {type(exc).__name__}: {exc}"
    if loc is None:
        return ConfigError(message, field=field)
    return loc.error(message, field)
