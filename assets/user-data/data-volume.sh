#!/usr/bin/env bash
# Prepares /opt/comfyui/data on every boot (comfyui-data.service). With an
# instance-store NVMe disk (g4dn) it is formatted when blank (the store is
# wiped on every stop/start) and mounted; otherwise the directory stays on the
# root volume. Safe to run again: a mounted data dir is left alone.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROOT=${ROOT:-}
DATA_DIR=$ROOT/opt/comfyui/data
mkdir -p "$DATA_DIR"

# First instance-store disk; EBS volumes report "Amazon Elastic Block Store".
device=$(lsblk -dnpo NAME,MODEL | awk '/Amazon EC2 NVMe Instance Storage/ { print $1; exit }')
if [[ -z $device ]]; then
  log "no instance store: data stays on the root volume in $DATA_DIR"
elif mountpoint -q "$DATA_DIR"; then
  log "$DATA_DIR is already mounted"
else
  fstype=$(blkid -p -o value -s TYPE "$device" || true)
  if [[ -z $fstype ]]; then
    log "formatting blank instance store $device as ext4"
    mkfs.ext4 -q -F -L comfyui-data "$device"
  fi
  mount -o noatime "$device" "$DATA_DIR"
  log "mounted instance store $device on $DATA_DIR"
fi
mkdir -p "$DATA_DIR/models" "$DATA_DIR/output"
