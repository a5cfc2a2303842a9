import type { EnvironmentConfig } from '../config/load';
import type { StatusResult } from '../vps/deployer-types';
import { formatTable } from './table';
import { vpsEnvDir } from './vps-connection';

/** The `vps status --json` document. */
export interface VpsStatusReport extends StatusResult {
  readonly env: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** `<baseDir>/<App>/<env>` on the VPS. */
  readonly dir: string;
}

export function vpsStatusReport(config: EnvironmentConfig, status: StatusResult): VpsStatusReport {
  return {
    env: config.envName,
    host: config.vps.host,
    port: config.vps.sshPort,
    user: config.vps.deployUser,
    dir: vpsEnvDir(config),
    current: status.current,
    previous: status.previous,
    releases: status.releases,
    lock: status.lock,
    lastRun: status.lastRun,
    services: status.services,
  };
}

export function renderVpsStatus(report: VpsStatusReport): string[] {
  const lines = [
    `Environment  ${report.env}: ${report.dir} on ${report.user}@${report.host}:${report.port}`,
    `Current      ${report.current ?? 'none (nothing deployed)'}`,
    `Previous     ${report.previous ?? 'none'}`,
    `Releases     ${report.releases.length ? `${report.releases.join(', ')} (most recently activated first)` : 'none'}`,
    `Lock         ${report.lock ? `held by ${report.lock.owner} for ${report.lock.ageSeconds}s (a deploy, rollback or down is running)` : 'free'}`,
    `Last gate    ${report.lastRun ? `${report.lastRun.outcome}: release ${report.lastRun.release} at ${report.lastRun.at}, current then ${report.lastRun.current ?? 'none'}${report.lastRun.detail ? ` (${report.lastRun.detail})` : ''}` : 'none recorded'}`,
  ];
  if (report.current) {
    lines.push('');
    if (report.services.length === 0) lines.push(`No containers of release ${report.current} (stopped?).`);
    else
      lines.push(
        ...formatTable(
          ['SERVICE', 'CONTAINER', 'STATE', 'HEALTH', 'STATUS'],
          report.services.map((s) => [s.service, s.name || '-', s.state, s.health || '-', s.status || '-']),
        ),
      );
  }
  return lines;
}
