import type { CfnTemplate } from '../synth';

/**
 * What the synthesized templates really contain, counted for the cost estimate. Only literal
 * values are read; an intrinsic (Ref, Fn::...) where a number is needed is an error, so the
 * estimate never silently prices something it could not see.
 */
export interface TemplateInventory {
  readonly alarms: AlarmCount;
  readonly dashboards: number;
  readonly kmsKeys: number;
  readonly secrets: number;
  readonly buckets: number;
  readonly logGroups: number;
  readonly lambdaFunctions: number;
  readonly budgets: number;
  readonly emailSubscriptions: number;
  readonly elasticIps: number;
  readonly gpu?: GpuInventory;
}

export interface AlarmCount {
  readonly alarms: number;
  /** Billable standard-resolution alarm metrics (see `alarmMetrics`). */
  readonly standardMetrics: number;
  readonly highResolutionMetrics: number;
  readonly compositeAlarms: number;
}

export interface RootVolume {
  readonly launchTemplate: string;
  readonly sizeGb: number;
  readonly volumeType: string;
  readonly iops?: number;
  readonly throughputMbps?: number;
}

export interface GpuInventory {
  /** Distinct instance types of the Spot Fleet overrides, in template order. */
  readonly instanceTypes: string[];
  readonly volumes: RootVolume[];
  /** `InstanceInterruptionBehavior` of the fleet (terminate when unset). */
  readonly interruptionBehavior: string;
  /** True when instances get a public IPv4 address (public subnets or an explicit interface setting). */
  readonly publicIpv4: boolean;
}

type Resource = CfnTemplate['Resources'][string];

function resources(templates: Record<string, CfnTemplate>): Array<[string, Resource]> {
  return Object.values(templates).flatMap((t) => Object.entries(t.Resources ?? {}));
}

function ofType(all: Array<[string, Resource]>, type: string): Array<[string, Resource]> {
  return all.filter(([, r]) => r.Type === type);
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function literalNumber(value: unknown, what: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw new Error(`Cannot estimate ${what}: expected a literal number in the template, found ${JSON.stringify(value)}.`);
}

/**
 * Alarm metrics as CloudWatch bills them: one per plain alarm; for a metric-math alarm, one per
 * metric it reads (MetricStat entries; expressions are free); an anomaly-detection alarm counts
 * three per metric (the metric and both band edges). Periods under 60 s are high resolution.
 */
export function alarmMetrics(properties: Record<string, unknown>): { metrics: number; highResolution: boolean } {
  const queries = Array.isArray(properties.Metrics) ? properties.Metrics.map(record) : undefined;
  if (!queries) {
    const period = properties.Period === undefined ? 60 : literalNumber(properties.Period, 'an alarm period');
    return { metrics: 1, highResolution: period < 60 };
  }
  const stats = queries.map((q) => record(q.MetricStat)).filter((s) => Object.keys(s).length > 0);
  const anomaly = queries.some((q) => typeof q.Expression === 'string' && q.Expression.includes('ANOMALY_DETECTION_BAND'));
  const highResolution = stats.some((s) => s.Period !== undefined && literalNumber(s.Period, 'an alarm period') < 60);
  // An expression-only alarm (e.g. a Metrics Insights query) still counts as at least one metric.
  return { metrics: Math.max(1, stats.length) * (anomaly ? 3 : 1), highResolution };
}

function countAlarms(all: Array<[string, Resource]>): AlarmCount {
  let standardMetrics = 0;
  let highResolutionMetrics = 0;
  const alarms = ofType(all, 'AWS::CloudWatch::Alarm');
  for (const [, alarm] of alarms) {
    const { metrics, highResolution } = alarmMetrics(record(alarm.Properties));
    if (highResolution) highResolutionMetrics += metrics;
    else standardMetrics += metrics;
  }
  return {
    alarms: alarms.length,
    standardMetrics,
    highResolutionMetrics,
    compositeAlarms: ofType(all, 'AWS::CloudWatch::CompositeAlarm').length,
  };
}

function rootVolumes(all: Array<[string, Resource]>): RootVolume[] {
  return ofType(all, 'AWS::EC2::LaunchTemplate').flatMap(([id, lt]) => {
    const data = record(record(lt.Properties).LaunchTemplateData);
    const mappings = Array.isArray(data.BlockDeviceMappings) ? data.BlockDeviceMappings.map(record) : [];
    return mappings
      .map((m) => record(m.Ebs))
      .filter((ebs) => ebs.VolumeSize !== undefined)
      .map((ebs) => ({
        launchTemplate: id,
        sizeGb: literalNumber(ebs.VolumeSize, `the volume size of ${id}`),
        volumeType: typeof ebs.VolumeType === 'string' ? ebs.VolumeType : 'gp2',
        ...(ebs.Iops !== undefined ? { iops: literalNumber(ebs.Iops, `the IOPS of ${id}`) } : {}),
        ...(ebs.Throughput !== undefined ? { throughputMbps: literalNumber(ebs.Throughput, `the throughput of ${id}`) } : {}),
      }));
  });
}

function gpuInventory(all: Array<[string, Resource]>): GpuInventory | undefined {
  const fleets = ofType(all, 'AWS::EC2::SpotFleet');
  if (fleets.length === 0) return undefined;
  const configs = fleets.map(([, f]) => record(record(f.Properties).SpotFleetRequestConfigData));
  const instanceTypes = [
    ...new Set(
      configs.flatMap((c) => {
        const lts = Array.isArray(c.LaunchTemplateConfigs) ? c.LaunchTemplateConfigs.map(record) : [];
        const specs = Array.isArray(c.LaunchSpecifications) ? c.LaunchSpecifications.map(record) : [];
        return [...lts.flatMap((l) => (Array.isArray(l.Overrides) ? l.Overrides.map(record) : [])), ...specs]
          .map((o) => o.InstanceType)
          .filter((t): t is string => typeof t === 'string');
      }),
    ),
  ];
  const launchTemplates = ofType(all, 'AWS::EC2::LaunchTemplate').map(([, lt]) => record(record(lt.Properties).LaunchTemplateData));
  const explicitPublicIp = launchTemplates.some((d) =>
    (Array.isArray(d.NetworkInterfaces) ? d.NetworkInterfaces.map(record) : []).some((n) => n.AssociatePublicIpAddress === true),
  );
  const publicSubnets = ofType(all, 'AWS::EC2::Subnet').some(([, s]) => record(s.Properties).MapPublicIpOnLaunch === true);
  const behavior = configs.map((c) => c.InstanceInterruptionBehavior).find((b): b is string => typeof b === 'string');
  return {
    instanceTypes,
    volumes: rootVolumes(all),
    interruptionBehavior: behavior ?? 'terminate',
    publicIpv4: explicitPublicIp || publicSubnets,
  };
}

export function inventory(templates: Record<string, CfnTemplate>): TemplateInventory {
  const all = resources(templates);
  const count = (type: string): number => ofType(all, type).length;
  const gpu = gpuInventory(all);
  return {
    alarms: countAlarms(all),
    dashboards: count('AWS::CloudWatch::Dashboard'),
    kmsKeys: count('AWS::KMS::Key'),
    secrets: count('AWS::SecretsManager::Secret'),
    buckets: count('AWS::S3::Bucket'),
    logGroups: count('AWS::Logs::LogGroup'),
    lambdaFunctions: count('AWS::Lambda::Function'),
    budgets: count('AWS::Budgets::Budget'),
    emailSubscriptions: ofType(all, 'AWS::SNS::Subscription').filter(([, s]) => record(s.Properties).Protocol === 'email').length,
    elasticIps: count('AWS::EC2::EIP'),
    ...(gpu ? { gpu } : {}),
  };
}
