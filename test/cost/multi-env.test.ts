import { loadEnvironment, validateEnvironment, type EnvironmentConfig } from '../../lib/config/load';
import { accountTotals } from '../../lib/cost/account-total';
import { renderAccountTotals } from '../../lib/cost/account-total-format';
import { estimateEnvironment, type CostEstimate } from '../../lib/cost/estimate';
import { renderEstimateMarkdown, renderEstimateTable } from '../../lib/cost/estimate-format';
import { dollars, quantity } from '../../lib/cost/money';
import { FREE_TIER } from '../../lib/cost/prices';
import { fixtureCdkOut, fixtureTemplates } from './fixture-cdk-out';
import { cost, type EstimateJson } from './run-cost';

/**
 * The free allowance of each line item that has one, in the line's unit, read from the price
 * table by hand (not from the lines' own `freeAllowance`), so the expectation below is independent.
 */
const FREE_BY_ITEM: Record<string, number> = {
  'Data transfer out': FREE_TIER.dataTransferOutGb.quantity,
  'CloudWatch alarms': FREE_TIER.alarmMetrics.quantity,
  'CloudWatch dashboards': FREE_TIER.dashboards.quantity,
  'CloudWatch custom metrics': FREE_TIER.customMetrics.quantity,
  'CloudWatch Logs ingestion': FREE_TIER.logIngestionGb.quantity,
  'SNS e-mail notifications': FREE_TIER.snsEmailNotifications.quantity,
  'Lambda requests': FREE_TIER.lambdaRequests.quantity / 1e6,
  'AWS Budgets': FREE_TIER.budgets.quantity,
};

/** One account's cost from the environments' line items: lines without a free tier as they are, each free tier once on the summed quantity. */
function expectedAccountTotal(estimates: readonly CostEstimate[]): number {
  const lines = estimates.flatMap((e) => e.lines);
  const plain = lines.filter((l) => !(l.item in FREE_BY_ITEM)).reduce((s, l) => s + l.monthlyUsd, 0);
  const shared = Object.entries(FREE_BY_ITEM).reduce((s, [item, free]) => {
    const of = lines.filter((l) => l.item === item);
    const used = of.reduce((q, l) => q + l.quantity, 0);
    return of.length === 0 ? s : s + Math.max(0, used - free) * of[0]!.unitPriceUsd;
  }, 0);
  return plain + shared;
}

const sum = (estimates: readonly CostEstimate[]): number => estimates.reduce((s, e) => s + e.totalUsd, 0);

/** A fixed profile (as in estimate.test.ts) with a high data transfer, so several free tiers run out once shared. */
function fxConfig(envName: string, extra: Record<string, unknown> = {}): EnvironmentConfig {
  return validateEnvironment(envName, {
    appName: 'Fx',
    region: 'us-east-1',
    alertEmail: 'ops@example.com',
    monthlyBudgetUsd: 50,
    costProfile: { gpuHoursPerDay: 5, storedGb: { models: 40, generated: 90, workflows: 2 }, s3RequestsPerMonth: { put: 20_000, get: 200_000 }, dataTransferOutGb: 150 },
    network: { comfyuiIngressCidr: '203.0.113.10/32' },
    vps: { host: 'vps.example.com', hostnames: { n8n: 'n8n.example.com', sim: 'sim.example.com' }, monthlyPriceUsd: 7.5 },
    ...extra,
  });
}

function estimate(config: EnvironmentConfig, freeTier = true): CostEstimate {
  return estimateEnvironment(config, fixtureTemplates(config.envName), { freeTier });
}

describe('account totals: free tiers once per account', () => {
  const A = '111111111111';
  const B = '222222222222';

  it('three environments in one account: each free tier is deducted once, the environments stay as they are', () => {
    const estimates = ['dev', 'staging', 'prod'].map((n) => estimate(fxConfig(n, { account: A })));
    const [account] = accountTotals(estimates.map((e) => ({ account: A, estimate: e })));
    expect(account).toMatchObject({ account: A, environments: ['dev', 'staging', 'prod'], freeTierApplied: true });
    expect(account!.totalUsd).toBeCloseTo(expectedAccountTotal(estimates), 9);
    expect(account!.environmentsTotalUsd).toBeCloseTo(sum(estimates), 9);
    expect(account!.sharedFreeTierUsd).toBeCloseTo(account!.totalUsd - sum(estimates), 9);
    // 3 x 12 alarm metrics, 3 x 150 GB out, 3 budgets: these allowances run out once shared.
    expect(account!.sharedFreeTierUsd).toBeGreaterThan(1);
    // Every line with an allowance is one of the shared free tiers, and the other way round.
    expect(account!.sharedFreeTiers.map((t) => t.item).sort()).toEqual(Object.keys(FREE_BY_ITEM).sort());
    expect(estimates.flatMap((e) => e.lines.filter((l) => l.freeAllowance).map((l) => l.item))).toEqual(
      estimates.flatMap((e) => e.lines.filter((l) => l.item in FREE_BY_ITEM).map((l) => l.item)),
    );
    for (const t of account!.sharedFreeTiers) {
      const lines = estimates.flatMap((e) => e.lines.filter((l) => l.item === t.item));
      expect([t.item, t.freeQuantity]).toEqual([t.item, FREE_BY_ITEM[t.item]]);
      expect([t.item, t.usedQuantity]).toEqual([t.item, expect.closeTo(lines.reduce((q, l) => q + l.quantity, 0), 9)]);
      expect([t.item, t.perEnvironmentUsd]).toEqual([t.item, expect.closeTo(lines.reduce((s, l) => s + l.monthlyUsd, 0), 9)]);
    }
    // The per-environment estimates are not touched: each is what it is alone.
    expect(estimates.map((e) => e.totalUsd)).toEqual(['dev', 'staging', 'prod'].map((n) => estimate(fxConfig(n, { account: A })).totalUsd));
  });

  it('groups by account in the order the accounts appear; environments without one form the unknown account', () => {
    const configs = [fxConfig('dev', { account: A }), fxConfig('staging', { account: B }), fxConfig('prod'), fxConfig('qa', { account: A, region: 'us-east-2' })];
    const estimates = configs.map((c) => estimate(c));
    const accounts = accountTotals(configs.map((c, i) => ({ account: c.account, estimate: estimates[i]! })));
    expect(accounts.map((a) => [a.account, a.environments])).toEqual([
      [A, ['dev', 'qa']], // free tiers are per account, whatever the region
      [B, ['staging']],
      [null, ['prod']],
    ]);
    expect(accounts[0]!.totalUsd).toBeCloseTo(expectedAccountTotal([estimates[0]!, estimates[3]!]), 9);
    // One environment in an account: its account total is its own total.
    for (const a of accounts.slice(1)) {
      expect(a.totalUsd).toBeCloseTo(a.environmentsTotalUsd, 9);
      expect(a.sharedFreeTierUsd).toBeCloseTo(0, 9);
    }
  });

  it('with --no-free-tier there is nothing to share: the account total is the sum', () => {
    const estimates = ['dev', 'staging'].map((n) => estimate(fxConfig(n), false));
    const [account] = accountTotals(estimates.map((e) => ({ account: undefined, estimate: e })));
    expect(account).toMatchObject({ account: null, freeTierApplied: false, sharedFreeTiers: [], sharedFreeTierUsd: 0 });
    expect(account!.totalUsd).toBeCloseTo(sum(estimates), 9);
  });

  it('says which free tiers were shared and that environments without an account were counted as one', () => {
    const estimates = ['dev', 'staging', 'prod'].map((n) => estimate(fxConfig(n)));
    const text = renderAccountTotals(accountTotals(estimates.map((e) => ({ account: undefined, estimate: e })))).join('\n');
    const total = expectedAccountTotal(estimates);
    expect(text).toContain(`Account total of unknown account (dev, staging, prod): $${total.toFixed(2)}`);
    expect(text).toContain(`The environments' totals add up to $${sum(estimates).toFixed(2)}, and $${(total - sum(estimates)).toFixed(2)} more`);
    expect(text).toMatch(/^CloudWatch alarms\s+10 alarm metrics\s+36\s+\$0\.60\s+\$2\.60$/m);
    expect(text).toMatch(/^Data transfer out\s+100 GB\s+450\s+\$13\.50\s+\$31\.50$/m);
    expect(text).toContain('dev, staging and prod set no `account` in the config (the deploy credentials decide): counted as one account');
  });
});

describe('cost estimate over several environments (CLI)', () => {
  const cdkOut = fixtureCdkOut();
  const fixtureEstimate = (n: string): CostEstimate => estimateEnvironment(loadEnvironment(n), fixtureTemplates(n));

  it('--env dev,staging: both environments and one account total (the configs name no account), amounts in cents', async () => {
    const run = await cost(['cost', 'estimate', '--env', 'dev,staging', '--cdk-out', cdkOut, '--json']);
    expect(run.error).toBeUndefined();
    const json = JSON.parse(run.stdout) as EstimateJson;
    const estimates = ['dev', 'staging'].map(fixtureEstimate);
    expect(json.environments.map((e) => [e.envName, e.totalUsd])).toEqual(estimates.map((e) => [e.envName, Math.round(e.totalUsd * 100) / 100]));
    expect(json.accounts).toHaveLength(1);
    expect(json.accounts[0]).toMatchObject({ account: null, environments: ['dev', 'staging'], totalUsd: Math.round(expectedAccountTotal(estimates) * 100) / 100 });
    expect(json.accounts[0]!.sharedFreeTiers.find((t) => t.item === 'CloudWatch alarms')).toMatchObject({ freeQuantity: 10, usedQuantity: 24 });
  });

  it('--env may repeat; each environment is estimated once, in the order given', async () => {
    const run = await cost(['cost', 'estimate', '--env', 'prod', '--env', 'dev,prod', '--cdk-out', cdkOut, '--json']);
    expect((JSON.parse(run.stdout) as EstimateJson).environments.map((e) => e.envName)).toEqual(['prod', 'dev']);
  });

  it("groups by each config's account", async () => {
    const accounts: Record<string, string> = { dev: '111111111111', staging: '222222222222', prod: '111111111111' };
    const loadConfig = (n: string): EnvironmentConfig => ({ ...loadEnvironment(n), account: accounts[n]! });
    const run = await cost(['cost', 'estimate', '--cdk-out', cdkOut, '--json'], { loadConfig });
    const json = JSON.parse(run.stdout) as EstimateJson;
    expect(json.accounts.map((a) => [a.account, a.environments])).toEqual([
      ['111111111111', ['dev', 'prod']],
      ['222222222222', ['staging']],
    ]);
    expect(json.accounts[0]!.totalUsd).toBe(Math.round(expectedAccountTotal(['dev', 'prod'].map(fixtureEstimate)) * 100) / 100);
  });

  it('not a terminal: the environments\' tables exactly as before, then the account total; one environment prints as before', async () => {
    const estimates = ['dev', 'staging', 'prod'].map(fixtureEstimate);
    const all = await cost(['cost', 'estimate', '--cdk-out', cdkOut]);
    expect(all.stdout.startsWith(`${renderEstimateTable(estimates).join('\n')}\n\nAccount total of unknown account (dev, staging, prod): $${expectedAccountTotal(estimates).toFixed(2)}\n`)).toBe(true);
    const one = await cost(['cost', 'estimate', '--env', 'dev', '--cdk-out', cdkOut]);
    expect(one.stdout).toBe(`${renderEstimateTable([estimates[0]!]).join('\n')}\n`);
    const markdown = await cost(['cost', 'estimate', '--cdk-out', cdkOut, '--markdown']);
    expect(markdown.stdout.startsWith(`${renderEstimateMarkdown(estimates).join('\n')}\n\n#### Account total of unknown account (dev, staging, prod): $`)).toBe(true);
    expect(markdown.stdout).toContain('| shared free tier | free | used | sum of envs | account |');
  });
});

describe('cost estimate on a terminal', () => {
  const cdkOut = fixtureCdkOut();
  const onTerminal = (columns: number | undefined, ...args: string[]): ReturnType<typeof cost> =>
    cost(['cost', 'estimate', '--cdk-out', cdkOut, ...args], { stdoutIsTTY: true, ...(columns ? { stdoutColumns: columns } : {}) });
  const lines = (text: string): string[] => text.trimEnd().split('\n');

  it('80 columns: no line is wider; basis and unit price are left out, and it says so', async () => {
    const run = await onTerminal(80);
    expect(run.error).toBeUndefined();
    expect(lines(run.stdout).filter((l) => l.length > 80)).toEqual([]);
    expect(run.stdout).toMatch(/^item\s+quantity\s+unit\s+USD\/month$/m);
    const gpu = estimateEnvironment(loadEnvironment('dev'), fixtureTemplates('dev')).lines[0]!;
    expect(run.stdout).toContain(`${gpu.item}  `);
    expect(lines(run.stdout).find((l) => l.startsWith(gpu.item))!.split(/\s{2,}/)).toEqual([gpu.item, quantity(gpu.quantity), gpu.unit, dollars(gpu.monthlyUsd)]);
    expect(run.stdout).toContain('(left out to fit 80 columns: basis, unit price; --wide shows them)');
    expect(run.stdout).toMatch(/^total\s+\$\d+\.\d\d$/m);
    expect(run.stdout).toContain('Account total of unknown account (dev, staging, prod)');
  });

  it('200 columns: every column stays, the basis wraps under itself', async () => {
    const run = await onTerminal(200, '--env', 'staging');
    const out = lines(run.stdout);
    expect(Math.max(...out.map((l) => l.length))).toBeLessThanOrEqual(200);
    const header = out.find((l) => l.startsWith('item'))!;
    expect(header).toMatch(/^item\s+quantity\s+unit\s+unit price\s+USD\/month\s+basis$/);
    const basisAt = header.indexOf('basis');
    const gpu = out.findIndex((l) => l.startsWith('EC2 Spot GPU'));
    // The GPU line's basis is longer than the room: its continuation starts in the basis column.
    expect(out[gpu + 1]!.slice(0, basisAt).trim()).toBe('');
    expect(`${out[gpu]!.slice(basisAt)} ${out[gpu + 1]!.slice(basisAt)}`).toContain("at the cheapest typical Spot price of the fleet's types");
    expect(run.stdout).not.toContain('left out');
  });

  it('--wide, a terminal that reports no width, and a pipe all print the full table', async () => {
    const piped = await cost(['cost', 'estimate', '--cdk-out', cdkOut]);
    expect((await onTerminal(80, '--wide')).stdout).toBe(piped.stdout);
    expect((await onTerminal(undefined)).stdout).toBe(piped.stdout);
    expect(Math.max(...lines(piped.stdout).map((l) => l.length))).toBeGreaterThan(200);
  });

  it('--json and --markdown are not fitted', async () => {
    const json = await onTerminal(80, '--json');
    expect(JSON.parse(json.stdout)).toHaveProperty('accounts');
    const markdown = await onTerminal(80, '--markdown');
    expect(markdown.stdout).toContain('| item | quantity | unit | unit price | USD/month | basis |');
  });
});

describe('progress while synthesizing', () => {
  // A stand-in for lib/synth (which cli.test.ts runs for real): the fixture templates, and a clock
  // that moves only when read, so the durations are exact.
  function run(args: string[], failOn?: string): ReturnType<typeof cost> {
    let t = 0;
    const steps = [4200, 1500, 900];
    let step = 0;
    return cost(['cost', 'estimate', ...args], {
      now: () => t,
      synthesize: ({ envName }) => {
        t += steps[step++] ?? 0;
        if (envName === failOn) throw new Error(`synth of ${envName} failed`);
        return { templates: fixtureTemplates(envName), violations: [] };
      },
    });
  }

  it('one line per environment on stderr, none on stdout (--json stays a JSON document)', async () => {
    const json = await run(['--json']);
    expect(json.stderr).toBe('synthesizing dev (1/3)… 4.2 s\nsynthesizing staging (2/3)… 1.5 s\nsynthesizing prod (3/3)… 0.9 s\n');
    expect((JSON.parse(json.stdout) as EstimateJson).environments).toHaveLength(3);
    const markdown = await run(['--markdown', '--env', 'staging,prod']);
    expect(markdown.stderr).toBe('synthesizing staging (1/2)… 4.2 s\nsynthesizing prod (2/2)… 1.5 s\n');
    expect(markdown.stdout).not.toContain('synthesizing');
  });

  it('a failed synth ends its line and stops', async () => {
    const failed = await run(['--json'], 'staging');
    expect(failed.stderr).toBe('synthesizing dev (1/3)… 4.2 s\nsynthesizing staging (2/3)… failed after 1.5 s\n');
    expect((failed.error as Error).message).toBe('synth of staging failed');
    expect(failed.stdout).toBe('');
  });
});
