"""The router's Lua unit tests (``tests/lua/*_spec.lua``, busted under LuaJIT, as nginx runs
the router), run by the README's test command through this test."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_routers_lua_unit_tests_pass_under_luajit() -> None:
    missing = [tool for tool in ("busted", "luajit") if shutil.which(tool) is None]
    if missing:  # scripts/setup.sh installs them (lua-busted, luajit, lua-cjson)
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup.sh")
    done = subprocess.run(
        ["busted", "-o", "TAP"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    passed = len(re.findall(r"^ok \d+", done.stdout, re.M))
    failed = re.findall(r"^not ok .*", done.stdout, re.M)
    assert not failed and passed >= 100, (passed, failed)
    assert re.search(r"^1\.\.(\d+)$", done.stdout, re.M)[1] == str(passed)  # type: ignore[index]
