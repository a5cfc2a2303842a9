#!/usr/bin/env bash
# Installs the pinned CloudWatch agent and loads our config (comfyui-agent.service).
# The Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) ships no CloudWatch agent
# (its release notes list docker, nvidia-container-toolkit and the awscli v1 pip package), so
# every fresh instance installs it. Off ComfyUI's critical path: nothing waits for this unit.
# The package comes from AWS's regional download bucket and is verified against AWS's signing
# key, whose fingerprint is pinned here (CloudWatch User Guide, "Verifying the signature of
# the CloudWatch agent package").
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env
require AWS_REGION

# Release 1.300062.0b1304 (2025-11-19).
AGENT_VERSION=${AGENT_VERSION:-1.300062.0b1304}
AGENT_KEY_FINGERPRINT=${AGENT_KEY_FINGERPRINT:-937616F3450B7D806CBD9725D58167303B789C72}
AGENT_BASE_URL=${AGENT_BASE_URL:-https://amazoncloudwatch-agent-$AWS_REGION.s3.$AWS_REGION.amazonaws.com}
CTL=${AGENT_CTL:-/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl}
VERSION_FILE=${AGENT_VERSION_FILE:-/opt/aws/amazon-cloudwatch-agent/bin/CWAGENT_VERSION}
AGENT_CONFIG=${AGENT_CONFIG:-/opt/aws/amazon-cloudwatch-agent/etc/comfyui-agent.json}

installed_version() { cat "$VERSION_FILE" 2>/dev/null || true; }

# Downloads are retried (retry runs this without errexit, so every step checks itself); a key
# or signature mismatch ends the script at once.
install_agent() {
  local dir fetch=(curl -fsS --retry 3 --max-time 300) signer
  dir=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: dir is local
  trap "rm -rf '$dir'" RETURN
  log "installing CloudWatch agent $AGENT_VERSION from $AGENT_BASE_URL"
  "${fetch[@]}" -o "$dir/agent.gpg" "$AGENT_BASE_URL/assets/amazon-cloudwatch-agent.gpg" || return 1
  "${fetch[@]}" -o "$dir/agent.deb" "$AGENT_BASE_URL/ubuntu/amd64/$AGENT_VERSION/amazon-cloudwatch-agent.deb" || return 1
  "${fetch[@]}" -o "$dir/agent.deb.sig" "$AGENT_BASE_URL/ubuntu/amd64/$AGENT_VERSION/amazon-cloudwatch-agent.deb.sig" || return 1
  export GNUPGHOME=$dir/gnupg
  mkdir -m 0700 "$GNUPGHOME" || return 1
  gpg --batch --quiet --import "$dir/agent.gpg" || die "the CloudWatch agent key from $AGENT_BASE_URL is not a key"
  # The signature must be valid AND made by the pinned key (VALIDSIG's last field is the
  # primary key's fingerprint), whatever else the downloaded key file holds.
  signer=$(gpg --batch --status-fd 1 --verify "$dir/agent.deb.sig" "$dir/agent.deb" 2>/dev/null |
    awk '$2 == "VALIDSIG" { print $NF }') || true
  [[ $signer == "$AGENT_KEY_FINGERPRINT" ]] ||
    die "the CloudWatch agent package $AGENT_VERSION is not signed by the pinned key $AGENT_KEY_FINGERPRINT (signer: '${signer:-none}')"
  dpkg -i "$dir/agent.deb" || return 1
}

if [[ $(installed_version) == "$AGENT_VERSION" ]]; then
  log "CloudWatch agent $AGENT_VERSION is installed"
else
  retry 3 install_agent
fi
"$CTL" -a fetch-config -m ec2 -s -c "file:$AGENT_CONFIG"
log "CloudWatch agent running with $AGENT_CONFIG"
