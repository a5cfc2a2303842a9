import { StringDecoder } from 'node:string_decoder';
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2';
import { sq } from './deployer-input';
import { fingerprintFromSha256Hex, HOST_KEY_FAMILIES, serverHostKeys } from './deployer-host-key';
import { DeployError, type SshConnection } from './deployer-types';

export { fingerprintFromSha256Hex } from './deployer-host-key';

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const SFTP_CHUNK = 32 * 1024;
/** Default bound of a remote command: every SSH operation ends, one way or another. */
export const DEFAULT_RUN_TIMEOUT_MS = 60_000;
/** Bound of one SFTP request (open, write, close): a live connection answers within this. */
const SFTP_OP_TIMEOUT_MS = 30_000;
/** After the server-side `timeout` kills a command, how long its exit may take to arrive before the connection is cut. */
const KILL_GRACE_SECONDS = 5;

export interface RunOptions {
  /** Bytes for the command's stdin (how anything sensitive reaches a remote program). */
  stdin?: string | Buffer;
  /**
   * Kill the command (and fail with TIMEOUT) after this long; default DEFAULT_RUN_TIMEOUT_MS.
   * Enforced on the server (coreutils `timeout`, which kills the command's whole process group)
   * and on the client (the connection is cut when no exit arrives in time).
   */
  timeoutMs?: number;
  /** Called with each complete output line (stdout and stderr). */
  onLine?: (line: string) => void;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
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
        void hostKeyMismatch(conn, expected, received).then(reject);
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

/**
 * Why a host key did not match. A server has one key per family (ED25519, ECDSA, RSA) and
 * ssh2 verifies the first family in its preference order, so a pin of the same server's RSA
 * key fails against its ED25519 key: that is told apart from a different server.
 */
async function hostKeyMismatch(conn: SshConnection, expected: string, received: string): Promise<DeployError> {
  const keys = await serverHostKeys(conn).catch(() => new Map<string, string>());
  const family = (fp: string) => [...keys].find(([, v]) => v === fp)?.[0];
  const pinnedFamily = family(expected);
  const receivedFamily = family(received) ?? 'negotiated';
  const head = `host key of ${conn.host}:${conn.port} does not match the pinned fingerprint: expected ${expected}, received ${received}.`;
  if (pinnedFamily) {
    const type = HOST_KEY_FAMILIES.find((f) => f.name === receivedFamily)?.keyscanType ?? 'ed25519';
    return new DeployError(
      'HOST_KEY_MISMATCH',
      `${head} The pinned fingerprint is this server's ${pinnedFamily} host key, but the connection verifies its ${receivedFamily} key: ` +
        `ssh2 picks the server's host key type in the order ${HOST_KEY_FAMILIES.map((f) => f.name).join(', ')} (its algorithms.serverHostKey default) ` +
        `and checks that key with hostVerifier. Pin the ${receivedFamily} fingerprint instead: ` +
        `ssh-keyscan -t ${type} -p ${conn.port} ${conn.host} | ssh-keygen -lf - (it should print ${received}) and set that as hostKeySha256.`,
    );
  }
  return new DeployError(
    'HOST_KEY_MISMATCH',
    `${head} None of the server's host keys (${[...keys.keys()].join(', ') || 'none could be read'}) has the pinned fingerprint: ` +
      `this may not be your server. Refusing to authenticate or run anything. If the server was rebuilt, verify its new key out of band ` +
      `(${keyscanHint(conn)}) and update hostKeySha256.`,
  );
}

/** Splits a byte stream into lines (a line may arrive across chunks). */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  text = '';

  /** `keepText` false: only `onLine` sees the output (a follow that streams for hours keeps nothing). */
  constructor(
    private readonly onLine?: (line: string) => void,
    private readonly keepText = true,
  ) {}

  push(chunk: Buffer): void {
    const s = this.decoder.write(chunk);
    if (this.keepText) this.text += s;
    if (!this.onLine) return;
    const parts = (this.partial + s).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(line.replace(/\r$/, ''));
  }

  end(): void {
    const rest = this.decoder.end();
    if (this.keepText) this.text += rest;
    const last = this.partial + rest;
    if (this.onLine && last) this.onLine(last);
    this.partial = '';
  }
}

/** One authenticated SSH connection: remote commands plus SFTP writes, each bounded in time. */
export class SshSession {
  private sftpChannel?: Promise<SFTPWrapper>;
  private lostReason?: string;
  /** Rejecters of every operation in flight: a lost connection fails them all at once. */
  private readonly pending = new Set<(err: Error) => void>();

  constructor(
    private readonly client: Client,
    readonly where: string,
  ) {
    client.on('error', (err) => this.lose(err.message));
    client.on('close', () => this.lose('connection closed'));
  }

  /** Whether the connection is gone (closed by either side, or cut after a timeout). */
  get lost(): boolean {
    return this.lostReason !== undefined;
  }

  /** Listeners told once when the connection goes (for channels that outlive one bounded operation). */
  private readonly lostListeners = new Set<(reason: string) => void>();

  /** Calls `listener` once with the reason when the connection is lost; returns its remover. */
  onLost(listener: (reason: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  private lose(reason: string): void {
    if (this.lostReason === undefined) {
      this.lostReason = reason;
      for (const listener of [...this.lostListeners]) listener(reason);
      this.lostListeners.clear();
    }
    const err = this.lostError();
    for (const reject of [...this.pending]) reject(err);
    this.pending.clear();
  }

  private lostError(): DeployError {
    return new DeployError('SSH_FAILED', `SSH connection to ${this.where} lost: ${this.lostReason}`);
  }

  /** Cuts the connection: what a timed-out operation leaves is not trusted to ever answer. */
  private cut(reason: string): void {
    this.lose(reason);
    this.client.destroy();
  }

  /**
   * Runs `start` as one operation that settles exactly once: with its own result, with the
   * connection's loss, or with TIMEOUT after `timeoutMs` (which cuts the connection).
   */
  private bounded<T>(what: string, timeoutMs: number, start: (resolve: (v: T) => void, reject: (e: Error) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.lostReason) {
        reject(this.lostError());
        return;
      }
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(fail);
        fn();
      };
      const fail = (err: Error) => finish(() => reject(err));
      const timer = setTimeout(() => {
        fail(new DeployError('TIMEOUT', `${what} on ${this.where} did not finish within ${timeoutMs} ms; the connection was cut`));
        this.cut(`${what} timed out`);
      }, timeoutMs);
      this.pending.add(fail);
      start((v) => finish(() => resolve(v)), fail);
    });
  }

  /**
   * Runs a script through the remote user's shell, under coreutils `timeout`. Scripts are built
   * only from validated names and quoted paths: secret values never appear in them.
   */
  run(script: string, opts: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    // The server kills the command's process group at the deadline (KILL 5 s later), whatever
    // the client does; OpenSSH ignores a channel's signal request, so the client cannot.
    const wrapped = `exec timeout -k ${KILL_GRACE_SECONDS} ${seconds} sh -c ${sq(script)}`;
    const started = Date.now();
    const timedOut = () => new DeployError('TIMEOUT', `remote command on ${this.where} did not finish within ${timeoutMs} ms and was killed`);
    return this.bounded<RunResult>('remote command', (seconds + 2 * KILL_GRACE_SECONDS) * 1000, (resolve, reject) => {
      this.client.exec(wrapped, (err, stream) => {
        if (err) {
          reject(new DeployError('SSH_FAILED', `could not start a remote command on ${this.where}: ${err.message}`));
          return;
        }
        const out = new LineSplitter(opts.onLine);
        const errOut = new LineSplitter(opts.onLine);
        let code: number | null = null;
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errOut.push(d));
        stream.on('exit', (exitCode: number | null) => (code = exitCode));
        stream.on('close', () => {
          out.end();
          errOut.end();
          // 124: `timeout` sent TERM; 137: it had to KILL.
          if ((code === 124 || code === 137) && Date.now() - started >= seconds * 1000 - 500) reject(timedOut());
          else if (code === null) reject(new DeployError('SSH_FAILED', `remote command on ${this.where} ended without an exit status (${this.lostReason ?? 'killed'})`));
          else resolve({ code, stdout: out.text, stderr: errOut.text });
        });
        stream.end(opts.stdin);
      });
    });
  }

  /**
   * Starts a script on a channel of its own and hands the channel over unbounded, for output
   * that streams until the caller closes it (a log follow); only starting it is bounded. A lost
   * connection shows as the channel's close without an exit status (and through onLost).
   */
  openChannel(script: string): Promise<ClientChannel> {
    return this.bounded<ClientChannel>('starting a remote command', DEFAULT_RUN_TIMEOUT_MS, (resolve, reject) =>
      this.client.exec(`exec sh -c ${sq(script)}`, (err, channel) =>
        err ? reject(new DeployError('SSH_FAILED', `could not start a remote command on ${this.where}: ${err.message}`)) : resolve(channel),
      ),
    );
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpChannel ??= this.bounded<SFTPWrapper>('opening SFTP', SFTP_OP_TIMEOUT_MS, (resolve, reject) =>
      this.client.sftp((err, sftp) => (err ? reject(new DeployError('SSH_FAILED', `could not open SFTP on ${this.where}: ${err.message}`)) : resolve(sftp))),
    );
    return this.sftpChannel;
  }

  /** One SFTP request, bounded; ssh2's own error (e.g. "Failure", code 4) passes through. */
  private sftpOp<T>(what: string, call: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
    return this.bounded<T>(`SFTP ${what}`, SFTP_OP_TIMEOUT_MS, (resolve, reject) => call((err, value) => (err ? reject(err) : resolve(value))));
  }

  /**
   * Creates a new file over SFTP with `mode` from the first instant (open with
   * O_CREAT|O_EXCL and the mode attribute), so a secret file is never readable
   * by others, not even briefly, and an existing file is never overwritten.
   */
  async writeNewFile(path: string, data: Buffer, mode: number): Promise<void> {
    const sftp = await this.sftp();
    const handle = await this.sftpOp<Buffer>(`open of ${path}`, (cb) => sftp.open(path, 'wx', { mode }, cb));
    let failure: unknown;
    try {
      for (let offset = 0; offset < data.length; offset += SFTP_CHUNK) {
        const length = Math.min(SFTP_CHUNK, data.length - offset);
        await this.sftpOp<void>(`write of ${path}`, (cb) => sftp.write(handle, data, offset, length, offset, (err) => cb(err, undefined)));
      }
    } catch (err) {
      failure = err;
    }
    // Closing a handle on a lost connection would never call back: skip it then.
    if (!this.lost) {
      await this.sftpOp<void>(`close of ${path}`, (cb) => sftp.close(handle, (err) => cb(err, undefined))).catch((err: unknown) => (failure ??= err));
    }
    if (failure !== undefined) throw failure;
  }

  close(): void {
    this.client.end();
    // end() waits for the server; a dead one never answers, so the socket goes anyway.
    setTimeout(() => this.client.destroy(), 2000).unref();
  }
}
