#!/usr/bin/env bash
# First-boot installer, run by the EC2 user data from the extracted asset zip.
# Installs the scripts, the systemd units and the gateway link's sshd drop-in, prepares
# the data dir, writes the CloudWatch agent's config and starts everything. Idempotent:
# files are rewritten in place, nothing is appended. Later boots need only systemd (units are enabled).
# Uses only what the Deep Learning Base OSS Nvidia Driver AMI ships (docker, the
# NVIDIA container toolkit, python3, curl, gpg, the awscli v1 pip package); the
# CloudWatch agent, which it lacks, is installed by comfyui-agent.service.
# ROOT prefixes every path it writes, so tests can run it in a temp dir.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$SRC/common.sh"

ROOT=${ROOT:-}
export COMFYUI_ENV_FILE=${COMFYUI_ENV_FILE:-$ROOT/etc/comfyui/comfyui.env}
load_env
require_int OUTPUT_SYNC_MINUTES
for key in ENV_NAME LOG_GROUP; do
  # These go into JSON below: plain names only, nothing to escape.
  [[ ${!key:-} =~ ^[A-Za-z0-9._/#-]+$ ]] || die "$key must be a plain name, got '${!key:-}'"
done

BIN=$ROOT/opt/comfyui/bin
UNIT_DIR=$ROOT/etc/systemd/system
AGENT_CONFIG=$ROOT/opt/aws/amazon-cloudwatch-agent/etc/comfyui-agent.json
install -d -m 0755 "$BIN" "$UNIT_DIR" "$ROOT/var/log/comfyui" "$ROOT/var/lib/comfyui" \
  "$(dirname "$AGENT_CONFIG")" "$ROOT/etc/logrotate.d"

for script in "$SRC"/*.sh; do
  name=${script##*/}
  [[ $name == install.sh ]] && continue
  # Replace by rename: a running script (the interruption loop) keeps its old copy.
  install -m 0755 "$script" "$BIN/.$name.new"
  mv -f "$BIN/.$name.new" "$BIN/$name"
done
for unit in "$SRC"/*.service "$SRC"/*.timer; do
  sed "s/@OUTPUT_SYNC_MINUTES@/$OUTPUT_SYNC_MINUTES/g" "$unit" >"$UNIT_DIR/${unit##*/}"
  chmod 0644 "$UNIT_DIR/${unit##*/}"
done

# The gateway's link user may forward to ComfyUI and do nothing else (see the file); sshd reads
# the drop-in on reload (on Ubuntu 22.04 its ExecReload checks the config with sshd -t first).
install -d -m 0755 "$ROOT/etc/ssh/sshd_config.d"
install -m 0644 "$SRC/sshd-comfyui-link.conf" "$ROOT/etc/ssh/sshd_config.d/comfyui-link.conf"

# Now for the first boot; comfyui-data.service repeats it on every later boot.
ROOT=$ROOT "$BIN/data-volume.sh"

# GPU metrics go to the agent's default namespace (CWAgent) as nvidia_smi_<measurement>;
# one log stream per unit, named after the unit's log file.
log_files=""
while read -r name; do
  log_files+="${log_files:+,}
        { \"file_path\": \"/var/log/comfyui/$name.log\", \"log_group_name\": \"$LOG_GROUP\", \"log_stream_name\": \"{instance_id}/$name\" }"
done < <(sed -n 's|^StandardOutput=append:/var/log/comfyui/\(.*\)\.log$|\1|p' "$SRC"/*.service)
cat >"$AGENT_CONFIG" <<EOF
{
  "agent": { "metrics_collection_interval": 60, "run_as_user": "root" },
  "metrics": {
    "append_dimensions": { "InstanceId": "\${aws:InstanceId}" },
    "metrics_collected": {
      "nvidia_gpu": {
        "measurement": ["utilization_gpu", "utilization_memory", "memory_used", "memory_total", "temperature_gpu", "power_draw"],
        "append_dimensions": { "Environment": "$ENV_NAME" }
      }
    }
  },
  "logs": {
    "force_flush_interval": 5,
    "logs_collected": {
      "files": {
        "collect_list": [$log_files,
        { "file_path": "/var/log/cloud-init-output.log", "log_group_name": "$LOG_GROUP", "log_stream_name": "{instance_id}/cloud-init-output" }
        ]
      }
    }
  }
}
EOF
cat >"$ROOT/etc/logrotate.d/comfyui" <<'EOF'
/var/log/comfyui/*.log {
  daily
  rotate 7
  maxsize 50M
  missingok
  notifempty
  compress
  delaycompress
  copytruncate
}
EOF
# The awscli's S3 transfers: more parallel requests than its default 10 for the model sync
# and the image cache (both over the S3 gateway endpoint). Read through AWS_CONFIG_FILE.
printf '%s\n' '[default]' 's3 =' '  max_concurrent_requests = 32' '  multipart_chunksize = 64MB' \
  >"$(dirname "$COMFYUI_ENV_FILE")/aws-cli.conf"

systemctl daemon-reload
systemctl try-reload-or-restart ssh.service
systemctl enable comfyui.service comfyui-ready.service comfyui-agent.service comfyui-output-flush.service \
  comfyui-spot-interruption.service comfyui-idle.timer comfyui-output-sync.timer comfyui-link-access.timer
# --no-block: the image load and the model download run under systemd, not inside the user data.
systemctl start --no-block comfyui.service comfyui-ready.service comfyui-agent.service comfyui-output-flush.service
# restart: a second run picks up changed scripts and timer intervals.
systemctl restart --no-block comfyui-spot-interruption.service comfyui-idle.timer comfyui-output-sync.timer \
  comfyui-link-access.timer
"$BIN/boot-phase.sh" bootstrap || true
log "installed; ComfyUI starts after the image load and the model sync (see /var/log/comfyui/)"
