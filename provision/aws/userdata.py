"""The user-data every instance boots with: it ends itself at the cluster's expiry, and it
installs Docker Engine and Compose while it boots.

``ttl`` was only a tag, so a forgotten test cluster cost money until someone ran
``provision sweep``. The instance now ends itself: launched with
``InstanceInitiatedShutdownBehavior=terminate`` (an OS shutdown terminates it, where an
EBS-backed instance would otherwise only stop and keep its volume costing), it schedules a
power-off at the cluster's ``provision:expires-at`` time, to the second: a transient systemd
timer (``systemd-run --on-active``), not ``shutdown +N``, which counts whole minutes and
refuses every login but root's for the last five (``/run/nologin``). The schedule is a
cloud-init per-boot script, since the timer lives in memory and a reboot would drop it; it
is written and run once by the user-data (cloud-init runs that once per instance, late in
boot) and again at every boot after.

Docker (``docker_script``): a test cluster is most often made from nothing, and installing
Docker over SSH after boot is the largest cost of a cold ``up`` after the boot itself. The
user-data installs it during boot, from the same recipe as the ``docker_engine`` task
(``provision.models.docker_install``), and adds the login user to the ``docker`` group; the
task then waits for cloud-init and finds it installed (``ok``). Where the user-data failed, the
task installs over SSH, as without it, and says why (the cloud-init log's last lines). On
Debian and Ubuntu, apt-daily may hold the package lists' lock for a while after boot, when
``apt-get update`` fails at once: it is retried (3 minutes at most). A host that already has
Docker and Compose (an image that ships them) installs nothing.

User-data is readable by any process on the instance (instance metadata), so it carries no
secret: the expiry time, the login user's name, the install commands. It stays far below EC2's
16 KB limit.

    >>> print(ttl_script("2026-12-07T05:00:00Z").splitlines()[0])
    #!/bin/sh
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Sequence

from provision.models import docker_install
from provision.models.names import check_image

__all__ = ["MAX_BYTES", "PER_BOOT", "docker_script", "ttl_script", "user_data"]

#: EC2's limit on user-data, before base64.
MAX_BYTES = 16 * 1024
#: Where cloud-init runs a script at every boot.
PER_BOOT = "/var/lib/cloud/scripts/per-boot/provision-ttl"

_SCHEDULE = """#!/bin/sh
# provision: power off at the cluster's expiry (InstanceInitiatedShutdownBehavior=terminate
# makes that a termination). Run by cloud-init at every boot: the timer lives in memory.
deadline=$(date -u -d '{expires}' +%s) || exit 1
left=$(( deadline - $(date -u +%s) ))
if [ "$left" -le 0 ]; then
    exec systemctl poweroff
fi
systemctl stop provision-ttl.timer 2>/dev/null
exec systemd-run --unit=provision-ttl --description='provision: ttl reached' \\
    --on-active="${{left}}s" --timer-property=AccuracySec=1s systemctl poweroff
"""


def ttl_script(expires_at: str) -> str:
    """The user-data: write the per-boot schedule for ``expires_at`` (UTC, ISO 8601 with a
    ``Z``) and run it now."""
    moment = dt.datetime.strptime(expires_at, "%Y-%m-%dT%H:%M:%SZ")  # refuses anything else
    schedule = _SCHEDULE.format(expires=moment.strftime("%Y-%m-%d %H:%M:%S UTC"))
    script = (
        "#!/bin/sh\n"
        "# provision: this instance ends itself at its cluster's expiry\n"
        f"mkdir -p {PER_BOOT.rsplit('/', 1)[0]}\n"
        f"cat > {PER_BOOT} <<'PROVISION_TTL'\n{schedule}PROVISION_TTL\n"
        f"chmod 0755 {PER_BOOT}\n"
        f"{PER_BOOT}\n"
    )
    if len(script.encode()) > MAX_BYTES:  # cannot happen with a date; kept as the rule
        raise ValueError(f"user-data of {len(script.encode())} bytes is over EC2's 16 KB")
    return script


def _lines(commands: list[list[str]]) -> str:
    return "".join(f"    {shlex.join(argv)}\n" for argv in commands)


def docker_script(user: str) -> str:
    """A script that installs Docker Engine and Compose unless the host has them, then puts
    ``user`` in the ``docker`` group; it exits non-zero when the install failed."""
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user):  # a Linux user name, nothing else
        raise ValueError(f"not a user name: {user!r}")
    update, install, enable = docker_install.debian(())
    amazon = {arch: docker_install.amazon_linux(arch) for arch in ("x86_64", "aarch64")}
    return (
        "# provision: Docker Engine and Compose while the instance boots (docker_engine finds\n"
        "# them); the same recipe as the docker_engine task.\n"
        "# An AMI made for ECS (al2023-ecs) starts the ECS agent: this is no ECS container\n"
        "# instance, so it is switched off.\n"
        "if systemctl cat ecs.service >/dev/null 2>&1; then\n"
        "    systemctl disable --now ecs.service || true\n"
        "fi\n"
        "if command -v docker >/dev/null 2>&1 && { docker compose version >/dev/null 2>&1 "
        "|| command -v docker-compose >/dev/null 2>&1; }; then\n"
        '    echo "provision: Docker and Compose are installed already"\n'
        "else\n"
        "  . /etc/os-release\n"
        '  case "$ID $ID_LIKE" in\n'
        "  amzn*)\n"
        '    if [ "$(uname -m)" = aarch64 ]; then\n'
        f"{_lines(amazon['aarch64'])}"
        "    else\n"
        f"{_lines(amazon['x86_64'])}"
        "    fi ;;\n"
        "  *debian*|*ubuntu*)\n"
        "    # apt-daily may hold the package lists' lock after boot: apt-get update then fails\n"
        "    n=0\n"
        f"    until {shlex.join(update)}; do\n"
        '      n=$((n + 1)); [ "$n" -lt 90 ] || exit 1; sleep 2\n'
        "    done\n"
        f"    packages=$({docker_install.PICK_PACKAGES})\n"
        f"    {shlex.join(install)} $packages\n"
        f"    {shlex.join(enable)} ;;\n"
        '  *) echo "provision: no Docker recipe for $ID"; exit 1 ;;\n'
        "  esac\n"
        "fi\n"
        f"usermod -aG docker {user}\n"
    )


def user_data(expires_at: str = "", docker_user: str = "", *, pull: Sequence[str] = ()) -> str:
    """The user-data of an instance: the schedule of its end at ``expires_at`` (if any), then
    Docker's install for ``docker_user`` (if any), in a subshell that stops at its first
    failure; the script's exit status is the install's (cloud-init then reports an error).
    With the install, ``pull``: images pulled once Docker is in, in the background (cloud-init
    does not wait for them; ``compose up`` pulls whatever is still missing), as best effort."""
    parts = ["#!/bin/sh\n"]
    if expires_at:
        parts.append(ttl_script(expires_at).split("\n", 1)[1])
    if docker_user:
        parts.append(f"(\nset -e\n{docker_script(docker_user)})\n")
        if pull:
            for ref in pull:
                check_image(ref, "pull_at_boot")
            images = " ".join(shlex.quote(ref) for ref in pull)
            parts.append(
                "status=$?\n"
                "# provision: the cluster's images, pulled while the run goes on over SSH.\n"
                'if [ "$status" -eq 0 ]; then\n'
                f'  (for image in {images}; do docker pull -q "$image" || '
                'echo "provision: could not pull $image"; done) '
                "</dev/null >/var/log/provision-pull.log 2>&1 &\n"
                "fi\n"
                'exit "$status"\n'
            )
    script = "".join(parts)
    if len(script.encode()) > MAX_BYTES:
        raise ValueError(f"user-data of {len(script.encode())} bytes is over EC2's 16 KB")
    return script
