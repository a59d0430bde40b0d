#!/usr/bin/env bash
# Set up this machine for provision (Debian 12+/Ubuntu 24.04+, as root or with sudo): the apt
# packages the sandbox and the tests need, a running Docker engine, and the package itself,
# editable with its test extra, in a virtual environment of the checkout (.venv: a stock
# Debian's or Ubuntu's Python is externally managed, PEP 668, and has no pip), its `provision`
# command linked into /usr/local/bin. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# python3-venv: the virtual environment (Debian's python3 has no venv module without it).
# acl: setfacl, for a user with sudo to reach the Docker engine before the group applies.
# luajit, lua-busted and lua-cjson: the router's Lua unit tests (tests/lua, busted under LuaJIT).
# graphviz: the README's pictures, rendered again by their test (docs/pictures).
PACKAGES=(docker.io docker-compose debootstrap openssh-client python3-venv acl wrk luajit
          lua-busted lua-cjson graphviz)
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

# Who the set-up is for: the user who ran it, or who ran `sudo scripts/setup.sh`.
if [ "$(id -u)" -eq 0 ]; then user="${SUDO_USER:-root}"; else user="$(id -un)"; fi
as_user() {  # a command as that user (the venv is theirs, not root's)
    if [ "$(id -u)" -eq 0 ] && [ "$user" != root ]; then sudo -u "$user" -H "$@"; else "$@"; fi
}

# A user who is not root reaches the engine through the docker group, which applies from the
# next login; until then (this login: `scripts/setup.sh && provision up`), through an ACL on
# the engine's socket, until the socket is made again. Either grants what the group grants.
if [ "$user" != root ]; then
    if ! id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
        $SUDO usermod -aG docker "$user"
        echo "setup: added $user to the docker group; it applies from the next login (or: newgrp docker)"
    fi
    if ! as_user docker info >/dev/null 2>&1; then
        $SUDO setfacl -m "u:$user:rw" /var/run/docker.sock
        echo "setup: $user may use the Docker engine in this login too (an ACL on /var/run/docker.sock)"
    fi
fi

# The package in .venv, installed again only when pyproject.toml changed since the last time.
venv="$PWD/.venv"
stamp="$venv/.provision-setup"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing provision and its test extra into $venv"
    [ -x "$venv/bin/python" ] || as_user python3 -m venv "$venv"
    as_user "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    echo "$want" | as_user tee "$stamp" >/dev/null
fi

# `provision` on the PATH: a link to this checkout's, unless another program has the name.
link=/usr/local/bin/provision
if [ "$(readlink "$link" 2>/dev/null)" != "$venv/bin/provision" ]; then
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        echo "setup: $link exists and is not a link: run $venv/bin/provision" >&2
    else
        $SUDO ln -sfn "$venv/bin/provision" "$link"
    fi
fi
echo "setup: ready ($($SUDO docker version --format 'docker engine {{.Server.Version}}'); $venv)"
