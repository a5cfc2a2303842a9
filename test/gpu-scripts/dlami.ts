/**
 * A stand-in for the disks and services of the AWS Deep Learning Base OSS Nvidia Driver GPU AMI
 * (Ubuntu 22.04), written from its release notes and from public code that runs on it:
 * - Release notes (docs.aws.amazon.com/dlami/latest/devguide, "Base OSS Nvidia Driver GPU AMI
 *   (Ubuntu 22.04)", 2025-11 to 2026-10 releases): `nvme_location /opt/dlami/nvme`; packages docker,
 *   nvidia-container-toolkit, the awscli v1 pip package; no CloudWatch agent.
 * - The AMI's dlami-nvme service (public users call /opt/aws/dlami/bin/nvme_ephemeral_drives.sh and
 *   mount /dev/mapper/vg.01-lv_ephemeral): the instance-store disk becomes an LVM physical volume
 *   (blkid TYPE LVM2_member) whose logical volume is mounted at /opt/dlami/nvme before user data runs.
 * - util-linux and e2fsprogs on a disk that is in use: `mkfs.ext4` refuses ("is apparently in use by
 *   the system; will not make a filesystem here!") and `mount` fails with exit 32 ("already mounted or
 *   mount point busy").
 * The stand-in keeps its state in files under `state/`, so a "reboot" or a "fresh instance" is a
 * matter of keeping or clearing that folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './harness';

export const EBS_ROOT = '/dev/nvme0n1';
export const INSTANCE_STORE = '/dev/nvme1n1';
const LVM_VOLUME = '/dev/mapper/vg.01-lv_ephemeral';

export interface DiskLayout {
  /** `dlami`: the AMI has put the instance store into LVM and mounted it; `blank`: an unformatted disk; `none`: EBS only. */
  readonly instanceStore: 'dlami' | 'blank' | 'none';
}

/** Installs the disk and systemctl stand-ins into the sandbox and lays out the disks of a freshly launched instance. */
export function installDlamiStandIn(sb: Sandbox, root: string, layout: DiskLayout): string {
  const state = sb.path('state');
  fs.rmSync(state, { recursive: true, force: true });
  fs.mkdirSync(state);
  const disks = [`${EBS_ROOT} Amazon Elastic Block Store`];
  fs.writeFileSync(path.join(state, `tree-${path.basename(EBS_ROOT)}`), `${EBS_ROOT} \n/dev/nvme0n1p1 /\n`);
  fs.writeFileSync(path.join(state, 'mounts'), '/\n');
  if (layout.instanceStore !== 'none') {
    disks.push(`${INSTANCE_STORE} Amazon EC2 NVMe Instance Storage`);
    const name = path.basename(INSTANCE_STORE);
    if (layout.instanceStore === 'dlami') {
      const mountpoint = path.join(root, 'opt/dlami/nvme');
      fs.mkdirSync(mountpoint, { recursive: true });
      fs.writeFileSync(path.join(state, `tree-${name}`), `${INSTANCE_STORE} \n${LVM_VOLUME} ${mountpoint}\n`);
      fs.writeFileSync(path.join(state, `fs-${name}`), 'LVM2_member\n\n');
      fs.writeFileSync(path.join(state, `busy-${name}`), '');
      fs.appendFileSync(path.join(state, 'mounts'), `${mountpoint}\n`);
    } else {
      fs.writeFileSync(path.join(state, `tree-${name}`), `${INSTANCE_STORE} \n`);
    }
  }
  fs.writeFileSync(path.join(state, 'disks'), `${disks.join('\n')}\n`);

  sb.stub(
    'lsblk',
    `case "$*" in
  "-dnpo NAME,MODEL") cat "$FAKE_STATE/disks" ;;
  "-nlpo NAME,MOUNTPOINT "*) cat "$FAKE_STATE/tree-$(basename "\${!#}")" ;;
  *) echo "lsblk stand-in: unexpected arguments $*" >&2; exit 64 ;;
esac`,
  );
  // blkid -p -o value -s TYPE|LABEL DEV: line 1 of fs-DEV is the type, line 2 the label; exit 2 = no signature.
  sb.stub(
    'blkid',
    `f="$FAKE_STATE/fs-$(basename "\${!#}")"; [ -f "$f" ] || exit 2
case "$5" in TYPE) sed -n 1p "$f" ;; LABEL) sed -n 2p "$f" ;; *) exit 64 ;; esac`,
  );
  sb.stub(
    'mkfs.ext4',
    `d=$(basename "\${!#}")
if [ -f "$FAKE_STATE/busy-$d" ]; then echo "mke2fs: \${!#} is apparently in use by the system; will not make a filesystem here!" >&2; exit 1; fi
label=""; while [ $# -gt 1 ]; do [ "$1" = -L ] && label=$2; shift; done
printf 'ext4\\n%s\\n' "$label" >"$FAKE_STATE/fs-$d"`,
  );
  sb.stub(
    'mount',
    `if [ "$1" = --bind ]; then echo "$3" >>"$FAKE_STATE/mounts"; exit 0; fi
dev=\${@: -2:1}; dir=\${!#}; d=$(basename "$dev")
if [ -f "$FAKE_STATE/busy-$d" ]; then echo "mount: $dir: $dev already mounted or mount point busy." >&2; exit 32; fi
[ -f "$FAKE_STATE/fs-$d" ] || { echo "mount: $dir: wrong fs type, bad option, bad superblock on $dev" >&2; exit 32; }
echo "$dir" >>"$FAKE_STATE/mounts"; touch "$FAKE_STATE/busy-$d"`,
  );
  sb.stub('mountpoint', '[ "$1" = -q ] && grep -qxF -- "$2" "$FAKE_STATE/mounts"');
  // Docker runs on a booted DLAMI; everything else systemctl is asked is recorded and succeeds.
  sb.stub('systemctl', '[ "$1" = is-active ] && exit 0; exit 0');
  return state;
}

/** The folders mounted so far (root-prefixed). */
export function mounts(state: string): string[] {
  return fs.readFileSync(path.join(state, 'mounts'), 'utf8').split('\n').filter(Boolean);
}
