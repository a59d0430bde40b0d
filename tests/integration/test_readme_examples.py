"""The README's Python examples (#24), run as written against the sandbox: every ```python block
of "The Python API", in order, in one fresh interpreter whose current folder is empty (the
sandbox's state goes to its `.provision/`), with one change: the cluster's name, `ci-42`, made
unique to this test. They bring a cluster up, verify it, reach it through `Cluster` and its
Fabric connection, add a route and tear it down on leaving the last block."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import bounds
from tests.clirun import ROOT, child_env
from tests.helpers import left_behind, remove_sandbox_cluster

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]


def _python_examples() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## The Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```$", section, re.S | re.M)


def test_the_readme_s_python_examples_run_against_the_sandbox(tmp_path: Path, sandbox_images):
    blocks = _python_examples()
    assert len(blocks) == 3, blocks  # up and verify; a connection; a block with teardown
    name = f"rd-{uuid.uuid4().hex[:6]}"
    code = "\n".join(blocks)
    assert code.count('"ci-42"') == 1, code
    code = code.replace("ci-42", name)
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=child_env(),
                              capture_output=True, text=True, timeout=bounds.CLI_RUN)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        lines = done.stdout.splitlines()
        # print(report.recap[...].changed, url); then the containers; then the routes
        assert re.fullmatch(r"\d+ http://127\.0\.0\.1:\d+", lines[0]), lines
        assert "redis" in done.stdout and "openresty" in done.stdout, done.stdout
        assert "/api/users" in lines[-1] and "echo-a:80" in lines[-1], lines
        assert left_behind(name) == []  # the last block's teardown removed it all
    finally:
        remove_sandbox_cluster(tmp_path, name)
