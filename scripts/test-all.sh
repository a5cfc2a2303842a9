#!/usr/bin/env bash
# The README's test command: installs what the suite needs on a fresh Debian or
# Ubuntu machine, then runs every test: type check, jest, cfn-lint, cdk-nag,
# the shell linter, and the tests against moto and OpenSSH.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cfn-lint >/dev/null; then
  echo "installing cfn-lint"
  python3 -m pip install --quiet cfn-lint
fi
# moto serves a local EC2/S3/CloudFormation/Secrets Manager/Cost Explorer API to the ops tests.
if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "installing moto"
  python3 -m pip install --quiet 'moto[server]'
fi

npm ci --no-audit --no-fund
npm test
