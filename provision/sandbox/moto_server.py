"""A moto server on 127.0.0.1 that the local sandbox uses as its cloud across CLI invocations.

moto keeps its state in memory only, so the sandbox keeps ONE server process alive between
commands (``<state_dir>/moto/server.json`` holds its pid and port) and points every client at
it through ``endpoint_url``. As a safety net against a lost process (a reboot, ``stop_server``),
the server records every request (moto's recorder, ``MOTO_ENABLE_RECORDING``) to
``<state_dir>/moto/recording.jsonl`` and a fresh server replays it, with the same random seed,
before it answers anything else — so the cloud it shows is the one the last server had.

moto publishes only the Amazon Linux SSM parameters; the server started here also answers the
Debian and Ubuntu ones, naming one of moto's Amazon Linux AMIs as a stand-in (in the sandbox the
"instances" are local containers reached through ``endpoint_for``, so the image is a label).

>>> url = ensure_server(Path(".provision"))      # doctest: +SKIP
>>> up(spec, state_dir=Path(".provision"), endpoint_url=url, wait_ssh=False)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.connection.keys import make_private_dir
from provision.errors import CloudError
from provision.sandbox import cloud, motoenv, realism

_SEED = 20240601  # moto's ids are random: the same seed makes a replay give the same ids
#: The realism layer's refusals, beside the recording: a replay refuses the same requests.
JOURNAL = "realism-refusals.jsonl"


def _folder(state_dir: Path) -> Path:
    return state_dir / "moto"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _request(url: str, *, method: str = "GET", timeout: float = 2.0) -> bool:
    try:
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return 200 <= int(answer.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def _running(state_dir: Path) -> str | None:
    """The endpoint of a server started earlier that still answers, else None."""
    info_file = _folder(state_dir) / "server.json"
    try:
        info = json.loads(info_file.read_text())
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _ours(pid, url) and _request(f"{url}/moto-api/"):
        return url
    return None


def running_server(state_dir: Path) -> str | None:
    """The endpoint of the sandbox's moto server if one is running now (never starts one)."""
    return _running(state_dir)


def _ours(pid: int, url: str) -> bool:
    """``pid`` is alive AND is the moto server this folder started, on that port: after a
    reboot the pid in server.json may belong to any other process, which must not be signalled.
    Where ``/proc`` cannot tell (not Linux), the server's own answer on the port decides."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _request(f"{url}/moto-api/")
    port = url.rsplit(":", 1)[-1].encode()
    return b"provision.sandbox.moto_server" in argv and port in argv


def ensure_server(
    state_dir: Path, *, timeout: float = 20.0, progress: Callable[[str], None] | None = None
) -> str:
    """The endpoint URL of the sandbox's moto server, starting it (and restoring it) if needed.

    moto comes from provision's environment (the ``sandbox`` extra) or, where that lacks it,
    from the user's cache, installed there the first time (``motoenv.ensure``)."""
    url = _running(state_dir)
    if url:
        return url
    moto_path = motoenv.ensure(progress=progress)
    folder = _folder(state_dir)
    make_private_dir(folder)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    recording = folder / "recording.jsonl"
    env = {
        **os.environ,
        "MOTO_ENABLE_RECORDING": "",
        "MOTO_RECORDER_FILEPATH": str(recording),
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "true",
    }
    if moto_path is not None:  # first: moto's own dependencies from the cache, consistent
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(moto_path), os.environ.get("PYTHONPATH", "")) if p
        )
    with open(folder / "server.log", "ab") as log:
        # A new session: the server outlives the CLI command that started it.
        process = subprocess.Popen(
            [sys.executable, "-m", "provision.sandbox.moto_server", str(port), str(state_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    where = f"; moto from {moto_path}: remove that folder to install it again" if moto_path else ""
    _wait_until_up(url, process, timeout, where)
    _restore(url, recording)
    (folder / "server.json").write_text(json.dumps({"pid": process.pid, "url": url}) + "\n")
    return url


def _wait_until_up(
    url: str, process: subprocess.Popen[bytes], timeout: float, where: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not _request(f"{url}/moto-api/"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise CloudError(
                f"the moto server at {url} did not start within {timeout:g}s "
                f"(see server.log in the state folder{where})",
                code="MotoServer",
            )
        time.sleep(0.1)


def _restore(url: str, recording: Path) -> None:
    """Seed, replay what the previous server was told, then record from here on."""
    _request(f"{url}/moto-api/seed?a={_SEED}", method="POST")
    replay = f"{url}/moto-api/recorder/replay-recording"
    if (
        recording.exists()
        and recording.stat().st_size
        and not _request(replay, method="POST", timeout=120.0)
    ):
        raise CloudError(f"could not replay {recording} into the moto server", code="MotoServer")
    _request(f"{url}/moto-api/recorder/start-recording", method="POST")


def stop_server(state_dir: Path, *, forget: bool = False, timeout: float = 10.0) -> bool:
    """Stop the sandbox's moto server; True if one was running.

    The recording stays, so the next ``ensure_server`` brings the same cloud back, unless
    ``forget`` is true (a clean slate).
    """
    folder = _folder(state_dir)
    info_file = folder / "server.json"
    stopped = False
    try:
        info = json.loads(info_file.read_text())
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        pid, url = 0, ""
    if pid and _ours(pid, url):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        stopped = True
    info_file.unlink(missing_ok=True)
    if forget:
        (folder / "recording.jsonl").unlink(missing_ok=True)
        (folder / JOURNAL).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect the exit status when we are the server's parent (tests), so it does not linger."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _publish_stand_in_parameters() -> None:
    """Make moto's SSM answer the Debian and Ubuntu public parameters (in this process)."""
    from provision.aws.images import IMAGES

    # moto's internals, typed loosely on purpose: this reaches into its SSM backend.
    models: Any = importlib.import_module("moto.ssm.models")

    amazon = IMAGES["al2023"].ssm_parameter
    others = [n for f in IMAGES.values() for n in f.parameters if n != amazon]
    original = models.ParameterDict._check_loading_status

    def check_loading_status(self: Any, key: str) -> None:
        original(self, key)
        if str(key).startswith(tuple(others)) and not getattr(self, "_stand_ins", False):
            self._stand_ins = True
            original(self, amazon)
            # dict's own lookup (defaultdict fills the gap) skips ParameterDict's loading hook.
            template = dict.__getitem__(self, amazon)[-1]
            for name in others:
                dict.__getitem__(self, name).append(
                    models.Parameter(
                        account_id=template.account_id,
                        name=name,
                        value=template.value,
                        parameter_type="String",
                        description=None,
                        allowed_pattern=None,
                        keyid=None,
                        last_modified_date=None,
                        version=1,
                        data_type="aws:ec2:image",
                    )
                )

    models.ParameterDict._check_loading_status = check_loading_status


def main(argv: list[str] | None = None) -> None:
    """``python -m provision.sandbox.moto_server PORT CLOUD_DIR``: the process
    ``ensure_server`` runs for the sandbox cloud in ``CLOUD_DIR``."""
    import functools

    from moto.server import main as moto_main

    port, cloud_dir = (argv if argv is not None else sys.argv[1:])[:2]
    _publish_stand_in_parameters()
    # EC2's documented behaviours (pending, eventual consistency, buffered console, teardown
    # order), on real seconds scaled down: ``realism.SANDBOX`` (or a profile of EC2's boot,
    # ``realism.TIMINGS_ENV``); turned off, none of them (``realism.NONE``). Either way each
    # instance's console is its host's (host keys), and a host that powers itself off (its
    # ttl) terminates its instance.
    recording = os.environ.get("MOTO_RECORDER_FILEPATH")
    journal = Path(recording).with_name(JOURNAL) if recording else None
    scenario = realism.Scenario(
        console=functools.partial(cloud.console_output, cloud_dir=Path(cloud_dir)),
        powered_off=functools.partial(cloud.powered_off, Path(cloud_dir)),
    )
    timings = realism.sandbox_timings()
    realism.install(realism.Layer(timings, scenario, journal=journal))
    moto_main(["-H", "127.0.0.1", "-p", str(int(port))])


if __name__ == "__main__":
    main()
