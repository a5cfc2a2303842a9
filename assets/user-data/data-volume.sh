#!/usr/bin/env bash
# Prepares the data dir /opt/comfyui/data on every boot (comfyui-data.service), on the
# fastest disk the instance has, using what the AMI already set up:
#  1. The Deep Learning AMI's own dlami-nvme service puts the instance-store disks into
#     LVM and mounts them at /opt/dlami/nvme before user data runs (DLAMI release notes,
#     "nvme_location /opt/dlami/nvme"): the data dir is bind-mounted from a folder there.
#  2. Another AMI: a blank instance-store disk (no signature, no partitions or holders,
#     not mounted) is formatted ext4 with our label and mounted; our own disk after a
#     reboot is mounted again.
#  3. Otherwise (no instance store, or a disk in use by something else) the data dir
#     stays on the root volume.
# A disk that holds anything we did not make is never formatted or mounted.
# On the instance store, Docker's data root moves there too: loading the multi-GB ComfyUI
# image is bound by disk writes, and a gp3 root volume writes 125 MB/s by default.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROOT=${ROOT:-}
DATA_DIR=$ROOT/opt/comfyui/data
DLAMI_NVME=$ROOT/opt/dlami/nvme
LABEL=comfyui-data

# Prints the instance-store disks (EBS volumes report "Amazon Elastic Block Store").
instance_store_disks() {
  lsblk -dnpo NAME,MODEL | awk '/Amazon EC2 NVMe Instance Storage/ { print $1 }'
}

# True when the disk has partitions, LVM or other holders, or a mounted filesystem.
in_use() {
  local lines
  lines=$(lsblk -nlpo NAME,MOUNTPOINT "$1") || return 0 # unreadable counts as in use
  [[ $(wc -l <<<"$lines") -gt 1 ]] && return 0
  [[ -n $(awk '{ print $2 }' <<<"$lines") ]]
}

use_instance_store() {
  local device fstype label
  while read -r device; do
    [[ -n $device ]] || continue
    if in_use "$device"; then
      log "leaving $device alone: it is in use"
      continue
    fi
    fstype=$(blkid -p -o value -s TYPE "$device" || true)
    label=$(blkid -p -o value -s LABEL "$device" || true)
    if [[ -z $fstype ]]; then
      log "formatting blank instance store $device as ext4"
      mkfs.ext4 -q -F -L "$LABEL" "$device"
    elif [[ $fstype != ext4 || $label != "$LABEL" ]]; then
      log "leaving $device alone: it holds $fstype${label:+ ($label)}, not our data"
      continue
    fi
    mount -o noatime "$device" "$DATA_DIR"
    log "mounted instance store $device on $DATA_DIR"
    return 0
  done < <(instance_store_disks)
  return 1
}

# Points Docker's data root at $1 (merging into the AMI's daemon.json, which holds the
# NVIDIA runtime) and restarts Docker when it was running with another root.
docker_data_root() {
  local config=$ROOT/etc/docker/daemon.json changed
  mkdir -p "$(dirname "$config")" "$1"
  changed=$(python3 - "$config" "${1#"$ROOT"}" <<'PY'
import json, os, sys
path, root = sys.argv[1], sys.argv[2]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
if config.get("data-root") == root:
    print("no")
    sys.exit()
config["data-root"] = root
with open(path + ".new", "w") as out:
    json.dump(config, out, indent=2)
    out.write("\n")
os.replace(path + ".new", path)
print("yes")
PY
  )
  if [[ $changed == yes ]]; then
    log "docker data root set to ${1#"$ROOT"}"
    if systemctl is-active --quiet docker.service; then systemctl restart docker.service; fi
  fi
}

mkdir -p "$DATA_DIR"
on_instance_store=yes
if mountpoint -q "$DATA_DIR"; then
  log "$DATA_DIR is already mounted"
elif mountpoint -q "$DLAMI_NVME"; then
  mkdir -p "$DLAMI_NVME/comfyui"
  mount --bind "$DLAMI_NVME/comfyui" "$DATA_DIR"
  log "data dir on the AMI's instance store: $DLAMI_NVME/comfyui bound to $DATA_DIR"
elif ! use_instance_store; then
  log "no usable instance store: data stays on the root volume in $DATA_DIR"
  on_instance_store=no
fi
if [[ $on_instance_store == yes ]]; then docker_data_root "$DATA_DIR/docker"; fi
mkdir -p "$DATA_DIR/models" "$DATA_DIR/output" "$DATA_DIR/input" "$DATA_DIR/user" "$DATA_DIR/custom_nodes"
