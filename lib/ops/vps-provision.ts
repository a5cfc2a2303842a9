import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EnvironmentConfig } from '../config/load';
import { COMPOSE_DIR } from '../vps/bundle';
import { withSession } from '../vps/deployer';
import { sq } from '../vps/deployer-input';
import type { Reporter } from './context';
import { ExitCode, OpsError } from './errors';
import type { VpsLogin } from './vps-connection';
import { loginCall } from './vps-errors';

/** The script `vps provision` uploads unless --script names another one. */
export const DEFAULT_PROVISION_SCRIPT = path.join(COMPOSE_DIR, 'provision.sh');

/** What provision.sh itself accepts as a key line (kept in step with its check_keys). */
const PUBLIC_KEY =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) ([A-Za-z0-9+/]+={0,3})( [^\p{Cc}]*)?$/u;
const REMOTE_TEMP = /^\/[A-Za-z0-9._/-]+$/;

export interface ProvisionOptions {
  /** provision.sh (or an operator's patched copy). */
  readonly scriptFile: string;
  /** OpenSSH public key(s) to authorize for the deploy user. */
  readonly publicKeyFile: string;
  readonly timeoutMs: number;
}

export interface PublicKeys {
  /** The key lines, as provision.sh gets them on stdin. */
  readonly text: string;
  /** `SHA256:... (comment)` per key, for the plan (never the key itself). */
  readonly described: string[];
}

function readLocal(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new OpsError(`${what} ${file}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}).`, ExitCode.usage);
  }
}

/** Reads and checks the public key file; a private key given by mistake is refused without echoing a byte of it. */
export function readPublicKeys(file: string): PublicKeys {
  const raw = readLocal(file, '--public-key').toString('utf8');
  if (/PRIVATE KEY/.test(raw)) {
    throw new OpsError(`--public-key ${file} holds a PRIVATE key: pass the public one (usually the same name with .pub). Nothing was sent.`, ExitCode.usage);
  }
  const lines = raw.split('\n').map((l) => l.replace(/\r$/, '').trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new OpsError(`--public-key ${file} holds no key.`, ExitCode.usage);
  const described = lines.map((line, i) => {
    const match = PUBLIC_KEY.exec(line);
    if (!match) throw new OpsError(`--public-key ${file}: line ${i + 1} is not an OpenSSH public key (type, base64, optional comment).`, ExitCode.usage);
    const fingerprint = createHash('sha256').update(Buffer.from(match[2], 'base64')).digest('base64').replace(/=+$/, '');
    return `SHA256:${fingerprint}${match[3] ? ` (${match[3].trim()})` : ''}`;
  });
  return { text: `${lines.join('\n')}\n`, described };
}

/** `<baseDir>/<App>`: the folder provision.sh creates for the deploy user (the deployer's app dir). */
export function provisionAppDir(config: EnvironmentConfig): string {
  return path.posix.join(config.vps.baseDir, config.appName);
}

/**
 * Uploads the script over SFTP into a fresh private temp dir on the VPS, runs it
 * with bash as the connection's user (root for a fresh VPS) with the public keys
 * on stdin, streams its output, and removes the temp dir again.
 */
export async function provisionVps(config: EnvironmentConfig, login: VpsLogin, options: ProvisionOptions, reporter: Reporter): Promise<void> {
  const { connection } = login;
  const script = readLocal(options.scriptFile, '--script');
  const keys = readPublicKeys(options.publicKeyFile);
  const appDir = provisionAppDir(config);
  const where = `${connection.username}@${connection.host}:${connection.port}`;
  reporter.line(`Provisioning ${where} (host key ${connection.hostKeySha256}) with ${options.scriptFile}`);
  reporter.line(`  deploy user ${config.vps.deployUser}, app dir ${appDir}, SSH port ${config.vps.sshPort} kept open`);
  for (const key of keys.described) reporter.line(`  authorizes ${key}`);

  const code = await loginCall('vps provision', login, (authenticated) =>
    withSession(authenticated, async (session) => {
      const made = await session.run('umask 077 && mktemp -d "${TMPDIR:-/tmp}/aiassets-provision.XXXXXXXX"', { timeoutMs: 30_000 });
      const dir = made.stdout.trim();
      if (made.code !== 0 || !REMOTE_TEMP.test(dir)) {
        throw new OpsError(`could not create a temp dir on ${where} (mktemp exit ${made.code}): ${made.stderr.trim()}`);
      }
      const remoteScript = `${dir}/provision.sh`;
      try {
        await session.writeNewFile(remoteScript, script, 0o700);
        reporter.line(`uploaded ${script.length} bytes to ${remoteScript}; running it`);
        // SSH_PORT: provision.sh's firewall must keep the port this very session uses open.
        const command = `SSH_PORT=${config.vps.sshPort} bash ${sq(remoteScript)} --user ${sq(config.vps.deployUser)} --app-dir ${sq(appDir)}`;
        const run = await session.run(command, { stdin: keys.text, timeoutMs: options.timeoutMs, onLine: (line) => reporter.line(line) });
        return run.code;
      } finally {
        await session.run(`rm -rf -- ${sq(dir)}`, { timeoutMs: 30_000 }).catch(() => reporter.warn(`could not remove ${dir} on ${where}`));
      }
    }),
    config.envName,
  );
  if (code !== 0) throw new OpsError(`provision script exited ${code} on ${where}: see its output above.`);
  reporter.line(`Provisioned ${where}: ${config.vps.deployUser} can now deploy (npm run ops -- vps deploy --env ${config.envName}).`);
}
