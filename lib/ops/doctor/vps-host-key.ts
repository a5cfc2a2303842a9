import { openSession } from '../../vps/ssh-session';
import { HOST_KEY_FAMILIES, serverHostKeys } from '../../vps/deployer-host-key';
import { DeployError } from '../../vps/deployer-types';
import { OpsError } from '../errors';
import { keyscanHint, pinnedFingerprint } from '../vps-connection';
import { ok, problem, type CheckOutcome, type DoctorCheck } from './types';
import { skipWithoutVps } from './vps-scope';

/** SSH handshake bound (each probe, and the deployer's own connection for a diagnosis). */
const HANDSHAKE_TIMEOUT_MS = 8_000;

/** What ssh2 says when the server refused every way we offered to log in: the handshake, host key included, is done. */
const AUTH_REFUSED = /All configured authentication methods failed/i;

/**
 * Checks the host key the deployer verifies without logging in: doctor may run before a deploy
 * key exists, and a refused login would count against the VPS's fail2ban. The server's key of
 * each family is read with refused handshakes (serverHostKeys), and the one the deployer checks is
 * the first family in ssh2's preference order. Anything else (another key, no answer) goes through
 * the deployer's own openSession, which fails before authentication and says why.
 */
export const vpsHostKeyCheck: DoctorCheck = {
  name: 'vps-host-key',
  severity: 'fail',
  actions: [],
  timeoutMs: 6 * HANDSHAKE_TIMEOUT_MS,
  async run({ config }): Promise<CheckOutcome> {
    const skipped = skipWithoutVps(config);
    if (skipped) return skipped;
    const { host, sshPort: port, deployUser } = config.vps;
    const where = `${host}:${port}`;
    let pinned: string;
    try {
      pinned = pinnedFingerprint(config);
    } catch (error) {
      if (!(error instanceof OpsError)) throw error;
      return problem('fail', error.message.replace(/ Get the fingerprint.*$/, ''), `${keyscanHint(config)}   # over a trusted network; pin the printed SHA256:... as vps.hostKeySha256 of ${config.envName}`);
    }
    const conn = { host, port, username: deployUser, hostKeySha256: pinned, readyTimeoutMs: HANDSHAKE_TIMEOUT_MS };
    const keys = await serverHostKeys(conn);
    const verified = HOST_KEY_FAMILIES.find((f) => keys.has(f.name));
    if (verified && keys.get(verified.name) === pinned) {
      return ok(`${where} answered with the pinned host key ${pinned} (its ${verified.name} key, the one deploys verify); no login tried, so no SSH key is needed`);
    }
    try {
      const session = await openSession(conn);
      session.close();
      return ok(`${where} answered with the pinned host key ${pinned} (and let ${deployUser} in without a key)`);
    } catch (error) {
      if (!(error instanceof DeployError)) throw error;
      return outcomeOf(error, config.envName, where, pinned, deployUser);
    }
  },
};

function outcomeOf(error: DeployError, envName: string, where: string, pinned: string, user: string): CheckOutcome {
  const firewall = `check vps.sshPort of ${envName} in lib/config/environments.ts and that sshd listens on it and the VPS firewall admits it (provision.sh: ufw allows only 22, 80 and 443)`;
  if (error.code === 'HOST_KEY_MISMATCH') {
    // The deployer's message names both fingerprints and what to do (another family's key, or another server).
    return problem('fail', error.message, `verify the server's key out of band and update vps.hostKeySha256 of ${envName} in lib/config/environments.ts (or correct vps.host if this is not your server)`);
  }
  if (error.code === 'CONNECT_FAILED' && AUTH_REFUSED.test(error.message)) {
    // The keys changed between the probes and this connection, which then verified the pin.
    return ok(`${where} answered with the pinned host key ${pinned}; ${user} was not let in without a key (vps status checks the deploy key)`);
  }
  if (/ECONNREFUSED/.test(error.message)) return problem('fail', `nothing accepts connections on ${where} (connection refused)`, firewall);
  if (/ENOTFOUND|EAI_AGAIN/.test(error.message)) return problem('fail', `vps.host does not resolve: ${error.message}`, `check vps.host of ${envName} in lib/config/environments.ts and its DNS A record`);
  if (/Timed out|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/i.test(error.message)) return problem('fail', `no SSH answer from ${where}: ${error.message}`, firewall);
  return problem('fail', error.message, firewall);
}
