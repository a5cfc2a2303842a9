import { CostExplorerClient } from '@aws-sdk/client-cost-explorer';
import { EC2Client } from '@aws-sdk/client-ec2';
import { InvalidArgumentError, type Command } from 'commander';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ENVIRONMENT_NAMES } from '../../config/environments';
import { loadEnvironment, type EnvironmentConfig } from '../../config/load';
import { accountTotals, type EstimateInAccount } from '../../cost/account-total';
import { renderAccountTotals, renderAccountTotalsMarkdown } from '../../cost/account-total-format';
import { estimateEnvironment } from '../../cost/estimate';
import { renderEstimateMarkdown, renderEstimateTable } from '../../cost/estimate-format';
import { liveSpotPrices } from '../../cost/live-spot-prices';
import { centsInJson } from '../../cost/money';
import type { Price } from '../../cost/prices';
import { inventory } from '../../cost/template-inventory';
import { collectCostReport, COST_EXPLORER_REGION, OVER_BUDGET_EXIT_CODE } from '../../cost/report';
import { renderCostReport } from '../../cost/report-format';
import type { CfnTemplate, SynthResult } from '../../synth';
import { ExitCode, OpsError, toOpsError } from '../errors';
import { formatDuration } from '../wait';
import { envOption } from './options';

/** What the cost commands write to and read settings from; `OpsDeps` satisfies it. */
export interface CostIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** OPS_COST_TODAY=YYYY-MM-DD pins "today" (UTC) for reproducible reports and tests. */
  readonly env: NodeJS.ProcessEnv;
  /** Epoch milliseconds, for the synth progress (default Date.now; `OpsDeps` has it). */
  readonly now?: () => number;
  /** Whether stdout is a terminal and how wide (as in `OpsDeps`); the estimate's table fits it. */
  readonly stdoutIsTTY?: boolean;
  readonly stdoutColumns?: number;
  /** Loads an environment's config (default loadEnvironment; `OpsDeps` may carry one for tests). */
  readonly loadConfig?: (envName: string) => EnvironmentConfig;
  /** Synthesizes an environment's config into `outdir` (default lib/synth's synthConfig). */
  readonly synthesize?: (config: EnvironmentConfig, outdir: string) => Pick<SynthResult, 'templates' | 'violations'>;
}

/** The month is (forecast to be) over the budget: the report has been printed, the exit code says so. */
export class OverBudgetError extends OpsError {
  constructor(message: string) {
    super(message, OVER_BUDGET_EXIT_CODE);
  }
}

interface EstimateOptions {
  env?: string[];
  json?: boolean;
  markdown?: boolean;
  wide?: boolean;
  cdkOut?: string;
  freeTier: boolean;
  liveSpotPrices?: boolean;
}

interface ReportOptions {
  env: string;
  json?: boolean;
  byTag?: boolean;
}

function load(name: string, io: CostIo): EnvironmentConfig {
  try {
    return (io.loadConfig ?? loadEnvironment)(name);
  } catch (error) {
    throw toOpsError(error);
  }
}

/** Templates of one environment: from an existing cloud assembly, or synthesized now into a temp folder. */
async function templatesOf(
  config: EnvironmentConfig,
  cdkOut: string | undefined,
  io: CostIo,
  progress: { index: number; of: number },
): Promise<Record<string, CfnTemplate>> {
  const { envName } = config;
  // Loaded here, not at the top: the CDK app is heavy and no other ops command needs it.
  const { readTemplates, synthConfig } = await import('../../synth');
  if (cdkOut) {
    const candidates = [path.join(cdkOut, envName), cdkOut];
    const dir = candidates.find((d) => fs.existsSync(path.join(d, 'manifest.json')));
    // A folder that holds no assembly is a bad --cdk-out: a usage error (64), like any bad option value.
    if (!dir) throw new OpsError(`No cloud assembly for ${envName} in ${cdkOut} (expected ${path.join(cdkOut, envName, 'manifest.json')}); run "npm run synth" first.`, ExitCode.usage);
    const templates = readTemplates(dir);
    if (!Object.keys(templates).some((name) => name.includes(`-${envName}-`))) {
      throw new OpsError(`The cloud assembly in ${dir} holds no stack of ${envName} (${Object.keys(templates).join(', ')}).`);
    }
    return templates;
  }
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `aiassets-cost-${envName}-`));
  // Progress on stderr only: stdout carries the --json or --markdown document.
  const now = io.now ?? Date.now;
  const started = now();
  io.stderr(`synthesizing ${envName} (${progress.index}/${progress.of})… `);
  try {
    const result = (io.synthesize ?? synthConfig)(config, outdir);
    io.stderr(`${formatDuration(now() - started)}\n`);
    if (result.violations.length > 0) io.stderr(`warning: ${envName} has ${result.violations.length} unacknowledged cdk-nag finding(s); estimating anyway\n`);
    return result.templates;
  } catch (error) {
    io.stderr(`failed after ${formatDuration(now() - started)}\n`);
    throw error;
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

function parseToday(raw: string | undefined): Date {
  if (raw === undefined || raw === '') return new Date();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(raw) || Number.isNaN(Date.parse(`${raw}T00:00:00Z`))) {
    throw new OpsError(`OPS_COST_TODAY = ${JSON.stringify(raw)}: allowed is a date YYYY-MM-DD.`, ExitCode.usage);
  }
  return new Date(`${raw}T12:00:00Z`);
}

/** Today's Spot prices of the fleet's instance types (the only AWS call an estimate can make). */
async function spotPricesNow(config: EnvironmentConfig, templates: Record<string, CfnTemplate>, now: Date): Promise<Record<string, Price>> {
  const types = inventory(templates).gpu?.instanceTypes ?? [];
  const ec2 = new EC2Client({ region: config.region });
  try {
    return await liveSpotPrices(ec2, config.region, types, now);
  } catch (error) {
    throw toOpsError(error);
  } finally {
    ec2.destroy();
  }
}

/** `--env dev`, `--env dev,staging`, `--env dev --env staging`: the names in the order given, each once. */
function parseEnvNames(raw: string, previous: string[] = []): string[] {
  const names = raw.split(',').map((n) => n.trim());
  const unknown = names.filter((n) => !(ENVIRONMENT_NAMES as string[]).includes(n));
  if (unknown.length > 0) {
    const which = names.length > 1 ? `${unknown.map((n) => JSON.stringify(n)).join(', ')} ${unknown.length > 1 ? 'are not environments' : 'is not an environment'}; ` : '';
    throw new InvalidArgumentError(`${which}allowed: ${ENVIRONMENT_NAMES.join(', ')}.`);
  }
  return [...new Set([...previous, ...names])];
}

/** The terminal width the table must fit, or undefined for the full table (--wide, or not a terminal). */
function tableWidth(opts: EstimateOptions, io: CostIo): number | undefined {
  if (opts.wide) return undefined;
  return io.stdoutIsTTY && io.stdoutColumns ? io.stdoutColumns : undefined;
}

/**
 * `cost estimate` (offline, from the templates and a dated price table) and `cost report`
 * (Cost Explorer month to date and forecast, against the budget; exit 2 when over).
 */
export function registerCostCommands(program: Command, io: CostIo): void {
  const cost = program.command('cost').description('estimate the monthly cost offline, or report the real one from Cost Explorer');

  cost
    .command('estimate')
    .description('estimate the monthly cost from the synthesized templates and lib/cost/prices.ts (no AWS call, no credentials)')
    .option('--env <name>', `environment (${ENVIRONMENT_NAMES.join(', ')}); several comma-separated or repeated; all when omitted`, parseEnvNames)
    .option('--json', 'print a JSON document: {environments, accounts}, amounts in cents')
    .option('--markdown', 'print markdown tables (for the README)')
    .option('--wide', "on a terminal, print the full table even if it is wider than the terminal (it is always full when stdout is not a terminal)")
    .option('--cdk-out <dir>', 'read the templates from an existing cloud assembly (<dir>/<env>) instead of synthesizing')
    .option('--no-free-tier', 'apply no free tier at all (estimated together, environments of one account share each free tier in their account total anyway)')
    .option('--live-spot-prices', "price the GPU with today's Spot prices from DescribeSpotPriceHistory (needs AWS credentials) instead of the table's")
    .addHelpText(
      'after',
      '\nWith several environments an account total follows for each AWS account (config `account`; none set: one "unknown account"),\n' +
        'with every free tier counted once for the account. Progress of each synth goes to stderr.',
    )
    .action(async (opts: EstimateOptions) => {
      if (opts.json && opts.markdown) throw new OpsError('Choose one of --json and --markdown.', ExitCode.usage);
      const names = opts.env ?? ENVIRONMENT_NAMES;
      const estimated: EstimateInAccount[] = [];
      for (const [i, name] of names.entries()) {
        const config = load(name, io);
        const templates = await templatesOf(config, opts.cdkOut, io, { index: i + 1, of: names.length });
        const spotPrices = opts.liveSpotPrices ? await spotPricesNow(config, templates, parseToday(io.env.OPS_COST_TODAY)) : undefined;
        const estimate = estimateEnvironment(config, templates, { freeTier: opts.freeTier, ...(spotPrices ? { spotPrices } : {}) });
        estimated.push({ account: config.account, estimate });
      }
      const estimates = estimated.map((e) => e.estimate);
      const accounts = accountTotals(estimated);
      // One environment: its table is its account total, printed as before.
      const several = estimates.length > 1;
      if (opts.json) io.stdout(`${JSON.stringify({ environments: estimates, accounts }, centsInJson, 2)}\n`);
      else if (opts.markdown) {
        io.stdout(`${[...renderEstimateMarkdown(estimates), ...(several ? renderAccountTotalsMarkdown(accounts) : [])].join('\n')}\n`);
      } else {
        const width = tableWidth(opts, io);
        const options = width === undefined ? {} : { width };
        io.stdout(`${[...renderEstimateTable(estimates, options), ...(several ? renderAccountTotals(accounts, options) : [])].join('\n')}\n`);
      }
    });

  cost
    .command('report')
    .description('month-to-date cost by service and the forecast to month end from Cost Explorer, plus the VPS, against the budget')
    .addOption(envOption('environment whose budget and VPS apply').makeOptionMandatory())
    .option('--json', 'print a JSON document')
    .option('--by-tag', 'only costs tagged CostCenter = <App>-<env> (the cost allocation tag must be active)')
    .addHelpText('after', `\nExit codes: 0 within budget, ${OVER_BUDGET_EXIT_CODE} forecast (or actual + VPS) over budget, 6 no AWS credentials, 1 other failures (e.g. Cost Explorer not enabled).`)
    .action(async (opts: ReportOptions) => {
      const config = load(opts.env, io);
      const now = parseToday(io.env.OPS_COST_TODAY);
      const client = new CostExplorerClient({ region: COST_EXPLORER_REGION });
      try {
        const report = await collectCostReport(config, client, { byTag: opts.byTag === true, now });
        if (opts.json) io.stdout(`${JSON.stringify(report, centsInJson, 2)}\n`);
        else io.stdout(`${renderCostReport(report).join('\n')}\n`);
        if (report.overBudget) {
          throw new OverBudgetError(
            `the ${report.comparedWith === 'forecast' ? 'forecast' : 'actual cost + VPS'} of $${report.comparedUsd.toFixed(2)} for this month exceeds the budget of $${report.budgetUsd.toFixed(2)}`,
          );
        }
      } finally {
        client.destroy();
      }
    });
}
