#!/usr/bin/env bash
# The baseline for bench/noop_rerun.py: the checks a no-op `provision up` makes on a converged
# host, written by hand as one bash script over ONE ssh session. Usage:
#   bench/noop_baseline.sh PORT KEYFILE KNOWN_HOSTS [PLAYBOOKS_DIR]
# Exits 0 when the host is converged (nothing would change) and the first checks pass.
set -euo pipefail
port=$1 key=$2 known=$3 books=${4:-"$(dirname "$0")/../playbooks"}
root=/opt/provision

# Local side, as provision does it: the manifest of what should be on the host.
manifest() { (cd "$1" && find . -type f ! -name .env -exec sha256sum {} + | sort -k2); }
want_redis=$(manifest "$books/files/redis")
want_echo=$(manifest "$books/files/echo")
want_openresty=$(manifest "$books/files/openresty")
want_ids=$(docker image inspect --format '{{.Id}}' redis:latest openresty/openresty:latest)

# ssh sends one command string: quote each argument for the remote shell.
args=$(printf '%q ' "$root" "$want_redis" "$want_echo" "$want_openresty" "$want_ids")
ssh -F none -i "$key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$known" admin@127.0.0.1 "sudo bash -s -- $args" <<'REMOTE'
set -euo pipefail
root=$1; want_redis=$2; want_echo=$3; want_openresty=$4; want_ids=$5
fail() { echo "would change: $*" >&2; exit 1; }
# facts
. /etc/os-release; uname -m >/dev/null
docker info --format '{{.ServerVersion}}' >/dev/null || fail docker
# the Compose flavour and version, read as provision reads it (dpkg, not the slow v1 CLI)
dpkg-query -W -f='${Version}' docker-compose >/dev/null 2>&1 || docker compose version --short >/dev/null
id -nG admin | grep -qw docker || fail "docker group"
# network
docker network inspect shared-network --format '{{.Driver}}' | grep -qx bridge || fail network
# images
have_ids=$(docker image inspect --format '{{.Id}}' redis:latest openresty/openresty:latest)
[ "$have_ids" = "$want_ids" ] || fail images
# secret
test -s "$root/secrets/redis.env" || fail secret
# uploads (content, mode, owner) and the .env files
for p in redis echo openresty; do
  var="want_$p"
  have=$(cd "$root/$p" && find . -type f ! -name .env -exec sha256sum {} + | sort -k2)
  [ "$have" = "${!var}" ] || fail "upload $p"
  find "$root/$p" -type f -printf '%m %u %g\n' >/dev/null
  test -s "$root/$p/.env" || fail "env $p"
done
# compose projects: every container running (the same `docker ps` provision reads)
for p in redis echo openresty; do
  states=$(docker ps -a --filter "label=com.docker.compose.project=$p" --format '{{.State}}')
  [ -n "$states" ] && ! grep -qv running <<<"$states" || fail "compose $p"
done
# first checks: DNS by service name, Lua -> Redis PING, the 127.0.0.1 trap
ocid=$(docker ps -q --filter label=com.docker.compose.project=openresty --filter label=com.docker.compose.service=openresty)
rcid=$(docker ps -q --filter label=com.docker.compose.project=redis --filter label=com.docker.compose.service=redis)
want_ip=$(docker inspect --format '{{(index .NetworkSettings.Networks "shared-network").IPAddress}}' "$rcid")
got_ip=$(docker exec "$ocid" getent hosts redis | awk '{print $1}')
[ "$got_ip" = "$want_ip" ] || fail "dns $got_ip != $want_ip"
python3 -c 'import urllib.request,sys; sys.exit(urllib.request.urlopen("http://127.0.0.1/ping").read().strip() != b"PONG")' || fail ping
if docker exec "$ocid" curl -s -m 3 telnet://127.0.0.1:6379 </dev/null; then fail "trap: 127.0.0.1:6379 answered"; fi
echo "converged"
REMOTE
