#!/usr/bin/env bash
# Runs one command the way a container of the compose stack would see its
# file system, with this machine's programs: the first process of a private
# mount and PID namespace (started by mini-container.ts through
# `unshare --mount --pid --fork --kill-child [--net]`). It builds a root on a
# tmpfs (read-only binds of /usr/*, a copy of /etc, /dev, a fresh /proc, empty
# /tmp /run /var /opt /usr/local), adds the bundle's files at their container
# paths, chroots there and runs the command as the given user. When standard
# input closes, the command gets the stop signal (compose's stop); when it
# exits, this process exits with its status and the kernel ends every process
# left in the namespace.
#
# usage: mini-root.sh --root DIR [--bind SRC DST]... [--user NAME] [--host NAME]...
#                     [--etc-line FILE LINE]... [--mkdir DIR OWNER]... [--stop-signal SIG]
#                     [--lo] -- COMMAND...
set -euo pipefail

root=
user=
stop_signal=TERM
binds=()
hosts=()
etc_lines=()
dirs=()
lo=0
while [ $# -gt 0 ]; do
  case $1 in
    --root) root=$2; shift 2 ;;
    --bind) binds+=("$2" "$3"); shift 3 ;;
    --user) user=$2; shift 2 ;;
    --host) hosts+=("$2"); shift 2 ;;
    --etc-line) etc_lines+=("$2" "$3"); shift 3 ;;
    --mkdir) dirs+=("$2" "$3"); shift 3 ;;
    --stop-signal) stop_signal=$2; shift 2 ;;
    --lo) lo=1; shift ;;
    --) shift; break ;;
    *) echo "mini-root.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$root" ] || [ $# -eq 0 ]; then
  echo "mini-root.sh: --root and a command are required" >&2
  exit 2
fi

mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs "$root"
mkdir -p "$root"/{usr/local/bin,usr/local/etc,etc,dev,proc,run,tmp,opt,var/lib,var/cache,var/log}
chmod 1777 "$root/tmp"
ln -s ../run "$root/var/run" # relative: also right when followed from outside the chroot
for entry in /usr/*; do
  name=${entry##*/}
  [ "$name" = local ] && continue
  mkdir -p "$root/usr/$name"
  mount --rbind "$entry" "$root/usr/$name"
  mount -o remount,bind,ro "$root/usr/$name"
done
for link in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$link" ]; then ln -s "$(readlink "/$link")" "$root/$link"; fi
done
cp -a /etc/. "$root/etc/"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"

for host in "${hosts[@]}"; do printf '127.0.0.1 %s\n' "$host" >> "$root/etc/hosts"; done
i=0
while [ "$i" -lt "${#etc_lines[@]}" ]; do
  printf '%s\n' "${etc_lines[i+1]}" >> "$root/etc/${etc_lines[i]}"
  i=$((i + 2))
done
i=0
while [ "$i" -lt "${#dirs[@]}" ]; do
  mkdir -p "$root${dirs[i]}"
  chroot "$root" chown "${dirs[i+1]}" "${dirs[i]}"
  i=$((i + 2))
done
i=0
while [ "$i" -lt "${#binds[@]}" ]; do
  src=${binds[i]}
  dst=$root${binds[i+1]}
  if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; [ -e "$dst" ] || touch "$dst"; fi
  mount --bind "$src" "$dst"
  i=$((i + 2))
done
if [ "$lo" = 1 ]; then ip link set lo up; fi

creds=(--reuid=0 --regid=0 --clear-groups)
if [ -n "$user" ]; then creds=(--reuid="$user" --regid="$(chroot "$root" id -gn "$user")" --init-groups); fi

exec 3<&0
# Output through pipes, as in a container: the caller's stdout may be a socket,
# which /dev/stdout (nginx's log target) cannot be opened on. Named pipes, so
# this process can wait for the copies to drain before it exits (its exit ends
# every process left in the namespace).
pipes=$(mktemp -d)
mkfifo "$pipes/out" "$pipes/err"
cat "$pipes/out" &
out_copy=$!
cat "$pipes/err" >&2 &
err_copy=$!
chroot "$root" /usr/bin/setpriv "${creds[@]}" -- "$@" > "$pipes/out" 2> "$pipes/err" &
child=$!
(
  read -r _ <&3 || true
  kill -s "$stop_signal" "$child" 2>/dev/null || true
) &
disown "$!" # ended below without a job report
status=0
wait "$child" || status=$?
# The container stops with its main process: end whatever that left running
# (start.sh's certificate watcher, the stdin watch), so the copies see the end
# of their pipes.
for proc in "$root"/proc/[0-9]*; do
  pid=${proc##*/}
  case $pid in 1 | "$out_copy" | "$err_copy") ;; *) kill -KILL "$pid" 2>/dev/null || true ;; esac
done
wait "$out_copy" "$err_copy" || true
rm -rf "$pipes"
exit "$status"
