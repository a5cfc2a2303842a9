/**
 * The price table of the offline estimate: public list prices, per region, each with the page it
 * comes from and the date it was read. No AWS call: `cost estimate` must work without credentials.
 *
 * Update by editing the numbers and their `asOf`; the estimate prints the oldest `asOf` it used.
 * Spot prices move daily, so they are "typical" figures, not quotes.
 */

/** One price: what it costs, per what, and where and when it was read. */
export interface Price {
  readonly usd: number;
  readonly per: string;
  readonly source: string;
  readonly asOf: string;
  readonly note?: string;
}

/** A free allowance (per account and month); `source`/`asOf` as for prices. */
export interface Allowance {
  readonly quantity: number;
  readonly per: string;
  readonly source: string;
  readonly asOf: string;
}

export interface InstancePrices {
  readonly onDemand: Price;
  /** A typical recent Spot price (average over the region's AZs), not a quote. */
  readonly spot: Price;
}

export interface RegionPrices {
  readonly region: string;
  readonly instances: Readonly<Record<string, InstancePrices>>;
  readonly ebs: { readonly gp3GbMonth: Price; readonly gp3IopsMonth: Price; readonly gp3ThroughputMbpsMonth: Price };
  readonly s3: {
    readonly standardGbMonth: Price;
    readonly standardIaGbMonth: Price;
    readonly glacierIrGbMonth: Price;
    readonly putPer1000: Price;
    readonly getPer1000: Price;
  };
  readonly dataTransferOutGb: Price;
  readonly cloudWatch: {
    readonly dashboardMonth: Price;
    readonly alarmMetricMonth: Price;
    readonly highResolutionAlarmMetricMonth: Price;
    readonly compositeAlarmMonth: Price;
    readonly customMetricMonth: Price;
    readonly logIngestionGb: Price;
  };
  readonly kmsKeyMonth: Price;
  readonly snsEmailNotification: Price;
  readonly secretMonth: Price;
  readonly lambdaMillionRequests: Price;
  readonly publicIpv4Hour: Price;
  readonly budgetDay: Price;
}

/** When the AWS list prices below were last checked against their pages. */
const LIST_AS_OF = '2025-11-30';
/** Snapshot date of the Spot (and cross-checked on-demand) figures. */
const SPOT_AS_OF = '2025-11-30';

const EC2_ON_DEMAND = 'https://aws.amazon.com/ec2/pricing/on-demand/ (Linux)';
const spotSource = (type: string): string =>
  `https://instances.vantage.sh/aws/ec2/${type} (average of the AWS Spot price history over the region's AZs, Linux)`;
const SPOT_NOTE = 'typical recent Spot price, not a quote: Spot prices change daily (DescribeSpotPriceHistory has the current one)';

function list(usd: number, per: string, source: string, note?: string): Price {
  return note === undefined ? { usd, per, source, asOf: LIST_AS_OF } : { usd, per, source, asOf: LIST_AS_OF, note };
}

function instance(type: string, onDemandUsd: number, spotUsd: number): InstancePrices {
  return {
    onDemand: { usd: onDemandUsd, per: 'instance-hour', source: EC2_ON_DEMAND, asOf: SPOT_AS_OF },
    spot: { usd: spotUsd, per: 'instance-hour', source: spotSource(type), asOf: SPOT_AS_OF, note: SPOT_NOTE },
  };
}

const S3 = 'https://aws.amazon.com/s3/pricing/';
const EBS = 'https://aws.amazon.com/ebs/pricing/';
const CW = 'https://aws.amazon.com/cloudwatch/pricing/';

/** Services priced the same in us-east-1 and us-east-2 (everything but the instances). */
const US_EAST_SERVICES: Omit<RegionPrices, 'region' | 'instances'> = {
  ebs: {
    gp3GbMonth: list(0.08, 'GB-month', EBS),
    gp3IopsMonth: list(0.005, 'provisioned IOPS-month above 3,000', EBS),
    gp3ThroughputMbpsMonth: list(0.04, 'MB/s-month above 125 MB/s', EBS),
  },
  s3: {
    standardGbMonth: list(0.023, 'GB-month (first 50 TB)', S3),
    standardIaGbMonth: list(0.0125, 'GB-month', S3, 'plus $0.01/GB retrieved, 30-day minimum'),
    glacierIrGbMonth: list(0.004, 'GB-month', S3, 'plus $0.03/GB retrieved, 90-day minimum'),
    putPer1000: list(0.005, '1,000 PUT/COPY/POST/LIST requests', S3),
    getPer1000: list(0.0004, '1,000 GET/SELECT requests', S3),
  },
  dataTransferOutGb: list(0.09, 'GB out to the internet (first 10 TB/month after the free 100 GB)', 'https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer'),
  cloudWatch: {
    dashboardMonth: list(3, 'dashboard-month', CW),
    alarmMetricMonth: list(0.1, 'standard-resolution alarm metric-month', CW),
    highResolutionAlarmMetricMonth: list(0.3, 'high-resolution alarm metric-month', CW),
    compositeAlarmMonth: list(0.5, 'composite alarm-month', CW),
    customMetricMonth: list(0.3, 'metric-month (first 10,000; prorated by the hour)', CW),
    logIngestionGb: list(0.5, 'GB ingested (standard log class)', CW),
  },
  kmsKeyMonth: list(1, 'customer managed key-month', 'https://aws.amazon.com/kms/pricing/', 'each of the first two automatic rotations adds $1/month'),
  snsEmailNotification: list(0.00002, 'e-mail notification ($2.00 per 100,000)', 'https://aws.amazon.com/sns/pricing/'),
  secretMonth: list(0.4, 'secret-month', 'https://aws.amazon.com/secrets-manager/pricing/'),
  lambdaMillionRequests: list(0.2, 'million requests (plus duration)', 'https://aws.amazon.com/lambda/pricing/'),
  publicIpv4Hour: list(0.005, 'public IPv4 address-hour (in use or idle, since 2024-02-01)', 'https://aws.amazon.com/vpc/pricing/'),
  budgetDay: list(0.02, 'budget-day (budgets without actions, after the free two)', 'https://aws.amazon.com/aws-cost-management/aws-budgets/pricing/'),
};

/** Regions we have numbers for. Add one by copying an entry and checking every number. */
export const PRICES: Readonly<Record<string, RegionPrices>> = {
  'us-east-1': {
    region: 'us-east-1',
    instances: {
      'g4dn.xlarge': instance('g4dn.xlarge', 0.526, 0.1766),
      'g5.xlarge': instance('g5.xlarge', 1.006, 0.3939),
      'g6.xlarge': instance('g6.xlarge', 0.8048, 0.3558),
    },
    ...US_EAST_SERVICES,
  },
  'us-east-2': {
    region: 'us-east-2',
    instances: {
      'g4dn.xlarge': instance('g4dn.xlarge', 0.526, 0.189),
      'g5.xlarge': instance('g5.xlarge', 1.006, 0.4067),
      'g6.xlarge': instance('g6.xlarge', 0.8048, 0.281),
    },
    ...US_EAST_SERVICES,
  },
};

const FREE_TIER_AS_OF = LIST_AS_OF;

/**
 * Free allowances. They are per account: when several environments share one account, only one
 * of them gets each allowance (the estimate's `--no-free-tier` shows the other case).
 */
export const FREE_TIER = {
  dashboards: { quantity: 3, per: 'dashboards (up to 50 metrics each)', source: CW, asOf: FREE_TIER_AS_OF },
  alarmMetrics: { quantity: 10, per: 'standard-resolution alarm metrics', source: CW, asOf: FREE_TIER_AS_OF },
  customMetrics: { quantity: 10, per: 'custom or detailed-monitoring metrics', source: CW, asOf: FREE_TIER_AS_OF },
  logIngestionGb: { quantity: 5, per: 'GB of log data (ingestion, storage and Insights scans together)', source: CW, asOf: FREE_TIER_AS_OF },
  snsEmailNotifications: { quantity: 1000, per: 'e-mail notifications', source: 'https://aws.amazon.com/sns/pricing/', asOf: FREE_TIER_AS_OF },
  dataTransferOutGb: {
    quantity: 100,
    per: 'GB out to the internet, all services and regions together',
    source: 'https://aws.amazon.com/blogs/aws/aws-free-tier-data-transfer-expansion-100-gb-from-regions-and-1-tb-from-amazon-cloudfront-per-month/',
    asOf: FREE_TIER_AS_OF,
  },
  budgets: { quantity: 2, per: 'budgets', source: 'https://aws.amazon.com/aws-cost-management/aws-budgets/pricing/', asOf: FREE_TIER_AS_OF },
  lambdaRequests: { quantity: 1_000_000, per: 'requests (and 400,000 GB-seconds)', source: 'https://aws.amazon.com/lambda/pricing/', asOf: FREE_TIER_AS_OF },
} as const satisfies Record<string, Allowance>;

export type FreeTierName = keyof typeof FREE_TIER;

/** The VPS plan; the config's `vps.monthlyPriceUsd` wins over this list price. */
export const VPS_PLAN: { readonly name: string; readonly monthly: Price } = {
  name: 'Hostinger KVM 2',
  monthly: {
    usd: 6.99,
    per: 'month',
    source: 'https://www.hostinger.com/vps-hosting (KVM 2)',
    asOf: LIST_AS_OF,
    note: 'introductory price on a 24-month term; the renewal price is higher',
  },
};

/** The prices of `region`, or an error naming the regions the table has. */
export function regionPrices(region: string): RegionPrices {
  const prices = PRICES[region];
  if (!prices) {
    throw new Error(`No prices for region ${region} in lib/cost/prices.ts; the table has ${Object.keys(PRICES).join(', ')}.`);
  }
  return prices;
}
