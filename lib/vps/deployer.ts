/**
 * VPS deployer: ships a content-addressed Docker Compose release to the VPS over
 * SSH (pinned host key), then hands the switch of `current`, the health gate
 * (`docker compose up --wait`) and the return to the previous release to one
 * supervised step on the VPS that finishes on its own (deployer-gate.ts). Used by
 * the CDK custom resource (Lambda) and the ops CLI.
 *
 * Remote layout, under `<baseDir>/<app>/<env>/`:
 *   releases/<hash>/      one dir per release: the bundle files, `.manifest` (their sha256) and `.env` (0600)
 *   current, previous     symlinks to `releases/<hash>`
 *   .deploy-lock/owner    present while a deploy/rollback/teardown (or its gate step) runs
 *   .last-run             the outcome of the last gate step
 */
import { allHealthy, composeScript, compose, describeServices, failingLogs, inspect } from './deployer-compose';
import { runGate, type GateReport } from './deployer-gate';
import { layoutOf, renderEnvFile, sha256Hex, validateBundle, validateOwner, validateSeconds, validateService, type Layout } from './deployer-input';
import { manifestOf } from './deployer-manifest';
import { Redactor } from './deployer-redact';
import {
  acquireLock,
  doomedReleases,
  ensureRelease,
  isCurrentWith,
  type LockOptions,
  readEnvValues,
  readOwner,
  readState,
  releaseLock,
  removeEmptyDirs,
  removeReleases,
  tail,
  writeOwner,
} from './deployer-remote';
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
import { gateStepSeconds, UP_GRACE_SECONDS } from './gate-budget';
import { openSession, type SshSession } from './ssh-session';

export * from './deployer-types';
export { fingerprintFromSha256Hex, normalizeFingerprint } from './ssh-session';

const DEFAULT_PULL_TIMEOUT_SECONDS = 600;
const DEFAULT_DOWN_TIMEOUT_SECONDS = 300;

/** A lock taken by this client; handOver() when a remote step takes over releasing it. */
export interface HeldLock {
  token: string;
  handOver(): void;
}

interface Ctx {
  session: SshSession;
  connection: SshConnection;
  L: Layout;
  log: LogFn;
  redactor: Redactor;
  waitSeconds: number;
  upGraceSeconds: number;
  lock: HeldLock;
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

/** Handshake bound of the extra session that releases a lock after the first one was lost. */
const RELEASE_RECONNECT_MS = 10_000;

/**
 * The lock is released in `finally`, whatever happened in between: over a new session when
 * the connection was lost (the lease would otherwise block every later deploy), and not at all
 * once a remote step took it over.
 */
export async function withLock<T>(session: SshSession, L: Layout, lock: LockOptions, log: LogFn, fn: (held: HeldLock) => Promise<T>, connection?: SshConnection): Promise<T> {
  const token = await acquireLock(session, L, lock, log);
  let handedOver = false;
  try {
    return await fn({ token, handOver: () => (handedOver = true) });
  } finally {
    if (!handedOver) {
      const release = async () => {
        if (!session.lost || !connection) return releaseLock(session, L, token, log);
        await withSession({ ...connection, readyTimeoutMs: RELEASE_RECONNECT_MS }, (again) => releaseLock(again, L, token, log));
      };
      await release().catch((err: unknown) =>
        log(
          `warning: could not release the lock ${L.lockDir}: ${err instanceof Error ? err.message : String(err)}. ` +
            `It expires after its lease of ${lock.leaseSeconds}s; if this run is known to be dead, run again with breakStaleLock.`,
        ),
      );
    }
  }
}

/** The `up` output lines before the gate step said the release failed (for the error message). */
function upOutput(report: GateReport): string {
  const end = report.output.findIndex((l) => l.includes('failed the health gate'));
  return report.output
    .slice(0, end < 0 ? undefined : end)
    .filter((l) => !l.startsWith('gate: '))
    .slice(-10)
    .join('\n');
}

/**
 * Switches `current` to `release` and gates on `up --wait`, as one remote step that finishes
 * on the VPS even if this client goes away (deployer-gate.ts). On failure the step points
 * `current` (and `previous`) back to what they were and converges that release again; with no
 * earlier release, it stops the new one and removes `current`. Throws HEALTH_GATE_FAILED with
 * the failing services' last log lines, RELEASE_TAMPERED when the release fails its manifest.
 */
async function activate(ctx: Ctx, release: string, before: { current: string | null; previous: string | null }, extra: { owner?: string; prune: string[] }): Promise<void> {
  const { L, log } = ctx;
  const report = await runGate(
    { session: ctx.session, connection: ctx.connection, L, log, lockToken: ctx.lock.token, handOver: ctx.lock.handOver },
    { release, before, waitSeconds: ctx.waitSeconds, upGraceSeconds: ctx.upGraceSeconds, owner: extra.owner, prune: extra.prune },
  );
  if (report.outcome === 'serving') {
    log(`release ${release} is up and healthy`);
    return;
  }
  if (report.outcome === 'refused') {
    throw new DeployError(
      'RELEASE_TAMPERED',
      `release ${release} on ${ctx.session.where} does not match its manifest (${report.detail}): refusing to serve it. Nothing was switched; ` +
        `current is still ${before.current ?? 'none'}. Deploy that release again to upload it afresh.`,
    );
  }
  const services = report.inspection?.services ?? [];
  const logs = failingLogs(services, report.logs);
  const restoredHealthy = report.outcome === 'restored' ? report.restoredHealthy === 'yes' : null;
  let outcome: string;
  if (report.outcome === 'restored') {
    outcome = restoredHealthy
      ? `current is back on release ${report.current}, which is up and healthy again.`
      : `current is back on release ${report.current}, but it did not come up healthy either (see the log above).`;
  } else if (report.outcome === 'stopped') {
    outcome = before.current
      ? `${report.detail}; the current link was removed.`
      : `there was no previous release to return to: release ${release} was stopped (${report.detail}) and the current link removed, so nothing claims to be current.`;
  } else {
    outcome = `release ${release} was already current before this run, so there is no other release to return to; it stays current.`;
  }
  const logText = Object.entries(logs)
    .map(([service, lines]) => `--- ${service}, last ${lines.length} log lines:\n${lines.join('\n')}`)
    .join('\n');
  throw new DeployError(
    'HEALTH_GATE_FAILED',
    `release ${release} failed the health gate (docker compose up --wait exited ${report.upExit}). ${outcome}\n` +
      `services of ${release}: ${describeServices(services)}\n` +
      `compose said:\n${upOutput(report)}\n${logText}`,
    ctx.redactor.deep({ failedRelease: release, currentRelease: report.current, restoredHealthy, services, logs }),
  );
}

/**
 * Deploys `bundle` with `env` as its `.env`. No-op (`unchanged`) when the release
 * is already current, intact, with the same secrets and every service is healthy.
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
    const upGraceSeconds = options.upGraceSeconds ?? UP_GRACE_SECONDS;
    validateSeconds('upGraceSeconds', upGraceSeconds, 3600);
    const log = redactor.logger(options.log);
    if (options.owner !== undefined) validateOwner(options.owner);
    const gate = gateStepSeconds(options.composeTimeoutSeconds, upGraceSeconds);
    const lease = options.leaseSeconds ?? leaseFor(options.imagesPulled ? 0 : pullTimeout, gate);

    return withSession(connection, (session) =>
      withLock(
        session,
        L,
        { breakStale: !!options.breakStaleLock, leaseSeconds: lease, maxWaitSeconds: options.lockWaitSeconds },
        log,
        (held) => {
          const ctx: Ctx = { session, connection, L, log, redactor, waitSeconds: options.composeTimeoutSeconds, upGraceSeconds, lock: held };
          return deployLocked(ctx, target, bundle, envFile, { ...options, pullTimeout });
        },
        connection,
      ),
    );
  });
}

/** The deploy itself, with the lock held. */
async function deployLocked(ctx: Ctx, target: DeployTarget, bundle: Bundle, envFile: string, options: DeployOptions & { pullTimeout: number }): Promise<DeployResult> {
  const { session, L, log } = ctx;
  const release = bundle.hash;
  log(`deploy ${target.appName}/${target.envName} release ${release} to ${session.where}`);
  const state = await readState(session, L, { release, cleanLeftovers: true });
  for (const leftover of state.removed) log(`removed ${leftover}, left by an interrupted run`);
  if (state.lastRun) log(`last gate on the VPS: ${state.lastRun.outcome} (release ${state.lastRun.release}, at ${state.lastRun.at})`);
  const envSha = sha256Hex(envFile);
  const manifestSha = sha256Hex(manifestOf(bundle));

  if (isCurrentWith(state, release, envSha, manifestSha)) {
    const inspection = await inspect(session, L, release);
    if (allHealthy(inspection)) {
      log(`release ${release} is current, matches its manifest and every service is healthy: nothing to do`);
      if (options.owner !== undefined) await writeOwner(session, L, options.owner);
      return { action: 'unchanged', release, previous: state.previous, pruned: [] };
    }
    log(`release ${release} is current but not healthy (${describeServices(inspection?.services ?? [])}): converging it again`);
  }

  await ensureRelease(session, L, bundle, envFile, state, log);

  // Pull before switching: a registry failure then changes nothing at all.
  if (options.imagesPulled) log(`images of release ${release} already pulled`);
  else {
    const pull = await compose(session, L, release, ['pull'], options.pullTimeout, log).catch((err: unknown) => {
      if (err instanceof DeployError && err.code === 'TIMEOUT') return { code: 124, stdout: '', stderr: err.message };
      throw err;
    });
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

  // The gate step activates the release: it is then the most recently activated one.
  const previous = state.current && state.current !== release ? state.current : state.previous;
  const releases = [release, ...state.releases.filter((r) => r !== release)];
  const prune = doomedReleases({ releases, current: release, previous }, target.keepReleases);
  await activate(ctx, release, { current: state.current, previous: state.previous }, { owner: options.owner, prune });
  if (prune.length) log(`pruned releases: ${prune.join(', ')}`);
  return { action: 'deployed', release, previous, pruned: prune };
}

/** Switches `current` to the `previous` release and converges it (same gate as deploy). Images are not pulled again. */
export async function rollback(connection: SshConnection, target: DeployTarget, options: RollbackOptions): Promise<RollbackResult> {
  const redactor = new Redactor(Object.values(options.secrets ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    validateSeconds('composeTimeoutSeconds', options.composeTimeoutSeconds, 3600);
    const upGraceSeconds = options.upGraceSeconds ?? UP_GRACE_SECONDS;
    validateSeconds('upGraceSeconds', upGraceSeconds, 3600);
    const log = redactor.logger(options.log);
    const lease = options.leaseSeconds ?? leaseFor(gateStepSeconds(options.composeTimeoutSeconds, upGraceSeconds));
    return withSession(connection, async (session) => {
      redactor.add(await readEnvValues(session, L));
      return withLock(
        session,
        L,
        { breakStale: !!options.breakStaleLock, leaseSeconds: lease },
        log,
        async (held): Promise<RollbackResult> => {
          const state = await readState(session, L, { cleanLeftovers: true });
          const to = state.previous;
          if (!to || to === state.current || !state.releases.includes(to)) {
            throw new DeployError(
              'NO_PREVIOUS_RELEASE',
              `no previous release to roll back to for ${target.appName}/${target.envName} (current: ${state.current ?? 'none'}, previous: ${to ?? 'none'}, on disk: ${state.releases.join(', ') || 'none'})`,
            );
          }
          log(`rolling back ${target.appName}/${target.envName} from ${state.current ?? 'none'} to ${to}`);
          const ctx: Ctx = { session, connection, L, log, redactor, waitSeconds: options.composeTimeoutSeconds, upGraceSeconds, lock: held };
          await activate(ctx, to, { current: state.current, previous: state.previous }, { prune: [] });
          return { action: 'rolled-back', release: to, previous: state.current };
        },
        connection,
      );
    });
  });
}

/** Current and previous release, releases on disk, service states, and any deploy in progress. Read-only, takes no lock. */
export async function status(connection: SshConnection, target: DeployTarget, options: StatusOptions = {}): Promise<StatusResult> {
  const redactor = new Redactor(Object.values(options.secrets ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    return withSession(connection, async (session) => {
      redactor.add(await readEnvValues(session, L));
      const state = await readState(session, L);
      const inspection = state.current ? await inspect(session, L, state.current) : null;
      return redactor.deep({
        current: state.current,
        previous: state.previous,
        releases: state.releases,
        services: inspection?.services ?? [],
        lock: state.lock,
        lastRun: state.lastRun,
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
      redactor.add(await readEnvValues(session, L));
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
      redactor.add(await readEnvValues(session, L));
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
      }, connection);
      await removeEmptyDirs(session, L);
      return result;
    });
  });
}
