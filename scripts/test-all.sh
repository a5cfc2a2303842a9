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
# ops doctor's host-name check asks a real DNS server on loopback (test/ops/doctor-dnsmasq.ts).
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
# npm ci builds the Lambda runtime interface client (aws-lambda-ric) from its source.
command -v cmake >/dev/null || missing+=(cmake)
command -v make >/dev/null || missing+=(make)
command -v g++ >/dev/null || missing+=(g++)
# The VPS stack's real servers (test/vps/real-*.test.ts), run in namespaces by util-linux.
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
[ -f /usr/include/postgresql/15/server/postgres.h ] || missing+=(postgresql-server-dev-15)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v ip >/dev/null || missing+=(iproute2)
command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
command -v gcc >/dev/null || missing+=(gcc)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# What Debian 12 lacks for those tests, from Debian 13 through apt itself (its own
# lists in .venv-test-tools/, checked against the Debian archive key), never installed
# as packages: nginx 1.26 (Debian 12's 1.22 predates `http2 on`) and Compose v2 (Debian
# 12 has only Compose v1) unpacked into .venv-test-tools/debian, and pgvector 0.8.0 built
# from Debian 13's source package against PostgreSQL 15 (no Debian 12 package exists).
debian=.venv-test-tools/debian
if [ ! -x "$debian/usr/sbin/nginx" ] || [ ! -x "$debian/usr/libexec/docker/cli-plugins/docker-compose" ] \
  || [ ! -f /usr/share/postgresql/15/extension/vector.control ]; then
  apt_dir=$PWD/.venv-test-tools/apt-trixie
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/none" "$debian"
  # The machine's own Debian mirror (the first main-archive URI of its apt sources), suite trixie.
  sources=()
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
    [ -f "$f" ] && sources+=("$f")
  done
  mirror=""
  if [ "${#sources[@]}" -gt 0 ]; then
    mirror=$(sed -n 's/^URIs: *//p; s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' "${sources[@]}" |
      awk '!/-security/ && /\/debian\/?$/ && !found { print; found = 1 }')
  fi
  [ -n "$mirror" ] || { echo "no Debian mirror found in /etc/apt/sources.list*: cannot fetch the Debian 13 test tools" >&2; exit 1; }
  for kind in deb deb-src; do
    echo "$kind [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main"
  done > "$apt_dir/sources.list"
  trixie=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/none" -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache" -o "Dir::Etc::PreferencesParts=$apt_dir/none" -o APT::Sandbox::User=root)
  echo "fetching nginx, docker-compose and the pgvector source from Debian 13 into .venv-test-tools"
  apt-get "${trixie[@]}" update -qq
  (
    cd "$apt_dir"
    rm -rf ./*.deb pgvector*
    apt-get "${trixie[@]}" download -qq nginx nginx-common docker-compose
    apt-get "${trixie[@]}" source -qq --download-only pgvector
    for deb in ./*.deb; do dpkg-deb -x "$deb" "$PWD/../debian"; done
    dpkg-source -x ./pgvector_*.dsc pgvector-src >/dev/null
    make -s -C pgvector-src PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
    sudo_if_needed make -s -C pgvector-src install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
  )
fi

# cfn-lint, moto (a local EC2/S3/CloudFormation/Secrets Manager/Cost Explorer API for the ops
# tests) and the AWS CLI v1 (what the DLAMI's box scripts call, and the README's commands) at the
# versions in scripts/python-test-tools.txt. When one is missing they go into a virtualenv of
# their own (Debian and Ubuntu refuse pip installs into the system Python).
tools=scripts/python-test-tools.txt
venv=.venv-test-tools
[ -x "$venv/bin/python3" ] && export PATH="$PWD/$venv/bin:$PATH"
# `aws --version` must run and say v1 (a v2 CLI, or a shim with nothing behind it, does not count).
aws_v1() { aws --version 2>&1 | grep -q '^aws-cli/1\.'; }
if ! command -v cfn-lint >/dev/null || ! python3 -c 'import moto.server' 2>/dev/null || ! aws_v1; then
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
installed_aws=$(aws --version 2>&1 | sed -n 's|^aws-cli/\([^ ]*\).*|\1|p')
[ "$installed_aws" = "$(pinned awscli)" ] || echo "warning: AWS CLI $installed_aws installed; the suite was verified with $(pinned awscli)" >&2

npm ci --no-audit --no-fund

# Real n8n for the README's n8n workflow (test/gateway/n8n-workflow.test.ts), from its own
# lockfile in test/tools/n8n, kept out of the project's dependencies (it is 1.7 GB). Its
# sqlite3 module builds from source against the headers of the node that runs the tests.
n8n_dir=.venv-test-tools/n8n
if [ ! -x "$n8n_dir/node_modules/n8n/bin/n8n" ] || ! cmp -s test/tools/n8n/package-lock.json "$n8n_dir/package-lock.json"; then
  echo "installing n8n $(sed -n 's/.*"n8n": "\(.*\)".*/\1/p' test/tools/n8n/package.json) into $n8n_dir"
  rm -rf "$n8n_dir" && mkdir -p "$n8n_dir"
  cp test/tools/n8n/package.json test/tools/n8n/package-lock.json "$n8n_dir/"
  (cd "$n8n_dir" && npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")" npm ci --no-audit --no-fund --loglevel=error)
fi

npm test
