import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { utils as sshUtils } from 'ssh2';
import type { SshConnection } from '../vps/deployer-types';
import { ExitCode, OpsError } from './errors';

/**
 * Which credentials the `vps` commands log in with, the way `ssh` picks them: the key of
 * `--identity` alone when given; otherwise the default key file and the ssh-agent of
 * SSH_AUTH_SOCK. Key material is read into memory only, never echoed.
 */

export interface SshAuth {
  /** `--identity`: a private key file (unencrypted; use the agent for a passphrase-protected key). */
  readonly identity?: string;
}

/** One way to authenticate, tried in order until the VPS accepts one. */
export interface SshIdentity {
  /** For messages: the key file, or `the ssh-agent (SSH_AUTH_SOCK=...)`. */
  readonly label: string;
  readonly credentials: Pick<SshConnection, 'privateKey' | 'agent'>;
}

export interface SshIdentities {
  readonly identities: readonly SshIdentity[];
  /** Default key files that exist but cannot be used (passphrase, not a private key, unreadable). */
  readonly warnings: readonly string[];
}

/**
 * The key files tried without --identity, under ~/.ssh. OpenSSH's own default list
 * (ssh_config(5) IdentityFile; readconf.c fill_default_options) is id_rsa, id_ecdsa,
 * id_ecdsa_sk, id_ed25519, id_ed25519_sk, and ssh offers every one that exists. Here only the
 * first usable one is offered, id_ed25519 first: it is the key `vps provision` authorizes by
 * default, and each rejected login is one more failure for the VPS's fail2ban (provision.sh:
 * 5 within 10 minutes bans the address for an hour). ssh2 cannot use the `_sk` (security key) types.
 */
export const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;

type KeyFile = { key: Buffer } | { missing: true } | { problem: string };

/** A private key file as ssh2 can use it, or why not (never quoting the file's content). */
function readKeyFile(file: string, removeHint: string): KeyFile {
  let key: Buffer;
  try {
    key = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return code === 'ENOENT' ? { missing: true } : { problem: `cannot be read (${code})` };
  }
  const parsed = sshUtils.parseKey(key);
  if (parsed instanceof Error) {
    return /encrypted|passphrase/i.test(parsed.message)
      ? { problem: `is passphrase-protected, and nothing here can ask for its passphrase: add it to your ssh-agent (ssh-add ${file})${removeHint}` }
      : { problem: `is not an OpenSSH or PEM private key (${parsed.message})` };
  }
  if (!parsed.isPrivateKey()) return { problem: 'holds a public key: pass the private key file (the one without .pub)' };
  return { key };
}

/** The operator's home: $HOME as the command was given it (tests point it elsewhere), else the account's. */
export function homeDir(env: NodeJS.ProcessEnv): string {
  return env.HOME || os.homedir();
}

/** The --identity key, or the first usable default key file and the agent; exit 6 when there is none. */
export function sshIdentities(auth: SshAuth, env: NodeJS.ProcessEnv): SshIdentities {
  if (auth.identity) {
    const read = readKeyFile(auth.identity, ' and run without --identity');
    if ('key' in read) return { identities: [{ label: auth.identity, credentials: { privateKey: read.key } }], warnings: [] };
    throw new OpsError(`--identity ${auth.identity} ${'missing' in read ? 'cannot be read (ENOENT)' : read.problem}.`, ExitCode.usage);
  }

  const identities: SshIdentity[] = [];
  const warnings: string[] = [];
  const tried: string[] = [];
  for (const name of DEFAULT_KEY_FILES) {
    const file = path.join(homeDir(env), '.ssh', name);
    const read = readKeyFile(file, '');
    if ('key' in read) {
      identities.push({ label: file, credentials: { privateKey: read.key } });
      break;
    }
    if ('missing' in read) tried.push(`${file} (not found)`);
    else {
      tried.push(`${file} (skipped)`);
      warnings.push(`${file} ${read.problem}; skipped.`);
    }
  }
  // The key file first: see DEFAULT_KEY_FILES. A stale SSH_AUTH_SOCK would fail the whole login in ssh2, so it is skipped.
  const agent = env.SSH_AUTH_SOCK;
  if (agent && isSocket(agent)) identities.push({ label: `the ssh-agent (SSH_AUTH_SOCK=${agent})`, credentials: { agent } });
  else if (agent) {
    tried.push(`the ssh-agent (SSH_AUTH_SOCK=${agent} is not a socket)`);
    warnings.push(`SSH_AUTH_SOCK=${agent} is not a socket (a stale agent?); the agent is skipped.`);
  } else tried.push('the ssh-agent (SSH_AUTH_SOCK is not set)');

  if (identities.length === 0) {
    throw new OpsError(
      `No SSH credentials: tried ${tried.join(', ')}. Pass --identity <private key file>, create ${path.join(homeDir(env), '.ssh', 'id_ed25519')} ` +
        '(ssh-keygen -t ed25519), or start ssh-agent and add your key (eval "$(ssh-agent)"; ssh-add).',
      ExitCode.noCredentials,
    );
  }
  return { identities, warnings };
}

function isSocket(file: string): boolean {
  try {
    return fs.statSync(file).isSocket();
  } catch {
    return false;
  }
}
