/**
 * Helpers that look at what the deployer did: the server's disk (the tests run
 * sshd on this machine, so "remote" files are local) and the docker stub's call log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DockerCall {
  cwd: string;
  args: string;
}

/**
 * Recursive listing: path, type, mode, size and mtime of every entry (symlink
 * targets, not followed). `dirMtimes: false` leaves out directory mtimes, which
 * change when an entry is added and removed again.
 */
export function snapshot(root: string, opts: { dirMtimes?: boolean } = {}): string[] {
  const dirMtimes = opts.dirMtimes ?? true;
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      const st = fs.lstatSync(file);
      const rel = path.relative(root, file);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(file)}`);
      else {
        const mtime = st.isDirectory() && !dirMtimes ? '' : st.mtimeMs;
        out.push(`${rel} ${st.isDirectory() ? 'dir' : 'file'} ${(st.mode & 0o7777).toString(8)} ${st.isDirectory() ? '' : st.size} ${mtime}`);
        if (st.isDirectory()) walk(file);
      }
    }
  };
  walk(root);
  return out;
}

/** `releases/<id>` → `<id>`, or null without the link. */
export function linkTarget(link: string): string | null {
  try {
    return fs.readlinkSync(link).replace(/^releases\//, '');
  } catch {
    return null;
  }
}

export function entries(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** The docker stub's recording: one call a line, `<cwd>\t<argv>`. */
export class DockerRecorder {
  /** Every call of the whole run, kept across resets (for the secret scan). */
  history = '';

  constructor(private readonly stubDir: string) {}

  calls(): DockerCall[] {
    return fs
      .readFileSync(path.join(this.stubDir, 'calls.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [cwd, args = ''] = line.split('\t');
        return { cwd, args };
      });
  }

  /** Forgets recorded calls and control files (the per-project state stays, like real containers). */
  reset(): void {
    const log = path.join(this.stubDir, 'calls.log');
    this.history += fs.readFileSync(log, 'utf8');
    fs.writeFileSync(log, '');
    for (const control of ['fail-up', 'fail-pull', 'pull-delay', 'up-delay', 'hang-up']) fs.rmSync(path.join(this.stubDir, control), { force: true });
    for (const name of fs.readdirSync(this.stubDir)) if (/^log-(feed|follow)-/.test(name)) fs.rmSync(path.join(this.stubDir, name), { force: true });
  }

  /** Appends to what the service prints while `logs --follow` runs; the stub forwards it byte for byte. */
  feedLogs(project: string, text: string): void {
    fs.appendFileSync(path.join(this.stubDir, `log-feed-${project}`), text);
  }

  /** Bytes of the feed the running `logs --follow` has written to its stdout so far. */
  logsSent(project: string): number {
    const file = path.join(this.stubDir, `log-feed-${project}.sent`);
    return fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : 0;
  }

  /** Pid of the stub's `logs --follow` of the project (null before one started). */
  followPid(project: string): number | null {
    const file = path.join(this.stubDir, `log-follow-${project}.pid`);
    return fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : null;
  }

  control(name: 'fail-up' | 'fail-pull' | 'pull-delay' | 'up-delay' | 'hang-up', content: string): void {
    fs.writeFileSync(path.join(this.stubDir, name), `${content}\n`);
  }

  /** What `docker compose ps` of a project would show: `healthy:<release>`, `unhealthy:<release>`, `down`. */
  projectState(project: string): string | null {
    const file = path.join(this.stubDir, `state-${project}`);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : null;
  }
}
