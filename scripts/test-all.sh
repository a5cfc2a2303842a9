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

# cfn-lint and moto (a local EC2/S3/CloudFormation/Secrets Manager/Cost Explorer API for the
# ops tests) at the versions in scripts/python-test-tools.txt. When one is missing they go into
# a virtualenv of their own (Debian and Ubuntu refuse pip installs into the system Python).
tools=scripts/python-test-tools.txt
venv=.venv-test-tools
[ -x "$venv/bin/python3" ] && export PATH="$PWD/$venv/bin:$PATH"
if ! command -v cfn-lint >/dev/null || ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "installing $(grep -v '^#' "$tools" | tr '\n' ' ')into $venv"
  python3 -m venv "$venv" 2>/dev/null || {
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
    python3 -m venv "$venv"
  }
  "$venv/bin/python3" -m pip install --quiet -r "$tools"
  export PATH="$PWD/$venv/bin:$PATH"
fi
# Other installed versions usually work; say so, since the suite was verified with the pinned ones.
pinned() { sed -n "s/^$1==//p" "$tools"; }
installed_lint=$(cfn-lint --version | awk '{ print $2 }')
installed_moto=$(python3 -c 'import importlib.metadata as m; print(m.version("moto"))')
[ "$installed_lint" = "$(pinned cfn-lint)" ] || echo "warning: cfn-lint $installed_lint installed; the suite was verified with $(pinned cfn-lint)" >&2
[ "$installed_moto" = "$(pinned 'moto\[server\]')" ] || echo "warning: moto $installed_moto installed; the suite was verified with $(pinned 'moto\[server\]')" >&2

npm ci --no-audit --no-fund
npm test
