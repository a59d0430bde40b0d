#!/bin/sh
# Like the official image's entrypoint: `redis-server ARGS...` (or plain
# `--flag ...`) starts the server with the image's defaults first, so that
# later flags from compose's `command:` win; anything else runs as given.
set -e
if [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
    shift
    set -- redis-server --protected-mode no --bind 0.0.0.0 --dir /data "$@"
fi
exec "$@"
