#!/usr/bin/env bash
# Waits until ComfyUI answers GET /system_stats on the host port, then records the
# `ready` boot phase (boot-phase.sh). Bounded by READY_TIMEOUT_SECONDS; the unit's
# own timeout is the outer bound.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env
require_int COMFYUI_PORT

READY_TIMEOUT_SECONDS=${READY_TIMEOUT_SECONDS:-600}
POLL_SECONDS=${READY_POLL_SECONDS:-2}
deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
until curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$COMFYUI_PORT/system_stats"; do
  ((SECONDS < deadline)) || die "ComfyUI did not answer /system_stats within $READY_TIMEOUT_SECONDS s"
  sleep "$POLL_SECONDS"
done
log "ComfyUI answers /system_stats"
"$(dirname "${BASH_SOURCE[0]}")/boot-phase.sh" ready
