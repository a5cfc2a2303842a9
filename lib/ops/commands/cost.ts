import { CostExplorerClient } from '@aws-sdk/client-cost-explorer';
import { EC2Client } from '@aws-sdk/client-ec2';
import { InvalidArgumentError, type Command } from 'commander';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ENVIRONMENT_NAMES } from '../../config/environments';
import { loadEnvironment, type EnvironmentConfig } from '../../config/load';
import { estimateEnvironment, type CostEstimate } from '../../cost/estimate';
import { renderEstimateMarkdown, renderEstimateTable } from '../../cost/estimate-format';
import { liveSpotPrices } from '../../cost/live-spot-prices';
import { centsInJson } from '../../cost/money';
import type { Price } from '../../cost/prices';
import { inventory } from '../../cost/template-inventory';
import { collectCostReport, COST_EXPLORER_REGION, OVER_BUDGET_EXIT_CODE } from '../../cost/report';
import { renderCostReport } from '../../cost/report-format';
import type { CfnTemplate } from '../../synth';
import { ExitCode, OpsError, toOpsError } from '../errors';
import { envOption } from './options';

/** What the cost commands write to and read settings from; `OpsDeps` satisfies it. */
export interface CostIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** OPS_COST_TODAY=YYYY-MM-DD pins "today" (UTC) for reproducible reports and tests. */
  readonly env: NodeJS.ProcessEnv;
}

/** The month is (forecast to be) over the budget: the report has been printed, the exit code says so. */
export class OverBudgetError extends OpsError {
  constructor(message: string) {
    super(message, OVER_BUDGET_EXIT_CODE);
  }
}

interface EstimateOptions {
  env?: string;
  json?: boolean;
  markdown?: boolean;
  cdkOut?: string;
  freeTier: boolean;
  liveSpotPrices?: boolean;
}

interface ReportOptions {
  env: string;
  json?: boolean;
  byTag?: boolean;
}

const processIo: CostIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

function load(name: string): EnvironmentConfig {
  try {
    return loadEnvironment(name);
  } catch (error) {
    throw toOpsError(error);
  }
}

/** Templates of one environment: from an existing cloud assembly, or synthesized now into a temp folder. */
async function templatesOf(envName: string, cdkOut: string | undefined, io: CostIo): Promise<Record<string, CfnTemplate>> {
  // Loaded here, not at the top: the CDK app is heavy and no other ops command needs it.
  const { readTemplates, synthEnvironment } = await import('../../synth');
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
  try {
    const result = synthEnvironment(envName, outdir);
    if (result.violations.length > 0) io.stderr(`warning: ${envName} has ${result.violations.length} unacknowledged cdk-nag finding(s); estimating anyway\n`);
    return result.templates;
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

function parseEnvName(raw: string): string {
  if (!(ENVIRONMENT_NAMES as string[]).includes(raw)) throw new InvalidArgumentError(`allowed: ${ENVIRONMENT_NAMES.join(', ')}.`);
  return raw;
}

/**
 * `cost estimate` (offline, from the templates and a dated price table) and `cost report`
 * (Cost Explorer month to date and forecast, against the budget; exit 2 when over).
 */
export function registerCostCommands(program: Command, io: CostIo = processIo): void {
  const cost = program.command('cost').description('estimate the monthly cost offline, or report the real one from Cost Explorer');

  cost
    .command('estimate')
    .description('estimate the monthly cost from the synthesized templates and lib/cost/prices.ts (no AWS call, no credentials)')
    .option('--env <name>', `one environment (${ENVIRONMENT_NAMES.join(', ')}); all when omitted`, parseEnvName)
    .option('--json', 'print a JSON document')
    .option('--markdown', 'print markdown tables (for the README)')
    .option('--cdk-out <dir>', 'read the templates from an existing cloud assembly (<dir>/<env>) instead of synthesizing')
    .option('--no-free-tier', 'ignore the per-account free tiers (several environments in one account)')
    .option('--live-spot-prices', "price the GPU with today's Spot prices from DescribeSpotPriceHistory (needs AWS credentials) instead of the table's")
    .action(async (opts: EstimateOptions) => {
      if (opts.json && opts.markdown) throw new OpsError('Choose one of --json and --markdown.', ExitCode.usage);
      const names = opts.env ? [opts.env] : ENVIRONMENT_NAMES;
      const estimates: CostEstimate[] = [];
      for (const name of names) {
        const config = load(name);
        const templates = await templatesOf(name, opts.cdkOut, io);
        const spotPrices = opts.liveSpotPrices ? await spotPricesNow(config, templates, parseToday(io.env.OPS_COST_TODAY)) : undefined;
        estimates.push(estimateEnvironment(config, templates, { freeTier: opts.freeTier, ...(spotPrices ? { spotPrices } : {}) }));
      }
      if (opts.json) io.stdout(`${JSON.stringify(estimates, centsInJson, 2)}\n`);
      else {
        const lines = opts.markdown ? renderEstimateMarkdown(estimates) : renderEstimateTable(estimates);
        io.stdout(`${lines.join('\n')}\n`);
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
      const config = load(opts.env);
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
