"""Where the sandbox's moto comes from (#28): the ``sandbox`` extra read from provision's own
metadata, and, where this environment lacks it, pip's failure reported with the way out and
nothing half-installed left in the cache. (The cache's real install and the server it runs:
``tests/packaging/test_light_install.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import SandboxError
from provision.sandbox import motoenv


def test_the_requirements_are_the_sandbox_extra_of_provision_s_metadata() -> None:
    found = motoenv.requirements()
    names = {r.split(">")[0].split("!")[0].split("=")[0].strip().lower() for r in found}
    assert names == {"moto", "flask", "flask-cors"}, found
    assert not any(";" in r for r in found), found


def test_this_environment_has_the_extra_so_nothing_is_fetched(tmp_path: Path) -> None:
    assert motoenv.ensure(root=tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_the_cache_folder_is_per_interpreter_and_requirement_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = motoenv.folder(tmp_path)
    assert first.parent == tmp_path and first.name.startswith("sandbox-cloud-cpython-3")
    monkeypatch.setattr(motoenv, "requirements", lambda: ("moto>=6",))
    assert motoenv.folder(tmp_path) != first


def test_xdg_cache_home_is_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert motoenv.cache_root() == tmp_path / "provision"


def test_a_failed_pip_says_how_to_get_the_extra_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This environment has moto: say it has not, so that the cache is filled; pip is given a
    # requirement no index can satisfy and no index at all (a real pip run, offline).
    monkeypatch.setattr(motoenv, "_installed", lambda: False)
    monkeypatch.setattr(motoenv, "requirements", lambda: ("provision-no-such-package==0",))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(SandboxError) as caught:
        motoenv.ensure(root=tmp_path)
    said = str(caught.value)
    assert "provision-no-such-package" in said, said
    # the way out names the requirements (the name "provision" on PyPI is another project)
    assert "pip install 'provision-no-such-package==0'" in said, said
    assert "run the command again" in said and "[sandbox]" not in said, said
    left = sorted(p.name for p in tmp_path.iterdir())
    assert all(name.endswith(".lock") for name in left), left


def test_an_interpreter_without_pip_is_told_so_with_the_requirements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uv-made environments and Debian's Python without python3-pip have no pip module.
    real = motoenv.importlib.util.find_spec
    monkeypatch.setattr(motoenv, "_installed", lambda: False)
    monkeypatch.setattr(
        motoenv.importlib.util, "find_spec", lambda name: None if name == "pip" else real(name)
    )
    with pytest.raises(SandboxError) as caught:
        motoenv.ensure(root=tmp_path)
    said = str(caught.value)
    assert "has no pip" in said and "'moto>=5.0'" in said, said
    assert not any(p.suffix == ".partial" or p.is_dir() for p in tmp_path.iterdir())
