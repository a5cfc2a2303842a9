import { composeScript } from './deployer-compose';
import { layoutOf, renderEnvFile, sha256Hex, sq, validateBundle, validateRelease, type Layout } from './deployer-input';
import { manifestOf } from './deployer-manifest';
import { Redactor } from './deployer-redact';
import { check, ensureRelease, isCurrentWith, readState, tail } from './deployer-remote';
import type { Bundle, DeployTarget, LogFn, Secrets, SshConnection } from './deployer-types';
import { guarded, withLock, withSession } from './deployer';

/**
 * Image pulls can outlast a Lambda invocation (15 minutes), so the CDK custom
 * resource first uploads the release and starts `docker compose pull` in the
 * background on the VPS, then polls until it finished and only then runs the
 * gated deploy, whose own pull is quick because the images are already there.
 * Nothing is switched while images download: the running release keeps serving.
 */

export type PrefetchState = 'running' | 'succeeded' | 'failed' | 'not-started';

/**
 * A pull still running after this long is killed (exit 124): isComplete then fails the deploy
 * while CloudFormation still waits, instead of a stuck pull outliving the custom resource.
 */
export const PREFETCH_TIMEOUT_SECONDS = 1500;

/** Default lock lease of a prefetch, which holds the lock while it uploads. */
const UPLOAD_LEASE_SECONDS = 900;

export interface PrefetchStatus {
  state: PrefetchState;
  /** Last lines of the pull's output (redacted), when it finished. */
  output: string;
}

function files(L: Layout, release: string): { log: string; exit: string } {
  return { log: `${L.envDir}/.prefetch-${release}.log`, exit: `${L.envDir}/.prefetch-${release}.exit` };
}

/** Uploads the release (with its `.env`) if needed and starts pulling its images in the background. */
export async function startPrefetch(
  connection: SshConnection,
  target: DeployTarget,
  bundle: Bundle,
  env: Secrets,
  options: { breakStaleLock?: boolean; leaseSeconds?: number; log?: LogFn } = {},
): Promise<void> {
  const redactor = new Redactor(Object.values(env));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    validateBundle(bundle);
    const envFile = renderEnvFile(env);
    const log = redactor.logger(options.log);
    const release = bundle.hash;
    await withSession(connection, (session) =>
      // The lock covers the upload only; the pull runs on without it.
      withLock(session, L, { breakStale: !!options.breakStaleLock, leaseSeconds: options.leaseSeconds ?? UPLOAD_LEASE_SECONDS }, log, async () => {
        const state = await readState(session, L, { release, cleanLeftovers: true });
        const f = files(L, release);
        const manifestSha = sha256Hex(manifestOf(bundle));
        if (isCurrentWith(state, release, sha256Hex(envFile), manifestSha)) {
          // Already serving (e.g. CloudFormation rolling back to it): its images are on the VPS,
          // and a registry outage must not fail the rollback.
          await check(session, `echo 'release already current: no pull needed' > ${sq(f.log)} && echo 0 > ${sq(f.exit)}`, 'recording the skipped pull');
          log(`release ${release} is already current: no image pull`);
          return;
        }
        await ensureRelease(session, L, bundle, envFile, state, log);
        // setsid + full redirection: the pull outlives this SSH channel and holds none of its streams.
        const pull = `timeout ${PREFETCH_TIMEOUT_SECONDS} sh -c ${sq(composeScript(L, release, ['pull']))}`;
        const script = `rm -f ${sq(f.exit)} && setsid nohup sh -c ${sq(`${pull}; echo $? > ${sq(f.exit)}`)} > ${sq(f.log)} 2>&1 < /dev/null &`;
        const started = await session.run(script, { timeoutMs: 30_000 });
        if (started.code !== 0) throw new Error(`could not start the image pull for release ${release}: ${tail(started)}`);
        log(`release ${release} uploaded; docker compose pull started in the background`);
      }, connection),
    );
  });
}

/** Whether the background pull of `release` is still running, succeeded or failed. */
export async function prefetchStatus(connection: SshConnection, target: DeployTarget, release: string, secrets: Secrets = {}): Promise<PrefetchStatus> {
  validateRelease(release);
  const redactor = new Redactor(Object.values(secrets));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    const f = files(L, release);
    return withSession(connection, async (session) => {
      const probe = await session.run(
        `if [ -f ${sq(f.exit)} ]; then echo "exit=$(cat ${sq(f.exit)})"; elif [ -f ${sq(f.log)} ]; then echo running; else echo not-started; fi; tail -n 20 ${sq(f.log)} 2>/dev/null || true`,
        { timeoutMs: 30_000 },
      );
      const [first, ...rest] = probe.stdout.split('\n');
      const output = redactor.apply(rest.join('\n').trim());
      if (first.startsWith('exit=')) return { state: first === 'exit=0' ? 'succeeded' : 'failed', output };
      return { state: first === 'running' ? 'running' : 'not-started', output };
    });
  });
}
