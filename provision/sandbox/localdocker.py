"""A small typed wrapper around the local ``docker`` command line.

Only the sandbox (test bed) uses the local engine, so the wrapper stays small:
run a ``docker`` subcommand with an argv list (never a shell), and turn its
failures into provision's errors::

    ProvisionError
    ├── ConnectError
    │   └── EngineUnavailable   no docker binary, or the daemon does not answer
    └── CommandError            a docker subcommand exited non-zero (or timed out)

Example::

    >>> from provision.sandbox import localdocker
    >>> localdocker.image_exists("provision/debian-base:bookworm")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from provision.errors import CommandError, EngineUnavailable
from provision.models import Result

__all__ = [
    "ENGINE",
    "SANDBOX_LABEL",
    "EngineUnavailable",
    "available",
    "build",
    "container_ids",
    "docker",
    "exec_in",
    "image_exists",
    "import_rootfs",
    "inspect",
    "network_ids",
    "published_port",
    "pull",
    "remove_by_label",
    "remove_container",
    "remove_volume",
    "require",
    "run",
    "volume_names",
]

#: How errors name the local engine (the ``host`` of a ConnectError/CommandError).
ENGINE = "local docker"
#: Every image, container, volume and network the sandbox makes carries this label.
SANDBOX_LABEL = "io.provision.sandbox=1"

#: What docker says to a user who may not use the engine's socket (not in the docker group):
#: "... to the Docker daemon socket at ..." until Docker 28, "... to the docker API at ..." since.
_REFUSED_MARKER = "permission denied while trying to connect to the docker"
_UNREACHABLE_MARKERS = (
    "Cannot connect to the Docker daemon",
    "Is the docker daemon running",
    "error during connect",
)


def _env() -> dict[str, str]:
    # The classic builder: the 20.10 engine has no BuildKit by default, and a
    # newer client without the buildx plugin would refuse DOCKER_BUILDKIT=1.
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "0"
    env.setdefault("DOCKER_CLI_HINTS", "false")
    return env


def docker(
    *args: str,
    stdin: bytes | None = None,
    timeout: float | None = 120.0,
    check: bool = True,
) -> Result:
    """Run ``docker ARGS...`` and return its Result; raise CommandError if it fails.

    ``check=False`` returns a failing Result instead of raising (the engine
    being unreachable still raises EngineUnavailable).
    """
    argv = ["docker", *args]
    command = shlex.join(argv)
    try:
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=_env(),
            check=False,
        )
    except FileNotFoundError as exc:
        raise EngineUnavailable("the `docker` command is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        result = Result(command, 124, _text(exc.stdout), f"timed out after {timeout} s")
        raise CommandError(result, host=ENGINE) from exc
    result = Result(command, proc.returncode, _text(proc.stdout), _text(proc.stderr))
    if result.failed and _REFUSED_MARKER in result.stderr.lower():
        raise EngineUnavailable(
            f"the Docker engine refused user {_user()!r} ({result.stderr.strip()}): "
            "a user who is not root reaches it through the docker group (`sudo usermod -aG "
            "docker $USER`, which scripts/setup.sh does), from the next login or `newgrp docker`"
        )
    if result.failed and any(m in result.stderr for m in _UNREACHABLE_MARKERS):
        raise EngineUnavailable(result.stderr.strip() or "the docker daemon does not answer")
    if check and result.failed:
        raise CommandError(result, host=ENGINE)
    return result


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER: the uid says who
        return f"uid {os.getuid()}"


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def require() -> None:
    """Raise EngineUnavailable unless the engine answers this user (``docker info``)."""
    docker("info", "--format", "{{.ServerVersion}}", timeout=20)


def available() -> bool:
    """True when a ``docker`` binary exists and its daemon answers."""
    try:
        require()
    except (EngineUnavailable, CommandError):
        return False
    return True


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).ok


def image_labels(ref: str) -> dict[str, str] | None:
    """The labels of image ``ref``; None when there is no such image."""
    found = docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref, check=False)
    if not found.ok:
        return None
    return {str(k): str(v) for k, v in (json.loads(found.stdout) or {}).items()}


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def pull(ref: str, *, timeout: float = 30.0) -> bool:
    """Try once to pull ``ref``; False (not an error) when no registry answers."""
    try:
        return docker("pull", "--quiet", ref, timeout=timeout, check=False).ok
    except CommandError:  # timed out: treat as "no registry here"
        return False


def build(
    tag: str,
    *,
    dockerfile: Path,
    context: Path,
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    timeout: float = 1800.0,
) -> None:
    """``docker build`` one image; ``labels`` go on it besides those the Dockerfile sets."""
    args = ["build", "--quiet", "--tag", tag, "--file", str(dockerfile)]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    docker(*args, str(context), timeout=timeout)


def import_rootfs(tag: str, root: Path, *, changes: Sequence[str] = ()) -> None:
    """``tar -C ROOT -c . | docker import - TAG``, without a shell in between."""
    tar_argv = ["tar", "--numeric-owner", "-C", str(root), "-c", "."]
    import_argv = ["docker", "import"]
    for change in changes:
        import_argv += ["--change", change]
    import_argv += ["-", tag]
    with subprocess.Popen(tar_argv, stdout=subprocess.PIPE) as tar:
        imported = subprocess.run(
            import_argv, stdin=tar.stdout, capture_output=True, env=_env(), check=False
        )
        if tar.stdout is not None:
            tar.stdout.close()
        tar_code = tar.wait()
    command = f"{shlex.join(tar_argv)} | {shlex.join(import_argv)}"
    code = imported.returncode or tar_code
    if code:
        result = Result(command, code, _text(imported.stdout), _text(imported.stderr))
        raise CommandError(result, host=ENGINE)


def run(image: str, *, name: str, options: Sequence[str] = (), command: Sequence[str] = ()) -> str:
    """Start a detached container; return its full id."""
    result = docker("run", "--detach", "--name", name, *options, image, *command)
    return result.stdout.strip().splitlines()[-1]


def inspect(ref: str, template: str, *, kind: str = "container") -> str:
    """``docker KIND inspect --format TEMPLATE REF``, stripped."""
    return docker(kind, "inspect", "--format", template, ref).stdout.strip()


def published_port(container: str, private: str = "22/tcp") -> int:
    """The host port docker chose for ``private`` (published as ``127.0.0.1::PORT``)."""
    out = docker("port", container, private).stdout
    for line in out.splitlines():
        host, sep, port = line.strip().rpartition(":")
        if sep and host in ("127.0.0.1", "0.0.0.0") and port.isdigit():
            return int(port)
    raise CommandError(Result(f"docker port {container} {private}", 1, out, "no port"), host=ENGINE)


def exec_in(container: str, argv: Sequence[str], *, timeout: float = 60.0) -> Result:
    return docker("exec", container, *argv, timeout=timeout)


def container_ids(label: str, *labels: str) -> list[str]:
    """The containers (running or not) that carry every one of the labels (``key=value``)."""
    filters = [arg for one in (label, *labels) for arg in ("--filter", f"label={one}")]
    out = docker("ps", "--all", "--quiet", "--no-trunc", *filters).stdout
    return out.split()


def volume_names(label: str) -> list[str]:
    return docker("volume", "ls", "--quiet", "--filter", f"label={label}").stdout.split()


def network_ids(label: str) -> list[str]:
    return docker("network", "ls", "--quiet", "--filter", f"label={label}").stdout.split()


def remove_container(ref: str) -> bool:
    """Force-remove a container (and its anonymous volumes); False if it was not there."""
    result = docker("rm", "--force", "--volumes", ref, check=False, timeout=120)
    if result.failed and "No such container" not in result.stderr:
        raise CommandError(result, host=ENGINE)
    return result.ok and "No such container" not in result.stderr


def remove_volume(name: str) -> bool:
    result = docker("volume", "rm", "--force", name, check=False)
    if result.failed and "no such volume" not in result.stderr.lower():
        raise CommandError(result, host=ENGINE)
    return result.ok


def remove_by_label(label: str) -> None:
    """Remove every container, then volume, then network carrying ``label`` (KEY=VALUE)."""
    for cid in container_ids(label):
        remove_container(cid)
    for volume in volume_names(label):
        remove_volume(volume)
    for network in network_ids(label):
        docker("network", "rm", network, check=False)
