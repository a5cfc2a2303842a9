#!/usr/bin/env bash
# Provisions a fresh Ubuntu 22.04/24.04 VPS for the compose stack, as root:
#   scp assets/compose/provision.sh root@VPS:/root/
#   ssh root@VPS bash /root/provision.sh --user deploy < ~/.ssh/id_ed25519.pub
# (or --key-file PATH for a public key already on the VPS).
# Docker Engine + compose plugin from Docker's signed apt repository, a deploy
# user in the docker group with the operator's public key, ufw (only SSH, 80
# and 443 in), fail2ban for sshd, unattended security upgrades and a swap file.
# Idempotent: every step checks the state first, so a second run changes nothing.
# Testable: every path is prefixed with ROOT (default empty) and every system
# command is looked up on PATH, so tests can run it with stand-ins.
set -euo pipefail

ROOT=${ROOT:-}
DEPLOY_USER=${DEPLOY_USER:-deploy}
KEY_FILE=${DEPLOY_KEY_FILE:--} # "-" = standard input
APP_DIR=${APP_DIR:-/opt/AiAssets} # the deployer's <baseDir>/<appName>
SSH_PORT=${SSH_PORT:-22}
SWAP_SIZE=${SWAP_SIZE:-2G}
# Docker's release key (https://docs.docker.com/engine/install/ubuntu/).
DOCKER_KEY_FINGERPRINT=9DC858229FC7DD38854AE2D88D81803C0EBFCD88
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a # no prompts from apt or needrestart

log() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<'EOF'
usage: provision.sh [--user NAME] [--key-file PATH|-] [--app-dir DIR]
  --user      deploy user (default deploy; env DEPLOY_USER)
  --key-file  OpenSSH public key(s) to authorize; "-" reads standard input (default; env DEPLOY_KEY_FILE)
  --app-dir   folder the deployer writes releases to, owned by the user (default /opt/AiAssets, the deployer's <baseDir>/<appName>; env APP_DIR)
  env SSH_PORT (default 22), SWAP_SIZE (default 2G), ROOT (path prefix, for tests)
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    --user) DEPLOY_USER=${2:?--user needs a name}; shift 2 ;;
    --key-file) KEY_FILE=${2:?--key-file needs a path}; shift 2 ;;
    --app-dir) APP_DIR=${2:?--app-dir needs a path}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ $DEPLOY_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "--user \"$DEPLOY_USER\": allowed is a Linux user name (a-z, 0-9, _ and -)"
[[ $SSH_PORT =~ ^[0-9]{1,5}$ ]] || die "SSH_PORT \"$SSH_PORT\": allowed is a port number"
[[ $APP_DIR =~ ^/[A-Za-z0-9._/-]+$ ]] || die "--app-dir \"$APP_DIR\": allowed is an absolute path"

# --- helpers: each mutates only when the state differs -----------------------

installed() {
  # shellcheck disable=SC2016 # ${Status} is a dpkg-query field, not a shell variable
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

APT_FRESH=0
apt_install() {
  local missing=() package
  for package in "$@"; do installed "$package" || missing+=("$package"); done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  if [ "$APT_FRESH" = 0 ]; then apt-get update -q; APT_FRESH=1; fi
  log "installing ${missing[*]}"
  apt-get install -y -q "${missing[@]}"
}

WROTE=0
# write_file PATH MODE CONTENT: writes (atomically) only when the content differs; sets WROTE.
write_file() {
  WROTE=0
  if [ -f "$1" ] && [ "$(cat "$1")" = "$3" ]; then return 0; fi
  mkdir -p "$(dirname "$1")"
  printf '%s\n' "$3" > "$1.tmp"
  chmod "$2" "$1.tmp"
  mv "$1.tmp" "$1"
  WROTE=1
  log "wrote ${1#"$ROOT"}"
}

enable_service() {
  if systemctl is-enabled --quiet "$1" && systemctl is-active --quiet "$1"; then return 0; fi
  systemctl enable --now "$1"
}

# --- steps -------------------------------------------------------------------

check_system() {
  [ "$(id -u)" = 0 ] || die "run as root"
  local release=$ROOT/etc/os-release
  grep -qx 'ID=ubuntu' "$release" 2>/dev/null || die "$release: allowed is Ubuntu 22.04 or 24.04"
  CODENAME=$(sed -n 's/^VERSION_CODENAME=//p' "$release" | tr -d '"')
  [[ $CODENAME =~ ^[a-z]+$ ]] || die "$release has no VERSION_CODENAME"
}

install_docker() {
  apt_install ca-certificates curl gnupg
  local keyring=$ROOT/etc/apt/keyrings/docker.asc
  if [ ! -s "$keyring" ]; then
    mkdir -p "$(dirname "$keyring")"
    curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o "$keyring.tmp"
    if ! gpg --show-keys --with-colons "$keyring.tmp" | grep -q "^fpr:.*:$DOCKER_KEY_FINGERPRINT:"; then
      rm -f "$keyring.tmp"
      die "the downloaded Docker key does not have the fingerprint $DOCKER_KEY_FINGERPRINT"
    fi
    chmod 0644 "$keyring.tmp"
    mv "$keyring.tmp" "$keyring"
    log "installed Docker's apt key"
  fi
  write_file "$ROOT/etc/apt/sources.list.d/docker.list" 0644 \
    "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu $CODENAME stable"
  if [ "$WROTE" = 1 ]; then APT_FRESH=0; fi # the new repository needs an apt-get update
  apt_install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
  enable_service docker
}

# Prints the key lines to authorize (comments and blank lines dropped).
read_keys() {
  local comments='^[[:space:]]*(#|$)'
  if [ "$KEY_FILE" != - ]; then
    [ -r "$KEY_FILE" ] || die "--key-file $KEY_FILE is not readable"
    grep -Ev "$comments" -- "$KEY_FILE" || true
  elif [ ! -t 0 ]; then # something is piped in
    grep -Ev "$comments" || true
  fi
}

# Reads and checks the keys before anything changes; sets KEYS.
check_keys() {
  local public_key='^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^[:cntrl:]]*)?$'
  local key n=0 home
  KEYS=$(read_keys)
  # Never echo a rejected line: it might be a private key.
  while IFS= read -r key; do
    n=$((n + 1))
    [[ -z $key || $key =~ $public_key ]] || die "key line $n is not an OpenSSH public key (type, base64, optional comment)"
  done <<<"$KEYS"
  if [ -z "$KEYS" ]; then
    home=$(getent passwd "$DEPLOY_USER" | cut -d: -f6 || true)
    if [ -z "$home" ] || [ ! -s "$ROOT$home/.ssh/authorized_keys" ]; then
      die "no public key given (pipe one on stdin or use --key-file) and $DEPLOY_USER has no authorized key yet"
    fi
  fi
}

authorize_keys() {
  local home=$1 key added=0
  local ssh_dir=$home/.ssh file=$home/.ssh/authorized_keys
  if [ -z "$KEYS" ]; then
    log "no key given; keeping ${file#"$ROOT"}"
    return 0
  fi
  if [ ! -d "$ssh_dir" ]; then
    mkdir -p "$ssh_dir"
    chmod 0700 "$ssh_dir"
    chown "$DEPLOY_USER:$DEPLOY_USER" "$ssh_dir"
  fi
  while IFS= read -r key; do
    if ! grep -qxF -- "$key" "$file" 2>/dev/null; then
      printf '%s\n' "$key" >> "$file"
      added=1
    fi
  done <<<"$KEYS"
  if [ "$added" = 1 ]; then
    chmod 0600 "$file"
    chown "$DEPLOY_USER:$DEPLOY_USER" "$file"
    log "authorized the key(s) for $DEPLOY_USER"
  fi
}

setup_user() {
  if ! getent passwd "$DEPLOY_USER" >/dev/null; then
    useradd --create-home --shell /bin/bash --user-group "$DEPLOY_USER"
    log "created user $DEPLOY_USER"
  fi
  if ! id -nG "$DEPLOY_USER" | tr ' ' '\n' | grep -qx docker; then
    usermod -aG docker "$DEPLOY_USER"
  fi
  local home
  home=$(getent passwd "$DEPLOY_USER" | cut -d: -f6)
  [[ $home == /* ]] || die "user $DEPLOY_USER has no home folder"
  authorize_keys "$ROOT$home"
  if [ ! -d "$ROOT$APP_DIR" ]; then
    mkdir -p "$ROOT$APP_DIR"
    chmod 0750 "$ROOT$APP_DIR"
    chown "$DEPLOY_USER:$DEPLOY_USER" "$ROOT$APP_DIR"
    log "created $APP_DIR for the releases"
  fi
}

setup_firewall() {
  apt_install ufw
  local defaults=$ROOT/etc/default/ufw rule added extra
  grep -qx 'DEFAULT_INPUT_POLICY="DROP"' "$defaults" 2>/dev/null || ufw default deny incoming
  grep -qx 'DEFAULT_OUTPUT_POLICY="ACCEPT"' "$defaults" 2>/dev/null || ufw default allow outgoing
  added=$(ufw show added)
  # SSH first, so enabling the firewall never cuts this session.
  for rule in "$SSH_PORT/tcp" 80/tcp 443/tcp; do
    grep -qxF "ufw allow $rule" <<<"$added" || ufw allow "$rule"
  done
  ufw status | grep -q '^Status: active' || ufw --force enable
  extra=$(grep '^ufw ' <<<"$added" | grep -vxF -e "ufw allow $SSH_PORT/tcp" -e 'ufw allow 80/tcp' -e 'ufw allow 443/tcp' || true)
  if [ -n "$extra" ]; then log "warning: other ufw rules exist (left in place): ${extra//$'\n'/; }"; fi
}

setup_fail2ban() {
  apt_install fail2ban python3-systemd
  write_file "$ROOT/etc/fail2ban/jail.d/sshd.local" 0644 "[sshd]
enabled = true
port = $SSH_PORT
backend = systemd
maxretry = 5
findtime = 10m
bantime = 1h"
  if [ "$WROTE" = 1 ] && systemctl is-active --quiet fail2ban; then systemctl restart fail2ban; fi
  enable_service fail2ban
}

setup_unattended_upgrades() {
  apt_install unattended-upgrades
  # Ubuntu's 50unattended-upgrades already limits the origins to -security.
  write_file "$ROOT/etc/apt/apt.conf.d/20auto-upgrades" 0644 'APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";'
  enable_service unattended-upgrades
}

setup_swap() {
  if [ -n "$(swapon --show=NAME --noheadings)" ]; then
    log "swap already active"
    return 0
  fi
  local file=$ROOT/swapfile
  if [ ! -f "$file" ]; then
    fallocate -l "$SWAP_SIZE" "$file"
    chmod 0600 "$file"
    mkswap "$file" >/dev/null
  fi
  swapon "$file"
  if ! grep -qE '^/swapfile[[:space:]]' "$ROOT/etc/fstab" 2>/dev/null; then
    printf '/swapfile none swap sw 0 0\n' >> "$ROOT/etc/fstab"
  fi
  log "swap file /swapfile ($SWAP_SIZE) active"
}

check_system
check_keys
install_docker
setup_user
setup_firewall
setup_fail2ban
setup_unattended_upgrades
setup_swap
log "done: $DEPLOY_USER can deploy to $APP_DIR; only ports $SSH_PORT, 80 and 443 are open"
