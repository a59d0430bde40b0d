"""The cluster's SSH key: generated locally, sent with ImportKeyPair, never CreateKeyPair.

The private key never leaves this machine (``<state_dir>/<cluster>/id_ed25519``, mode 0600).
Idempotence compares the public key AWS holds with ours, locally.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.aws.calls import Clients, call
from provision.aws.tags import tag_specifications
from provision.errors import CloudError


@dataclass(frozen=True)
class KeyPair:
    name: str
    key_pair_id: str
    private_key: Path
    created: bool


def key_name(cluster: str) -> str:
    return f"provision-{cluster}"


def ensure_local_key(private_key: Path) -> str:
    """Create an ed25519 key at ``private_key`` (0600) if missing; return its public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if private_key.exists():
        loaded = serialization.load_ssh_private_key(private_key.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise CloudError(f"{private_key} is not an ed25519 key", code="BadLocalKey")
        key = loaded
    else:
        private_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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


def same_public_key(a: str, b: str) -> bool:
    """Compare two OpenSSH public key lines by type and key data, ignoring the comment."""
    return a.split()[:2] == b.split()[:2]


def ensure_key_pair(
    clients: Clients, name: str, private_key: Path, tags: Mapping[str, str]
) -> KeyPair:
    """Import our public key as ``name`` unless AWS already holds exactly that key."""
    public = ensure_local_key(private_key)
    found = call(
        clients.ec2,
        "describe_key_pairs",
        {"Filters": [{"Name": "key-name", "Values": [name]}], "IncludePublicKey": True},
    ).get("KeyPairs", [])
    if found:
        held = found[0]
        if not same_public_key(str(held.get("PublicKey", "")), public):
            raise CloudError(
                f"key pair {name} exists in AWS but does not match {private_key}; "
                f"run `provision down` for this cluster (or delete the key pair) and retry",
                code="KeyPairMismatch",
            )
        return KeyPair(name, str(held.get("KeyPairId", name)), private_key, created=False)
    params = {
        "KeyName": name,
        "PublicKeyMaterial": public.encode("ascii"),
        "TagSpecifications": tag_specifications(["key-pair"], tags),
    }
    answer = call(clients.ec2, "import_key_pair", params)
    return KeyPair(name, str(answer.get("KeyPairId", name)), private_key, created=True)
