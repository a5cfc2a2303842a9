import { DeployError, type DeployErrorCode, type LockInfo, type SshConnection } from '../vps/deployer-types';
import { ExitCode, OpsError, toOpsError } from './errors';
import type { VpsLogin } from './vps-connection';

/**
 * Exit codes of the deployer's errors in the `vps` commands:
 *   5 refused: host key not pinned or not matching, deploy lock held, a release that fails its manifest
 *   4 timeout of a remote command
 *   6 the VPS rejected the SSH key (or the agent offered none it accepts)
 *   3 nothing deployed on the VPS yet (no current release), or nothing to roll back to
 *  64 an invalid input (e.g. a --service name)
 *   1 anything else (failed upload, pull or health gate, lost connection, VPS unreachable, ...)
 */
const EXIT_CODES: Partial<Record<DeployErrorCode, number>> = {
  HOST_KEY_NOT_PINNED: ExitCode.refused,
  HOST_KEY_MISMATCH: ExitCode.refused,
  LOCKED: ExitCode.refused,
  TIMEOUT: ExitCode.timeout,
  NO_CURRENT_RELEASE: ExitCode.notDeployed,
  NO_PREVIOUS_RELEASE: ExitCode.notDeployed,
  INVALID_INPUT: ExitCode.usage,
  RELEASE_TAMPERED: ExitCode.refused,
};

/** What to run next, for the faults whose message the deployer cannot finish (it knows no CLI). */
function nextStep(error: DeployError, what: string, env: string | undefined): string {
  if (!env) return '';
  const again = `npm run ops -- ${what} --env ${env}`;
  switch (error.code) {
    case 'GATE_DETACHED':
      return ` Once the VPS answers again: npm run ops -- vps status --env ${env} (shows the last gate's outcome), then ${again} if needed.`;
    case 'SSH_FAILED':
    case 'DISK_FULL':
      return ` Then: ${again}`;
    default:
      return '';
  }
}

const AUTH_REJECTED = /All configured authentication methods failed/i;
/** ssh2's words for a port nobody answers on: refused, or no SSH banner within readyTimeout (a dropping firewall). */
const UNREACHABLE = /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|Timed out while waiting for handshake/;

function isAuthRejected(error: unknown): boolean {
  return error instanceof DeployError && error.code === 'CONNECT_FAILED' && AUTH_REJECTED.test(error.message);
}

/** Where the command connects, for the hint when the VPS does not answer there. */
export interface VpsAddress {
  readonly host: string;
  readonly port: number;
}

function unreachableHint(error: DeployError, at: VpsAddress, env: string | undefined): string {
  const how = /ECONNREFUSED/.test(error.message) ? 'the connection was refused' : 'no SSH server answered in time';
  return (
    ` Nothing accepts SSH on ${at.host}:${at.port} (${how}). Check vps.sshPort${env ? ` of ${env}` : ''} (now ${at.port}): it must be the port sshd listens on, ` +
    `and the VPS firewall must let it in: provision.sh opens only 80, 443 and the SSH port it was run with (vps.sshPort at that time), ` +
    'so after changing vps.sshPort allow the new port there (ufw allow <port>/tcp) or run vps provision again over the old one; a cloud firewall must allow it too.'
  );
}

function isLockInfo(details: unknown): details is LockInfo {
  return typeof details === 'object' && details !== null && 'owner' in details && 'ageSeconds' in details;
}

/** An OpsError for anything a deployer call (or an SSH session) threw. Messages are already redacted by the deployer. */
export function vpsError(error: unknown, what: string, env?: string, at?: VpsAddress): OpsError {
  if (!(error instanceof DeployError)) return toOpsError(error);
  if (error.code === 'LOCKED' && isLockInfo(error.details)) {
    const { owner, ageSeconds } = error.details;
    return new OpsError(
      `${what} refused: the deploy lock is held by ${owner} (age ${ageSeconds}s); another deploy, rollback or down is running. ` +
        'Wait for it to finish; only if that run is known to be dead, retry with --break-stale-lock. Nothing was changed.',
      ExitCode.refused,
    );
  }
  if (error.code === 'CONNECT_FAILED' && AUTH_REJECTED.test(error.message)) {
    return new OpsError(
      `${what} failed: ${error.message}. The VPS did not accept your key: check --identity (or the keys in your ssh-agent: ssh-add -l) ` +
        'and that its public key is in the user\'s authorized_keys (vps provision puts it there).',
      ExitCode.noCredentials,
    );
  }
  if (error.code === 'CONNECT_FAILED' && at && UNREACHABLE.test(error.message)) {
    return new OpsError(`${what} failed (${error.code}): ${error.message}.${unreachableHint(error, at, env)}`, ExitCode.failure);
  }
  return new OpsError(`${what} failed (${error.code}): ${error.message}${nextStep(error, what, env)}`, EXIT_CODES[error.code] ?? ExitCode.failure);
}

/**
 * Runs `run` with the login's identities in turn, the next one only when the VPS rejected the
 * previous (nothing ran then: authentication precedes every command), and maps what it throws.
 */
export async function loginCall<T>(what: string, login: VpsLogin, run: (connection: SshConnection) => Promise<T>, env?: string): Promise<T> {
  const rejected: string[] = [];
  for (const identity of login.identities) {
    try {
      return await run({ ...login.connection, ...identity.credentials });
    } catch (error) {
      if (!isAuthRejected(error)) throw vpsError(error, what, env, login.connection);
      rejected.push(identity.label);
    }
  }
  const { username, host, port } = login.connection;
  throw new OpsError(
    `${what} failed: ${username}@${host}:${port} rejected every key offered: ${rejected.join(', ')}. ` +
      'Pass the key it knows with --identity (or add it to your ssh-agent: ssh-add <file>; ssh-add -l lists what the agent holds), ' +
      `and check that its public key is in ${username}'s authorized_keys (vps provision puts it there).`,
    ExitCode.noCredentials,
  );
}
