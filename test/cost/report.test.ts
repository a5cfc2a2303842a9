import { CostExplorerClient } from '@aws-sdk/client-cost-explorer';
import { envWithoutAws, ISOLATED_AWS_ENV, runTsx } from '../support/child';
import { loadEnvironment } from '../../lib/config/load';
import { OpsError } from '../../lib/ops/errors';
import { collectCostReport, monthWindow } from '../../lib/cost/report';
import { useMoto } from '../support/moto';
import { costAndUsage, costForecast, startFakeCostExplorer, type FakeCostExplorer } from './fake-cost-explorer';

const TODAY = '2025-03-15';
const dev = loadEnvironment('dev');

/** Nothing may reach beyond 127.0.0.1 (each test sets AWS_ENDPOINT_URL to moto or a stand-in). */
const ISOLATED = { ...ISOLATED_AWS_ENV, OPS_COST_TODAY: TODAY };
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `tsx bin/ops.ts <args>` as a real child process, with only the AWS settings given here. */
function runCost(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Run> {
  return runTsx('bin/ops.ts', args, { env: { ...envWithoutAws(), ...ISOLATED, ...env }, timeoutMs });
}

function client(endpoint: string): CostExplorerClient {
  return new CostExplorerClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
}

describe('cost report against moto', () => {
  const moto = useMoto();

  /** Queues one GetCostAndUsage answer in moto (consumed by the next new request). */
  async function queue(services: Record<string, number>): Promise<void> {
    const res = await fetch(`${moto().endpoint}/moto-api/static/ce/cost-and-usage-results`, {
      method: 'POST',
      body: JSON.stringify({ results: [costAndUsage('2025-03-01', TODAY, services)] }),
    });
    expect(res.status).toBe(201);
  }

  it('a normal month: services, the VPS line and the total against the budget, exit 0', async () => {
    await queue({ 'Amazon Elastic Compute Cloud - Compute': 18.42, 'Amazon Simple Storage Service': 1.02, AmazonCloudWatch: 0.1, Tax: 0 });
    const run = await runCost(['cost', 'report', '--env', 'dev'], { ...CREDENTIALS, AWS_ENDPOINT_URL: moto().endpoint });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout.split('\n');
    expect(out[0]).toBe('Cost of dev from 2025-03-01 to 2025-03-15 (exclusive), the whole account, every service; estimated by Cost Explorer');
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^Amazon Elastic Compute Cloud - Compute\s+\$18\.42$/),
        expect.stringMatching(/^Amazon Simple Storage Service\s+\$1\.02$/),
        expect.stringMatching(/^AmazonCloudWatch\s+\$0\.10$/),
        '(1 more under $0.01)',
        expect.stringMatching(/^Hostinger KVM 2 \(fixed monthly price from config\)\s+\$6\.99$/),
        expect.stringMatching(/^total\s+\$26\.53$/),
        'Budget $50.00: within, the actual + VPS $26.53 leaves $23.47.',
      ]),
    );
    // moto has no GetCostForecast: the report says so instead of failing.
    expect(run.stdout).toMatch(/^Forecast: not available \(GetCostForecast failed \(HTTP 500, .*\); comparing the actual cost plus the VPS instead\.$/m);
  });

  it('over budget: exit code 2 when the actual cost plus the VPS exceeds the budget', async () => {
    await queue({ 'Amazon Elastic Compute Cloud - Compute': 45 });
    const run = await runCost(['cost', 'report', '--env', 'dev'], { ...CREDENTIALS, AWS_ENDPOINT_URL: moto().endpoint });
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('Budget $50.00: OVER, the actual + VPS $51.99 exceeds it by $1.99.');
    expect(run.stderr).toBe('over budget: the actual cost + VPS of $51.99 for this month exceeds the budget of $50.00\n');
  });

  it('--by-tag reports the CostCenter slice as a JSON document', async () => {
    await queue({ 'Amazon Elastic Compute Cloud - Compute': 3.5 });
    const report = await collectCostReport(dev, client(moto().endpoint), { byTag: true, now: new Date(`${TODAY}T08:00:00Z`) });
    expect(report).toMatchObject({
      envName: 'dev',
      costCenter: 'AiAssets-dev',
      scope: 'costCenter',
      start: '2025-03-01',
      end: TODAY,
      services: [{ service: 'Amazon Elastic Compute Cloud - Compute', usd: 3.5 }],
      awsUsd: 3.5,
      vps: { usd: 6.99 },
      actualUsd: expect.closeTo(10.49, 9),
      forecast: { available: false },
      comparedWith: 'actual',
      overBudget: false,
    });
  });

  it('no AWS credentials: says so and exits 6 (not 2)', async () => {
    const run = await runCost(['cost', 'report', '--env', 'dev'], { AWS_ENDPOINT_URL: moto().endpoint });
    expect(run.code).toBe(6);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^error: No AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });
});

describe('cost report against a stand-in Cost Explorer on 127.0.0.1 (forecast and errors moto cannot produce)', () => {
  let fake: FakeCostExplorer | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('the forecast to month end is over budget while month to date is not: exit 2', async () => {
    fake = await startFakeCostExplorer({
      GetCostAndUsage: { body: costAndUsage('2025-03-01', TODAY, { 'Amazon Elastic Compute Cloud - Compute': 15, 'Amazon Simple Storage Service': 5 }) },
      GetCostForecast: { body: costForecast(TODAY, '2025-04-01', 30) },
    });
    const run = await runCost(['cost', 'report', '--env', 'dev'], { ...CREDENTIALS, AWS_ENDPOINT_URL: fake.endpoint });
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('Forecast to month end: $56.99 = AWS $20.00 so far + $30.00 forecast for 2025-03-15 to 2025-04-01 + VPS $6.99');
    expect(run.stdout).toContain('Budget $50.00: OVER, the forecast $56.99 exceeds it by $6.99.');
    expect(run.stderr).toBe('over budget: the forecast of $56.99 for this month exceeds the budget of $50.00\n');
    expect(fake.requests.map((r) => r.operation)).toEqual(['GetCostAndUsage', 'GetCostForecast']);
    expect(fake.requests[0].body).toEqual({
      TimePeriod: { Start: '2025-03-01', End: TODAY },
      Granularity: 'MONTHLY',
      Metrics: ['UnblendedCost'],
      GroupBy: [{ Type: 'DIMENSION', Key: 'SERVICE' }],
    });
    expect(fake.requests[1].body).toEqual({ TimePeriod: { Start: TODAY, End: '2025-04-01' }, Metric: 'UNBLENDED_COST', Granularity: 'MONTHLY' });
  });

  it('a forecast within budget passes; --by-tag filters both calls by the CostCenter tag', async () => {
    fake = await startFakeCostExplorer({
      GetCostAndUsage: { body: costAndUsage('2025-03-01', TODAY, { 'Amazon Elastic Compute Cloud - Compute': 10 }) },
      GetCostForecast: { body: costForecast(TODAY, '2025-04-01', 12.5) },
    });
    const report = await collectCostReport(dev, client(fake.endpoint), { byTag: true, now: new Date(`${TODAY}T23:59:00Z`) });
    expect(report.forecast).toEqual({ available: true, start: TODAY, end: '2025-04-01', remainingUsd: 12.5, monthEndUsd: 10 + 12.5 + 6.99 });
    expect(report).toMatchObject({ comparedWith: 'forecast', comparedUsd: expect.closeTo(29.49, 9), overBudget: false });
    const filter = { Tags: { Key: 'CostCenter', Values: ['AiAssets-dev'], MatchOptions: ['EQUALS'] } };
    expect(fake.requests.map((r) => r.body.Filter)).toEqual([filter, filter]);
  });

  it('on the last day of the month there is no forecast call, and the report says why', async () => {
    fake = await startFakeCostExplorer({ GetCostAndUsage: { body: costAndUsage('2025-03-01', '2025-03-31', { AmazonCloudWatch: 1 }) } });
    const report = await collectCostReport(dev, client(fake.endpoint), { byTag: false, now: new Date('2025-03-31T10:00:00Z') });
    expect(fake.requests.map((r) => r.operation)).toEqual(['GetCostAndUsage']);
    expect(report.forecast).toEqual({ available: false, reason: 'today is the last day of the month, so there is nothing left to forecast' });
    expect(report.comparedWith).toBe('actual');
  });

  it('Cost Explorer not enabled (DataUnavailableException): tells how to enable it, exit 1', async () => {
    fake = await startFakeCostExplorer({
      GetCostAndUsage: { error: 'DataUnavailableException', message: 'Data is not available. Please try to adjust the time period.' },
    });
    const run = await runCost(['cost', 'report', '--env', 'dev'], { ...CREDENTIALS, AWS_ENDPOINT_URL: fake.endpoint });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('error: Cost Explorer has no data for this account (DataUnavailableException: Data is not available.');
    expect(run.stderr).toContain('Billing and Cost Management > Cost Explorer and choose "Launch Cost Explorer"');
  });

  it('AccessDeniedException "User not enabled for cost explorer access" gets the same advice', async () => {
    fake = await startFakeCostExplorer({ GetCostAndUsage: { error: 'AccessDeniedException', message: 'User not enabled for cost explorer access' } });
    const failure = await collectCostReport(dev, client(fake.endpoint), { byTag: false, now: new Date(`${TODAY}T08:00:00Z`) }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(OpsError);
    expect((failure as OpsError).exitCode).toBe(1);
    expect((failure as OpsError).message).toMatch(/^Cost Explorer is not enabled for this account \(AccessDeniedException: User not enabled for cost explorer access\)\. Enable it once per account/);
  });
});

describe('monthWindow', () => {
  it('mid-month: month to date up to today, forecast from today to the 1st of next month', () => {
    expect(monthWindow(new Date('2025-03-15T08:00:00Z'))).toEqual({
      monthStart: '2025-03-01',
      actualEnd: '2025-03-15',
      today: '2025-03-15',
      nextMonth: '2025-04-01',
      lastDayOfMonth: false,
    });
  });

  it('on the 1st the month-to-date query still covers a day; December rolls into January; leap years count', () => {
    expect(monthWindow(new Date('2025-03-01T00:30:00Z'))).toMatchObject({ monthStart: '2025-03-01', actualEnd: '2025-03-02' });
    expect(monthWindow(new Date('2025-12-31T12:00:00Z'))).toMatchObject({ nextMonth: '2026-01-01', lastDayOfMonth: true });
    expect(monthWindow(new Date('2024-02-28T12:00:00Z')).lastDayOfMonth).toBe(false);
    expect(monthWindow(new Date('2024-02-29T12:00:00Z')).lastDayOfMonth).toBe(true);
  });
});
