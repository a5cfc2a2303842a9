import type { Command } from 'commander';
import { Reporter, type OpsDeps } from '../context';
import { ExitCode, OpsError } from '../errors';
import { teardown } from '../teardown';
import { loadEnvOption, parseMinutes, withEnvOption } from './options';

/** How long teardown waits for the GPU instances to go before running cdk destroy anyway. */
const DRAIN_TIMEOUT_MINUTES = 10;

interface TeardownCliOptions {
  env: string;
  yes?: boolean;
  allowProd?: boolean;
  timeoutMinutes: number;
  json?: boolean;
  dryRun?: boolean;
}

/** `teardown`: scale the GPU to 0, then cdk destroy the environment's stacks, dependents first. */
export function registerTeardownCommand(program: Command, deps: OpsDeps): void {
  withEnvOption(program.command('teardown'))
    .description(
      'destroy the environment\'s stacks (Vps, Observability, Gpu, Storage; those deployed) after typing its name; ' +
        'prod keeps its Storage stack and buckets',
    )
    .option('--yes', 'do not ask for the typed confirmation (dev and staging only)')
    .option('--allow-prod', 'required for prod, which also always asks for the typed name')
    .option('--timeout-minutes <m>', 'longest wait for the GPU instances to terminate before cdk runs', parseMinutes, DRAIN_TIMEOUT_MINUTES)
    .option('--dry-run', 'only print what would be deleted and kept: no confirmation, no GPU scaling, no cdk (allowed in prod without --allow-prod)')
    .option('--json', 'print the report as JSON on stdout (plan and progress go to stderr)')
    .action(async (opts: TeardownCliOptions) => {
      const config = loadEnvOption(opts.env);
      const reporter = new Reporter(deps, opts.json === true);
      const report = await teardown(
        config,
        deps.clients(config.region),
        { yes: opts.yes === true, allowProd: opts.allowProd === true, drainTimeoutMs: opts.timeoutMinutes * 60_000, dryRun: opts.dryRun === true },
        deps,
        reporter,
      );
      if (reporter.json) reporter.data(report);
      if (report.error) throw new OpsError(report.error, ExitCode.teardownFailed);
    });
}
