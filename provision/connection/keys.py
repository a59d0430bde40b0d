"""SSH keys on the controller: the cluster's private key file, its public line, and the host
key a server presents. paramiko and cryptography are imported here (and in ``ssh``) only.

>>> line = ensure_key_file(Path(".provision/demo/id_ed25519"))   # doctest: +SKIP
>>> line.startswith("ssh-ed25519 ")                              # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from provision.errors import ConfigError, ConnectError

__all__ = ["ensure_key_file", "key_file_problem", "make_private_dir", "scan_host_key"]

#: Bytes a private key file may have (an RSA 16384-bit key in PEM is about 13 KB).
KEY_FILE_SIZE = 64 * 1024


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) so that every folder created is 0700.

    ``Path.mkdir(parents=True, mode=...)`` applies the mode to the last folder only; the
    parents would get 0755, so each missing level is made here with 0700."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    return path


def key_file_problem(path: Path) -> str | None:
    """What makes ``path`` unusable as an SSH private key for a login, or None: checked at load
    so that a wrong key is named before any connection, not as an authentication failure
    after the connect deadline. As OpenSSH: a key others may read is refused. An encrypted key
    is refused too (nothing here asks for a passphrase: leave the key file out and let
    ssh-agent hold it)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot read the key file {path}: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return f"the key file {path} is not a regular file"
    if info.st_size > KEY_FILE_SIZE:
        return f"the key file {path} is too large to be a key ({info.st_size} bytes)"
    if stat.S_IMODE(info.st_mode) & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        return (
            f"the key file {path} has mode {mode:04o}: others can read it; run `chmod 600 {path}`"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read the key file {path}: {exc.strerror or exc}"
    if data.lstrip().startswith((b"ssh-", b"ecdsa-", b"sk-")):
        return f"{path} is a public key; give its private half"
    loaders = (serialization.load_ssh_private_key, serialization.load_pem_private_key)
    for load in loaders:
        try:
            load(data, password=None)
            return None
        except TypeError:  # "Password was not given but private key is encrypted"
            return (
                f"the key {path} is encrypted: provision asks for no passphrase; add it to "
                "ssh-agent and leave the key file out"
            )
        except (ValueError, UnsupportedAlgorithm):
            continue
    return f"{path} is not an SSH private key"


def ensure_key_file(private_key: Path) -> str:
    """Create an ed25519 key at ``private_key`` (0600) if missing; return its public key line.

    An existing key that others may read or write is refused, as OpenSSH refuses it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if private_key.exists():
        mode = stat.S_IMODE(private_key.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"private key {private_key} has mode {mode:04o}: others can read "
                f"it; run `chmod 600 {private_key}`",
                field="key",
            )
        loaded = serialization.load_ssh_private_key(private_key.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigError(f"{private_key} is not an ed25519 key", field="key")
        key = loaded
    else:
        make_private_dir(private_key.parent)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        # Opened with 0600 from the start: the key is never readable by others, even briefly.
        fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode("ascii")


def scan_host_key(address: str, port: int, *, timeout: float = 10.0) -> str:
    """The host key ``address:port`` presents (``TYPE BASE64``), read with an SSH key
    exchange and no login: the key must be checked before a connection is trusted."""
    import paramiko

    where = f"{address}:{port}"
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise ConnectError(f"could not read the host key: {exc}", host=where) from exc
    with sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
            return f"{key.get_name()} {key.get_base64()}"
        except (paramiko.SSHException, OSError) as exc:
            raise ConnectError(f"could not read the host key: {exc}", host=where) from exc
        finally:
            transport.close()
