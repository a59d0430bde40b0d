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

import contextlib
import functools
import json
import math
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment, safe_range

from provision.errors import ConfigError
from provision.load.yamlsource import Location
from provision.models.names import truth

__all__ = ["evaluate", "is_template", "render", "undeclared"]

# One `{{ ... }}` and nothing else: its value is returned as is, not turned into a str.
_SINGLE = re.compile(r"\A\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\Z", re.DOTALL)
_UNDEFINED = re.compile(r"\A'(?P<name>[^']+)' is undefined\Z")

# The budget of one template (#26: ``{{ 7 ** 300000000 }}`` and a 10^10-step nested loop never
# finished validating). Python's own big-number and repeat operations run in C, where no
# timer can stop them, so ``**`` and ``*`` are checked before they run; anything else slow
# (loops) is stopped by the time budget, in the main thread where validation runs.
#: Seconds one template may take to render (in the main thread).
RENDER_SECONDS = 2.0
#: Bits of an integer that ``**`` may make (a 4096-bit number is far past any port or count).
POWER_BITS = 1 << 16
#: Characters of a string (items of a list) that ``*`` or a whole template may make: 1 MiB.
RENDER_SIZE = 1 << 20
#: Numbers ``range`` may give in one template, summed over its calls (Jinja's own sandbox
#: stops each call at 100,000 but not a loop inside a loop).
RANGE_ITEMS = 1_000_000


class TemplateBudget(Exception):
    """A template past its time or size budget."""


_spent = threading.local()  # the range items of the template rendering in this thread


def _to_bool(value: Any) -> bool:
    """Ansible's ``bool`` filter: a text is true when Ansible reads it as true, else false."""
    if isinstance(value, str):
        return truth(value) is True
    return bool(value)


def _to_json(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, sort_keys=sort_keys)


def _result_flag(key: str, default: bool) -> Any:
    def test(value: Any) -> bool:
        return bool(value.get(key, default)) if isinstance(value, Mapping) else default

    return test


class _BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, with ``**`` and ``*`` checked before they run (see RENDER_SECONDS)."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        else:
            _check_repeat(left, right)
        return super().call_binop(context, operator, left, right)


def _check_power(base: Any, exponent: Any) -> None:
    big = isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1
    if big and (exponent > POWER_BITS or exponent * math.log2(abs(base)) > POWER_BITS):
        raise TemplateBudget(f"{base} ** {exponent} is too large (more than {POWER_BITS} bits)")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        sized = isinstance(seq, (str, list, tuple)) and isinstance(times, int) and times > 0
        if sized and len(seq) * times > RENDER_SIZE:
            raise TemplateBudget(
                f"a repeat of {len(seq)} x {times} is too large (more than {RENDER_SIZE} items)"
            )


def _range(*args: int) -> range:
    """Jinja's sandboxed ``range``, counted against the template's RANGE_ITEMS."""
    made = safe_range(*args)
    _spent.items = getattr(_spent, "items", 0) + len(made)
    if _spent.items > RANGE_ITEMS:
        raise TemplateBudget(f"range() gave more than {RANGE_ITEMS} numbers in one template")
    return made


def _expired(_signum: int, _frame: Any) -> None:
    raise TemplateBudget(f"took more than {RENDER_SECONDS:g}s to render")


@contextlib.contextmanager
def _budget() -> Iterator[None]:
    """One template's budget: RANGE_ITEMS, and RENDER_SECONDS in the main thread (a timer
    signal; other threads render what was validated already, in the main thread)."""
    _spent.items = 0
    timed = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if not timed or signal.getitimer(signal.ITIMER_REAL)[0]:  # someone else's timer: keep it
        yield
        return
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, RENDER_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _sized(value: Any) -> Any:
    if isinstance(value, str) and len(value) > RENDER_SIZE:
        raise TemplateBudget(f"rendered {len(value)} characters (at most {RENDER_SIZE})")
    return value


@functools.cache  # built once: an Environment is immutable here and caches compiled templates
def _environment() -> SandboxedEnvironment:
    env = _BoundedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.globals["range"] = _range
    env.globals.pop("lipsum", None)  # paragraphs of lorem ipsum on demand: nothing to render
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
        with _budget():
            if single:
                return _expression(single["expr"], variables)
            return _sized(_environment().from_string(value).render(**variables))
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
        with _budget():
            return _expression(source, variables)
    except Exception as exc:  # any template failure is bad input at this place
        raise _config_error(exc, loc, field) from exc


def _expression(source: str, variables: Mapping[str, Any]) -> Any:
    value = _environment().compile_expression(source, undefined_to_none=False)(**variables)
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises its UndefinedError (naming the variable) when used
    return _sized(value)


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
    except (jinja2.TemplateSyntaxError, RecursionError) as exc:
        raise _config_error(exc, None, None) from exc
    names = meta.find_undeclared_variables(tree)
    return set(names) - set(env.globals) - _defaulted(tree)


def _defaulted(tree: nodes.Template) -> set[str]:
    """Names given a fallback with ``| default(...)``, or asked about with ``is defined`` /
    ``is undefined``: optional, as in Ansible (``when: x is defined`` is false, not an
    error, when ``x`` is not set)."""
    fallback = {
        f.node.name
        for f in tree.find_all(nodes.Filter)
        if f.name in ("default", "d") and isinstance(f.node, nodes.Name)
    }
    asked = {
        t.node.name
        for t in tree.find_all(nodes.Test)
        if t.name in ("defined", "undefined") and isinstance(t.node, nodes.Name)
    }
    return fallback | asked


def _config_error(exc: Exception, loc: Location | None, field: str | None) -> ConfigError:
    if isinstance(exc, jinja2.UndefinedError):
        match = _UNDEFINED.match(exc.message or "")
        message = f"undefined variable {match['name']!r}" if match else str(exc.message)
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        message = f"template syntax error: {exc.message}"
    elif isinstance(exc, TemplateBudget):
        message = f"template too costly: {exc}"
    elif isinstance(exc, RecursionError):
        message = "template nested too deep"
    else:
        message = f"template error: {type(exc).__name__}: {exc}"
    if loc is None:
        return ConfigError(message, field=field)
    return loc.error(message, field)
