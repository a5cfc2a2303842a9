#!/bin/sh
# Stand-in for the nginx image's entrypoint, written from nginxinc/docker-nginx
# entrypoint/docker-entrypoint.sh (last changed at commit 2879b26, 2023-08-02;
# the same file through 1.27.4, commit b430bec). Mounted as
# /docker-entrypoint.sh by test/vps/real-nginx.test.ts (start.sh execs it).
# Modelled, as upstream does it: when the command is nginx or nginx-debug, the
# files under /docker-entrypoint.d/ in `sort -V` order: executable *.envsh
# sourced, executable *.sh run, anything else skipped with a note; a failing
# script stops the start. The loop runs in a subshell (upstream's pipeline),
# so what an .envsh exports reaches later scripts but not nginx. Then exec the
# command. NGINX_ENTRYPOINT_QUIET_LOGS silences the notes.
set -e

note() {
  [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$0: $*"
}

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  find /docker-entrypoint.d/ -follow -type f -print 2>/dev/null | sort -V | (
    while IFS= read -r hook; do
      if [ ! -x "$hook" ]; then
        note "skipping $hook (not executable)"
        continue
      fi
      # shellcheck disable=SC1090 # the image's hook, known only at run time
      case $hook in
        *.envsh) note "sourcing $hook"; . "$hook" ;;
        *.sh) note "running $hook"; "$hook" ;;
        *) note "skipping $hook" ;;
      esac
    done
  )
  note 'configuration done; starting'
fi
exec "$@"
