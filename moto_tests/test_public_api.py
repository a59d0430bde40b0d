"""The public surface of provision.aws: ``__all__`` is honest, and importing it is cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import provision.aws

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves():
    for name in provision.aws.__all__:
        assert getattr(provision.aws, name) is not None, name
    assert sorted(dir(provision.aws)) == sorted(provision.aws.__all__)


def test_importing_the_package_does_not_import_boto3():
    code = (
        "import sys, provision.aws, provision.errors, provision.models\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'moto', 'paramiko') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_spec_module_does_not_import_boto3_either():
    code = "import sys, provision.aws.spec; print('boto3' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"
