/**
 * VPS deployer: ships a content-addressed Docker Compose release to the VPS over
 * SSH (pinned host key), switches `current` atomically, gates on
 * `docker compose up --wait`, and returns to the previous release when the gate
 * fails. Used by the CDK custom resource (Lambda) and the ops CLI.
 *
 * Remote layout, under `<baseDir>/<app>/<env>/`:
 *   releases/<hash>/      one dir per release: the bundle files and `.env` (0600)
 *   current, previous     symlinks to `releases/<hash>`
 *   .deploy-lock/owner    present while a deploy/rollback/teardown runs
 */
import { allHealthy, compose, composeScript, describeServices, diagnose, inspect, upArgs } from './deployer-compose';
import { layoutOf, renderEnvFile, sha256Hex, validateBundle, validateOwner, validateSeconds, validateService, type Layout } from './deployer-input';
import { Redactor } from './deployer-redact';
import { acquireLock, isCurrentWith, type LockOptions, prune, readOwner, readState, releaseLock, removeEmptyDirs, removeReleases, replaceEnvFile, setLinks, tail, uploadRelease, writeOwner } from './deployer-remote';
import {
  DeployError,
  type Bundle,
  type DeployOptions,
  type DeployResult,
  type DeployTarget,
  type LogFn,
  type LogsOptions,
  type LogsResult,
  type RollbackOptions,
  type RollbackResult,
  type Secrets,
  type SshConnection,
  type StatusOptions,
  type StatusResult,
  type TeardownOptions,
  type TeardownResult,
} from './deployer-types';
import { gateAndRollbackSeconds, UP_GRACE_SECONDS } from './gate-budget';
import { openSession, type RunResult, type SshSession } from './ssh-session';

export * from './deployer-types';
export { fingerprintFromSha256Hex, normalizeFingerprint } from './ssh-session';

const DEFAULT_PULL_TIMEOUT_SECONDS = 600;
const DEFAULT_DOWN_TIMEOUT_SECONDS = 300;

interface Ctx {
  session: SshSession;
  L: Layout;
  log: LogFn;
  redactor: Redactor;
  waitSeconds: number;
}

/** Every error leaves through the redactor, whatever threw it. */
export async function guarded<T>(redactor: Redactor, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw redactor.error(err);
  }
}

export async function withSession<T>(connection: SshConnection, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await openSession(connection);
  try {
    return await fn(session);
  } finally {
    session.close();
  }
}

/** Time beyond a run's own bounds (SSH, link switches, diagnosis) that its lock lease allows. */
const LEASE_MARGIN_SECONDS = 300;

/** The default lease: the longest the given bounded steps can take, plus a margin. */
function leaseFor(...stepSeconds: number[]): number {
  return stepSeconds.reduce((a, b) => a + b, LEASE_MARGIN_SECONDS);
}

/** The lock is released in `finally`, whatever happened in between. */
export async function withLock<T>(session: SshSession, L: Layout, lock: LockOptions, log: LogFn, fn: () => Promise<T>): Promise<T> {
  const token = await acquireLock(session, L, lock, log);
  try {
    return await fn();
  } finally {
    await releaseLock(session, L, token, log).catch((err: unknown) => log(`warning: could not release the lock: ${err instanceof Error ? err.message : String(err)}`));
  }
}

/** A command that threw (timeout, lost connection) counts as a failed one. */
export async function attempt(run: Promise<RunResult>): Promise<RunResult> {
  try {
    return await run;
  } catch (err) {
    return { code: -1, stdout: '', stderr: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Switches `current` to `release` and gates on `up --wait`. On failure: points
 * `current` (and `previous`) back to what they were and converges that release
 * again; with no earlier release, stops the new one and removes `current`.
 * Throws HEALTH_GATE_FAILED with the failing services' last log lines.
 */
async function activate(ctx: Ctx, release: string, before: { current: string | null; previous: string | null }): Promise<void> {
  const { session, L, log, waitSeconds } = ctx;
  const previous = before.current && before.current !== release ? before.current : before.previous;
  await setLinks(session, L, { current: release, previous });
  log(`current -> releases/${release} (previous: ${previous ?? 'none'})`);
  const up = await attempt(compose(session, L, release, upArgs(waitSeconds), waitSeconds + UP_GRACE_SECONDS, log));
  if (up.code === 0) {
    log(`release ${release} is up and healthy`);
    return;
  }

  const diag = await diagnose(session, L, release);
  let currentRelease: string | null = release;
  let restoredHealthy: boolean | null = null;
  let outcome: string;
  if (before.current && before.current !== release) {
    await setLinks(session, L, { current: before.current, previous: before.previous });
    log(`health gate failed: current -> releases/${before.current} again`);
    const back = await attempt(compose(session, L, before.current, upArgs(waitSeconds), waitSeconds + UP_GRACE_SECONDS, log));
    currentRelease = before.current;
    restoredHealthy = back.code === 0;
    outcome = restoredHealthy
      ? `current is back on release ${before.current}, which is up and healthy again.`
      : `current is back on release ${before.current}, but it did not come up healthy either (exit ${back.code}):\n${tail(back, 10)}`;
  } else if (!before.current) {
    const down = await attempt(compose(session, L, release, ['down', '--remove-orphans'], DEFAULT_DOWN_TIMEOUT_SECONDS, log));
    await setLinks(session, L, { current: null, previous: before.previous });
    currentRelease = null;
    outcome =
      `there was no previous release to return to: release ${release} was stopped ` +
      `(docker compose down ${down.code === 0 ? 'done' : `failed, exit ${down.code}`}) and the current link removed, so nothing claims to be current.`;
  } else {
    outcome = `release ${release} was already current before this run, so there is no other release to return to; it stays current.`;
  }
  const logText = Object.entries(diag.logs)
    .map(([service, lines]) => `--- ${service}, last ${lines.length} log lines:\n${lines.join('\n')}`)
    .join('\n');
  throw new DeployError(
    'HEALTH_GATE_FAILED',
    `release ${release} failed the health gate (docker compose up --wait exited ${up.code}). ${outcome}\n` +
      `services of ${release}: ${describeServices(diag.services)}\n` +
      `compose said:\n${tail(up, 10)}\n${logText}`,
    ctx.redactor.deep({ failedRelease: release, currentRelease, restoredHealthy, services: diag.services, logs: diag.logs }),
  );
}

/**
 * Deploys `bundle` with `env` as its `.env`. No-op (`unchanged`) when the release
 * is already current with the same secrets and every service is healthy.
 */
export async function deploy(connection: SshConnection, target: DeployTarget, bundle: Bundle, env: Secrets, options: DeployOptions): Promise<DeployResult> {
  const redactor = new Redactor(Object.values(env ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    validateBundle(bundle);
    const envFile = renderEnvFile(env);
    validateSeconds('composeTimeoutSeconds', options.composeTimeoutSeconds, 3600);
    const pullTimeout = options.pullTimeoutSeconds ?? DEFAULT_PULL_TIMEOUT_SECONDS;
    validateSeconds('pullTimeoutSeconds', pullTimeout, 7200);
    const log = redactor.logger(options.log);
    if (options.owner !== undefined) validateOwner(options.owner);
    const lease = options.leaseSeconds ?? leaseFor(options.imagesPulled ? 0 : pullTimeout, gateAndRollbackSeconds(options.composeTimeoutSeconds));

    return withSession(connection, (session) =>
      withLock(session, L, { breakStale: !!options.breakStaleLock, leaseSeconds: lease, maxWaitSeconds: options.lockWaitSeconds }, log, async (): Promise<DeployResult> => {
        const result = await deployLocked(session, L, target, bundle, envFile, { ...options, pullTimeout, log, redactor });
        if (options.owner !== undefined) await writeOwner(session, L, options.owner);
        return result;
      }),
    );
  });
}

/** The deploy itself, with the lock held. */
async function deployLocked(
  session: SshSession,
  L: Layout,
  target: DeployTarget,
  bundle: Bundle,
  envFile: string,
  options: DeployOptions & { pullTimeout: number; log: LogFn; redactor: Redactor },
): Promise<DeployResult> {
  const { log, redactor, pullTimeout } = options;
  const release = bundle.hash;
  log(`deploy ${target.appName}/${target.envName} release ${release} to ${session.where}`);
  const state = await readState(session, L, { release, cleanLeftovers: true });
  for (const leftover of state.removed) log(`removed ${leftover}, left by an interrupted run`);
  const envSha = sha256Hex(envFile);

  if (isCurrentWith(state, release, envSha)) {
    const inspection = await inspect(session, L, release);
    if (allHealthy(inspection)) {
      log(`release ${release} is current and every service is healthy: nothing to do`);
      return { action: 'unchanged', release, previous: state.previous, pruned: [] };
    }
    log(`release ${release} is current but not healthy (${describeServices(inspection?.services ?? [])}): converging it again`);
  }

  if (!state.target.present) await uploadRelease(session, L, bundle, envFile, log);
  else if (state.target.envSha256 !== envSha) await replaceEnvFile(session, L, release, envFile, log);
  else log(`release ${release} is already on disk`);

  // Pull before switching: a registry failure then changes nothing at all.
  if (options.imagesPulled) log(`images of release ${release} already pulled`);
  else {
    const pull = await attempt(compose(session, L, release, ['pull'], pullTimeout, log));
    if (pull.code !== 0) {
      throw new DeployError(
        'PULL_FAILED',
        `docker compose pull for release ${release} failed (exit ${pull.code}); nothing was switched, current is still ${state.current ?? 'none'}:\n${tail(pull)}`,
      );
    }
  }

  // The first release on this VPS belongs to the deployer from the start: should its gate fail,
  // the owner's Delete (CloudFormation's rollback of a failed create) may then clean it up.
  if (state.current === null && options.owner !== undefined) await writeOwner(session, L, options.owner);
  const ctx: Ctx = { session, L, log, redactor, waitSeconds: options.composeTimeoutSeconds };
  await activate(ctx, release, { current: state.current, previous: state.previous });

  // activate() touched the release: it is now the most recently activated one.
  const previous = state.current && state.current !== release ? state.current : state.previous;
  const releases = [release, ...state.releases.filter((r) => r !== release)];
  const pruned = await prune(session, L, { releases, current: release, previous }, target.keepReleases);
  if (pruned.length) log(`pruned releases: ${pruned.join(', ')}`);
  return { action: 'deployed', release, previous, pruned };
}

/** Switches `current` to the `previous` release and converges it (same gate as deploy). Images are not pulled again. */
export async function rollback(connection: SshConnection, target: DeployTarget, options: RollbackOptions): Promise<RollbackResult> {
  const redactor = new Redactor(Object.values(options.secrets ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    validateSeconds('composeTimeoutSeconds', options.composeTimeoutSeconds, 3600);
    const log = redactor.logger(options.log);
    return withSession(connection, (session) =>
      withLock(session, L, { breakStale: !!options.breakStaleLock, leaseSeconds: options.leaseSeconds ?? leaseFor(gateAndRollbackSeconds(options.composeTimeoutSeconds)) }, log, async (): Promise<RollbackResult> => {
        const state = await readState(session, L, { cleanLeftovers: true });
        const to = state.previous;
        if (!to || to === state.current || !state.releases.includes(to)) {
          throw new DeployError(
            'NO_PREVIOUS_RELEASE',
            `no previous release to roll back to for ${target.appName}/${target.envName} (current: ${state.current ?? 'none'}, previous: ${to ?? 'none'}, on disk: ${state.releases.join(', ') || 'none'})`,
          );
        }
        log(`rolling back ${target.appName}/${target.envName} from ${state.current ?? 'none'} to ${to}`);
        await activate({ session, L, log, redactor, waitSeconds: options.composeTimeoutSeconds }, to, { current: state.current, previous: state.previous });
        return { action: 'rolled-back', release: to, previous: state.current };
      }),
    );
  });
}

/** Current and previous release, releases on disk, service states, and any deploy in progress. Read-only, takes no lock. */
export async function status(connection: SshConnection, target: DeployTarget, options: StatusOptions = {}): Promise<StatusResult> {
  const redactor = new Redactor(Object.values(options.secrets ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    return withSession(connection, async (session) => {
      const state = await readState(session, L);
      const inspection = state.current ? await inspect(session, L, state.current) : null;
      return redactor.deep({
        current: state.current,
        previous: state.previous,
        releases: state.releases,
        services: inspection?.services ?? [],
        lock: state.lock,
      });
    });
  });
}

/** The last `lines` log lines of one service of the current release (redacted). */
export async function logs(connection: SshConnection, target: DeployTarget, options: LogsOptions): Promise<LogsResult> {
  const redactor = new Redactor(Object.values(options.secrets ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    validateService(options.service);
    const count = options.lines ?? 100;
    validateSeconds('lines', count, 10_000);
    return withSession(connection, async (session) => {
      const { current } = await readState(session, L);
      if (!current) throw new DeployError('NO_CURRENT_RELEASE', `${target.appName}/${target.envName} has no current release`);
      const result = await session.run(composeScript(L, current, ['logs', '--no-color', '--tail', String(count), options.service]), { timeoutMs: 60_000 });
      if (result.code !== 0) throw new DeployError('REMOTE_COMMAND_FAILED', `docker compose logs ${options.service} failed (exit ${result.code}):\n${tail(result)}`);
      const lines = result.stdout.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return { release: current, service: options.service, lines: lines.map((l) => redactor.apply(l)) };
    });
  });
}

/**
 * Stops the project (`docker compose down --remove-orphans`, plus `--volumes`
 * only with removeVolumes) and removes every release of the app/environment.
 * If `down` fails, nothing is removed from disk, so the teardown can be retried.
 */
export async function teardown(connection: SshConnection, target: DeployTarget, options: TeardownOptions): Promise<TeardownResult> {
  const redactor = new Redactor(Object.values(options.secrets ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    const timeout = options.timeoutSeconds ?? DEFAULT_DOWN_TIMEOUT_SECONDS;
    validateSeconds('timeoutSeconds', timeout, 3600);
    const log = redactor.logger(options.log);
    return withSession(connection, async (session) => {
      const lock = { breakStale: !!options.breakStaleLock, leaseSeconds: options.leaseSeconds ?? leaseFor(timeout) };
      const result = await withLock(session, L, lock, log, async (): Promise<TeardownResult> => {
        if (options.onlyIfOwner !== undefined) {
          const owner = await readOwner(session, L);
          if (owner !== options.onlyIfOwner) {
            log(`teardown ${target.appName}/${target.envName}: what runs there was deployed by ${owner ?? 'no recorded owner'}, not ${options.onlyIfOwner}: left untouched`);
            return { action: 'not-owner', removedReleases: [], volumesRemoved: false, owner };
          }
        }
        const state = await readState(session, L, { cleanLeftovers: true });
        // Any release dir has a compose file; with none left, compose finds the project by name.
        const release = state.current ?? state.releases[0] ?? null;
        const args = ['down', '--remove-orphans', ...(options.removeVolumes ? ['--volumes'] : [])];
        log(`teardown ${target.appName}/${target.envName}: ${options.removeVolumes ? 'containers, networks AND named volumes' : 'containers and networks (named volumes kept)'}`);
        const down = await session.run(composeScript(L, release, args, release ? undefined : L.envDir), {
          timeoutMs: timeout * 1000,
          onLine: (line) => line.trim() && log(`  | ${line}`),
        });
        if (down.code !== 0) {
          throw new DeployError('REMOTE_COMMAND_FAILED', `docker compose ${args.join(' ')} failed (exit ${down.code}); releases left on disk:\n${tail(down)}`);
        }
        await removeReleases(session, L);
        log(`removed releases: ${state.releases.join(', ') || 'none'}`);
        return { action: 'torn-down', removedReleases: state.releases, volumesRemoved: options.removeVolumes };
      });
      await removeEmptyDirs(session, L);
      return result;
    });
  });
}
