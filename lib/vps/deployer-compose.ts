import { releaseDir, sq, type Layout } from './deployer-input';
import type { LogFn, ServiceState } from './deployer-types';
import type { RunResult, SshSession } from './ssh-session';

const LOG_TAIL = 50;
const INSPECT_TIMEOUT_MS = 60_000;

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
  return result.code === 0 ? inspectionFrom(result.stdout) : null;
}

/** Parses `@@services` + `config --services`, then `@@ps` + `ps -a --format json`; null when unreadable. */
export function inspectionFrom(stdout: string): Inspection | null {
  const [, servicesPart = '', psPart = ''] = stdout.split(/^@@(?:services|ps)$/m);
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

/**
 * `docker compose logs` of all services, grouped by the `<service>-<n>  | ` prefix compose puts
 * on each line; only the failing services' lines are kept (every line when none is identified).
 */
export function failingLogs(services: ServiceState[], lines: string[]): Record<string, string[]> {
  const failing = new Set(services.filter((s) => !isServiceOk(s)).map((s) => s.service));
  const out: Record<string, string[]> = {};
  for (const line of lines) {
    const service = /^([A-Za-z0-9][A-Za-z0-9_.-]*?)-\d+\s+\|/.exec(line)?.[1];
    const key = failing.size === 0 ? '(all services)' : service && failing.has(service) ? service : null;
    if (key) (out[key] ??= []).push(line);
  }
  for (const key of Object.keys(out)) out[key] = out[key].slice(-LOG_TAIL);
  return Object.keys(out).length ? out : { '(all services)': lines.slice(-LOG_TAIL) };
}

export function allHealthy(inspection: Inspection | null): boolean {
  return !!inspection && inspection.services.length > 0 && inspection.services.every(isServiceOk);
}

export function describeServices(services: ServiceState[]): string {
  return services.map((s) => `${s.service}: ${s.state}${s.health ? ` (${s.health})` : ''}`).join(', ') || 'no containers';
}
