import { HOST_KEY_TAG } from './gpu-control/protocol';

/**
 * The tags a GPU instance writes on itself (assets/user-data): the contract between the scripts on
 * the box, the instance role that allows exactly these keys, and the ops commands that read them.
 */

/** Set by idle-watcher.sh when the instance leaves its fleet; peers stop counting it. */
export const LEAVING_TAG = 'comfyui:leaving';

/** Written by boot-phase.sh: `bootstrap=41 image=88 models=102 ready=131` (seconds after kernel boot). */
export const BOOT_PHASES_TAG = 'comfyui:boot';

/** Every key an instance may write; HOST_KEY_TAG by link-access.sh (its SSH host key, which the gateway's link pins). */
export const INSTANCE_TAG_KEYS = [LEAVING_TAG, BOOT_PHASES_TAG, HOST_KEY_TAG] as const;

/** The only tag an instance may remove (idle-watcher.sh stays when a gateway lease appears as it leaves). */
export const REMOVABLE_TAG_KEYS = [LEAVING_TAG] as const;

/** The boot phases in the order they finish on a normal boot (image and models run in parallel). */
export const BOOT_PHASES = ['bootstrap', 'image', 'models', 'ready'] as const;

/** Parses the boot-phases tag; unknown or malformed entries are ignored (the box may be newer). */
export function parseBootPhases(value: string | undefined): Record<string, number> | null {
  if (!value) return null;
  const phases: Record<string, number> = {};
  for (const entry of value.split(/\s+/)) {
    const match = /^([a-z-]+)=(\d+)$/.exec(entry);
    if (match) phases[match[1]] = Number(match[2]);
  }
  return Object.keys(phases).length > 0 ? phases : null;
}

/** `bootstrap 41 s, image 88 s, ...` in boot order, then any others. */
export function formatBootPhases(phases: Record<string, number>): string {
  const known = BOOT_PHASES.filter((p) => p in phases);
  const others = Object.keys(phases).filter((p) => !(BOOT_PHASES as readonly string[]).includes(p));
  return [...known, ...others].map((p) => `${p} ${phases[p]} s`).join(', ');
}
