import * as fs from 'node:fs';
import * as path from 'node:path';
import { utils as sshUtils } from 'ssh2';
import { loadEnvironment, type EnvironmentConfig } from '../config/load';
import type { DeployTarget, SshConnection } from '../vps/deployer-types';
import type { OpsDeps } from './context';
import { ExitCode, OpsError, toOpsError } from './errors';

/**
 * How the `vps` commands reach the VPS: host, port, user and the pinned host key
 * come from the environment's config only (no --host/--port override, so the
 * pin cannot be sidestepped); authentication is the operator's own key file or
 * ssh-agent.
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

export interface SshAuth {
  /** `--identity`: a private key file (unencrypted; use the agent for a passphrase-protected key). */
  readonly identity?: string;
}

/** The operator's credentials: the --identity key, else the ssh-agent of SSH_AUTH_SOCK. Never echoes key material. */
export function sshCredentials(auth: SshAuth, env: NodeJS.ProcessEnv): Pick<SshConnection, 'privateKey' | 'agent'> {
  if (auth.identity) {
    let key: Buffer;
    try {
      key = fs.readFileSync(auth.identity);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new OpsError(`--identity ${auth.identity}: cannot read the file (${code}).`, ExitCode.usage);
    }
    const parsed = sshUtils.parseKey(key);
    if (parsed instanceof Error) {
      // Never include the file's content (or ssh2's view of it) in the message.
      throw new OpsError(
        /encrypted|passphrase/i.test(parsed.message)
          ? `--identity ${auth.identity} is passphrase-protected: add it to your ssh-agent (ssh-add ${auth.identity}) and run without --identity.`
          : `--identity ${auth.identity} is not an OpenSSH or PEM private key (${parsed.message}).`,
        ExitCode.usage,
      );
    }
    if (!parsed.isPrivateKey()) {
      throw new OpsError(`--identity ${auth.identity} holds a public key: pass the private key file (the one without .pub).`, ExitCode.usage);
    }
    return { privateKey: key };
  }
  const agent = env.SSH_AUTH_SOCK;
  if (agent) return { agent };
  throw new OpsError(
    'No SSH credentials: pass --identity <private key file>, or start ssh-agent and add your key (eval "$(ssh-agent)"; ssh-add), so SSH_AUTH_SOCK is set.',
    ExitCode.noCredentials,
  );
}

/** Connection to the VPS as `username` (default the deploy user), pinned to the configured fingerprint. */
export function vpsConnection(config: EnvironmentConfig, auth: SshAuth, env: NodeJS.ProcessEnv, username = config.vps.deployUser): SshConnection {
  const hostKeySha256 = pinnedFingerprint(config);
  return { host: config.vps.host, port: config.vps.sshPort, username, hostKeySha256, ...sshCredentials(auth, env) };
}

/** Where the environment lives on the VPS, as the custom resource addresses it. */
export function vpsTarget(config: EnvironmentConfig): DeployTarget {
  return { appName: config.appName, envName: config.envName, baseDir: config.vps.baseDir, keepReleases: config.vps.releasesToKeep };
}

/** `<baseDir>/<App>/<env>` on the VPS (for messages). */
export function vpsEnvDir(config: EnvironmentConfig): string {
  return path.posix.join(config.vps.baseDir, config.appName, config.envName);
}
