import * as fs from 'node:fs';
import * as path from 'node:path';
import { utils } from 'ssh2';

/**
 * The gateway's SSH key for its link to the GPU boxes (gpu-link.ts): made on first start in the
 * gateway's data volume, mode 0600, and never sent anywhere; only the public half is registered
 * (control function `register-link-key`), which each box then authorizes for port forwarding.
 */
export interface LinkKey {
  /** OpenSSH-format ed25519 private key, for SshUpstream. */
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA… comment`, for `register-link-key`. */
  readonly publicKey: string;
}

/** The key's file name in the gateway's data directory. */
export const LINK_KEY_FILE = 'gpu-link-key';

const COMMENT = 'comfyui-gateway';

/** Loads the key pair from `file`, creating it first when there is none. */
export function loadOrCreateLinkKey(file: string): LinkKey {
  if (!fs.existsSync(file)) create(file);
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`link key ${file} has mode 0${mode.toString(8)}, so other users may read it: allowed is 0600 (owner only); fix it with chmod 600`);
  }
  const privateKey = fs.readFileSync(file, 'utf8');
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== 'ssh-ed25519' || !parsed.isPrivateKey()) {
    const why = parsed instanceof Error ? parsed.message : 'not a single ssh-ed25519 private key';
    throw new Error(`link key ${file} is not an unencrypted OpenSSH ed25519 private key (${why}); remove it to have a new one made and registered`);
  }
  return { privateKey, publicKey: `${parsed.type} ${parsed.getPublicSSH().toString('base64')} ${parsed.comment || COMMENT}` };
}

/**
 * Writes a new key under a temporary name, then links it into place: a crash leaves no partial
 * key, and of two processes starting at once the second keeps the first one's key.
 */
function create(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const pair = utils.generateKeyPairSync('ed25519', { comment: COMMENT });
  const temporary = `${file}.${process.pid}.new`;
  fs.writeFileSync(temporary, pair.private, { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    fs.unlinkSync(temporary);
  }
}
