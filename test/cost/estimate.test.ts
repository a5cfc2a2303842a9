import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadEnvironment, validateEnvironment } from '../../lib/config/load';
import { estimateEnvironment, type CostEstimate } from '../../lib/cost/estimate';
import { renderEstimateMarkdown, renderEstimateTable } from '../../lib/cost/estimate-format';
import { dollars, unitPrice } from '../../lib/cost/money';
import { GPU_HOST_CUSTOM_METRICS, IDLE_WATCHER_METRICS, IDLE_WATCHER_OVERRIDE_METRICS, NVIDIA_GPU_MEASUREMENTS } from '../../lib/cost/gpu-host-metrics';
import { alarmMetrics, inventory } from '../../lib/cost/template-inventory';
import type { CfnTemplate } from '../../lib/synth';
import { synthesized } from '../support/synth';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURE_DIR = path.join(__dirname, 'fixtures', 'small-env');

/** The hand-written fixture templates, a fresh copy each time (tests change them). */
function fixture(): Record<string, CfnTemplate> {
  return Object.fromEntries(
    fs
      .readdirSync(FIXTURE_DIR)
      .filter((f) => f.endsWith('.template.json'))
      .map((f) => [f.replace('.template.json', ''), JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, f), 'utf8')) as CfnTemplate]),
  );
}

/** A fixed usage profile, independent of lib/config/environments.ts. */
const fxConfig = validateEnvironment('fx', {
  appName: 'Fx',
  region: 'us-east-1',
  alertEmail: 'ops@example.com',
  monthlyBudgetUsd: 50,
  costProfile: {
    gpuHoursPerDay: 5,
    storedGb: { models: 40, generated: 90, workflows: 2 },
    s3RequestsPerMonth: { put: 20_000, get: 200_000 },
    dataTransferOutGb: 150,
  },
  network: { comfyuiIngressCidr: '203.0.113.10/32' },
  vps: { host: 'vps.example.com', hostnames: { n8n: 'n8n.example.com', sim: 'sim.example.com' }, monthlyPriceUsd: 7.5 },
});

function line(e: CostEstimate, item: string): number {
  const found = e.lines.find((l) => l.item === item);
  if (!found) throw new Error(`no line ${item}: ${e.lines.map((l) => l.item).join(', ')}`);
  return found.monthlyUsd;
}

function gpu(t: Record<string, CfnTemplate>): CfnTemplate['Resources'] {
  return t['Fx-fx-Gpu'].Resources;
}
function obs(t: Record<string, CfnTemplate>): CfnTemplate['Resources'] {
  return t['Fx-fx-Observability'].Resources;
}

describe('estimateEnvironment over the fixture templates', () => {
  const base = estimateEnvironment(fxConfig, fixture());

  it('prices every line from what the templates hold and the profile (values worked out by hand)', () => {
    // 5 h/day x 30.4 = 152 GPU-hours; 152 / 729.6 h = 5/24 of the month.
    const expected: Array<[string, number, number]> = [
      ['EC2 Spot GPU (g4dn.xlarge)', 152, 26.8432], // cheapest of g5.xlarge $0.3939 and g4dn.xlarge $0.1766
      ['EBS gp3 root volume', 100 * (5 / 24), 1.6666667], // 100 GB x 5/24 x $0.08
      ['Public IPv4 address', 152, 0.76],
      ['Data transfer out', 150, 4.5], // 150 GB - 100 free = 50 x $0.09
      ['S3 STANDARD storage', 40 + 15 + 2 / 6, 1.2726667], // models + 1/6 of generated and workflows
      ['S3 STANDARD_IA storage', 30 + 10 / 6, 0.3958333], // 1/3 of generated + 5/6 of workflows
      ['S3 GLACIER_IR storage', 45, 0.18], // 1/2 of generated
      ['S3 STANDARD storage: ComfyUI image cache', 7, 0.161], // two releases' image archives (ASSUMPTIONS.imageCacheGb)
      ['S3 PUT/LIST requests', 20, 0.1],
      ['S3 GET requests', 200, 0.08],
      ['CloudWatch alarms', 12, 0.2], // 3 plain + 3 x 2 + 1 x 3 metrics, 10 free
      ['CloudWatch dashboards', 1, 0],
      ['CloudWatch custom metrics', 21 * (5 / 24), 0], // 10 host + 11 gateway metrics (2 instance types), sent 5/24 of the month
      ['CloudWatch Logs ingestion', 0.608, 0],
      ['KMS customer managed keys', 1, 1],
      ['SNS e-mail notifications', 100, 0],
      ['Secrets Manager secrets', 1, 0.4], // none in the templates + the operator's VPS key
      ['Lambda requests', 0.001, 0],
      ['AWS Budgets', 1, 0],
      ['VPS (Hostinger KVM 2)', 1, 7.5],
    ];
    expect(base.lines.map((l) => l.item)).toEqual(expected.map(([item]) => item));
    for (const [item, quantity, usd] of expected) {
      const l = base.lines.find((x) => x.item === item)!;
      expect([item, l.quantity]).toEqual([item, expect.closeTo(quantity, 6)]);
      expect([item, l.monthlyUsd]).toEqual([item, expect.closeTo(usd, 6)]);
      expect(l.source).toMatch(/^https:\/\//);
      expect(l.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
    expect(base.totalUsd).toBeCloseTo(45.059367, 5);
    expect(base.gpuInstanceType).toBe('g4dn.xlarge');
    expect(base.overBudget).toBe(false);
  });

  it('says which fleet types it compared', () => {
    const gpuLine = base.lines.find((l) => l.item.startsWith('EC2 Spot GPU'))!;
    expect(gpuLine.basis).toContain('g5.xlarge $0.3939');
    expect(gpuLine.basis).toContain('g4dn.xlarge $0.1766');
  });

  it('a fleet that terminates interrupted instances leaves no stopped volume to pay for', () => {
    expect(base.lines.map((l) => l.item).filter((i) => i.includes('stopped'))).toEqual([]);
    expect(line(base, 'EBS gp3 root volume')).toBeCloseTo(100 * 0.08 * (152 / 729.6), 9);
  });

  it("an older fleet still on interruption behaviour 'stop' pays for its stopped instances' root volumes", () => {
    const t = fixture();
    (gpu(t).SpotFleet.Properties!.SpotFleetRequestConfigData as Record<string, unknown>).InstanceInterruptionBehavior = 'stop';
    const e = estimateEnvironment(fxConfig, t);
    // 100 GB x 0.5 stopped-instance months (one interruption a month, stopped half a month) x $0.08.
    const stopped = e.lines.find((l) => l.item === 'EBS gp3 root volume of stopped instances')!;
    expect(stopped).toMatchObject({ quantity: expect.closeTo(50, 9), monthlyUsd: expect.closeTo(4, 9), unit: 'GB-months' });
    expect(stopped.basis).toContain("interruption behaviour 'stop'");
    expect(e.lines.map((l) => l.item).indexOf(stopped.item)).toBe(e.lines.map((l) => l.item).indexOf('EBS gp3 root volume') + 1);
    expect(e.totalUsd - base.totalUsd).toBeCloseTo(4, 9);
  });

  it('two more alarms raise the total by exactly 2 x $0.10', () => {
    const t = fixture();
    for (const id of ['ExtraA', 'ExtraB']) {
      obs(t)[id] = { Type: 'AWS::CloudWatch::Alarm', Properties: { MetricName: 'X', Namespace: 'Fx/Gpu', Period: 300, Statistic: 'Sum' } };
    }
    const e = estimateEnvironment(fxConfig, t);
    expect(e.totalUsd - base.totalUsd).toBeCloseTo(0.2, 9);
    expect(line(e, 'CloudWatch alarms')).toBeCloseTo(0.4, 9);
  });

  it('a metric-math alarm over three metrics costs three alarm metrics', () => {
    const t = fixture();
    obs(t).ExtraMath = structuredClone(obs(t).MathThree);
    expect(estimateEnvironment(fxConfig, t).totalUsd - base.totalUsd).toBeCloseTo(0.3, 9);
  });

  it('a 200 GB root volume adds 100 GB x $0.08 x the GPU share of the month', () => {
    const t = fixture();
    const data = gpu(t).LaunchTemplate.Properties!.LaunchTemplateData as { BlockDeviceMappings: Array<{ Ebs: { VolumeSize: number } }> };
    data.BlockDeviceMappings[0].Ebs.VolumeSize = 200;
    const e = estimateEnvironment(fxConfig, t);
    expect(e.totalUsd - base.totalUsd).toBeCloseTo(100 * 0.08 * (152 / 729.6), 9);
  });

  it('dashboards are free up to three, then $3 each', () => {
    const withDashboards = (extra: number): number => {
      const t = fixture();
      for (let i = 0; i < extra; i++) obs(t)[`Dash${i}`] = { Type: 'AWS::CloudWatch::Dashboard', Properties: {} };
      return estimateEnvironment(fxConfig, t).totalUsd - base.totalUsd;
    };
    expect(withDashboards(2)).toBeCloseTo(0, 9); // 3 dashboards: all free
    expect(withDashboards(3)).toBeCloseTo(3, 9); // 4 dashboards: one beyond the free three
  });

  it('prices the cheapest Spot type the fleet really has', () => {
    const t = fixture();
    const cfg = gpu(t).SpotFleet.Properties!.SpotFleetRequestConfigData as { LaunchTemplateConfigs: Array<{ Overrides: Array<{ InstanceType: string }> }> };
    for (const o of cfg.LaunchTemplateConfigs[0].Overrides) if (o.InstanceType === 'g4dn.xlarge') o.InstanceType = 'g6.xlarge';
    const e = estimateEnvironment(fxConfig, t);
    expect(e.gpuInstanceType).toBe('g6.xlarge');
    expect(e.totalUsd - base.totalUsd).toBeCloseTo(152 * (0.3558 - 0.1766), 9);
  });

  it('a secret in a template adds $0.40', () => {
    const t = fixture();
    gpu(t).AppSecret = { Type: 'AWS::SecretsManager::Secret', Properties: {} };
    expect(estimateEnvironment(fxConfig, t).totalUsd - base.totalUsd).toBeCloseTo(0.4, 9);
  });

  it('without free tiers every allowance bills', () => {
    const e = estimateEnvironment(fxConfig, fixture(), { freeTier: false });
    expect(line(e, 'CloudWatch alarms')).toBeCloseTo(1.2, 9);
    expect(line(e, 'CloudWatch dashboards')).toBeCloseTo(3, 9);
    expect(line(e, 'CloudWatch custom metrics')).toBeCloseTo(21 * (5 / 24) * 0.3, 9);
    expect(line(e, 'Data transfer out')).toBeCloseTo(13.5, 9);
    expect(line(e, 'AWS Budgets')).toBeCloseTo(0.608, 9);
    expect(e.freeTierApplied).toBe(false);
  });

  it('refuses to guess a price the table does not have', () => {
    const t = fixture();
    const cfg = gpu(t).SpotFleet.Properties!.SpotFleetRequestConfigData as { LaunchTemplateConfigs: Array<{ Overrides: Array<{ InstanceType: string }> }> };
    cfg.LaunchTemplateConfigs[0].Overrides[0].InstanceType = 'p5.48xlarge';
    expect(() => estimateEnvironment(fxConfig, t)).toThrow(/No price for instance type p5\.48xlarge in us-east-1/);
    expect(() => estimateEnvironment({ ...fxConfig, region: 'eu-west-3' }, fixture())).toThrow(/No prices for region eu-west-3/);
  });

  it('renders a table and a markdown table with one line per item and the total', () => {
    const table = renderEstimateTable([base]);
    expect(table[0]).toBe('Estimated monthly cost of fx (us-east-1): $45.06, within the $50.00 budget ($4.94 left)');
    expect(table).toHaveLength(1 + 1 + base.lines.length + 1 + 2);
    expect(table[table.length - 3]).toMatch(/^total\s+\$45\.06$/);
    expect(table[table.length - 2]).toBe(`The $50.00 budget holds up to ${base.budgetGpuHoursPerDay!.toFixed(1)} GPU-hours a day on 30.4 days a month.`);
    const md = renderEstimateMarkdown([base]);
    expect(md).toContain('| EC2 Spot GPU (g4dn.xlarge) | 152 | instance-hours | $0.1766 | $26.84 | 5 GPU-hours/day x 30.4 days at the cheapest typical Spot price of the fleet\'s types: g5.xlarge $0.3939 (on-demand $1.01), g4dn.xlarge $0.1766 (on-demand $0.526) |');
    expect(md).toContain('| **total** | | | | **$45.06** | |');
  });
});

describe('usage profile and budget headroom', () => {
  const base = estimateEnvironment(fxConfig, fixture());
  const withProfile = (profile: Partial<typeof fxConfig.costProfile>, budget = fxConfig.monthlyBudgetUsd): typeof fxConfig => ({
    ...fxConfig,
    monthlyBudgetUsd: budget,
    costProfile: { ...fxConfig.costProfile, ...profile },
  });

  it('GPU days a month scale every line that follows the GPU hours, and nothing else', () => {
    // 5 h on 21.7 working days = 108.5 GPU-hours instead of 152.
    const e = estimateEnvironment(withProfile({ gpuDaysPerMonth: 21.7 }), fixture());
    const ratio = 108.5 / 152;
    expect(e.lines[0]).toMatchObject({ quantity: expect.closeTo(108.5, 9), monthlyUsd: expect.closeTo(108.5 * 0.1766, 9) });
    expect(e.lines[0].basis).toMatch(/^5 GPU-hours\/day x 21\.7 days /);
    for (const item of ['EBS gp3 root volume', 'Public IPv4 address']) expect(line(e, item)).toBeCloseTo(line(base, item) * ratio, 9);
    for (const item of ['S3 STANDARD storage', 'KMS customer managed keys', 'VPS (Hostinger KVM 2)']) expect(line(e, item)).toBeCloseTo(line(base, item), 9);
    expect(e.gpuDaysPerMonth).toBe(21.7);
  });

  it('finds the most GPU-hours a day within the budget: that many fit, 0.1 h more do not', () => {
    const h = base.budgetGpuHoursPerDay!;
    expect(h).toBeGreaterThan(5); // the 5 h profile is within budget
    expect(h).toBeLessThan(24);
    expect(estimateEnvironment(withProfile({ gpuHoursPerDay: h }), fixture()).totalUsd).toBeLessThanOrEqual(50);
    expect(estimateEnvironment(withProfile({ gpuHoursPerDay: h + 0.1 }), fixture()).totalUsd).toBeGreaterThan(50);
    // Fewer days a month leave room for more hours a day.
    expect(estimateEnvironment(withProfile({ gpuDaysPerMonth: 21.7 }), fixture()).budgetGpuHoursPerDay).toBeGreaterThan(h);
  });

  it('says so when the profile runs the GPU on no day', () => {
    const none = estimateEnvironment(withProfile({ gpuDaysPerMonth: 0 }), fixture());
    expect(none.lines[0].quantity).toBe(0);
    expect(renderEstimateTable([none])).toContain('The profile runs the GPU on no day of the month (costProfile.gpuDaysPerMonth 0).');
  });

  it('says 24 when a GPU running all day fits, and null when even an idle GPU does not', () => {
    expect(estimateEnvironment(withProfile({}, 500), fixture()).budgetGpuHoursPerDay).toBe(24);
    const broke = estimateEnvironment(withProfile({}, 5), fixture()); // the VPS alone costs $7.50
    expect(broke.budgetGpuHoursPerDay).toBeNull();
    expect(renderEstimateTable([broke])).toContain('Even with the GPU never running, this environment costs more than the $5.00 budget.');
  });

  it('given Spot prices replace the table\'s and the footnote names their source', () => {
    const given = { usd: 0.1, per: 'instance-hour', source: 'DescribeSpotPriceHistory in us-east-1 (test)', asOf: '2026-11-23' };
    const e = estimateEnvironment(fxConfig, fixture(), { spotPrices: { 'g4dn.xlarge': given } });
    expect(e.lines[0]).toMatchObject({ unitPriceUsd: 0.1, source: given.source, asOf: '2026-11-23' });
    expect(e.lines[0].basis).toContain('cheapest given Spot price');
    expect(e.totalUsd - base.totalUsd).toBeCloseTo(152 * (0.1 - 0.1766), 9);
    expect(e.givenSpotPrice).toEqual({ source: given.source, asOf: '2026-11-23' });
    expect(e.pricesAsOf).toBe('2025-11-30');
    expect(renderEstimateTable([e]).at(-1)).toMatch(/^Spot price from DescribeSpotPriceHistory in us-east-1 \(test\) on 2026-11-23; the other prices as of 2025-11-30/);
    expect(base.givenSpotPrice).toBeUndefined();
  });
});

describe('template inventory', () => {
  it('counts alarm metrics the way CloudWatch bills them', () => {
    expect(alarmMetrics({ MetricName: 'A', Period: 300 })).toEqual({ metrics: 1, highResolution: false });
    expect(alarmMetrics({ MetricName: 'A', Period: 10 })).toEqual({ metrics: 1, highResolution: true });
    const stat = { MetricStat: { Metric: { MetricName: 'M' }, Period: 60, Stat: 'Average' } };
    expect(alarmMetrics({ Metrics: [{ Expression: 'a+b' }, stat, stat] })).toEqual({ metrics: 2, highResolution: false });
    expect(alarmMetrics({ Metrics: [{ Expression: 'ANOMALY_DETECTION_BAND(m, 2)' }, stat] })).toEqual({ metrics: 3, highResolution: false });
  });

  it('reads the fixture as it is', () => {
    const inv = inventory(fixture());
    expect(inv.alarms).toEqual({ alarms: 7, standardMetrics: 12, highResolutionMetrics: 0, compositeAlarms: 0 });
    expect(inv.gpu).toEqual({
      instanceTypes: ['g5.xlarge', 'g4dn.xlarge'],
      volumes: [{ launchTemplate: 'LaunchTemplate', sizeGb: 100, volumeType: 'gp3' }],
      interruptionBehavior: 'terminate',
      publicIpv4: true,
    });
    expect([inv.dashboards, inv.kmsKeys, inv.secrets, inv.buckets, inv.logGroups, inv.lambdaFunctions, inv.budgets, inv.emailSubscriptions]).toEqual([1, 1, 0, 2, 2, 1, 1, 1]);
  });

  it('the GPU host metric list matches what the user-data scripts publish', () => {
    const watcher = fs.readFileSync(path.join(ROOT, 'assets/user-data/idle-watcher.sh'), 'utf8');
    const published = [...new Set([...watcher.matchAll(/put_metric (\w+)/g)].map((m) => m[1]))].sort();
    expect(published).toEqual([...IDLE_WATCHER_METRICS, ...IDLE_WATCHER_OVERRIDE_METRICS].sort());
    const install = fs.readFileSync(path.join(ROOT, 'assets/user-data/install.sh'), 'utf8');
    const measurements = /"measurement":\s*\[([^\]]*)\]/.exec(install)?.[1] ?? '';
    expect([...measurements.matchAll(/"(\w+)"/g)].map((m) => m[1])).toEqual([...NVIDIA_GPU_MEASUREMENTS]);
    expect(GPU_HOST_CUSTOM_METRICS).toHaveLength(10);
  });
});

/** The seed's own typical Spot figure for g4dn.xlarge (seed 000: "Spot (avg): $0.158/hour"). */
const SEED_SPOT = { usd: 0.158, per: 'instance-hour', source: 'seed 000 (Spot avg)', asOf: '2025-11-30' };

describe('the real dev environment at its default profile', () => {
  let estimate: CostEstimate;
  beforeAll(() => {
    estimate = estimateEnvironment(loadEnvironment('dev'), synthesized('dev').templates);
  });

  it('has the GPU, EBS, S3, CloudWatch and VPS lines, and the total is their sum', () => {
    const items = estimate.lines.map((l) => l.item);
    expect(items).toEqual(
      expect.arrayContaining([
        'EC2 Spot GPU (g4dn.xlarge)',
        'EBS gp3 root volume',
        'S3 STANDARD storage',
        'S3 STANDARD_IA storage',
        'S3 GLACIER_IR storage',
        'CloudWatch alarms',
        'CloudWatch dashboards',
        'CloudWatch custom metrics',
        'VPS (Hostinger KVM 2)',
      ]),
    );
    expect(estimate.totalUsd).toBeCloseTo(estimate.lines.reduce((s, l) => s + l.monthlyUsd, 0), 9);
    // 8 GPU-hours a day: the GPU line alone is 243.2 h at the g4dn.xlarge Spot price.
    expect(estimate.lines[0]).toMatchObject({ quantity: expect.closeTo(243.2, 9), unitPriceUsd: 0.1766 });
    expect(estimate.budgetUsd).toBe(50);
  });

  // Reported, not fudged: at the 2025-11-30 Spot price of g4dn.xlarge ($0.1766/h) 8 GPU-hours on
  // every day of the month cost $42.95, and with the $6.99 VPS that is already $49.94, so the seed's
  // "under $50 at 8 h/day" does not hold (README, Cost). These tests pin both facts down.
  test('at 8 GPU-hours every day the seed profile misses the $50 target: GPU and VPS alone take $49.94', () => {
    expect(estimate.totalUsd).toBeGreaterThan(50);
    const gpuAndVps = estimate.lines.filter((l) => /^EC2 Spot GPU|^VPS/.test(l.item)).reduce((s, l) => s + l.monthlyUsd, 0);
    expect(gpuAndVps).toBeCloseTo(49.94, 1);
  });

  test('the budget holds up to 6.5 GPU-hours every day, or 8 h on working days (21.7 a month) at about $45', () => {
    expect(estimate.budgetGpuHoursPerDay).toBe(6.5);
    const config = loadEnvironment('dev');
    const workingDays = { ...config, costProfile: { ...config.costProfile, gpuDaysPerMonth: 21.7 } };
    const e = estimateEnvironment(workingDays, synthesized('dev').templates);
    expect(e.totalUsd).toBeCloseTo(44.92, 1);
    expect(e.overBudget).toBe(false);
  });

  test('the figures the README states around its generated table are these estimates', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    const dev = synthesized('dev').templates;
    const config = loadEnvironment('dev');
    const sum = (e: CostEstimate, re: RegExp): number => e.lines.filter((l) => re.test(l.item)).reduce((s, l) => s + l.monthlyUsd, 0);
    const seedSpot = estimateEnvironment(config, dev, { spotPrices: { 'g4dn.xlarge': SEED_SPOT } });
    const workingDays = estimateEnvironment({ ...config, costProfile: { ...config.costProfile, gpuDaysPerMonth: 21.7 } }, dev);
    for (const stated of [
      `estimate is about $${estimate.totalUsd.toFixed(1)}`,
      `the GPU alone is ${dollars(sum(estimate, /^EC2 Spot GPU/))} at the typical ${unitPrice(estimate.lines[0].unitPriceUsd)}/h`,
      `already ${dollars(sum(estimate, /^EC2 Spot GPU|^VPS/))}`,
      `the public IPv4 address add ${dollars(sum(estimate, /^EBS|^Public IPv4/))}`,
      `the total is about $${Math.round(seedSpot.totalUsd)}`,
      `up to ${estimate.budgetGpuHoursPerDay!.toFixed(1)} GPU-hours every day`,
      `(\`gpuDaysPerMonth: 21.7\`: about $${workingDays.totalUsd.toFixed(1)})`,
    ]) {
      expect(readme).toContain(stated);
    }
  });

  test("even at the seed's own Spot figure ($0.158/h) 8 h every day costs about $54", () => {
    const e = estimateEnvironment(loadEnvironment('dev'), synthesized('dev').templates, { spotPrices: { 'g4dn.xlarge': SEED_SPOT } });
    expect(e.totalUsd).toBeCloseTo(53.8, 1);
    expect(e.overBudget).toBe(true);
  });
});
