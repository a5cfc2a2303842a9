import { StringDecoder } from 'node:string_decoder';
import { Client, type SFTPWrapper } from 'ssh2';
import { DeployError, type SshConnection } from './deployer-types';

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const SFTP_CHUNK = 32 * 1024;

export interface RunOptions {
  /** Bytes for the command's stdin (how anything sensitive reaches a remote program). */
  stdin?: string | Buffer;
  /** Kill the command (and fail with TIMEOUT) after this long. */
  timeoutMs?: number;
  /** Called with each complete output line (stdout and stderr). */
  onLine?: (line: string) => void;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `SHA256:<base64, no padding>` of a sha256 digest given in hex (what ssh2's hostHash yields). */
export function fingerprintFromSha256Hex(hex: string): string {
  return `SHA256:${Buffer.from(hex, 'hex').toString('base64').replace(/=+$/, '')}`;
}

/** Validates a configured fingerprint; trailing `=` padding is tolerated. */
export function normalizeFingerprint(value: string): string {
  const trimmed = value.trim().replace(/=+$/, '');
  if (!FINGERPRINT.test(trimmed)) {
    throw new DeployError(
      'INVALID_INPUT',
      `hostKeySha256 "${value}" is not a fingerprint like SHA256:<43 base64 characters> as printed by ssh-keygen -lf`,
    );
  }
  return trimmed;
}

function keyscanHint(conn: SshConnection): string {
  return `ssh-keyscan -p ${conn.port} ${conn.host} | ssh-keygen -lf -`;
}

/**
 * Opens an SSH connection that is only usable if the server's host key matches
 * the pinned fingerprint. ssh2 calls hostVerifier during key exchange, before
 * authentication, so a wrong server never sees our key, a command or a byte of
 * a file.
 */
export async function openSession(conn: SshConnection): Promise<SshSession> {
  if (!conn.hostKeySha256) {
    throw new DeployError(
      'HOST_KEY_NOT_PINNED',
      `no host key fingerprint (hostKeySha256) configured for ${conn.host}:${conn.port}: refusing to connect to an unverified server. ` +
        `Get it over a trusted network with: ${keyscanHint(conn)} and pin the SHA256:... value of the server's key type (e.g. ED25519).`,
    );
  }
  const expected = normalizeFingerprint(conn.hostKeySha256);
  if (!conn.host || !Number.isInteger(conn.port) || conn.port < 1 || conn.port > 65535 || !conn.username) {
    throw new DeployError('INVALID_INPUT', `connection needs a host, a port from 1 to 65535 and a username (got ${conn.host}:${conn.port} as "${conn.username}")`);
  }
  const where = `${conn.username}@${conn.host}:${conn.port}`;
  const client = new Client();
  let received: string | undefined;

  return new Promise<SshSession>((resolve, reject) => {
    let settled = false;
    const fail = (cause: string) => {
      if (settled) return;
      settled = true;
      client.destroy();
      if (received !== undefined && received !== expected) {
        reject(
          new DeployError(
            'HOST_KEY_MISMATCH',
            `host key of ${conn.host}:${conn.port} does not match the pinned fingerprint: expected ${expected}, received ${received}. ` +
              `Refusing to authenticate or run anything. If the server was legitimately rebuilt, verify the new key out of band (${keyscanHint(conn)}) and update hostKeySha256.`,
          ),
        );
      } else {
        reject(new DeployError('CONNECT_FAILED', `could not open an SSH session to ${where}: ${cause}`));
      }
    };
    client.once('ready', () => {
      settled = true;
      resolve(new SshSession(client, where));
    });
    client.on('error', (err) => fail(err.message));
    client.once('close', () => fail('connection closed during the handshake'));
    client.connect({
      host: conn.host,
      port: conn.port,
      username: conn.username,
      privateKey: conn.privateKey,
      agent: conn.privateKey ? undefined : conn.agent,
      readyTimeout: conn.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      // ssh2 hashes the raw host key blob with this algorithm and hands us the hex digest.
      hostHash: 'sha256',
      hostVerifier: (digestHex: string): boolean => {
        received = fingerprintFromSha256Hex(digestHex);
        return received === expected;
      },
    });
  });
}

/** Splits a byte stream into lines (a line may arrive across chunks). */
class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  text = '';

  constructor(private readonly onLine?: (line: string) => void) {}

  push(chunk: Buffer): void {
    const s = this.decoder.write(chunk);
    this.text += s;
    if (!this.onLine) return;
    const parts = (this.partial + s).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(line.replace(/\r$/, ''));
  }

  end(): void {
    const rest = this.decoder.end();
    this.text += rest;
    const last = this.partial + rest;
    if (this.onLine && last) this.onLine(last);
    this.partial = '';
  }
}

/** One authenticated SSH connection: remote commands plus SFTP writes. */
export class SshSession {
  private sftpChannel?: Promise<SFTPWrapper>;
  private lostReason?: string;

  constructor(
    private readonly client: Client,
    readonly where: string,
  ) {
    client.on('error', (err) => (this.lostReason = err.message));
    client.on('close', () => (this.lostReason ??= 'connection closed'));
  }

  /**
   * Runs a script through the remote user's shell. Scripts are built only from
   * validated names and quoted paths: secret values never appear in them.
   */
  run(script: string, opts: RunOptions = {}): Promise<RunResult> {
    return new Promise<RunResult>((resolve, reject) => {
      if (this.lostReason) {
        reject(new DeployError('SSH_FAILED', `SSH connection to ${this.where} lost: ${this.lostReason}`));
        return;
      }
      this.client.exec(script, (err, stream) => {
        if (err) {
          reject(new DeployError('SSH_FAILED', `could not start a remote command on ${this.where}: ${err.message}`));
          return;
        }
        const out = new LineSplitter(opts.onLine);
        const errOut = new LineSplitter(opts.onLine);
        let code: number | null = null;
        let timedOut = false;
        const timer =
          opts.timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                timedOut = true;
                stream.signal('KILL');
                stream.close();
              }, opts.timeoutMs);
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errOut.push(d));
        stream.on('exit', (exitCode: number | null) => (code = exitCode));
        stream.on('close', () => {
          if (timer) clearTimeout(timer);
          out.end();
          errOut.end();
          if (timedOut) {
            reject(new DeployError('TIMEOUT', `remote command on ${this.where} did not finish within ${opts.timeoutMs} ms`));
          } else if (code === null) {
            reject(new DeployError('SSH_FAILED', `remote command on ${this.where} ended without an exit status (${this.lostReason ?? 'killed'})`));
          } else {
            resolve({ code, stdout: out.text, stderr: errOut.text });
          }
        });
        stream.end(opts.stdin);
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpChannel ??= new Promise<SFTPWrapper>((resolve, reject) =>
      this.client.sftp((err, sftp) => (err ? reject(new DeployError('SSH_FAILED', `could not open SFTP on ${this.where}: ${err.message}`)) : resolve(sftp))),
    );
    return this.sftpChannel;
  }

  /**
   * Creates a new file over SFTP with `mode` from the first instant (open with
   * O_CREAT|O_EXCL and the mode attribute), so a secret file is never readable
   * by others, not even briefly, and an existing file is never overwritten.
   */
  async writeNewFile(path: string, data: Buffer, mode: number): Promise<void> {
    const sftp = await this.sftp();
    const handle = await new Promise<Buffer>((resolve, reject) =>
      sftp.open(path, 'wx', { mode }, (err, h) => (err ? reject(err) : resolve(h))),
    );
    try {
      for (let offset = 0; offset < data.length; offset += SFTP_CHUNK) {
        const length = Math.min(SFTP_CHUNK, data.length - offset);
        await new Promise<void>((resolve, reject) => sftp.write(handle, data, offset, length, offset, (err) => (err ? reject(err) : resolve())));
      }
    } finally {
      await new Promise<void>((resolve) => sftp.close(handle, () => resolve()));
    }
  }

  close(): void {
    this.client.end();
  }
}
