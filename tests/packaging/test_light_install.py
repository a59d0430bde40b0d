"""A plain ``pip install`` of the wheel, as a user makes it (#28): a fresh virtual environment,
the dependencies from the package index, nothing of this checkout's environment. What it adds to
site-packages stays under 120 MB (moto, one wheel for every AWS service, is the ``sandbox``
extra, not a dependency), and the sandbox's cloud still works from it: the first server start
installs the extra once into the user's cache (here a temporary one), then answers EC2 and SSM
as the sandbox needs them (the Debian image's public parameter, moto's AMIs).

Run from a folder outside the checkout, with neither ``PYTHONPATH`` nor a virtual environment
of ours. pip reaches the package index as this machine's pip does (its own configuration)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.wheel import build_wheel, make_venv, run_ok, user_env

pytestmark = pytest.mark.slow

#: The goal of #28, in bytes: what a plain install adds to site-packages.
LIMIT = 120 * 1024 * 1024

_CLOUD = """
import json, sys
from pathlib import Path
import boto3
from provision.sandbox import moto_server
state = Path(sys.argv[1])
url = moto_server.ensure_server(state, progress=print)
try:
    keys = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
    ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1", **keys)
    ssm = boto3.client("ssm", endpoint_url=url, region_name="us-east-1", **keys)
    images = ec2.describe_images(Owners=["amazon"])["Images"]
    debian = ssm.get_parameter(Name="/aws/service/debian/release/12/latest/amd64")
    print(json.dumps({"images": len(images), "debian": debian["Parameter"]["Value"]}))
finally:
    moto_server.stop_server(state, forget=True)
"""


def _sizes(site: Path) -> dict[str, int]:
    """Bytes under each top-level entry of ``site``."""
    sizes: dict[str, int] = {}
    for entry in site.iterdir():
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes[entry.name] = sum(p.lstat().st_size for p in files)
    return sizes


def test_a_plain_install_is_light_and_its_sandbox_cloud_works(tmp_path: Path) -> None:
    env = user_env()
    wheel = build_wheel(tmp_path)
    python, site = make_venv(tmp_path / "venv")
    before = _sizes(site)  # the venv's own pip (and setuptools): not the install's weight

    run_ok([python, "-m", "pip", "install", "-q", str(wheel)], tmp_path, env, timeout=600)
    added = {name: size for name, size in _sizes(site).items() if name not in before}
    total = sum(added.values())
    packages = sorted(n for n in added if n.endswith(".dist-info"))
    heaviest = sorted(added.items(), key=lambda item: -item[1])[:8]
    assert total < LIMIT, f"{total / 2**20:.0f} MB in {len(packages)} packages: {heaviest}"
    assert any(n.startswith("provision-") for n in packages), packages
    names = {n.split("-")[0].lower().replace("_", "-") for n in packages}
    assert not names & {"moto", "flask", "flask-cors", "werkzeug"}, packages

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    cache = tmp_path / "cache"
    cloud_env = {**env, "XDG_CACHE_HOME": str(cache)}
    done = run_ok([python, "-c", _CLOUD, str(outside / "state")], outside, cloud_env, 900)
    assert "installing its cloud stand-in (moto)" in done.stdout, done.stdout
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["images"] > 0 and answer["debian"].startswith("ami-"), answer
    (installed,) = cache.glob("provision/sandbox-cloud-*/moto")
    assert installed.is_dir()
    # the install's own site-packages is as it was: the extra went to the cache only
    assert not any(n.startswith("moto") for n in os.listdir(site))
