import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { bundleFileMode, releaseDir, sq, validateOwner, type Layout } from './deployer-input';
import { DeployError, type Bundle, type LockInfo, type LogFn } from './deployer-types';
import type { RunResult, SshSession } from './ssh-session';

/** What is on disk for an app/environment. */
export interface RemoteState {
  current: string | null;
  previous: string | null;
  /** Release ids, most recently activated first (activation touches the dir). */
  releases: string[];
  lock: LockInfo | null;
  /** The asked-for release: present on disk, and the sha256 of its .env (never the content). */
  target: { present: boolean; envSha256: string | null };
  /** Leftovers of interrupted runs removed by `cleanLeftovers`. */
  removed: string[];
}

/** Last lines of a command's output, for error messages. */
export function tail(result: Pick<RunResult, 'stdout' | 'stderr'>, lines = 20): string {
  return `${result.stdout}\n${result.stderr}`
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-lines)
    .join('\n');
}

/** Runs a script and fails with its output when it exits non-zero. */
export async function check(session: SshSession, script: string, what: string): Promise<RunResult> {
  const result = await session.run(script);
  if (result.code !== 0) {
    throw new DeployError('REMOTE_COMMAND_FAILED', `${what} failed on ${session.where} (exit ${result.code}):\n${tail(result)}`);
  }
  return result;
}

function keyValues(stdout: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue; // tolerate noise a login shell might print
    const key = line.slice(0, eq);
    map.set(key, [...(map.get(key) ?? []), line.slice(eq + 1)]);
  }
  return map;
}

/** `releases/<id>` (what our links hold) → `<id>`. */
function linkRelease(target: string | undefined): string | null {
  if (!target) return null;
  return target.split('/').filter(Boolean).pop() ?? null;
}

function lockFrom(values: Map<string, string[]>): LockInfo | null {
  const age = values.get('lock_age')?.[0];
  if (age === undefined) return null;
  const owner = values.get('lock_owner')?.[0] || 'unknown';
  const lease = / lease=(\d+)/.exec(owner)?.[1];
  return { owner, ageSeconds: Number(age) || 0, ...(lease ? { leaseSeconds: Number(lease) } : {}) };
}

function lockInfoScript(L: Layout): string {
  return [
    `if [ -d ${sq(L.lockDir)} ]; then`,
    `  printf 'lock_age=%s\\n' "$(( $(date +%s) - $(stat -c %Y ${sq(L.lockDir)} 2>/dev/null || date +%s) ))"`,
    `  printf 'lock_owner=%s\\n' "$(head -n 1 ${sq(`${L.lockDir}/owner`)} 2>/dev/null || echo unknown)"`,
    'fi',
  ].join('\n');
}

/** Whether `release` is current with exactly this `.env` (read with `readState(..., { release })`). */
export function isCurrentWith(state: RemoteState, release: string, envSha256: string): boolean {
  return state.current === release && state.target.envSha256 === envSha256;
}

/** One round trip: links, releases with activation times, lock, and the target release. */
export async function readState(session: SshSession, L: Layout, opts: { release?: string; cleanLeftovers?: boolean } = {}): Promise<RemoteState> {
  const lines = ['set -eu', `if ! cd ${sq(L.envDir)} 2>/dev/null; then exit 0; fi`];
  if (opts.cleanLeftovers) {
    // Only called with the lock held: nobody else can be uploading right now.
    lines.push(
      'for d in releases/.incoming-* releases/.trash-* .trash-* .deploy-lock.broken-* .current.tmp-* .previous.tmp-*; do',
      '  if [ -e "$d" ] || [ -L "$d" ]; then rm -rf -- "$d"; printf \'removed=%s\\n\' "$d"; fi',
      'done',
    );
  }
  lines.push(
    `printf 'current=%s\\n' "$(readlink current 2>/dev/null || true)"`,
    `printf 'previous=%s\\n' "$(readlink previous 2>/dev/null || true)"`,
    `if [ -d releases ]; then find releases -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf 'release=%T@ %f\\n'; fi`,
    lockInfoScript(L),
  );
  if (opts.release) {
    const dir = sq(`releases/${opts.release}`);
    const env = sq(`releases/${opts.release}/.env`);
    lines.push(
      `if [ -d ${dir} ]; then echo target=present; fi`,
      `if [ -f ${env} ]; then printf 'target_env=%s\\n' "$(sha256sum < ${env} | cut -d ' ' -f 1)"; fi`,
    );
  }
  const values = keyValues((await check(session, lines.join('\n'), 'reading the deploy state')).stdout);
  const releases = (values.get('release') ?? [])
    .map((line) => {
      const space = line.indexOf(' ');
      return { at: Number(line.slice(0, space)), id: line.slice(space + 1) };
    })
    .sort((a, b) => b.at - a.at || a.id.localeCompare(b.id))
    .map((r) => r.id);
  return {
    current: linkRelease(values.get('current')?.[0]),
    previous: linkRelease(values.get('previous')?.[0]),
    releases,
    lock: lockFrom(values),
    target: { present: values.has('target'), envSha256: values.get('target_env')?.[0] ?? null },
    removed: values.get('removed') ?? [],
  };
}

function ownerLine(token: string, leaseSeconds: number): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers, Lambda): the pid and host still identify us.
  }
  return `host=${os.hostname()} pid=${process.pid} user=${user} at=${new Date().toISOString()} lease=${leaseSeconds} token=${token}`;
}

export interface LockOptions {
  /** Remove a held lock whatever its age (its owner is known to be dead). */
  breakStale: boolean;
  /**
   * How long this holder may keep the lock at most (e.g. a Lambda's timeout). A lock older than
   * its holder's lease is dead and is broken by the next deployer, so a killed run cannot block
   * every later one (a CloudFormation rollback, say).
   */
  leaseSeconds: number;
  /** Wait out a lease that ends within this many seconds (default LEASE_WAIT_SECONDS; 0: never wait). */
  maxWaitSeconds?: number;
}

/** A lease ending within this many seconds is waited out rather than failed on. */
export const LEASE_WAIT_SECONDS = 90;

/**
 * Takes `.deploy-lock` with `mkdir`, which is atomic: of two deployers exactly
 * one creates it. A held lock is removed only when its lease has run out or with
 * `breakStaleLock`. Returns the token that proves ownership when releasing.
 */
export async function acquireLock(session: SshSession, L: Layout, options: LockOptions, log: LogFn): Promise<string> {
  const token = randomBytes(8).toString('hex');
  const { breakStale, leaseSeconds } = options;
  const script = [
    'set -eu',
    'umask 022',
    `mkdir -p ${sq(L.releasesDir)}`,
    `if mkdir ${sq(L.lockDir)} 2>/dev/null; then`,
    `  printf '%s\\n' ${sq(ownerLine(token, leaseSeconds))} > ${sq(`${L.lockDir}/owner`)}`,
    '  echo lock=acquired',
    'else',
    lockInfoScript(L),
    'fi',
  ].join('\n');
  const maxWait = options.maxWaitSeconds ?? LEASE_WAIT_SECONDS;
  let waited = false;
  let broke = false;
  for (;;) {
    const values = keyValues((await check(session, script, 'taking the deploy lock')).stdout);
    if (values.get('lock')?.[0] === 'acquired') {
      log(`lock ${L.lockDir} taken`);
      return token;
    }
    const held = lockFrom(values) ?? { owner: 'unknown', ageSeconds: 0 };
    const left = held.leaseSeconds === undefined ? undefined : held.leaseSeconds - held.ageSeconds;
    if (!waited && left !== undefined && left > 0 && left <= maxWait) {
      waited = true;
      log(`lock ${L.lockDir} held by ${held.owner}: its lease ends in ${left}s, waiting`);
      await new Promise((resolve) => setTimeout(resolve, (left + 2) * 1000));
      continue;
    }
    const expired = left !== undefined && left <= 0;
    // Break at most once: a lock seen again after a break belongs to a live deployer.
    if (broke || (!breakStale && !expired)) {
      throw new DeployError(
        'LOCKED',
        `another deploy holds the lock ${L.lockDir} (owner: ${held.owner}; age ${held.ageSeconds}s). ` +
          'Wait for it to finish; if that deploy is dead, retry with breakStaleLock: true.',
        held,
      );
    }
    const why = expired ? `its lease of ${held.leaseSeconds}s ran out` : 'breakStaleLock asks';
    log(`breaking stale lock ${L.lockDir} held by ${held.owner} (age ${held.ageSeconds}s): ${why}`);
    await check(session, breakLockScript(L, held.owner, token), 'removing the stale lock');
    broke = true;
  }
}

/**
 * Removes the lock only if it is still the one that was judged stale: if its owner line changed
 * meanwhile (another deployer broke it and took a new one), it stays. The rename is atomic, so
 * of two breakers only one removes it.
 */
export function breakLockScript(L: Layout, judgedOwner: string, token: string): string {
  const aside = `${L.lockDir}.broken-${token}`;
  return (
    `if [ "$(head -n 1 ${sq(`${L.lockDir}/owner`)} 2>/dev/null || echo unknown)" = ${sq(judgedOwner)} ] ` +
    `&& mv -T -- ${sq(L.lockDir)} ${sq(aside)} 2>/dev/null; then rm -rf -- ${sq(aside)}; fi`
  );
}

/** Removes the lock only if it is still ours (someone may have broken it meanwhile). */
export async function releaseLock(session: SshSession, L: Layout, token: string, log: LogFn): Promise<void> {
  const owner = sq(`${L.lockDir}/owner`);
  const script = `if grep -qsF -- ${sq(`token=${token}`)} ${owner}; then rm -rf -- ${sq(L.lockDir)}; echo released; else echo foreign; fi`;
  const result = await session.run(script);
  if (result.code === 0 && result.stdout.includes('released')) log(`lock ${L.lockDir} released`);
  else log(`warning: lock ${L.lockDir} was no longer ours, left as is`);
}

/**
 * Points `current` and `previous` at releases, each switched atomically: a new
 * symlink under a temporary name, then rename(2) over the old one (`mv -T`), so
 * readers see either the old or the new target, never a missing link.
 * null removes the link. The activated release dir is touched: its mtime orders
 * releases for pruning.
 */
export async function setLinks(session: SshSession, L: Layout, links: { current: string | null; previous: string | null }): Promise<void> {
  const nonce = randomBytes(4).toString('hex');
  const link = (name: string, release: string | null) =>
    release
      ? `ln -sfn ${sq(`releases/${release}`)} ${sq(`.${name}.tmp-${nonce}`)} && mv -T ${sq(`.${name}.tmp-${nonce}`)} ${name}`
      : `rm -f ${name}`;
  const script = ['set -eu', `cd ${sq(L.envDir)}`, link('previous', links.previous), link('current', links.current)];
  if (links.current) script.push(`touch -c ${sq(`releases/${links.current}`)}`);
  await check(session, script.join('\n'), 'switching the current release');
}

/** Runs `fn` over items with at most `limit` in flight; the first error wins after all settle. */
async function inPool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < items.length && firstError === undefined) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError !== undefined) throw firstError;
}

/**
 * Uploads a release into `releases/.incoming-<hash>-<random>/` and renames it
 * into place only when every file (and `.env`, created 0600) is written, so an
 * interrupted upload never leaves a half release and never touches `current`.
 */
export async function uploadRelease(session: SshSession, L: Layout, bundle: Bundle, envFile: string, log: LogFn): Promise<void> {
  const incoming = `${L.releasesDir}/.incoming-${bundle.hash}-${randomBytes(4).toString('hex')}`;
  const names = Object.keys(bundle.files).sort();
  const dirs = [...new Set(names.map((n) => n.split('/').slice(0, -1).join('/')).filter(Boolean))].map((d) => sq(`${incoming}/${d}`));
  log(`uploading ${names.length} files + .env to ${incoming}`);
  await check(session, `set -eu\numask 022\nmkdir ${sq(incoming)}${dirs.length ? `\nmkdir -p ${dirs.join(' ')}` : ''}`, 'creating the upload directory');
  try {
    const write = async (name: string, data: string, mode: number) => {
      try {
        await session.writeNewFile(`${incoming}/${name}`, Buffer.from(data, 'utf8'), mode);
      } catch (err) {
        if (err instanceof DeployError) throw err;
        throw new DeployError('UPLOAD_FAILED', `upload of ${name} to ${incoming} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    // The secret file first, with its final mode from creation on.
    await write('.env', envFile, 0o600);
    await inPool(names, 8, (name) => write(name, bundle.files[name], bundleFileMode(name)));
    await check(session, `mv -T ${sq(incoming)} ${sq(releaseDir(L, bundle.hash))}`, 'moving the uploaded release into place');
  } catch (err) {
    const cleanup = await session.run(`rm -rf -- ${sq(incoming)}`).catch(() => undefined);
    log(cleanup?.code === 0 ? `upload failed; removed ${incoming}` : `upload failed; could not remove ${incoming} (the next deploy will)`);
    throw err;
  }
  log(`release ${bundle.hash} in place`);
}

/** Rewrites a release's .env atomically (new 0600 file, then rename) when the secrets changed. */
export async function replaceEnvFile(session: SshSession, L: Layout, release: string, envFile: string, log: LogFn): Promise<void> {
  const dir = releaseDir(L, release);
  const temp = `${dir}/.env.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await session.writeNewFile(temp, Buffer.from(envFile, 'utf8'), 0o600);
  } catch (err) {
    await session.run(`rm -f -- ${sq(temp)}`).catch(() => undefined);
    throw new DeployError('UPLOAD_FAILED', `writing the new .env of release ${release} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  await check(session, `mv -f -- ${sq(temp)} ${sq(`${dir}/.env`)}`, 'replacing .env');
  log(`release ${release}: .env replaced (the secrets changed)`);
}

/** Keeps the `keep` most recently activated releases plus current and previous. */
export async function prune(session: SshSession, L: Layout, state: Pick<RemoteState, 'releases' | 'current' | 'previous'>, keep: number): Promise<string[]> {
  const protectedIds = new Set([state.current, state.previous].filter((r): r is string => r !== null));
  const doomed = state.releases.slice(keep).filter((id) => !protectedIds.has(id));
  if (doomed.length === 0) return [];
  // Renamed out of the way first (atomic): an interrupted delete then leaves a `.trash-*`
  // leftover, never a half-deleted release that a later deploy would take for complete.
  const suffix = randomBytes(4).toString('hex');
  const moves = doomed.map((id) => `mv -T -- ${sq(id)} ${sq(`.trash-${id}-${suffix}`)}`).join(' && ');
  await check(session, `cd ${sq(L.releasesDir)} && ${moves} && rm -rf -- .trash-*-${suffix}`, 'pruning old releases');
  return doomed;
}

/** Removes every release, link and leftover of the app/environment (not the lock: the caller holds it). */
export async function removeReleases(session: SshSession, L: Layout): Promise<void> {
  await check(
    session,
    // releases/ is renamed first, for the same reason as in prune().
    `set -eu\ncd ${sq(L.envDir)}\nif [ -d releases ]; then mv -T releases .trash-releases; fi\nrm -rf -- .trash-releases current previous .current.tmp-* .previous.tmp-* .owner .owner.tmp .prefetch-*`,
    'removing the releases',
  );
}

/** Records who deployed what is serving (atomically: a reader sees the old or the new owner). */
export async function writeOwner(session: SshSession, L: Layout, owner: string): Promise<void> {
  validateOwner(owner);
  await check(session, `printf '%s\\n' ${sq(owner)} > ${sq(`${L.ownerFile}.tmp`)} && mv -f -- ${sq(`${L.ownerFile}.tmp`)} ${sq(L.ownerFile)}`, 'recording the owner');
}

/** The recorded owner, or null when none is. */
export async function readOwner(session: SshSession, L: Layout): Promise<string | null> {
  const out = await check(session, `cat -- ${sq(L.ownerFile)} 2>/dev/null || true`, 'reading the owner');
  return out.stdout.trim() || null;
}

/** Best effort: drops the now empty env dir and app dir. */
export async function removeEmptyDirs(session: SshSession, L: Layout): Promise<void> {
  await session.run(`rmdir -- ${sq(L.envDir)} 2>/dev/null; rmdir -- ${sq(L.appDir)} 2>/dev/null; true`).catch(() => undefined);
}
