import { Client, type ServerHostKeyAlgorithm } from 'ssh2';
import type { SshConnection } from './deployer-types';

/**
 * Host key families ssh2 offers, in its preference order (ssh2 1.17.0,
 * lib/protocol/constants.js DEFAULT_SERVER_HOST_KEY): a server with several host
 * keys is verified by the first family both sides support, so a pin of another
 * family's key never matches even though the server is the right one.
 */
export const HOST_KEY_FAMILIES: ReadonlyArray<{ name: string; keyscanType: string; algorithms: ServerHostKeyAlgorithm[] }> = [
  { name: 'ED25519', keyscanType: 'ed25519', algorithms: ['ssh-ed25519'] },
  { name: 'ECDSA', keyscanType: 'ecdsa', algorithms: ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'] },
  { name: 'RSA', keyscanType: 'rsa', algorithms: ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] },
];

/** `SHA256:<base64, no padding>` of a sha256 digest given in hex (what ssh2's hostHash yields). */
export function fingerprintFromSha256Hex(hex: string): string {
  return `SHA256:${Buffer.from(hex, 'hex').toString('base64').replace(/=+$/, '')}`;
}

/**
 * The fingerprint of the server's host key of one family, or null when it has none. A
 * handshake only: the verifier always refuses, so nothing authenticates or runs.
 */
function probeFamily(conn: SshConnection, algorithms: ServerHostKeyAlgorithm[]): Promise<string | null> {
  return new Promise((resolve) => {
    const client = new Client();
    let seen: string | null = null;
    const done = () => {
      client.destroy();
      resolve(seen);
    };
    const timer = setTimeout(done, conn.readyTimeoutMs ?? 20_000);
    client.on('error', () => {
      clearTimeout(timer);
      done();
    });
    client.on('close', () => {
      clearTimeout(timer);
      done();
    });
    client.connect({
      host: conn.host,
      port: conn.port,
      username: conn.username,
      readyTimeout: conn.readyTimeoutMs ?? 20_000,
      algorithms: { serverHostKey: algorithms },
      hostHash: 'sha256',
      hostVerifier: (digestHex: string): boolean => {
        seen = fingerprintFromSha256Hex(digestHex);
        return false;
      },
    });
  });
}

/** The server's host key fingerprint of each family it has (one refused handshake per family). */
export async function serverHostKeys(conn: SshConnection): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  for (const family of HOST_KEY_FAMILIES) {
    const fingerprint = await probeFamily(conn, family.algorithms);
    if (fingerprint) keys.set(family.name, fingerprint);
  }
  return keys;
}
