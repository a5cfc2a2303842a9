#!/bin/sh
# Redis entrypoint (runs as the redis user): requirepass from REDIS_PASSWORD
# goes into a private file that redis.conf includes.
set -eu
case ${REDIS_PASSWORD:-} in
  '' | *[!A-Za-z0-9_-]*)
    echo "start.sh: REDIS_PASSWORD must be set and hold only A-Z a-z 0-9 _ -" >&2
    exit 1 ;;
esac
umask 077
printf 'requirepass "%s"\n' "$REDIS_PASSWORD" > /tmp/redis-auth.conf
exec redis-server /usr/local/etc/redis/redis.conf
