import { InvalidArgumentError, type Command } from 'commander';
import * as net from 'node:net';
import { createAccountClients } from '../aws';
import { Reporter, type OpsDeps } from '../context';
import { callerIdentity } from '../doctor/credentials';
import { doctorChecks } from '../doctor/checks';
import { countResults, renderResult, renderSummary } from '../doctor/report';
import { runChecks } from '../doctor/runner';
import type { CallerIdentity } from '../doctor/types';
import { ExitCode, OpsError } from '../errors';
import { loadVpsConfig } from '../vps-connection';
import { loadEnvOption, withEnvOption } from './options';

interface DoctorOptions {
  env: string;
  json?: boolean;
  dnsServer: string[];
}

const DNS_SERVER_ALLOWED = 'allowed is an IP address with an optional port: 1.1.1.1, 127.0.0.1:5353, 2606:4700::1111 or [::1]:53.';

/** `--dns-server`, repeatable: what dns.Resolver#setServers takes (an IP address, `ip:port`, `[ipv6]:port`). */
export function parseDnsServer(raw: string, previous: string[] = []): string[] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(raw);
  const [host, port] = bracketed ? [bracketed[1], bracketed[2]] : net.isIPv6(raw) ? [raw, undefined] : raw.split(/:(?=\d+$)/);
  const portOk = port === undefined || (/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535);
  if (!host || !net.isIP(host) || (bracketed && !net.isIPv6(host)) || !portOk) throw new InvalidArgumentError(DNS_SERVER_ALLOWED);
  return [...previous, raw];
}

/** `doctor`: the preflight of an environment's account and VPS, before a first deploy and on demand. */
export function registerDoctorCommand(program: Command, deps: OpsDeps): void {
  withEnvOption(program.command('doctor'))
    .description(
      'check the account (credentials, CDK bootstrap, Spot roles and vCPU quota, billing alerts, cost allocation tag, the deploy key secret) ' +
        'and the VPS (pinned host key, DNS of vps.hostnames) before a deploy',
    )
    .option('--json', 'print a JSON document with every check')
    .option('--dns-server <address>', 'DNS server to look vps.hostnames up with (repeatable); default: the system resolvers', parseDnsServer, [])
    .addHelpText(
      'after',
      '\nEach check prints "ok", "warn", "fail" or "skip", what it found and, for warn and fail, the command (or console step) that fixes it.\n' +
        'Checks run independently, each with a short timeout. Secrets are described, never read; the VPS check needs no SSH key.\n' +
        'Exit codes: 0 no check failed (warnings allowed), 1 a check failed, 64 bad option or --env.',
    )
    .action(async (opts: DoctorOptions) => {
      // Through the deps seam when tests set one (as the vps commands do), else as every command loads --env.
      const config = deps.loadConfig ? loadVpsConfig(opts.env, deps) : loadEnvOption(opts.env);
      const reporter = new Reporter(deps, opts.json === true);
      const aws = deps.clients(config.region);
      const account = createAccountClients(config.region);
      let identity: Promise<CallerIdentity> | undefined;
      const identityOnce = () => (identity ??= callerIdentity(account.sts));
      const checks = doctorChecks(config, opts.dnsServer);
      reporter.line(`Doctor of ${config.envName} (region ${config.region}${config.vps.hostKeySha256 ? `, VPS ${config.vps.host}:${config.vps.sshPort}` : ''}): ${checks.length} checks`);
      try {
        const results = await runChecks(checks, (signal) => ({ config, aws, account, identity: identityOnce, signal }), (result) => {
          for (const line of renderResult(result)) reporter.line(line);
        });
        const counts = countResults(results);
        reporter.line(renderSummary(counts));
        if (reporter.json) reporter.data({ env: config.envName, region: config.region, counts, checks: results });
        if (counts.fail > 0) {
          const failed = results.filter((r) => r.status === 'fail').map((r) => r.name);
          throw new OpsError(`${failed.length} of ${results.length} checks failed (${failed.join(', ')}): run the fix: lines, then doctor again.`, ExitCode.failure);
        }
      } finally {
        account.destroy();
      }
    });
}
