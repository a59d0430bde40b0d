"""The public API typed for its users: ``mypy --strict`` on a user's pipeline script reports
each planted mistake (a misspelt name, an unknown keyword, a wrong type through a property,
the version taken for a number), and a correct script passes clean."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
from provision import Cluster, Options, RunReport, __version__, up

def pipeline() -> str:
    report: RunReport = up(None, Options(extra_vars={"cluster_name": "ci-42"}), lock_wait=5.0)
    with Cluster(options=Options()) as cluster:
        cluster.routes.add("/api/users", "users", ["echo-a:80"])
    return __version__ + str(report.failed)
"""

# Each line: a mistake mypy must report on that line.
BAD = {
    "from provision import Clustr": 'Module "provision" has no attribute "Clustr"',
    "up(None, Options(), on_evnt=print)": 'Unexpected keyword argument "on_evnt"',
    'Cluster().routes.add(7, "users", ["echo-a:80"])': 'Argument 1 to "add"',
    "count: int = provision.__version__": "Incompatible types in assignment",
}


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(script)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip


def test_mypy_strict_reports_each_planted_mistake_and_nothing_in_a_correct_script(tmp_path):
    good = textwrap.dedent(GOOD).strip("\n").splitlines()
    head = ["import provision", *good]
    done = _mypy(tmp_path, "\n".join([*head, *BAD]) + "\n")  # one mypy run: ~15 s
    assert done.returncode == 1, done.stdout + done.stderr
    for number, message in enumerate(BAD.values(), start=len(head) + 1):
        reported = [r for r in done.stdout.splitlines() if f"pipeline.py:{number}:" in r]
        assert any(message in r for r in reported), (number, message, done.stdout)
    clean = [r for r in done.stdout.splitlines()
             if any(f"pipeline.py:{n}:" in r for n in range(1, len(head) + 1))]  # fmt: skip
    assert clean == [], clean  # the correct part: no error
