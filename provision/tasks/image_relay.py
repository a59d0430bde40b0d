"""Images from one host of the cluster to the others, over their private network, so that the
controller's link carries each image once (to the manager) and not once per host.

On the source host, an ed25519 key made for this run in a root-only temporary folder (its
private half never leaves the host). On each target, its public half in the login user's
``authorized_keys``, restricted: ``restrict`` (no shell, no forwarding), ``from=`` the source's
address, and a forced ``docker load``; removed again afterwards, also when the send failed (a
run interrupted before that leaves a line that the next run removes first). The target's host
key, read over the controller's own verified connection, is pinned in a known_hosts file beside
the key. Then, on the source: ``docker save IMAGES | ssh -b SOURCE USER@TARGET``.

Nothing is compressed on the way: the private network is faster than gzip on small CPUs. What
the relay could not deliver (no ``ssh`` on the source, port 22 closed between the hosts) is
returned to the caller, which sends it from the controller instead and says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provision.connection.base import Remote
from provision.errors import ProvisionError, TaskError
from provision.tasks.base import TaskContext
from provision.tasks.docker_swarm import ADDRESS

__all__ = ["MARK", "Target", "authorized_line", "relay"]

MARK = "provision-relay"  # the comment of every key line the relay adds
# On the source, as root: a fresh folder with the key (stale ones of an interrupted run gone).
KEYGEN = (
    "command -v ssh >/dev/null && command -v ssh-keygen >/dev/null "
    "|| { echo 'no ssh client on this host' >&2; exit 3; }; "
    f"rm -rf /tmp/{MARK}.*; umask 077; d=$(mktemp -d /tmp/{MARK}.XXXXXX) "
    f"&& ssh-keygen -q -t ed25519 -N '' -C {MARK} -f \"$d/key\" "
    '&& printf "%s\\n" "$d" && cat "$d/key.pub"'
)
# On a target, as its login user: our old lines out, then $1 in.
REVOKE = f'f=$HOME/.ssh/authorized_keys; [ ! -f "$f" ] || sed -i \'/ {MARK}-[0-9a-f]*$/d\' "$f"'
AUTHORIZE = f'{REVOKE} && umask 077 && mkdir -p "$HOME/.ssh" && printf "%s\\n" "$1" >> "$f"'
HOST_KEY = ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]
# On the source, as root: $1 key, $2 known_hosts, $3 user@target, $4 source address, images.
SEND = (
    'key=$1 known=$2 to=$3 from=$4; shift 4; docker save "$@" | ssh -F none -i "$key" -b "$from" '
    "-o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "
    '-o UserKnownHostsFile="$known" -o GlobalKnownHostsFile=/dev/null '
    '-o ConnectTimeout=15 -o ServerAliveInterval=15 -o LogLevel=ERROR "$to"'
)


@dataclass(frozen=True)
class Target:
    """A host to relay to: its connection, the images it lacks."""

    conn: Remote
    images: tuple[str, ...]


@dataclass(frozen=True)
class _Key:
    """The relay's key on the source: its folder, its public half, the source's address."""

    folder: str
    public: str
    source: str


def authorized_line(public_key: str, source: str, load: str, nonce: str) -> str:
    """The ``authorized_keys`` line for the relay's key: only ``load``, only from ``source``."""
    key_type, key = public_key.split()[:2]
    return f'restrict,from="{source}",command="{load}" {key_type} {key} {MARK}-{nonce}'


def _address(conn: Remote, sudo: bool) -> str:
    address = conn.sh(ADDRESS, sudo=sudo, warn=True).stdout.strip()
    if not address:
        raise TaskError(f"{conn.host.name}: no private address found")
    return address


def _send(ctx: TaskContext, key: _Key, target: Target) -> str:
    """Relay to one target; "" when done, else why not."""
    conn = target.conn
    try:
        address = _address(conn, ctx.become)
        host_key = conn.run(HOST_KEY, warn=True).stdout.split()[:2]
        if len(host_key) < 2:
            return f"no ed25519 host key on {conn.host.name}"
        load = "sudo -n docker load" if ctx.become and conn.host.user != "root" else "docker load"
        nonce = secrets.token_hex(8)
        conn.sh(AUTHORIZE, authorized_line(key.public, key.source, load, nonce))
        try:
            known = f"{key.folder}/known_hosts.{nonce}"
            ctx.conn.put_bytes(f"{address} {' '.join(host_key)}\n".encode(), known,
                               mode=0o600, sudo=ctx.become)  # fmt: skip
            sent = ctx.conn.sh(
                SEND, f"{key.folder}/key", known, f"{conn.host.user}@{address}", key.source,
                *target.images, sudo=ctx.become, warn=True, timeout=1800,
            )  # fmt: skip
        finally:
            conn.sh(REVOKE, warn=True)
    except ProvisionError as exc:
        return str(exc)
    if sent.failed:
        return f"exit {sent.exit_code}: {(sent.stderr.strip().splitlines() or ['?'])[-1]}"
    return ""


def relay(ctx: TaskContext, targets: Mapping[str, Target]) -> dict[str, str]:
    """Send each target its images from this host (``ctx.conn``), side by side.

    Returns {target: why it failed} for the targets the relay did not serve (empty: all done).
    """
    made = ctx.conn.sh(KEYGEN, sudo=ctx.become, warn=True)
    lines = made.stdout.splitlines()
    if made.failed or len(lines) < 2:
        why = (made.stderr.strip().splitlines() or [f"exit {made.exit_code}"])[-1]
        return {name: f"no relay key on {ctx.host.name}: {why}" for name in targets}
    folder = lines[0].strip()
    try:
        key = _Key(folder, lines[1].strip(), _address(ctx.conn, ctx.become))
        with ThreadPoolExecutor(max_workers=len(targets) or 1) as pool:
            done = dict(zip(targets, pool.map(lambda t: _send(ctx, key, t), targets.values()),
                            strict=True))  # fmt: skip
    except ProvisionError as exc:
        return {name: str(exc) for name in targets}
    finally:
        ctx.conn.run(["rm", "-rf", folder], sudo=ctx.become, warn=True)
    return {name: why for name, why in done.items() if why}
