"""The pytest plugin's settings from ``[tool.pytest.ini_options]`` (the command line wins), and
its skip, with a reason, when the local sandbox has no Docker engine (#28). In a pytester
session of its own; the engine's absence is faked there (the thing tested is the skip)."""

from __future__ import annotations

pytest_plugins = ["pytester"]

INI = """[pytest]
provision_extra_vars =
    cluster_name=ini-1
    region=eu-west-1
provision_state_dir = from-ini
"""

TESTS = """
from provision.testing.plugin import _option

def test_settings(request):
    assert _option(request.config, "provision_extra_vars") == ["cluster_name=ini-1",
                                                               "region=eu-west-1"]
    assert _option(request.config, "provision_state_dir") == EXPECTED_STATE_DIR

def test_uses_the_cluster(provision_cluster):
    raise AssertionError("not reached: skipped without an engine")
"""


def _run(pytester, expected: str, *args: str):
    pytester.makeini(INI)
    pytester.makeconftest("import provision.sandbox\nprovision.sandbox.available = lambda: False\n")
    pytester.makepyfile(test_user=f"EXPECTED_STATE_DIR = {expected!r}\n{TESTS}")
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:benchmark", "-rs", *args
    )


def test_ini_settings_apply_and_a_missing_engine_skips_saying_why(pytester):
    result = _run(pytester, "from-ini")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*the local sandbox needs a Docker engine*"])


def test_the_command_line_wins_over_the_ini(pytester):
    result = _run(pytester, "from-cli", "--provision-state-dir", "from-cli")
    result.assert_outcomes(passed=1, skipped=1)
