#!/usr/bin/env bash
# The box's side of the gateway's SSH link (assets/gateway/gpu-link.ts), run at boot and every
# minute by comfyui-link-access.timer:
#  1. the no-shell user comfyui-link authorizes exactly the gateway's public key from the SSM
#     parameter LINK_KEY_PARAMETER (the gateway registers it through the control function;
#     `unset` or missing: no key), and that key may only forward to ComfyUI's loopback port;
#  2. the instance tags itself with its ed25519 host key fingerprint (comfyui:host-key). The
#     gateway reads the tag through the control function, an AWS-side channel, and refuses
#     any other host key, so nothing on the network can pose as this box.
# sshd-comfyui-link.conf (installed by install.sh) closes what the key's options cannot.
# ROOT prefixes every path it writes, so tests can run it in a temp dir.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env
require LINK_KEY_PARAMETER
require_int COMFYUI_PORT

ROOT=${ROOT:-}
RUN_DIR=${RUN_DIR:-/run/comfyui}
HOST_KEY=${HOST_KEY:-$ROOT/etc/ssh/ssh_host_ed25519_key.pub}
LINK_USER=comfyui-link
LINK_HOME=/var/lib/comfyui-link
AUTHORIZED_KEYS=$ROOT$LINK_HOME/.ssh/authorized_keys
HOST_KEY_TAG=comfyui:host-key
TAGGED_FILE=$RUN_DIR/host-key-tagged # what this boot has tagged (RUN_DIR is a tmpfs)
# sshd(8) of OpenSSH 8.9p1 (Ubuntu 22.04), AUTHORIZED_KEYS FILE FORMAT: `restrict` disables
# forwarding, pty, X11, agent and ~/.ssh/rc; `port-forwarding` enables forwarding again and
# `permitopen` limits local forwards (ssh2's forwardOut) to ComfyUI on the loopback.
KEY_OPTIONS="restrict,port-forwarding,permitopen=\"127.0.0.1:$COMFYUI_PORT\""
# One line; of it, the key type and data only (the comment is dropped).
ED25519_LINE='^ssh-ed25519 ([A-Za-z0-9+/]+={0,2})( |$)'

err_file=$(mktemp)
trap 'rm -f "$err_file"' EXIT

# A system user without a password (`*` matches none; `!` would count as locked) or a shell.
ensure_user() {
  grep -q "^$LINK_USER:" "$ROOT/etc/passwd" && return 0
  useradd ${ROOT:+--prefix "$ROOT"} --system --no-create-home --home-dir "$LINK_HOME" \
    --shell /usr/sbin/nologin --password '*' --user-group "$LINK_USER"
  log "created user $LINK_USER (no password, shell /usr/sbin/nologin, home $LINK_HOME)"
}

# Sets key to the gateway's public key ("" when none is registered) and why to the reason.
read_gateway_key() {
  local value fingerprint
  key=""
  if ! value=$(aws ssm get-parameter --name "$LINK_KEY_PARAMETER" --query Parameter.Value --output text 2>"$err_file"); then
    if grep -q ParameterNotFound "$err_file"; then
      why="$LINK_KEY_PARAMETER does not exist"
      return 0
    fi
    log "error: could not read $LINK_KEY_PARAMETER: $(tr '\n' ' ' <"$err_file")"
    return 1
  fi
  if [[ $value == unset ]]; then
    why="no gateway key registered yet ($LINK_KEY_PARAMETER is 'unset')"
  elif [[ $value != *$'\n'* && $value =~ $ED25519_LINE ]] &&
    fingerprint=$(ssh-keygen -lf - <<<"ssh-ed25519 ${BASH_REMATCH[1]}" 2>/dev/null); then
    key="ssh-ed25519 ${BASH_REMATCH[1]}"
    why="gateway key $(cut -d ' ' -f 2 <<<"$fingerprint") from $LINK_KEY_PARAMETER"
  else
    why="$LINK_KEY_PARAMETER does not hold an ssh-ed25519 public key (allowed: 'unset' or one 'ssh-ed25519 AAAA...' line)"
  fi
}

# Replaces authorized_keys by rename when its line changes; root owns it, the user cannot edit it.
write_authorized_keys() {
  local line="" current
  [[ -n $key ]] && line="$KEY_OPTIONS $key comfyui-gateway"
  current=$(cat "$AUTHORIZED_KEYS" 2>/dev/null || echo missing)
  [[ $current == "$line" ]] && return 0
  install -d -m 0755 "$ROOT$LINK_HOME" "$ROOT$LINK_HOME/.ssh"
  printf '%s' "${line:+$line$'\n'}" >"$AUTHORIZED_KEYS.new"
  chmod 0644 "$AUTHORIZED_KEYS.new"
  mv -f "$AUTHORIZED_KEYS.new" "$AUTHORIZED_KEYS"
  if [[ -n $line ]]; then log "$LINK_USER authorizes $why"; else log "$LINK_USER authorizes no key: $why"; fi
}

tag_host_key() {
  local fingerprint iid
  if ! fingerprint=$(ssh-keygen -lf "$HOST_KEY" 2>&1); then
    log "error: cannot read the host key $HOST_KEY: $fingerprint"
    return 1
  fi
  fingerprint=$(cut -d ' ' -f 2 <<<"$fingerprint")
  [[ $fingerprint =~ ^SHA256:[A-Za-z0-9+/]{43}$ ]] || { log "error: unexpected fingerprint '$fingerprint' of $HOST_KEY"; return 1; }
  [[ $(cat "$TAGGED_FILE" 2>/dev/null) == "$fingerprint" ]] && return 0
  iid=$(instance_id) || { log "error: could not read the instance id from IMDS; host key not tagged"; return 1; }
  aws ec2 create-tags --resources "$iid" --tags "Key=$HOST_KEY_TAG,Value=$fingerprint" || {
    log "error: could not tag $iid with its host key"
    return 1
  }
  mkdir -p "$RUN_DIR"
  printf '%s\n' "$fingerprint" >"$TAGGED_FILE"
  log "tagged $iid $HOST_KEY_TAG=$fingerprint"
}

# Each step on its own: a failed API call keeps the current key and the next minute retries.
failed=0
ensure_user || failed=1
if read_gateway_key; then write_authorized_keys || failed=1; else failed=1; fi
tag_host_key || failed=1
exit "$failed"
