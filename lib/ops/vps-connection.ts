import * as path from 'node:path';
import { loadEnvironment, type EnvironmentConfig } from '../config/load';
import type { DeployTarget, SshConnection } from '../vps/deployer-types';
import type { OpsDeps } from './context';
import { ExitCode, OpsError, toOpsError } from './errors';
import { sshIdentities, type SshAuth, type SshIdentity } from './ssh-identity';

/**
 * How the `vps` commands reach the VPS: host, port, user and the pinned host key
 * come from the environment's config only (no --host/--port override, so the
 * pin cannot be sidestepped); authentication is the operator's own key file or
 * ssh-agent (ssh-identity.ts).
 */

/** The environment through the deps seam (tests) or loadEnvironment; config errors exit 64. */
export function loadVpsConfig(envName: string, deps: Pick<OpsDeps, 'loadConfig'>): EnvironmentConfig {
  try {
    return (deps.loadConfig ?? loadEnvironment)(envName);
  } catch (error) {
    throw toOpsError(error);
  }
}

/** The placeholder fingerprint of the checked-in environments (lib/config/environments.ts) matches no server. */
const PLACEHOLDER_FINGERPRINT = /^SHA256:REPLACE/;

export function keyscanHint(config: EnvironmentConfig): string {
  return `ssh-keyscan -p ${config.vps.sshPort} ${config.vps.host} | ssh-keygen -lf -`;
}

/** Refuses (exit 5) before any network traffic when the host key is not pinned, or pinned to the placeholder. */
export function pinnedFingerprint(config: EnvironmentConfig): string {
  const pinned = config.vps.hostKeySha256;
  const where = `${config.vps.host}:${config.vps.sshPort}`;
  const fix =
    `Get the fingerprint over a trusted network with: ${keyscanHint(config)} ` +
    `and set the SHA256:... value of the server's key type (e.g. ED25519) as vps.hostKeySha256 of ${config.envName} in lib/config/environments.ts.`;
  if (!pinned) {
    throw new OpsError(`vps.hostKeySha256 is not set for ${config.envName}: refusing to connect to ${where}, an unverified server. ${fix}`, ExitCode.refused);
  }
  if (PLACEHOLDER_FINGERPRINT.test(pinned)) {
    throw new OpsError(`vps.hostKeySha256 of ${config.envName} is still the placeholder ${pinned}: refusing to connect to ${where}. ${fix}`, ExitCode.refused);
  }
  return pinned;
}

export type { SshAuth } from './ssh-identity';

/** How to reach the VPS: where, as whom and the pin (one SshConnection per identity, tried in turn). */
export interface VpsLogin {
  readonly connection: Omit<SshConnection, 'privateKey' | 'agent'>;
  readonly identities: readonly SshIdentity[];
}

/**
 * The login as `username` (default the deploy user), pinned to the configured fingerprint, with
 * the operator's credentials (see ssh-identity.ts); unusable default key files go to `warn`.
 */
export function vpsLogin(config: EnvironmentConfig, auth: SshAuth, env: NodeJS.ProcessEnv, warn: (text: string) => void, username = config.vps.deployUser): VpsLogin {
  const hostKeySha256 = pinnedFingerprint(config);
  const { identities, warnings } = sshIdentities(auth, env);
  for (const warning of warnings) warn(warning);
  return { connection: { host: config.vps.host, port: config.vps.sshPort, username, hostKeySha256 }, identities };
}

/** Where the environment lives on the VPS, as the custom resource addresses it. */
export function vpsTarget(config: EnvironmentConfig): DeployTarget {
  return { appName: config.appName, envName: config.envName, baseDir: config.vps.baseDir, keepReleases: config.vps.releasesToKeep };
}

/** `<baseDir>/<App>/<env>` on the VPS (for messages). */
export function vpsEnvDir(config: EnvironmentConfig): string {
  return path.posix.join(config.vps.baseDir, config.appName, config.envName);
}
