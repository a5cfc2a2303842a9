#!/usr/bin/env bash
# Polls IMDSv2 for a Spot interruption notice (two minutes before the stop).
# On a notice: flush outputs to S3 once, stop ComfyUI, then idle until the
# instance stops. A marker in /run (cleared at boot) keeps a restarted handler
# from flushing twice.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env

POLL_SECONDS=${SPOT_POLL_SECONDS:-5}
RUN_DIR=${RUN_DIR:-/run/comfyui}
HANDLED=$RUN_DIR/spot-interruption-handled
BIN_DIR=$(dirname "${BASH_SOURCE[0]}")

# Prints the notice and returns 0; returns 1 for no notice (404), 2 when IMDS is unreadable.
read_notice() {
  local token response
  token=$(imds_token) || return 2
  response=$(curl -sS --max-time 2 -w '\n%{http_code}' -H "X-aws-ec2-metadata-token: $token" \
    "$IMDS_URL/latest/meta-data/spot/instance-action") || return 2
  case ${response##*$'\n'} in
    200) printf '%s\n' "${response%$'\n'*}" ;;
    404) return 1 ;;
    *) return 2 ;;
  esac
}

handle_notice() {
  touch "$HANDLED" # first, so that even a crash below never leads to a second flush
  log "spot interruption notice: $1"
  "$BIN_DIR/output-sync.sh" || log "warning: output sync failed"
  docker stop --time 30 comfyui || log "warning: docker stop failed"
  # Keeps Restart=always from starting ComfyUI again before the instance stops.
  systemctl stop --no-block comfyui.service || log "warning: systemctl stop failed"
}

mkdir -p "$RUN_DIR"
log "watching for Spot interruption notices every ${POLL_SECONDS}s"
while [[ ! -e $HANDLED ]]; do
  rc=0
  notice=$(read_notice) || rc=$?
  case $rc in
    0) handle_notice "$notice" ;;
    1) sleep "$POLL_SECONDS" ;;
    *)
      log "warning: could not read spot/instance-action from IMDS"
      sleep "$POLL_SECONDS"
      ;;
  esac
done
log "interruption handled; idling until the instance stops"
exec sleep infinity
