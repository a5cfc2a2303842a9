import { releaseDir, sq, type Layout } from './deployer-input';
import type { LogFn, ServiceState } from './deployer-types';
import { DIAGNOSE_SECONDS } from './gate-budget';
import type { RunResult, SshSession } from './ssh-session';

const LOG_TAIL = 50;
const INSPECT_TIMEOUT_MS = 60_000;
/** The log reads run in parallel after the inspection: together within DIAGNOSE_SECONDS. */
const LOG_READ_TIMEOUT_MS = DIAGNOSE_SECONDS * 1000 - INSPECT_TIMEOUT_MS;

/**
 * `docker compose` in a release dir with the stable project name `<app>-<env>`:
 * compose reads the release's compose file and its `.env`, and containers and
 * named volumes keep belonging to the same project across releases.
 * `dir` overrides the release dir (teardown without any release left).
 */
export function composeScript(L: Layout, release: string | null, args: string[], dir?: string): string {
  const cwd = dir ?? releaseDir(L, release ?? '');
  return `cd ${sq(cwd)} && docker compose -p ${sq(L.project)} ${args.map(sq).join(' ')}`;
}

/** Runs compose and streams its output lines to the (redacting) log. */
export function compose(session: SshSession, L: Layout, release: string, args: string[], timeoutSeconds: number, log: LogFn): Promise<RunResult> {
  log(`${release.slice(0, 12)}: docker compose -p ${L.project} ${args.join(' ')}`);
  return session.run(composeScript(L, release, args), { timeoutMs: timeoutSeconds * 1000, onLine: (line) => line.trim() && log(`  | ${line}`) });
}

export function upArgs(waitTimeoutSeconds: number): string[] {
  return ['up', '-d', '--remove-orphans', '--wait', '--wait-timeout', String(waitTimeoutSeconds)];
}

/** `--format json` prints a JSON array (compose < 2.21) or one object per line (newer). */
export function parsePs(stdout: string): ServiceState[] {
  const text = stdout.trim();
  const rows: unknown[] = [];
  if (text.startsWith('[')) {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) rows.push(...parsed);
  } else {
    for (const line of text.split('\n')) if (line.trim().startsWith('{')) rows.push(JSON.parse(line));
  }
  return rows.map((raw) => {
    const r = (raw ?? {}) as Record<string, unknown>;
    return {
      service: String(r.Service ?? ''),
      name: String(r.Name ?? ''),
      state: String(r.State ?? '').toLowerCase(),
      health: String(r.Health ?? '').toLowerCase(),
      exitCode: Number(r.ExitCode ?? 0),
      status: String(r.Status ?? ''),
    };
  });
}

/** Running (and healthy when it has a health check), or a one-shot job that exited 0. */
export function isServiceOk(s: ServiceState): boolean {
  if (s.state === 'running') return s.health === '' || s.health === 'healthy';
  return s.state === 'exited' && s.exitCode === 0;
}

export interface Inspection {
  /** Services the compose file declares (`config --services`). */
  declared: string[];
  /** Containers (`ps -a`), plus a `missing` entry for a declared service without one. */
  services: ServiceState[];
}

/** One round trip: declared services and container states; null when compose itself fails. */
export async function inspect(session: SshSession, L: Layout, release: string): Promise<Inspection | null> {
  const script = [
    'set -eu',
    'echo @@services',
    composeScript(L, release, ['config', '--services']),
    'echo @@ps',
    composeScript(L, release, ['ps', '-a', '--format', 'json']),
  ].join('\n');
  const result = await session.run(script, { timeoutMs: INSPECT_TIMEOUT_MS });
  if (result.code !== 0) return null;
  const [, servicesPart = '', psPart = ''] = result.stdout.split(/^@@(?:services|ps)$/m);
  const declared = servicesPart.split('\n').map((l) => l.trim()).filter(Boolean);
  let services: ServiceState[];
  try {
    services = parsePs(psPart);
  } catch {
    return null;
  }
  for (const name of declared) {
    if (!services.some((s) => s.service === name)) services.push({ service: name, name: '', state: 'missing', health: '', exitCode: 0, status: 'no container' });
  }
  return { declared, services };
}

export function allHealthy(inspection: Inspection | null): boolean {
  return !!inspection && inspection.services.length > 0 && inspection.services.every(isServiceOk);
}

/** Failing services of a release and the last log lines of each (raw: the caller redacts). */
export async function diagnose(session: SshSession, L: Layout, release: string): Promise<{ services: ServiceState[]; logs: Record<string, string[]> }> {
  const inspection = await inspect(session, L, release).catch(() => null);
  const services = inspection?.services ?? [];
  let failing = [...new Set(services.filter((s) => !isServiceOk(s)).map((s) => s.service))];
  // Nothing identifiable (compose ps failed or shows nothing wrong): take every service's logs.
  if (failing.length === 0) failing = [''];
  // In parallel, each bounded: inspect + logs stay within DIAGNOSE_SECONDS (the gate's budget).
  const tails = await Promise.all(
    failing.slice(0, 5).map(async (service) => {
      const args = ['logs', '--no-color', '--tail', String(LOG_TAIL), ...(service ? [service] : [])];
      const result = await session.run(composeScript(L, release, args), { timeoutMs: LOG_READ_TIMEOUT_MS }).catch(() => null);
      const lines = result ? `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => l.trim() !== '') : ['(could not read logs)'];
      return [service || '(all services)', lines.slice(-LOG_TAIL)] as const;
    }),
  );
  return { services, logs: Object.fromEntries(tails) };
}

export function describeServices(services: ServiceState[]): string {
  return services.map((s) => `${s.service}: ${s.state}${s.health ? ` (${s.health})` : ''}`).join(', ') || 'no containers';
}
