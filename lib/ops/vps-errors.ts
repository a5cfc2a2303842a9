import { DeployError, type DeployErrorCode, type LockInfo } from '../vps/deployer-types';
import { ExitCode, OpsError, toOpsError } from './errors';

/**
 * Exit codes of the deployer's errors in the `vps` commands:
 *   5 refused: host key not pinned or not matching, deploy lock held, a release that fails its manifest
 *   4 timeout of a remote command
 *   6 the VPS rejected the SSH key (or the agent offered none it accepts)
 *   3 nothing deployed on the VPS yet (no current release), or nothing to roll back to
 *  64 an invalid input (e.g. a --service name)
 *   1 anything else (failed upload, pull or health gate, lost connection, ...)
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

function isLockInfo(details: unknown): details is LockInfo {
  return typeof details === 'object' && details !== null && 'owner' in details && 'ageSeconds' in details;
}

/** An OpsError for anything a deployer call (or an SSH session) threw. Messages are already redacted by the deployer. */
export function vpsError(error: unknown, what: string, env?: string): OpsError {
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
  return new OpsError(`${what} failed (${error.code}): ${error.message}${nextStep(error, what, env)}`, EXIT_CODES[error.code] ?? ExitCode.failure);
}

/** Runs a deployer call, mapping what it throws; `env` lets the message name the command to run next. */
export async function deployerCall<T>(what: string, run: () => Promise<T>, env?: string): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw vpsError(error, what, env);
  }
}
