#!/usr/bin/env bash
# Set up this machine for provision (Debian/Ubuntu, as root or with sudo): the apt packages
# the sandbox and the tests need, a running Docker engine, and the package itself (editable,
# with its test extra). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# luajit, lua-busted and lua-cjson: the router's Lua unit tests (tests/lua, busted under LuaJIT).
PACKAGES=(docker.io docker-compose debootstrap openssh-client wrk luajit lua-busted lua-cjson)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! $SUDO docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
        $SUDO systemctl start docker
    else  # no systemd (containers, CI): run dockerd in the background
        log="${TMPDIR:-/tmp}/provision-dockerd.log"
        echo "setup: starting dockerd (log: $log)"
        $SUDO sh -c "nohup dockerd >'$log' 2>&1 &"
    fi
    for _ in $(seq 1 60); do $SUDO docker info >/dev/null 2>&1 && break; sleep 1; done
    $SUDO docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start" >&2; exit 1; }
fi

python3 -m pip install -q -e '.[test]'
echo "setup: ready ($(docker version --format 'docker engine {{.Server.Version}}'))"
