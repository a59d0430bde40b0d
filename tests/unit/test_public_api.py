"""The public API is what ``__all__`` says, and every name in it resolves."""

from __future__ import annotations

import subprocess
import sys

import provision


def test_all_names_resolve_and_are_listed():
    assert sorted(provision.__all__) == provision.__all__
    for name in provision.__all__:
        assert getattr(provision, name) is not None, name
    assert set(provision.__all__) == set(provision._WHERE)


def test_import_is_cheap():
    # `provision --help` must not pay for boto3 or paramiko.
    code = (
        "import sys, provision.cli; "
        "print(','.join(m for m in ('boto3', 'paramiko', 'botocore', 'rich', 'yaml') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
