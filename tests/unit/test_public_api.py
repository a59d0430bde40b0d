"""The public API is what ``__all__`` says, and every name in it resolves."""

from __future__ import annotations

import subprocess
import sys

import provision


def test_all_names_resolve_and_are_listed():
    assert sorted(provision.__all__) == provision.__all__
    for name in provision.__all__:
        assert getattr(provision, name) is not None, name
    # every name is imported on first use from its home, but the version, read at import
    assert set(provision.__all__) == set(provision._WHERE) | {"__version__"}


def test_the_version_is_the_installed_distribution_s():
    from importlib.metadata import version

    assert provision.__version__ == version("provision")


def test_import_is_cheap():
    # `provision --help` must not pay for boto3 or paramiko.
    code = (
        "import sys, provision.cli; "
        "print(','.join(m for m in ('boto3', 'paramiko', 'botocore', 'rich', 'yaml') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_modules_of_a_run_do_not_import_redis():
    # Every run loads the module catalog; redis-py (0.1 s) is for the route table only. The
    # `routes` task once imported it at the top and slowed every no-op run by that much.
    code = "import sys, provision.tasks.catalog; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_error_of_the_tree_is_importable_from_provision():
    """The README and errors.py draw the exception tree; a user catches each by its name
    from ``provision`` (LockHeld, RouteError and EngineUnavailable were missing)."""
    from provision import errors

    assert set(errors.__all__) <= set(provision.__all__)
    for name in errors.__all__:
        assert getattr(provision, name) is getattr(errors, name)


def test_the_readme_draws_the_error_tree_errors_py_draws():
    """The tree in the README is the one in errors.py's docstring, line for line."""
    from pathlib import Path

    from provision import errors

    doc = errors.__doc__ or ""
    tree = [
        line.strip()
        for line in doc.splitlines()
        if "──" in line or line.strip() == "ProvisionError"
    ]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for line in tree:
        assert line in readme, line
    assert len(tree) == len(errors.__all__)


def test_no_bare_provision_error_is_raised():
    """Each error raised on purpose is a leaf of the tree (a caller can tell a task's failure
    from a sandbox's or a cloud's); ProvisionError is only the root to catch them all."""
    import re
    from pathlib import Path

    package = Path(provision.__file__).resolve().parent
    bare = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"raise ProvisionError\(", line)
    ]
    assert bare == []
