#!/usr/bin/env bash
# One idle check, run every minute by comfyui-idle.timer. After IDLE_MINUTES (or the
# environment's run-time threshold, see read_threshold) consecutive idle minutes this
# instance leaves its Spot Fleet, and only itself:
#  1. it tags itself comfyui:leaving, so no peer counts it any more and the gateway
#     sends it no work; then it reads the gateway's lease again (below) and stays if one
#     appeared meanwhile, removing the tag;
#  2. it sets the fleet's target capacity to the number of active instances not
#     leaving (noTermination: lowering the target never terminates a busy peer),
#     reading the count again after each write until it stands still, so two boxes
#     leaving in the same minute end at the right number whatever order they write in;
#  3. it terminates itself (a maintain fleet no longer replaces it: the target
#     already excludes it).
# The gateway's lease (tag comfyui:busy-until, epoch seconds, at most 15 minutes ahead, set
# through the control function while it holds work for this box) counts as busy until it
# expires; an expired or missing lease is ignored, so a box whose VPS is gone still leaves.
# The race with a prompt arriving as the box decides: the gateway writes its lease, then
# reads whether the box is leaving; the box writes its leaving tag, then reads the lease.
# Each writes before it reads, so at least one of them sees the other: either the gateway
# sends nothing to a leaving box, or the box stays under the new lease (or both back off).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env
require METRIC_NAMESPACE ENV_NAME
require_int COMFYUI_PORT IDLE_MINUTES IDLE_GPU_UTIL_PERCENT BOOT_GRACE_MINUTES
((IDLE_MINUTES > 0)) || die "IDLE_MINUTES must be at least 1" # 0 would act on every check

STATE_DIR=${STATE_DIR:-/var/lib/comfyui}
UPTIME_FILE=${UPTIME_FILE:-/proc/uptime}
COUNTER_FILE=$STATE_DIR/idle-minutes
REQUESTED_FILE=$STATE_DIR/scale-down-requested-at # counter value of the last successful request
SESSION_PATTERNS=(ssm:ssm-session-worker 'ssh:sshd(-session)?: [^ ]+@pts')

signal_errors=0
signal_error() {
  log "unreadable signal, counted as busy: $*"
  signal_errors=$((signal_errors + 1))
}

# The environment's run-time threshold (npm run ops -- gpu autostop): 1 to 1440 minutes, or
# `default` for IDLE_MINUTES; the same bounds as lib/gpu-auto-stop-names.ts.
AUTO_STOP_MAX_MINUTES=1440

# Sets threshold to the idle minutes after which this check leaves the fleet: the parameter
# AUTO_STOP_PARAMETER, read on every check so a change applies within a minute and survives
# reboots, or IDLE_MINUTES when it says `default`, does not exist (a stack deployed before it)
# or cannot be read. A failed read is logged and never stops the check.
read_threshold() {
  local value err_file=$STATE_DIR/auto-stop.err
  threshold=$IDLE_MINUTES
  threshold_note=""
  [[ -n ${AUTO_STOP_PARAMETER:-} ]] || return 0
  if ! value=$(aws ssm get-parameter --name "$AUTO_STOP_PARAMETER" --query Parameter.Value --output text \
    --cli-connect-timeout 5 --cli-read-timeout 10 2>"$err_file"); then
    if ! grep -q ParameterNotFound "$err_file"; then
      log "could not read $AUTO_STOP_PARAMETER, using IDLE_MINUTES=$IDLE_MINUTES: $(tr '\n' ' ' <"$err_file")"
      threshold_note=" (auto-stop unreadable)"
    fi
    return 0
  fi
  if [[ $value =~ ^[0-9]{1,4}$ ]] && ((10#$value >= 1 && 10#$value <= AUTO_STOP_MAX_MINUTES)); then
    threshold=$((10#$value))
    threshold_note=" (auto-stop)"
  elif [[ $value != default ]]; then
    log "ignoring $AUTO_STOP_PARAMETER = '${value:0:40}', using IDLE_MINUTES=$IDLE_MINUTES (allowed: 1 to $AUTO_STOP_MAX_MINUTES minutes, or default)"
  fi
}

# Sets gpu to the highest utilization over all GPUs, or to "error".
read_gpu() {
  local out line max=-1
  if ! out=$(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>&1); then
    signal_error "nvidia-smi failed: ${out//$'\n'/ }"
    gpu=error
    return
  fi
  while read -r line; do
    if [[ ! $line =~ ^[0-9]+$ ]]; then
      signal_error "nvidia-smi printed '${out//$'\n'/ }'"
      gpu=error
      return
    fi
    if ((10#$line > max)); then max=$((10#$line)); fi
  done <<<"$out"
  gpu=$max
}

# Sets queue to "<running> <pending>" from ComfyUI's /queue, or to "error".
read_queue() {
  local body
  if ! body=$(curl -fsS --max-time 5 "http://127.0.0.1:$COMFYUI_PORT/queue" 2>&1); then
    signal_error "GET /queue failed: $body"
    queue=error
    return
  fi
  if ! queue=$(python3 -c '
import json, sys
q = json.load(sys.stdin)
running, pending = q["queue_running"], q["queue_pending"]
if not (isinstance(running, list) and isinstance(pending, list)):
    sys.exit(1)
print(len(running), len(pending))' <<<"$body" 2>/dev/null); then
    signal_error "GET /queue returned unexpected content: ${body:0:200}"
    queue=error
  fi
}

# Sets sessions to the kinds of open interactive sessions ("" when none).
read_sessions() {
  local entry rc
  sessions=""
  for entry in "${SESSION_PATTERNS[@]}"; do
    rc=0
    pgrep -f "${entry#*:}" >/dev/null || rc=$?
    case $rc in
      0) sessions+="${sessions:+,}${entry%%:*}" ;;
      1) ;;
      *)
        signal_error "pgrep for ${entry%%:*} sessions exited $rc"
        sessions+="${sessions:+,}error"
        ;;
    esac
  done
}

# On final failure: publish the failure and exit non-zero; the next check retries.
fail_scale_down() {
  log "scale-down failed: $*; the next check tries again"
  put_metric IdleShutdownFailures 1
  exit 1
}

LEAVING_TAG=comfyui:leaving
BUSY_UNTIL_TAG=comfyui:busy-until
iid="" # this instance's id, read from IMDS once when needed

# Sets iid, or fails.
read_instance_id() {
  [[ -n $iid ]] || iid=$(instance_id)
}

# Sets lease to the unexpired gateway lease (epoch seconds), to "" when it is missing or
# expired, or to "error" when it cannot be read.
read_lease() {
  local value now
  lease=error
  read_instance_id || return 1
  # stdout only: a warning on stderr must not turn a lease into "no lease".
  value=$(aws ec2 describe-tags --filters "Name=resource-id,Values=$iid" "Name=key,Values=$BUSY_UNTIL_TAG" \
    --query 'Tags[0].Value' --output text) || return 1
  now=$(date +%s)
  lease=""
  if [[ $value =~ ^[0-9]+$ ]]; then
    if ((value > now)); then lease=$value; fi
  elif [[ $value != None ]]; then
    log "ignoring a malformed gateway lease '${value:0:40}' (allowed: epoch seconds)"
  fi
}

lease_time() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# Prints how many of the fleet's active instances are not leaving.
staying_count() {
  local active leaving id n=0
  active=$(aws ec2 describe-spot-fleet-instances --spot-fleet-request-id "$1" \
    --query 'ActiveInstances[].InstanceId' --output text) || return 1
  [[ $active == None ]] && active=""
  if [[ -n $active ]]; then
    leaving=$(aws ec2 describe-tags --filters "Name=resource-id,Values=$(tr -s ' \t' ',' <<<"$active")" \
      "Name=key,Values=$LEAVING_TAG" --query 'Tags[].ResourceId' --output text) || return 1
    for id in $active; do
      [[ " ${leaving//$'\t'/ } " == *" $id "* ]] || n=$((n + 1))
    done
  fi
  printf '%s\n' "$n"
}

leave_fleet() {
  local fleet target written=none attempt
  read_instance_id || fail_scale_down "could not read the instance id from IMDS"
  # DescribeTags, not metadata tags: aws:-prefixed tags are not promised there.
  fleet=$(retry 3 aws ec2 describe-tags --filters "Name=resource-id,Values=$iid" \
    "Name=key,Values=aws:ec2spot:fleet-request-id" --query 'Tags[0].Value' --output text) ||
    fail_scale_down "describe-tags failed for $iid"
  [[ $fleet =~ ^sfr-[0-9a-f-]+$ ]] || fail_scale_down "$iid has no Spot Fleet tag (got '$fleet')"
  retry 3 aws ec2 create-tags --resources "$iid" --tags "Key=$LEAVING_TAG,Value=$(date -u +%s)" ||
    fail_scale_down "could not tag $iid as leaving"
  # Now visible as leaving: a lease the gateway wrote since this check read it wins.
  if ! retry 3 read_lease || [[ -n $lease ]]; then
    retry 3 aws ec2 delete-tags --resources "$iid" --tags "Key=$LEAVING_TAG" ||
      fail_scale_down "could not remove the $LEAVING_TAG tag of $iid to stay"
    [[ $lease == error ]] && fail_scale_down "could not read the gateway lease again after tagging $iid as leaving; staying"
    log "gateway lease until $(lease_time "$lease") appeared while leaving: removed $LEAVING_TAG, staying"
    printf '0\n' >"$COUNTER_FILE"
    rm -f "$REQUESTED_FILE"
    return 0
  fi
  for attempt in 1 2 3 4 5; do
    target=$(retry 3 staying_count "$fleet") || fail_scale_down "could not count the instances of $fleet"
    [[ $target == "$written" ]] && break
    retry 3 aws ec2 modify-spot-fleet-request --spot-fleet-request-id "$fleet" --target-capacity "$target" \
      --excess-capacity-termination-policy noTermination >/dev/null ||
      fail_scale_down "modify-spot-fleet-request $fleet failed 3 times"
    log "leaving $fleet: target capacity $target (pass $attempt)"
    written=$target
  done
  log "scale-down: $iid leaves $fleet (target $written), terminating itself"
  # On failure the next check repeats every step: each is idempotent.
  retry 3 aws ec2 terminate-instances --instance-ids "$iid" >/dev/null ||
    fail_scale_down "could not terminate $iid"
  printf '%s\n' "$counter" >"$REQUESTED_FILE"
  put_metric IdleShutdownActions 1
}

mkdir -p "$STATE_DIR"
read_gpu
read_queue
read_sessions
read_threshold

uptime=$(cut -d ' ' -f 1 "$UPTIME_FILE" 2>/dev/null || true)
uptime=${uptime%%.*}
[[ $uptime =~ ^[0-9]+$ ]] || die "cannot read the uptime from $UPTIME_FILE"
grace=$((BOOT_GRACE_MINUTES * 60))
previous=$(cat "$COUNTER_FILE" 2>/dev/null || true)
[[ $previous =~ ^[0-9]+$ ]] || previous=0

idle=no
if [[ $gpu != error && $queue == "0 0" && -z $sessions ]] && ((gpu < IDLE_GPU_UTIL_PERCENT)); then idle=yes; fi
# The lease costs an API call: read only when everything on the box is idle, after the boot grace.
if [[ $idle == yes ]] && ((uptime >= grace)); then
  if ! read_lease; then
    signal_error "could not read the gateway lease ($BUSY_UNTIL_TAG)"
    idle=no
  elif [[ -n $lease ]]; then
    log "gateway lease until $(lease_time "$lease")"
    idle=no
  fi
fi

action=none
if ((uptime < grace)); then
  counter=0 action=boot-grace
  # ComfyUI is still starting during the grace period: errors then are expected.
  signal_errors=0
elif [[ $idle == yes ]]; then
  counter=$((previous + 1))
else
  counter=0
fi
if ((counter == 0)); then rm -f "$REQUESTED_FILE"; fi
printf '%s\n' "$counter" >"$COUNTER_FILE"

if ((counter >= threshold)); then
  requested=$(cat "$REQUESTED_FILE" 2>/dev/null || true)
  # After a successful request the fleet terminates us; ask again only after
  # another full idle period (someone may have raised the capacity meanwhile).
  if [[ $requested =~ ^[0-9]+$ ]] && ((counter < requested + threshold)); then
    action=already-requested
  else
    action=leave-fleet
  fi
fi

log "idle-check gpu=$gpu queue=${queue/ //} sessions=${sessions:-none} uptime=${uptime}s idle=$idle counter=$counter/$threshold action=$action$threshold_note"
put_metric IdleMinutes "$counter"
# Only while gpu autostop overrides IDLE_MINUTES (so it costs nothing otherwise): the WatcherFailed
# alarm compares IdleMinutes with twice this, and with twice gpu.idleMinutes when it is absent.
if ((threshold != IDLE_MINUTES)); then put_metric IdleThresholdMinutes "$threshold"; fi
for ((i = 0; i < signal_errors; i++)); do put_metric IdleSignalErrors 1; done
if [[ $action == leave-fleet ]]; then leave_fleet; fi
