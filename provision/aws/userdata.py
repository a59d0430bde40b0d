"""The user-data every instance boots with: it ends itself at the cluster's expiry.

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

User-data is readable by any process on the instance (instance metadata), so it carries no
secret: only the expiry time. It stays far below EC2's 16 KB limit.

    >>> print(ttl_script("2026-12-07T05:00:00Z").splitlines()[0])
    #!/bin/sh
"""

from __future__ import annotations

import datetime as dt

__all__ = ["MAX_BYTES", "PER_BOOT", "ttl_script"]

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
