/**
 * A GPU box's side of the gateway link, in a temp root: assets/user-data/link-access.sh run with
 * ROOT set, the real useradd (--prefix edits the root's own account files, never the machine's),
 * the real ssh-keygen and the real AWS CLI v1 against moto, IMDSv2 from the harness's server.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { envFile, run, Sandbox, SCRIPTS, type RunResult } from './harness';

export const LINK_ACCESS = path.join(SCRIPTS, 'link-access.sh');
/** Where link-access.sh keeps the link user's key (below ROOT). */
export const AUTHORIZED_KEYS = 'var/lib/comfyui-link/.ssh/authorized_keys';

/** `SHA256:…` of a public key file, as ssh-keygen -lf prints it. */
export function fingerprintOf(publicKeyFile: string): string {
  return execFileSync('ssh-keygen', ['-lf', publicKeyFile], { encoding: 'utf8' }).split(' ')[1];
}

export interface LinkBoxOptions {
  /** ComfyUI's loopback port (the permitopen target); default 8188. */
  readonly comfyuiPort?: number;
  /** The host key's public half; default a new ed25519 key in ROOT/etc/ssh. */
  readonly hostKey?: string;
}

export class LinkBox {
  readonly sb = new Sandbox();
  readonly root = this.sb.path('root');
  readonly hostKey: string;

  constructor(options: LinkBoxOptions = {}) {
    // What useradd --prefix needs: the account files of a fresh Ubuntu, root only.
    this.sb.write('root/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n');
    this.sb.write('root/etc/group', 'root:x:0:\n');
    this.sb.write('root/etc/shadow', 'root:*:19000:0:99999:7:::\n');
    this.sb.write('root/etc/gshadow', 'root:*::\n');
    this.sb.write('comfyui.env', envFile(options.comfyuiPort ?? 8188));
    if (options.hostKey) {
      this.hostKey = options.hostKey;
    } else {
      this.hostKey = path.join(this.root, 'etc/ssh/ssh_host_ed25519_key.pub');
      fs.mkdirSync(path.dirname(this.hostKey), { recursive: true });
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@box', '-f', this.hostKey.replace(/\.pub$/, '')]);
    }
  }

  env(extra: Record<string, string>): NodeJS.ProcessEnv {
    return this.sb.env({
      COMFYUI_ENV_FILE: this.sb.path('comfyui.env'),
      ROOT: this.root,
      RUN_DIR: this.sb.path('run'),
      HOST_KEY: this.hostKey,
      RETRY_SLEEP_SECONDS: '0',
      ...extra,
    });
  }

  /** One run of link-access.sh (each AWS CLI v1 call costs about a second). */
  run(extra: Record<string, string>): Promise<RunResult> {
    return run(LINK_ACCESS, this.env(extra), 120_000);
  }

  /** The link user's authorized_keys, or null when there is none. */
  authorizedKeys(): string | null {
    const file = path.join(this.root, AUTHORIZED_KEYS);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  }

  cleanup(): void {
    this.sb.cleanup();
  }
}
