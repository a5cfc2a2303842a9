import type { EnvironmentConfig } from '../../config/load';
import { skip, type CheckOutcome } from './types';

/**
 * Without vps.hostKeySha256 the Vps stack is not synthesized (the GPU-only path, README "First
 * deploy"): the VPS checks then do not apply, and say so.
 */
export function skipWithoutVps(config: EnvironmentConfig): CheckOutcome | undefined {
  if (config.vps.hostKeySha256) return undefined;
  return skip(`${config.envName} has no VPS tier yet (vps.hostKeySha256 is unset: the GPU-only path); pin the VPS host key to check it`);
}
