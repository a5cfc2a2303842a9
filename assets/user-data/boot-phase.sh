#!/usr/bin/env bash
# boot-phase.sh NAME: records that the boot phase NAME has finished, as seconds since the
# kernel booted, in /run/comfyui/boot-phases and in the instance's `comfyui:boot` tag
# ("bootstrap=41 image=88 models=102 ready=131"). `gpu start --wait` and `gpu status` read
# the tag, so the operator sees each phase's real time without reaching the instance.
# Best effort: a failed tag write is logged, never fatal to the boot.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env

phase=${1:-}
[[ $phase =~ ^[a-z-]+$ ]] || die "usage: boot-phase.sh NAME (lower-case letters and -), got '$phase'"
RUN_DIR=${RUN_DIR:-/run/comfyui}
UPTIME_FILE=${UPTIME_FILE:-/proc/uptime}
PHASES=$RUN_DIR/boot-phases

uptime=$(cut -d ' ' -f 1 "$UPTIME_FILE")
mkdir -p "$RUN_DIR"
# One entry per phase: a restarted unit replaces its own figure.
{ grep -v "^$phase=" "$PHASES" 2>/dev/null || true; printf '%s=%s\n' "$phase" "${uptime%%.*}"; } >"$PHASES.new"
mv -f "$PHASES.new" "$PHASES"
value=$(paste -sd ' ' "$PHASES")
log "boot phase $phase done at ${uptime%%.*} s after boot ($value)"
if ! iid=$(instance_id 2>/dev/null); then
  log "warning: could not read the instance id; boot phases not tagged"
  exit 0
fi
aws ec2 create-tags --resources "$iid" --tags "Key=comfyui:boot,Value=$value" ||
  log "warning: could not tag $iid with its boot phases"
