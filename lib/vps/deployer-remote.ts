import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { lastRunFrom } from './deployer-gate';
import { bundleFileMode, releaseDir, sha256Hex, sq, validateOwner, type Layout } from './deployer-input';
import { MANIFEST, manifestOf, VERIFY_RELEASE_FN } from './deployer-manifest';
import { DeployError, type Bundle, type LastRun, type LockInfo, type LogFn } from './deployer-types';
import type { RunResult, SshSession } from './ssh-session';

/** What is on disk for an app/environment. */
export interface RemoteState {
  current: string | null;
  previous: string | null;
  /** Release ids, most recently activated first (activation touches the dir). */
  releases: string[];
  lock: LockInfo | null;
  /**
   * The asked-for release: present on disk, the sha256 of its .env (never the content) and of
   * its manifest, and whether its files match that manifest (`problem` says why not).
   */
  target: { present: boolean; envSha256: string | null; manifestSha256: string | null; problem: string | null };
  /** The outcome of the last remote gate step (`.last-run`), whoever started it. */
  lastRun: LastRun | null;
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
export async function check(session: SshSession, script: string, what: string, diskDir?: string): Promise<RunResult> {
  const result = await session.run(script);
  if (result.code !== 0) {
    // A full disk shows as ENOSPC, or as dash's printf "I/O error": the probe tells.
    if (diskDir && (await probeDiskFull(session, diskDir)).full) throw await diskFull(session, diskDir, what);
    throw new DeployError('REMOTE_COMMAND_FAILED', `${what} failed on ${session.where} (exit ${result.code}):\n${tail(result)}`);
  }
  return result;
}

/** Whether the filesystem holding `dir` has no room left (a 64 KiB probe write fails). */
async function probeDiskFull(session: SshSession, dir: string): Promise<{ full: boolean; df: string }> {
  const probe = sq(`${dir}/.space-probe`);
  const out = await session
    .run(
      `d=${sq(dir)}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d" | tail -n 1; ` +
        `if head -c 65536 /dev/zero > ${probe} 2>/dev/null; then echo space=ok; else echo space=full; fi; rm -f ${probe}`,
      { timeoutMs: 15_000 },
    )
    .catch(() => null);
  return { full: !!out?.stdout.includes('space=full'), df: out?.stdout.split('\n')[0] ?? '' };
}

/** DISK_FULL naming the filesystem, what failed and what to run. */
async function diskFull(session: SshSession, dir: string, what: string): Promise<DeployError> {
  const { df } = await probeDiskFull(session, dir);
  const [, , , avail, use, mount] = df.trim().split(/\s+/);
  return new DeployError(
    'DISK_FULL',
    `${what} failed on ${session.where}: the disk holding ${dir} is full` +
      (mount ? ` (${mount}: ${use} used, ${avail} KiB free)` : '') +
      `. Free space there, e.g. remove unused images with \`docker image prune -a\` and old releases under ${dir.replace(/\/releases.*$/, '')}/releases, ` +
      'then run the deploy again. Nothing was switched: the current release keeps serving.',
  );
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

/** The lock's owner line, or `unknown` when none was recorded (empty or missing owner file). */
function ownerExpr(L: Layout): string {
  return `$(o=$(head -n 1 ${sq(`${L.lockDir}/owner`)} 2>/dev/null); printf '%s' "\${o:-unknown}")`;
}

function lockInfoScript(L: Layout): string {
  return [
    `if [ -d ${sq(L.lockDir)} ]; then`,
    `  printf 'lock_age=%s\\n' "$(( $(date +%s) - $(stat -c %Y ${sq(L.lockDir)} 2>/dev/null || date +%s) ))"`,
    `  printf 'lock_owner=%s\\n' "${ownerExpr(L)}"`,
    'fi',
  ].join('\n');
}

/** Whether `release` is current, intact, with this manifest and exactly this `.env` (read with `readState(..., { release })`). */
export function isCurrentWith(state: RemoteState, release: string, envSha256: string, manifestSha256: string): boolean {
  return state.current === release && state.target.envSha256 === envSha256 && state.target.problem === null && state.target.manifestSha256 === manifestSha256;
}

/** One round trip: links, releases with activation times, lock, and the target release. */
export async function readState(session: SshSession, L: Layout, opts: { release?: string; cleanLeftovers?: boolean } = {}): Promise<RemoteState> {
  const lines = ['set -eu', `if ! cd ${sq(L.envDir)} 2>/dev/null; then exit 0; fi`];
  if (opts.cleanLeftovers) {
    // Only called with the lock held: nobody else can be uploading right now.
    lines.push(
      'for d in releases/.incoming-* releases/.trash-* .trash-* .deploy-lock.broken-* .deploy-lock.new-* .current.tmp-* .previous.tmp-* .space-probe; do',
      '  if [ -e "$d" ] || [ -L "$d" ]; then rm -rf -- "$d"; printf \'removed=%s\\n\' "$d"; fi',
      'done',
      // Files of finished gate steps whose client never came back (the outcome stays in .last-run).
      "find . -maxdepth 1 -name '.run-*' -mmin +10 -delete",
    );
  }
  lines.push(
    `printf 'current=%s\\n' "$(readlink current 2>/dev/null || true)"`,
    `printf 'previous=%s\\n' "$(readlink previous 2>/dev/null || true)"`,
    `if [ -d releases ]; then find releases -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf 'release=%T@ %f\\n'; fi`,
    lockInfoScript(L),
    `if [ -f .last-run ]; then sed 's/^/last_/' .last-run; fi`,
  );
  if (opts.release) {
    const dir = sq(`releases/${opts.release}`);
    const env = sq(`releases/${opts.release}/.env`);
    lines.push(
      VERIFY_RELEASE_FN,
      `if [ -e ${dir} ] || [ -L ${dir} ]; then echo target=present; fi`,
      `if [ -f ${env} ]; then printf 'target_env=%s\\n' "$(sha256sum < ${env} | cut -d ' ' -f 1)"; fi`,
      `if [ -f ${sq(`releases/${opts.release}/${MANIFEST}`)} ]; then printf 'target_manifest=%s\\n' "$(sha256sum < ${sq(`releases/${opts.release}/${MANIFEST}`)} | cut -d ' ' -f 1)"; fi`,
      `if [ -e ${dir} ] || [ -L ${dir} ]; then if why=$(verify_release ${dir}); then :; else printf 'target_problem=%s\\n' "$why"; fi; fi`,
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
    target: {
      present: values.has('target'),
      envSha256: values.get('target_env')?.[0] ?? null,
      manifestSha256: values.get('target_manifest')?.[0] ?? null,
      problem: values.get('target_problem')?.[0] ?? null,
    },
    lastRun: lastRunFrom([...values].filter(([k]) => k.startsWith('last_')).map(([k, v]) => `${k.slice(5)}=${v[0]}`).join('\n')),
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

/** How often a lock held by a running gate step is looked at again. */
const GATE_POLL_MS = 2000;

/**
 * Takes `.deploy-lock` atomically WITH its owner line: the owner file is written into a
 * temporary dir that is then renamed into place without replacing anything (`mv -n`, i.e.
 * renameat2 RENAME_NOREPLACE), so a lock never exists without its owner and lease, and of two
 * deployers exactly one gets it. A held lock is removed only when its lease has run out (an
 * ownerless lock, left by an older deployer, counts with this caller's lease) or with
 * `breakStaleLock`. Returns the token that proves ownership when releasing.
 */
export async function acquireLock(session: SshSession, L: Layout, options: LockOptions, log: LogFn): Promise<string> {
  const token = randomBytes(8).toString('hex');
  const { breakStale, leaseSeconds } = options;
  const fresh = sq(`${L.lockDir}.new-${token}`);
  const script = [
    'set -u',
    'umask 022',
    `mkdir -p ${sq(L.releasesDir)} || exit 1`,
    `err=$( { mkdir ${fresh} && printf '%s\\n' ${sq(ownerLine(token, leaseSeconds))} > ${fresh}/owner && mv -T -n ${fresh} ${sq(L.lockDir)}; } 2>&1 )`,
    `if [ ! -e ${fresh} ] && grep -qsF -- ${sq(`token=${token}`)} ${sq(`${L.lockDir}/owner`)}; then`,
    '  echo lock=acquired',
    'else',
    `  rm -rf -- ${fresh}`,
    `  if [ ! -d ${sq(L.lockDir)} ]; then printf 'lock_error=%s\\n' "$err" | head -n 1; fi`,
    lockInfoScript(L),
    'fi',
  ].join('\n');
  const maxWait = options.maxWaitSeconds ?? LEASE_WAIT_SECONDS;
  let waited = false;
  let broke = false;
  let gateWaitUntil: number | undefined;
  let gateLogged = false;
  for (;;) {
    const values = keyValues((await check(session, script, 'taking the deploy lock', L.envDir)).stdout);
    if (values.get('lock')?.[0] === 'acquired') {
      log(`lock ${L.lockDir} taken`);
      return token;
    }
    const error = values.get('lock_error')?.[0];
    if (error !== undefined) {
      if ((await probeDiskFull(session, L.envDir)).full) throw await diskFull(session, L.envDir, 'taking the deploy lock');
      throw new DeployError('REMOTE_COMMAND_FAILED', `taking the deploy lock ${L.lockDir} failed on ${session.where}: ${error}`);
    }
    const held = lockFrom(values) ?? { owner: 'unknown', ageSeconds: 0 };
    // No owner recorded (an older deployer on a full disk): its lease is unknown, so ours counts.
    const lease = held.leaseSeconds ?? (held.owner === 'unknown' ? leaseSeconds : undefined);
    const left = lease === undefined ? undefined : lease - held.ageSeconds;
    const gate = / gate=(\w+) release=(\w+)/.exec(held.owner);
    // A gate step left running by a client that lost its connection usually ends well before
    // its lease: poll for it (within maxWait) instead of failing, so e.g. CloudFormation's
    // rollback that follows a detached gate gets the lock as soon as the step is done.
    if (gate && gateWaitUntil === undefined) gateWaitUntil = Date.now() + maxWait * 1000;
    if (gate && (left === undefined || left > 0) && gateWaitUntil !== undefined && Date.now() < gateWaitUntil) {
      if (!gateLogged) log(`lock ${L.lockDir} held by the gate step of release ${gate[2]} on the VPS: waiting up to ${maxWait}s for it to end`);
      gateLogged = true;
      await new Promise((resolve) => setTimeout(resolve, GATE_POLL_MS));
      continue;
    }
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
          (gate
            ? `It is the gate of release ${gate[2]} running on the VPS (run ${gate[1]}); it releases the lock itself when it ends${left !== undefined && left > 0 ? `, within ${left}s` : ''}. Read its outcome with the status command, then run again.`
            : 'Wait for it to finish; if that deploy is dead, retry with breakStaleLock: true.'),
        held,
      );
    }
    const why = expired ? (held.leaseSeconds === undefined ? `it records no owner and is older than the lease of ${lease}s` : `its lease of ${held.leaseSeconds}s ran out`) : 'breakStaleLock asks';
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
  return `if [ "${ownerExpr(L)}" = ${sq(judgedOwner)} ] && mv -T -- ${sq(L.lockDir)} ${sq(aside)} 2>/dev/null; then rm -rf -- ${sq(aside)}; fi`;
}

/**
 * Removes the lock only if it is still ours (someone may have broken it meanwhile) and no
 * remote gate step has taken it over (that step releases it when it ends).
 */
export async function releaseLock(session: SshSession, L: Layout, token: string, log: LogFn): Promise<void> {
  const owner = sq(`${L.lockDir}/owner`);
  const script =
    `if grep -qsF -- ${sq(`token=${token}`)} ${owner}; then if grep -qs ' gate=' ${owner}; then echo gate; else rm -rf -- ${sq(L.lockDir)}; echo released; fi; ` +
    'else echo foreign; fi';
  const result = await session.run(script, { timeoutMs: 15_000 });
  if (result.code === 0 && result.stdout.includes('released')) log(`lock ${L.lockDir} released`);
  else if (result.stdout.includes('gate')) log(`lock ${L.lockDir} left to the gate step running on the VPS`);
  else log(`warning: lock ${L.lockDir} was no longer ours, left as is`);
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
export async function uploadRelease(session: SshSession, L: Layout, bundle: Bundle, envFile: string, log: LogFn, opts: { replace?: boolean } = {}): Promise<void> {
  const incoming = `${L.releasesDir}/.incoming-${bundle.hash}-${randomBytes(4).toString('hex')}`;
  const names = Object.keys(bundle.files).sort();
  const dirs = [...new Set(names.map((n) => n.split('/').slice(0, -1).join('/')).filter(Boolean))].map((d) => sq(`${incoming}/${d}`));
  log(`uploading ${names.length} files + .env + ${MANIFEST} to ${incoming}`);
  await check(session, `set -eu\numask 022\nmkdir ${sq(incoming)}${dirs.length ? `\nmkdir -p ${dirs.join(' ')}` : ''}`, 'creating the upload directory', L.releasesDir);
  try {
    const write = async (name: string, data: string, mode: number) => {
      try {
        await session.writeNewFile(`${incoming}/${name}`, Buffer.from(data, 'utf8'), mode);
      } catch (err) {
        if (err instanceof DeployError) throw err;
        // sftp-server answers every write error, ENOSPC included, with the bare status "Failure".
        if ((await probeDiskFull(session, L.releasesDir)).full) throw await diskFull(session, L.releasesDir, `upload of ${name}`);
        throw new DeployError('UPLOAD_FAILED', `upload of ${name} to ${incoming} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    // The secret file first, with its final mode from creation on.
    await write('.env', envFile, 0o600);
    await inPool(names, 8, (name) => write(name, bundle.files[name], bundleFileMode(name)));
    await write(MANIFEST, manifestOf(bundle), 0o444);
    const dir = sq(releaseDir(L, bundle.hash));
    // An untrusted dir (or symlink) of the same id is swapped out only now that its replacement is complete.
    const aside = sq(`${L.releasesDir}/.trash-${bundle.hash}-${randomBytes(4).toString('hex')}`);
    const swap = opts.replace ? `if [ -e ${dir} ] || [ -L ${dir} ]; then mv -T -- ${dir} ${aside}; fi && mv -T ${sq(incoming)} ${dir} && rm -rf -- ${aside}` : `mv -T ${sq(incoming)} ${dir}`;
    await check(session, swap, 'moving the uploaded release into place');
  } catch (err) {
    if (session.lost) {
      log(`upload failed (connection lost); ${incoming} is removed by the next deploy`);
      throw err instanceof DeployError && err.code === 'SSH_FAILED'
        ? new DeployError('SSH_FAILED', `${err.message} during the upload of release ${bundle.hash}; nothing was switched, the current release keeps serving. Run the deploy again.`)
        : err;
    }
    const cleanup = await session.run(`rm -rf -- ${sq(incoming)}`).catch(() => undefined);
    log(cleanup?.code === 0 ? `upload failed; removed ${incoming}` : `upload failed; could not remove ${incoming} (the next deploy will)`);
    throw err;
  }
  log(`release ${bundle.hash} in place`);
}

/**
 * The values in the `.env` of every release on disk, to redact output with when the caller
 * could not supply the secrets (read into memory only, never printed).
 */
export async function readEnvValues(session: SshSession, L: Layout): Promise<string[]> {
  const out = await session.run(`cd ${sq(L.releasesDir)} 2>/dev/null || exit 0; for f in */.env; do if [ -f "$f" ]; then cat -- "$f" || exit 3; fi; done`, { timeoutMs: 30_000 });
  if (out.code !== 0) {
    // Fail closed: without the values, what the VPS prints could leak them.
    throw new DeployError('REMOTE_COMMAND_FAILED', `could not read the .env files under ${L.releasesDir} on ${session.where} to mask secret values in the output (exit ${out.code}); refusing to go on unmasked`);
  }
  const values: string[] = [];
  for (const line of out.stdout.split('\n')) {
    const m = /^[A-Za-z_][A-Za-z0-9_]*=(['"])(.*)\1$/.exec(line);
    if (m && m[2]) values.push(m[2]);
  }
  return values;
}

/**
 * Puts `bundle` on disk with this `.env`: uploads it when missing, or afresh when what is there
 * fails its manifest check or holds another manifest; otherwise replaces only a changed `.env`.
 */
export async function ensureRelease(session: SshSession, L: Layout, bundle: Bundle, envFile: string, state: RemoteState, log: LogFn): Promise<void> {
  const release = bundle.hash;
  const { present, problem, manifestSha256, envSha256 } = state.target;
  const untrusted = present && (problem !== null || manifestSha256 !== sha256Hex(manifestOf(bundle)));
  if (untrusted) log(`release ${release} on the VPS does not match this bundle (${problem ?? 'its manifest differs'}): replacing it with a fresh upload`);
  if (!present || untrusted) await uploadRelease(session, L, bundle, envFile, log, { replace: untrusted });
  else if (envSha256 !== sha256Hex(envFile)) await replaceEnvFile(session, L, release, envFile, log);
  else log(`release ${release} is already on disk`);
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

/** The releases beyond the `keep` most recently activated ones, never current or previous. */
export function doomedReleases(state: Pick<RemoteState, 'releases' | 'current' | 'previous'>, keep: number): string[] {
  const protectedIds = new Set([state.current, state.previous].filter((r): r is string => r !== null));
  return state.releases.slice(keep).filter((id) => !protectedIds.has(id));
}

/** Removes every release, link and leftover of the app/environment (not the lock: the caller holds it). */
export async function removeReleases(session: SshSession, L: Layout): Promise<void> {
  await check(
    session,
    // releases/ is renamed first, like pruned releases (deployer-gate.ts): an interrupted delete leaves a `.trash-*` leftover, never a half release.
    `set -eu\ncd ${sq(L.envDir)}\nif [ -d releases ]; then mv -T releases .trash-releases; fi\nrm -rf -- .trash-releases current previous .current.tmp-* .previous.tmp-* .owner .owner.tmp .prefetch-* .run-* .last-run`,
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
