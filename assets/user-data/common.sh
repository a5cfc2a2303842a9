#!/usr/bin/env bash
# Helpers shared by the GPU scripts; sourced, never run on its own.
set -euo pipefail

IMDS_URL=${IMDS_URL:-http://169.254.169.254}

log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

die() { log "error: $*"; exit 1; }

# Reads KEY=VALUE lines from the env file written by the user data. Parsed, not
# sourced, so a stray character in a value can never run as code.
load_env() {
  local file=${COMFYUI_ENV_FILE:-/etc/comfyui/comfyui.env} key value
  [[ -r $file ]] || die "config file $file is not readable"
  while IFS='=' read -r key value || [[ -n $key ]]; do
    if [[ $key =~ ^[A-Z][A-Z0-9_]*$ ]]; then export "$key=$value"; fi
  done <"$file"
  # The CLI on EC2 needs a region; the bucket and the fleet live in AWS_REGION.
  if [[ -n ${AWS_REGION:-} ]]; then export AWS_DEFAULT_REGION=$AWS_REGION; fi
  # S3 transfer settings written by install.sh, beside the env file.
  local cli_config
  cli_config=$(dirname "$file")/aws-cli.conf
  if [[ -z ${AWS_CONFIG_FILE:-} && -r $cli_config ]]; then export AWS_CONFIG_FILE=$cli_config; fi
}

require() {
  local key
  for key in "$@"; do [[ -n ${!key:-} ]] || die "$key is not set in the env file"; done
}

require_int() {
  local key
  for key in "$@"; do [[ ${!key:-} =~ ^[0-9]+$ ]] || die "$key must be a whole number, got '${!key:-}'"; done
}

# retry N CMD...: up to N attempts, sleeping RETRY_SLEEP_SECONDS * attempt between them.
retry() {
  local attempts=$1 n=1
  shift
  until "$@"; do
    ((n < attempts)) || return 1
    log "attempt $n of $attempts failed: $*" >&2 # stderr: callers may capture stdout
    sleep $((${RETRY_SLEEP_SECONDS:-5} * n))
    n=$((n + 1))
  done
}

put_metric() {
  aws cloudwatch put-metric-data --namespace "$METRIC_NAMESPACE" --dimensions "Environment=$ENV_NAME" \
    --metric-name "$1" --value "$2" --unit Count || log "warning: could not publish $1=$2"
}

# IMDSv2 only: a session token first, then the metadata request.
imds_token() {
  curl -fsS --max-time 2 --retry 2 -X PUT "$IMDS_URL/latest/api/token" \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300'
}

instance_id() {
  local token id
  token=$(imds_token) || return 1
  id=$(curl -fsS --max-time 2 --retry 2 -H "X-aws-ec2-metadata-token: $token" \
    "$IMDS_URL/latest/meta-data/instance-id") || return 1
  [[ $id =~ ^i-[0-9a-f]+$ ]] || return 1
  printf '%s\n' "$id"
}
