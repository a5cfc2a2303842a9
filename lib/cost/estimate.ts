import type { EnvironmentConfig } from '../config/load';
import type { CostProfile } from '../config/schema';
import type { CfnTemplate } from '../synth';
import { gatewayCustomMetricCount } from '../gpu-control/names';
import { GPU_HOST_CUSTOM_METRICS } from './gpu-host-metrics';
import { unitPrice } from './money';
import { FREE_TIER, regionPrices, VPS_PLAN, type FreeTierName, type Price, type RegionPrices } from './prices';
import { DAYS_PER_MONTH, HOURS_PER_MONTH } from './month';
import { inventory, type GpuInventory, type TemplateInventory } from './template-inventory';

/** The break-even search stops when the GPU-hours bracket is this narrow. */
const BREAK_EVEN_PRECISION_HOURS = 0.001;

/**
 * Usage assumptions that neither the templates nor the config's costProfile state. Each one is
 * printed in the basis of the line it drives.
 */
export const ASSUMPTIONS = {
  /** Age of the oldest generated/ and workflows/ objects; with steady writes this splits the stored GB across the lifecycle's storage classes. */
  s3HistoryDays: 180,
  /** GPU host logs (ComfyUI, model sync, cloud-init), rejected-traffic flow logs and Lambda logs, per GPU-hour. */
  logGbPerGpuHour: 0.004,
  /** Alarm, budget and Spot interruption e-mails a month per e-mail subscription. */
  emailsPerSubscription: 100,
  /** Lambda invocations a month per function (Spot interruption filter, deploy-time custom resources). */
  lambdaRequestsPerFunction: 1000,
  /**
   * Only for a fleet whose interruption behaviour is `stop` (an older deployed one may still be):
   * months of a stopped instance's root volume per month, i.e. one interruption a month whose
   * stopped instance waits half a month. EC2 launches a replacement elsewhere at once and restarts
   * the stopped one only if the allocation leads back to it (EC2 User Guide, "Stop interrupted Spot
   * Instances"); until someone terminates it (`gpu status` lists it) its volume bills.
   */
  stoppedInstanceMonths: 0.5,
  /**
   * GB in the ComfyUI image cache (cache/comfyui/, the cold-start mechanism): one zstd archive of
   * the ~7 GB image is about 3.5 GB, and with the cache's 60-day expiry about two releases' archives
   * are stored at a time. Reading it goes through the S3 gateway endpoint (no transfer charge).
   */
  imageCacheGb: 7,
} as const;

export interface CostLine {
  readonly item: string;
  readonly quantity: number;
  readonly unit: string;
  readonly unitPriceUsd: number;
  readonly monthlyUsd: number;
  readonly basis: string;
  readonly source: string;
  readonly asOf: string;
  /**
   * The per-account allowance this line's quantity counts against, in the line's unit; with free
   * tiers applied, monthlyUsd = max(0, quantity - allowance) x unitPriceUsd. Several environments in
   * one account share it (account-total.ts).
   */
  readonly freeAllowance?: FreeAllowance;
}

export interface FreeAllowance {
  readonly name: FreeTierName;
  readonly quantity: number;
}

export interface CostEstimate {
  readonly envName: string;
  readonly region: string;
  readonly lines: CostLine[];
  readonly totalUsd: number;
  readonly budgetUsd: number;
  readonly overBudget: boolean;
  /** The instance type the GPU line is priced with (cheapest Spot of the fleet's types). */
  readonly gpuInstanceType?: string;
  readonly freeTierApplied: boolean;
  /** Oldest `asOf` of the prices used: how stale the estimate may be. */
  readonly pricesAsOf: string;
  /**
   * The most GPU-hours a day (on costProfile.gpuDaysPerMonth days) that keep this estimate within
   * the budget, rounded down to 0.1 h; 24 when a GPU running all day fits; null when even 0 h does not.
   */
  readonly budgetGpuHoursPerDay: number | null;
  /** costProfile.gpuDaysPerMonth: the days the GPU-hours a day apply to. */
  readonly gpuDaysPerMonth: number;
  /** Where the GPU line's Spot price came from when it was given (`spotPrices`), not the table's. */
  readonly givenSpotPrice?: { readonly source: string; readonly asOf: string };
}

export interface EstimateOptions {
  /** Apply the per-account free tiers (default true). They are per account, not per environment. */
  readonly freeTier?: boolean;
  /** Spot prices by instance type that replace the table's (e.g. today's, from DescribeSpotPriceHistory). */
  readonly spotPrices?: Readonly<Record<string, Price>>;
}

function num(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, '');
}

class Lines {
  readonly lines: CostLine[] = [];
  /** The instance type the GPU line was priced with, once there is one. */
  gpuInstanceType: string | undefined;
  /** The GPU line's Spot price. */
  gpuPrice: Price | undefined;

  total(): number {
    return this.lines.reduce((sum, l) => sum + l.monthlyUsd, 0);
  }

  add(item: string, quantity: number, unit: string, price: Price, billable: number, basis: string, freeAllowance?: FreeAllowance): void {
    this.lines.push({
      item,
      quantity,
      unit,
      unitPriceUsd: price.usd,
      monthlyUsd: billable * price.usd,
      basis,
      source: price.source,
      asOf: price.asOf,
      ...(freeAllowance ? { freeAllowance } : {}),
    });
  }
}

/** Quantity left after a free allowance, or all of it when free tiers are off. */
function afterFree(quantity: number, free: number, freeTier: boolean): number {
  return Math.max(0, quantity - (freeTier ? free : 0));
}

function freeNote(free: number, what: string, freeTier: boolean): string {
  return freeTier ? `first ${num(free)} ${what} free (per account)` : 'no free tier applied';
}

function cheapestSpot(prices: RegionPrices, gpu: GpuInventory, spotPrices: EstimateOptions['spotPrices']): { type: string; price: Price; all: string } {
  const priced = gpu.instanceTypes.map((type) => {
    const p = prices.instances[type];
    if (!p) {
      throw new Error(
        `No price for instance type ${type} in ${prices.region} in lib/cost/prices.ts; the table has ${Object.keys(prices.instances).join(', ')}.`,
      );
    }
    return { type, price: spotPrices?.[type] ?? p.spot, onDemand: p.onDemand.usd };
  });
  if (priced.length === 0) throw new Error('The Spot Fleet has no instance type overrides to price.');
  const best = priced.reduce((a, b) => (b.price.usd < a.price.usd ? b : a));
  const all = priced.map((p) => `${p.type} ${unitPrice(p.price.usd)} (on-demand ${unitPrice(p.onDemand)})`).join(', ');
  return { type: best.type, price: best.price, all };
}

function addGpu(out: Lines, prices: RegionPrices, gpu: GpuInventory, profile: CostProfile, spotPrices: EstimateOptions['spotPrices']): void {
  const spot = cheapestSpot(prices, gpu, spotPrices);
  out.gpuInstanceType = spot.type;
  out.gpuPrice = spot.price;
  const gpuHours = profile.gpuHoursPerDay * profile.gpuDaysPerMonth;
  const which = spotPrices ? 'given' : 'typical';
  out.add(
    `EC2 Spot GPU (${spot.type})`,
    gpuHours,
    'instance-hours',
    spot.price,
    gpuHours,
    `${num(profile.gpuHoursPerDay)} GPU-hours/day x ${num(profile.gpuDaysPerMonth)} days at the cheapest ${which} Spot price of the fleet's types: ${spot.all}`,
  );

  const share = gpuHours / HOURS_PER_MONTH;
  for (const v of gpu.volumes) {
    if (v.volumeType !== 'gp3') throw new Error(`No price for EBS volume type ${v.volumeType} (${v.launchTemplate}); the table prices gp3.`);
    const gbMonths = v.sizeGb * share;
    out.add(
      'EBS gp3 root volume',
      gbMonths,
      'GB-months',
      prices.ebs.gp3GbMonth,
      gbMonths,
      `${v.sizeGb} GB x ${num(gpuHours)} of ${num(HOURS_PER_MONTH)} h: billed only while an instance exists (deleted on termination)`,
    );
    if (gpu.interruptionBehavior === 'stop') {
      const stopped = v.sizeGb * ASSUMPTIONS.stoppedInstanceMonths;
      out.add(
        'EBS gp3 root volume of stopped instances',
        stopped,
        'GB-months',
        prices.ebs.gp3GbMonth,
        stopped,
        `interruption behaviour 'stop': an interrupted instance is stopped, not terminated, and its ${v.sizeGb} GB volume keeps billing; ` +
          `assumed ${num(ASSUMPTIONS.stoppedInstanceMonths)} stopped-instance months a month (one interruption, stopped half a month)`,
      );
    }
    if (v.iops !== undefined && v.iops > 3000) {
      const q = (v.iops - 3000) * share;
      out.add('EBS gp3 extra IOPS', q, 'IOPS-months', prices.ebs.gp3IopsMonth, q, `${v.iops} IOPS, 3,000 included, while an instance exists`);
    }
    if (v.throughputMbps !== undefined && v.throughputMbps > 125) {
      const q = (v.throughputMbps - 125) * share;
      out.add('EBS gp3 extra throughput', q, 'MB/s-months', prices.ebs.gp3ThroughputMbpsMonth, q, `${v.throughputMbps} MB/s, 125 included, while an instance exists`);
    }
  }
}

function addNetwork(out: Lines, prices: RegionPrices, inv: TemplateInventory, config: EnvironmentConfig, gpuHours: number, freeTier: boolean): void {
  const instanceIpHours = inv.gpu?.publicIpv4 ? gpuHours : 0;
  const ipHours = instanceIpHours + inv.elasticIps * HOURS_PER_MONTH;
  if (ipHours > 0) {
    const parts = [
      ...(instanceIpHours > 0 ? [`the Spot instance's public IP while it runs (${num(gpuHours)} h)`] : []),
      ...(inv.elasticIps > 0 ? [`${inv.elasticIps} Elastic IP(s) all month`] : []),
    ];
    out.add('Public IPv4 address', ipHours, 'address-hours', prices.publicIpv4Hour, ipHours, parts.join(' + '));
  }
  const dto = config.costProfile.dataTransferOutGb;
  const free = FREE_TIER.dataTransferOutGb.quantity;
  out.add(
    'Data transfer out',
    dto,
    'GB',
    prices.dataTransferOutGb,
    afterFree(dto, free, freeTier),
    `costProfile.dataTransferOutGb (images fetched by the VPS); ${freeNote(free, 'GB', freeTier)}`,
    { name: 'dataTransferOutGb', quantity: free },
  );
}

/** Share of a prefix's stored GB in each storage class, from the lifecycle ages and the history assumption. */
function lifecycleShares(config: EnvironmentConfig): { standard: number; ia: number; glacierIr: number; workflowsStandard: number } {
  const h = ASSUMPTIONS.s3HistoryDays;
  const ia = Math.min(config.storage.infrequentAccessDays, h);
  const archive = Math.min(config.storage.generatedArchiveDays, h);
  return { standard: ia / h, ia: (archive - ia) / h, glacierIr: (h - archive) / h, workflowsStandard: ia / h };
}

function addS3(out: Lines, prices: RegionPrices, config: EnvironmentConfig): void {
  const { models, generated, workflows } = config.costProfile.storedGb;
  const s = lifecycleShares(config);
  const standard = models + generated * s.standard + workflows * s.workflowsStandard;
  const ia = generated * s.ia + workflows * (1 - s.workflowsStandard);
  const glacierIr = generated * s.glacierIr;
  const ages = `objects written steadily over ${ASSUMPTIONS.s3HistoryDays} days; STANDARD_IA after ${config.storage.infrequentAccessDays} d, GLACIER_IR (generated/) after ${config.storage.generatedArchiveDays} d`;
  out.add(
    'S3 STANDARD storage',
    standard,
    'GB-months',
    prices.s3.standardGbMonth,
    standard,
    `models/ ${num(models)} GB (stays STANDARD) + the young part of generated/ ${num(generated)} GB and workflows/ ${num(workflows)} GB (${ages})`,
  );
  out.add('S3 STANDARD_IA storage', ia, 'GB-months', prices.s3.standardIaGbMonth, ia, `generated/ and workflows/ objects aged ${config.storage.infrequentAccessDays}+ days (${ages}; objects under 128 KB stay STANDARD in reality)`);
  out.add('S3 GLACIER_IR storage', glacierIr, 'GB-months', prices.s3.glacierIrGbMonth, glacierIr, `generated/ objects aged ${config.storage.generatedArchiveDays}+ days (${ages})`);
  const cache = ASSUMPTIONS.imageCacheGb;
  out.add(
    'S3 STANDARD storage: ComfyUI image cache',
    cache,
    'GB-months',
    prices.s3.standardGbMonth,
    cache,
    `the cold-start mechanism: about two releases' zstd archives of the ComfyUI image (~3.5 GB each) in cache/comfyui/, expiring 60 days after they were written; each release's first wake also spends about 10 GPU-minutes building it`,
  );
  const { put, get } = config.costProfile.s3RequestsPerMonth;
  // Requests to STANDARD_IA/GLACIER_IR objects and lifecycle transitions cost more; they are rare here.
  out.add('S3 PUT/LIST requests', put / 1000, '1,000 requests', prices.s3.putPer1000, put / 1000, 'costProfile.s3RequestsPerMonth.put, at STANDARD rates');
  out.add('S3 GET requests', get / 1000, '1,000 requests', prices.s3.getPer1000, get / 1000, 'costProfile.s3RequestsPerMonth.get, at STANDARD rates');
}

function addCloudWatch(out: Lines, prices: RegionPrices, inv: TemplateInventory, gpuHours: number, freeTier: boolean): void {
  const cw = prices.cloudWatch;
  const a = inv.alarms;
  const freeAlarms = FREE_TIER.alarmMetrics.quantity;
  out.add(
    'CloudWatch alarms',
    a.standardMetrics,
    'alarm metrics',
    cw.alarmMetricMonth,
    afterFree(a.standardMetrics, freeAlarms, freeTier),
    `${a.alarms} alarms reading ${a.standardMetrics + a.highResolutionMetrics} metrics (a metric-math alarm is billed per metric it reads, expressions are free); ${freeNote(freeAlarms, 'alarm metrics', freeTier)}`,
    { name: 'alarmMetrics', quantity: freeAlarms },
  );
  if (a.highResolutionMetrics > 0) {
    out.add('CloudWatch high-resolution alarms', a.highResolutionMetrics, 'alarm metrics', cw.highResolutionAlarmMetricMonth, a.highResolutionMetrics, 'alarms with a period under 60 s (no free tier)');
  }
  if (a.compositeAlarms > 0) {
    out.add('CloudWatch composite alarms', a.compositeAlarms, 'alarms', cw.compositeAlarmMonth, a.compositeAlarms, 'AWS::CloudWatch::CompositeAlarm resources');
  }
  const freeDash = FREE_TIER.dashboards.quantity;
  out.add('CloudWatch dashboards', inv.dashboards, 'dashboards', cw.dashboardMonth, afterFree(inv.dashboards, freeDash, freeTier), `AWS::CloudWatch::Dashboard resources; ${freeNote(freeDash, 'dashboards', freeTier)}`, {
    name: 'dashboards',
    quantity: freeDash,
  });

  if (inv.gpu) {
    const gateway = gatewayCustomMetricCount(inv.gpu.instanceTypes.length);
    const metrics = GPU_HOST_CUSTOM_METRICS.length + gateway;
    // Billed by the hour each metric is sent; the host sends only while it runs, the gateway only while there is GPU work.
    const metricMonths = (metrics * gpuHours) / HOURS_PER_MONTH;
    const freeMetrics = FREE_TIER.customMetrics.quantity;
    out.add(
      'CloudWatch custom metrics',
      metricMonths,
      'metric-months',
      cw.customMetricMonth,
      afterFree(metricMonths, freeMetrics, freeTier),
      `${metrics} metrics for ${round1(gpuHours)} of ${round1(HOURS_PER_MONTH)} h: the GPU host's (4 idle-watcher metrics + 6 nvidia_smi_* measurements) and the gateway's (${gateway}: its counters, the GPU-time ledger per instance type, the allowance), each billed for the hours it is sent; ${freeNote(freeMetrics, 'metrics', freeTier)}`,
      { name: 'customMetrics', quantity: freeMetrics },
    );
  }
  if (inv.logGroups > 0) {
    const gb = gpuHours * ASSUMPTIONS.logGbPerGpuHour;
    const freeGb = FREE_TIER.logIngestionGb.quantity;
    out.add(
      'CloudWatch Logs ingestion',
      gb,
      'GB',
      cw.logIngestionGb,
      afterFree(gb, freeGb, freeTier),
      `${inv.logGroups} log groups; assumed ${ASSUMPTIONS.logGbPerGpuHour * 1000} MB per GPU-hour (host logs, rejected-traffic flow logs, Lambda); ${freeNote(freeGb, 'GB', freeTier)}`,
      { name: 'logIngestionGb', quantity: freeGb },
    );
  }
}

function addSmallServices(out: Lines, prices: RegionPrices, inv: TemplateInventory, config: EnvironmentConfig, freeTier: boolean): void {
  if (inv.kmsKeys > 0) {
    out.add('KMS customer managed keys', inv.kmsKeys, 'keys', prices.kmsKeyMonth, inv.kmsKeys, 'AWS::KMS::Key resources; first year (each of the first two yearly rotations adds $1/month)');
  }
  if (inv.emailSubscriptions > 0) {
    const emails = inv.emailSubscriptions * ASSUMPTIONS.emailsPerSubscription;
    const free = FREE_TIER.snsEmailNotifications.quantity;
    out.add(
      'SNS e-mail notifications',
      emails,
      'e-mails',
      prices.snsEmailNotification,
      afterFree(emails, free, freeTier),
      `${inv.emailSubscriptions} e-mail subscription(s) x an assumed ${ASSUMPTIONS.emailsPerSubscription} a month; ${freeNote(free, 'e-mails', freeTier)}`,
      { name: 'snsEmailNotifications', quantity: free },
    );
  }
  // The VPS deploy key lives in Secrets Manager too, created by the operator rather than a stack.
  const secrets = inv.secrets + 1;
  out.add(
    'Secrets Manager secrets',
    secrets,
    'secrets',
    prices.secretMonth,
    secrets,
    `${inv.secrets} AWS::SecretsManager::Secret in the templates + 1 created by the operator (${config.vps.sshKeySecretName})`,
  );
  if (inv.lambdaFunctions > 0) {
    const millions = (inv.lambdaFunctions * ASSUMPTIONS.lambdaRequestsPerFunction) / 1e6;
    const free = FREE_TIER.lambdaRequests.quantity / 1e6;
    out.add(
      'Lambda requests',
      millions,
      'million requests',
      prices.lambdaMillionRequests,
      afterFree(millions, free, freeTier),
      `${inv.lambdaFunctions} functions x an assumed ${ASSUMPTIONS.lambdaRequestsPerFunction} invocations a month; ${freeNote(free, 'million requests', freeTier)} (always-free tier, also 400,000 GB-s)`,
      { name: 'lambdaRequests', quantity: free },
    );
  }
  if (inv.budgets > 0) {
    const free = FREE_TIER.budgets.quantity;
    out.add(
      'AWS Budgets',
      inv.budgets,
      'budgets',
      { ...prices.budgetDay, usd: prices.budgetDay.usd * DAYS_PER_MONTH },
      afterFree(inv.budgets, free, freeTier),
      `AWS::Budgets::Budget resources at $${prices.budgetDay.usd}/day; ${freeNote(free, 'budgets', freeTier)}: with three environments in one account, the third budget bills`,
      { name: 'budgets', quantity: free },
    );
  }
}

function priceLines(config: EnvironmentConfig, inv: TemplateInventory, options: EstimateOptions): Lines {
  const freeTier = options.freeTier ?? true;
  const prices = regionPrices(config.region);
  const profile = config.costProfile;
  const gpuHours = profile.gpuHoursPerDay * profile.gpuDaysPerMonth;
  const out = new Lines();

  if (inv.gpu) addGpu(out, prices, inv.gpu, profile, options.spotPrices);
  addNetwork(out, prices, inv, config, gpuHours, freeTier);
  if (inv.buckets > 0) addS3(out, prices, config);
  addCloudWatch(out, prices, inv, gpuHours, freeTier);
  addSmallServices(out, prices, inv, config, freeTier);
  const vps = config.vps.monthlyPriceUsd;
  out.add(
    `VPS (${VPS_PLAN.name})`,
    1,
    'month',
    { ...VPS_PLAN.monthly, usd: vps },
    1,
    `fixed price from config vps.monthlyPriceUsd (list price ${unitPrice(VPS_PLAN.monthly.usd)}: ${VPS_PLAN.monthly.note})`,
  );
  return out;
}

/**
 * The most GPU-hours a day that keep the total within the budget. Every line is monotonic in the
 * GPU hours (free tiers make some piecewise), so a bisection over [0, 24] finds the edge.
 */
function budgetGpuHoursPerDay(config: EnvironmentConfig, inv: TemplateInventory, options: EstimateOptions): number | null {
  const totalAt = (hours: number): number =>
    priceLines({ ...config, costProfile: { ...config.costProfile, gpuHoursPerDay: hours } }, inv, options).total();
  const budget = config.monthlyBudgetUsd;
  if (totalAt(0) > budget) return null;
  if (totalAt(24) <= budget) return 24;
  let [fits, over] = [0, 24];
  while (over - fits > BREAK_EVEN_PRECISION_HOURS) {
    const mid = (fits + over) / 2;
    if (totalAt(mid) <= budget) fits = mid;
    else over = mid;
  }
  return Math.floor(fits * 10) / 10;
}

/**
 * The monthly cost of one environment: quantities from what its templates contain and from its
 * costProfile, prices from lib/cost/prices.ts, plus the VPS's fixed price from the config.
 */
export function estimateEnvironment(config: EnvironmentConfig, templates: Record<string, CfnTemplate>, options: EstimateOptions = {}): CostEstimate {
  const inv = inventory(templates);
  const out = priceLines(config, inv, options);
  const totalUsd = out.total();
  const pricesAsOf = out.lines.map((l) => l.asOf).sort()[0] ?? '';
  return {
    envName: config.envName,
    region: config.region,
    lines: out.lines,
    totalUsd,
    budgetUsd: config.monthlyBudgetUsd,
    overBudget: totalUsd > config.monthlyBudgetUsd,
    ...(out.gpuInstanceType ? { gpuInstanceType: out.gpuInstanceType } : {}),
    freeTierApplied: options.freeTier ?? true,
    pricesAsOf,
    budgetGpuHoursPerDay: budgetGpuHoursPerDay(config, inv, options),
    gpuDaysPerMonth: config.costProfile.gpuDaysPerMonth,
    ...(options.spotPrices && out.gpuPrice ? { givenSpotPrice: { source: out.gpuPrice.source, asOf: out.gpuPrice.asOf } } : {}),
  };
}

/** One decimal, for the basis texts. */
function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
