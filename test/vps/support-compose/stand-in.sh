#!/usr/bin/env bash
# Recording stand-in for the system commands provision.sh runs; installed
# under each command's name. Every call is appended to $STANDIN_LOG; the
# state the real command would change (packages, users, services, firewall,
# swap) lives in files under $STANDIN_STATE, so the queries reflect earlier
# mutations the way the real system would.
set -euo pipefail
name=${0##*/}
printf '%s\n' "$name $*" >> "$STANDIN_LOG"
state=$STANDIN_STATE
mkdir -p "$state"

has() { [ -f "$state/$1" ] && grep -qxF -- "$2" "$state/$1"; }
add() { has "$1" "$2" || printf '%s\n' "$2" >> "$state/$1"; }
last() { local arg; for arg in "$@"; do :; done; printf '%s' "$arg"; }

case $name in
  id)
    if [ "${1:-}" = -u ]; then echo "${STANDIN_UID:-0}"; exit 0; fi
    if [ "${1:-}" = -nG ]; then
      has users "$2" || { echo "id: '$2': no such user" >&2; exit 1; }
      groups=$2
      if [ -f "$state/groups-$2" ]; then groups="$groups $(tr '\n' ' ' < "$state/groups-$2")"; fi
      echo "${groups% }"
      exit 0
    fi
    exit 2 ;;
  getent)
    if [ "$1" != passwd ] || ! has users "$2"; then exit 2; fi
    echo "$2:x:1000:1000::/home/$2:/bin/bash" ;;
  useradd)
    user=$(last "$@")
    add users "$user"
    mkdir -p "$ROOT/home/$user" ;;
  usermod)
    [ "$1" = -aG ] || exit 2
    add "groups-$3" "$2" ;;
  dpkg-query)
    package=$(last "$@")
    has packages "$package" || exit 1
    printf 'install ok installed' ;;
  dpkg)
    [ "$1" = --print-architecture ] && echo amd64 ;;
  apt-get)
    if [ "$1" = install ]; then
      for arg in "$@"; do
        case $arg in install | -*) ;; *) add packages "$arg" ;; esac
      done
    fi ;;
  systemctl)
    unit=$(last "$@")
    case $1 in
      is-enabled) has enabled "$unit" || exit 1 ;;
      is-active) has active "$unit" || exit 1 ;;
      enable) add enabled "$unit"; [ "$2" = --now ] && add active "$unit" ;;
      restart | start) add active "$unit" ;;
      *) exit 2 ;;
    esac ;;
  ufw)
    case "$*" in
      "status") if has ufw active; then echo "Status: active"; else echo "Status: inactive"; fi ;;
      "show added")
        echo "Added user rules (see 'ufw status' for running firewall):"
        if [ -f "$state/ufw-rules" ]; then cat "$state/ufw-rules"; else echo "(None)"; fi ;;
      "default deny incoming") sed -i 's/^DEFAULT_INPUT_POLICY=.*/DEFAULT_INPUT_POLICY="DROP"/' "$ROOT/etc/default/ufw" ;;
      "default allow outgoing") sed -i 's/^DEFAULT_OUTPUT_POLICY=.*/DEFAULT_OUTPUT_POLICY="ACCEPT"/' "$ROOT/etc/default/ufw" ;;
      "allow "*) add ufw-rules "ufw $*" ;;
      "--force enable") add ufw active ;;
      *) exit 2 ;;
    esac ;;
  curl)
    out=
    while [ $# -gt 0 ]; do
      if [ "$1" = -o ]; then out=$2; shift; fi
      shift
    done
    echo "stand-in Docker key" > "$out" ;;
  gpg)
    echo "pub:-:4096:1:8D81803C0EBFCD88:1487788586:::-:::scESA::::::23::0:"
    echo "fpr:::::::::${STANDIN_FINGERPRINT:-9DC858229FC7DD38854AE2D88D81803C0EBFCD88}:" ;;
  fallocate)
    echo "stand-in swap file" > "$(last "$@")" ;;
  mkswap | chown) ;;
  swapon)
    if [ "${1:-}" = "--show=NAME" ]; then
      if [ -f "$state/swaps" ]; then cat "$state/swaps"; fi
    else
      add swaps "$1"
    fi ;;
  *)
    echo "stand-in.sh: no stand-in for $name" >&2
    exit 127 ;;
esac
