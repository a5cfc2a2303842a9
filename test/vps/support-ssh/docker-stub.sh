#!/usr/bin/env bash
# Stand-in for the docker CLI in the deployer tests (this machine has no Docker
# engine). sshd puts it first on PATH and sets DOCKER_STUB_DIR. It records every
# call as "<cwd><TAB><argv>" in $DOCKER_STUB_DIR/calls.log and plays a tiny
# compose state machine per project, steered by control files:
#   fail-up     release ids (basename of the cwd), one a line, or '*': `up` fails there
#   fail-pull   same, for `pull`
#   pull-delay  seconds `pull` sleeps (to hold the deploy lock for a while)
#   up-delay    seconds `up` sleeps before it answers (a gate that takes a while)
#   hang-up     release ids or '*': `up` never returns there (a hung remote command)
#   log-feed-<project>   what the service prints while `logs --follow` runs (the test appends)
# and `logs --follow` leaves log-follow-<project>.pid (its pid) and log-feed-<project>.sent (bytes
# of the feed forwarded so far) beside them.
set -euo pipefail

dir="${DOCKER_STUB_DIR:?DOCKER_STUB_DIR is not set}"
release="$(basename "$PWD")"
printf '%s\t%s\n' "$PWD" "$*" >> "$dir/calls.log"

if [ "${1:-}" != compose ]; then
  echo "docker stub: only 'docker compose' is supported" >&2
  exit 2
fi
shift
project=""
if [ "${1:-}" = -p ]; then
  project="$2"
  shift 2
fi
command="${1:-}"
state_file="$dir/state-$project"

listed() { # is this release named in control file $1?
  [ -f "$dir/$1" ] && grep -qxF -e "$release" -e '*' "$dir/$1"
}

ps_row() { # service state health
  printf '{"Name":"%s-%s-1","Service":"%s","State":"%s","Health":"%s","ExitCode":0,"Status":"Up 3 seconds (%s)"}\n' \
    "$project" "$1" "$1" "$2" "$3" "$3"
}

case "$command" in
  pull)
    if [ -f "$dir/pull-delay" ]; then sleep "$(cat "$dir/pull-delay")"; fi
    if listed fail-pull; then
      echo "stub: pull access denied for example/web" >&2
      exit 1
    fi
    echo "stub: pulled"
    ;;
  up)
    if [ -f "$dir/up-delay" ]; then sleep "$(cat "$dir/up-delay")"; fi
    if listed hang-up; then sleep 3600; fi
    if listed fail-up; then
      echo "unhealthy:$release" > "$state_file"
      echo "stub: container $project-web-1 is unhealthy" >&2
      exit 1
    fi
    echo "healthy:$release" > "$state_file"
    ;;
  down)
    echo down > "$state_file"
    ;;
  config)
    printf '%s\n' web db
    ;;
  ps)
    state="$(cat "$state_file" 2>/dev/null || echo down)"
    case "$state" in
      healthy:*) ps_row web running healthy; ps_row db running healthy ;;
      unhealthy:*) ps_row web running unhealthy; ps_row db running healthy ;;
      *) ;;
    esac
    ;;
  logs)
    # Like a real service that prints its configuration when it crashes: it
    # echoes a secret from .env, which the deployer's redaction must hide.
    password="$(sed -n "s/^POSTGRES_PASSWORD='\(.*\)'\$/\1/p" .env 2>/dev/null || true)"
    # Options as Compose v2 documents them (docs.docker.com/reference/cli/docker/compose/logs/;
    # cmd/compose/logs.go): -f/--follow, -n/--tail N (default all, per container), --no-color.
    follow=0 tail=all
    while [ $# -gt 1 ]; do
      shift
      case "$1" in
        -f | --follow) follow=1 ;;
        -n | --tail) tail="$2"; shift ;;
      esac
    done
    # The pid first: a test that has seen the history may look for the follower at once.
    if [ "$follow" = 1 ]; then echo "$$" > "$dir/log-follow-$project.pid"; fi
    {
      echo "web-1  | STUB-LOG $release: FATAL listen failed (db password ${password:-unset})"
      echo "web-1  | STUB-LOG $release: exiting"
    } | if [ "$tail" = all ]; then cat; else tail -n "$tail"; fi
    if [ "$follow" = 1 ]; then
      # compose v2 (pkg/compose/logs.go, monitor.go): after the history it streams what the
      # service prints, and returns (exit 0) once no container of the followed services runs.
      # The feed is forwarded byte for byte as the test appends it, so a line can reach the
      # client split across SSH packets, as a busy channel splits it.
      feed="$dir/log-feed-$project" offset=0
      while :; do
        size=$(stat -c %s "$feed" 2>/dev/null || echo 0)
        if [ "$size" -gt "$offset" ]; then
          # head stops at the size read above should the test append meanwhile (tail then gets SIGPIPE).
          tail -c +"$((offset + 1))" "$feed" | head -c "$((size - offset))" || true
          offset=$size
          echo "$offset" > "$feed.sent"
        fi
        case "$(cat "$state_file" 2>/dev/null || echo down)" in
          healthy:* | unhealthy:*) sleep 0.05 ;;
          *) exit 0 ;;
        esac
      done
    fi
    ;;
  *)
    echo "docker stub: unsupported compose command '$command'" >&2
    exit 2
    ;;
esac
