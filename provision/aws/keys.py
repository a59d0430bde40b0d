"""The cluster's SSH key: generated locally, sent with ImportKeyPair, never CreateKeyPair.

The private key never leaves this machine (``<state_dir>/<cluster>/id_ed25519``, mode 0600).
Idempotence compares the public key AWS holds with ours, locally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.aws.calls import Clients, call
from provision.aws.tags import tag_specifications
from provision.connection.keys import ensure_key_file
from provision.errors import CloudError


@dataclass(frozen=True)
class KeyPair:
    name: str
    key_pair_id: str
    private_key: Path
    created: bool


def key_name(cluster: str) -> str:
    return f"provision-{cluster}"


def same_public_key(a: str, b: str) -> bool:
    """Compare two OpenSSH public key lines by type and key data, ignoring the comment."""
    return a.split()[:2] == b.split()[:2]


def ensure_key_pair(
    clients: Clients, name: str, private_key: Path, tags: Mapping[str, str]
) -> KeyPair:
    """Import our public key as ``name`` unless AWS already holds exactly that key."""
    public = ensure_key_file(private_key)
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
