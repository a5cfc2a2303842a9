import { Match, type Template } from 'aws-cdk-lib/assertions';
import { compareAssemblies } from '../lib/diff/compare';
import { GPU_FINGERPRINT_METADATA } from '../lib/stacks/observability-stack';
import type { SynthResult } from '../lib/synth';
import { partOf, synthesized, synthesizedDevWith, templateOf } from './support/synth';

const obs = templateOf('dev', 'Observability');
const alarms = () => Object.values(obs.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties as Record<string, any>);
const alarm = (idPart: string) => {
  const found = Object.entries(obs.findResources('AWS::CloudWatch::Alarm')).filter(([id]) => id.includes(idPart));
  expect(found).toHaveLength(1);
  return found[0][1].Properties as Record<string, any>;
};
const expressionOf = (a: Record<string, any>) => a.Metrics.find((m: any) => m.Expression)?.Expression;

/** The dashboard body with every token replaced by a marker, parsed as CloudWatch reads it. */
function dashboardBody(): any {
  const [body] = Object.values(obs.findResources('AWS::CloudWatch::Dashboard'));
  const [, parts] = body.Properties.DashboardBody['Fn::Join'];
  return JSON.parse(parts.map((p: any) => (typeof p === 'string' ? p : 'TOKEN')).join(''));
}

describe('alarms', () => {
  test('six alarms, each to the alert topic, missing data not breaching (but the daily bucket size), with a description that says what to do', () => {
    expect(alarms()).toHaveLength(6);
    for (const a of alarms()) {
      expect(a.AlarmActions).toEqual([{ 'Fn::GetStackOutput': expect.objectContaining({ StackName: 'AiAssets-dev-Gpu' }) }]);
      expect(a.TreatMissingData).toBe(a.AlarmDescription.startsWith('The asset bucket') ? 'ignore' : 'notBreaching');
      expect(a.AlarmDescription.length).toBeGreaterThan(60);
    }
  });

  test('watcher failed: the GPU runs and has been idle more than twice its threshold (gpu autostop, else idleMinutes)', () => {
    const a = alarm('WatcherFailed');
    expect(expressionOf(a)).toBe('IF(fulfilled > 0 AND idle > 2 * FILL(threshold, 5), 1, 0)');
    const threshold = a.Metrics.find((m: any) => m.Id === 'threshold').MetricStat;
    expect(threshold).toMatchObject({ Stat: 'Maximum', Metric: { Namespace: 'AiAssets/Gpu', MetricName: 'IdleThresholdMinutes', Dimensions: [{ Name: 'Environment', Value: 'dev' }] } });
    expect(a).toMatchObject({ Threshold: 1, EvaluationPeriods: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    const idle = a.Metrics.find((m: any) => m.Id === 'idle').MetricStat;
    expect(idle.Metric).toEqual({ Namespace: 'AiAssets/Gpu', MetricName: 'IdleMinutes', Dimensions: [{ Name: 'Environment', Value: 'dev' }] });
    const fulfilled = a.Metrics.find((m: any) => m.Id === 'fulfilled').MetricStat.Metric;
    expect(fulfilled).toMatchObject({ Namespace: 'AWS/EC2Spot', MetricName: 'FulfilledCapacity' });
    expect(fulfilled.Dimensions[0].Name).toBe('FleetRequestId');
  });

  test('watcher silent: running 15 minutes without idle checks', () => {
    const a = alarm('WatcherSilent');
    expect(expressionOf(a)).toBe('IF(fulfilled > 0 AND FILL(checks, 0) == 0, 1, 0)');
    expect(a.EvaluationPeriods).toBe(3);
  });

  test('no Spot capacity: below target for noCapacityMinutes (30 = 6 periods of 5 minutes)', () => {
    const a = alarm('NoSpotCapacity');
    expect(expressionOf(a)).toBe('IF(target - fulfilled > 0, 1, 0)');
    expect(a.EvaluationPeriods).toBe(6);
  });

  test('an idle-shutdown failure published by the watcher', () => {
    const a = alarm('IdleShutdownFailed');
    expect(a).toMatchObject({ MetricName: 'IdleShutdownFailures', Namespace: 'AiAssets/Gpu', Statistic: 'Sum', Threshold: 1 });
  });

  test('unreadable signals keep a GPU busy: 10 in 15 minutes alarm', () => {
    const a = alarm('SignalsUnreadable');
    expect(a).toMatchObject({ MetricName: 'IdleSignalErrors', Statistic: 'Sum', Period: 900, Threshold: 10 });
  });

  test('the bucket grew past the configured size (all storage classes, in GB)', () => {
    const a = alarm('BucketTooLarge');
    expect(expressionOf(a)).toBe('SUM([standard, standard_ia, glacier_ir]) / 1073741824');
    expect(a).toMatchObject({ Threshold: 200, ComparisonOperator: 'GreaterThanThreshold' });
  });

  test('the bucket alarm reads the daily S3 size as reported: 1-day periods, no FILL, a day without data keeps the state', () => {
    // S3 reports BucketSizeBytes once a day, late (S3 User Guide, "Amazon S3 daily storage metrics for buckets
    // in CloudWatch"): FILL(…, 0) made every not-yet-reported day a 0, so the alarm never fired.
    const a = alarm('BucketTooLarge');
    expect(expressionOf(a)).not.toContain('FILL');
    const stats = a.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat);
    expect(stats).toHaveLength(3);
    for (const stat of stats) expect(stat).toMatchObject({ Period: 86400, Metric: { MetricName: 'BucketSizeBytes', Namespace: 'AWS/S3' } });
    expect(a.TreatMissingData).toBe('ignore');
  });

  test('optionally, a function scales the fleet to 0 when the watcher failed', () => {
    obs.resourceCountIs('AWS::Lambda::Function', 0);
    const variant = synthesizedDevWith((c) => (c.observability = { autoStopOnWatcherFailure: true }));
    expect(variant.violations).toEqual([]);
    const withAutoStop = partOf(variant, 'Observability');
    withAutoStop.resourceCountIs('AWS::Lambda::Function', 1);
    const watcher = Object.entries(withAutoStop.findResources('AWS::CloudWatch::Alarm')).find(([id]) => id.includes('WatcherFailed'))![1];
    expect(watcher.Properties.AlarmActions).toHaveLength(2);
    withAutoStop.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'ec2:ModifySpotFleetRequest', Sid: 'ScaleFleetToZero' })]) },
    });
  });
});

describe('dashboard', () => {
  test('one dashboard per environment with every panel the runbook names', () => {
    obs.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    obs.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'AiAssets-dev-gpu' });
    const titles = dashboardBody().widgets.map((w: any) => w.properties.title).filter(Boolean);
    expect(titles).toEqual([
      'Alarms',
      'GPU utilization (%)',
      'GPU memory',
      'Fleet capacity',
      'Idle minutes',
      'Idle shutdowns',
      'CPU (%) and network (bytes)',
      'Bucket size by storage class (bytes)',
      'Bucket objects',
      'Estimated charges (USD, us-east-1)',
      'Gateway queue and jobs',
      'Wake to ready (s)',
      'GPU allowance this month (USD)',
    ]);
  });

  test('the guide explains each panel; the alarm widget lists all six alarms', () => {
    const widgets = dashboardBody().widgets;
    const text = widgets.find((w: any) => w.type === 'text').properties.markdown;
    for (const panel of ['Alarms', 'GPU utilization', 'Fleet capacity', 'Idle minutes', 'Idle shutdowns', 'Bucket', 'Estimated charges']) {
      expect(text).toContain(`| ${panel}`);
    }
    expect(widgets.find((w: any) => w.type === 'alarm').properties.alarms).toHaveLength(6);
  });

  test('GPU panels read the agent nvidia_smi metrics of this environment; estimated charges come from us-east-1', () => {
    const metrics = JSON.stringify(dashboardBody());
    expect(metrics).toContain(`SEARCH('Namespace=\\"CWAgent\\" MetricName=\\"nvidia_smi_utilization_gpu\\" Environment=\\"dev\\"', 'Average', 60)`);
    expect(metrics).toContain('nvidia_smi_utilization_memory');
    const charges = dashboardBody().widgets.find((w: any) => w.properties.title?.startsWith('Estimated charges'));
    expect(charges.properties.region).toBe('us-east-1');
    expect(charges.properties.metrics[0].slice(0, 4)).toEqual(['AWS/Billing', 'EstimatedCharges', 'Currency', 'USD']);
  });

  test('capacity, idle and bucket panels use the fleet, host and S3 metrics', () => {
    const metrics = JSON.stringify(dashboardBody());
    for (const name of ['TargetCapacity', 'FulfilledCapacity', 'IdleMinutes', 'IdleShutdownActions', 'IdleShutdownFailures', 'IdleSignalErrors', 'CPUUtilization', 'NetworkIn', 'BucketSizeBytes', 'NumberOfObjects']) {
      expect(metrics).toContain(`"${name}"`);
    }
    for (const storage of ['StandardStorage', 'StandardIAStorage', 'GlacierInstantRetrievalStorage']) expect(metrics).toContain(storage);
  });
});

/** dev with one config change, without the Vps stack (not needed for what these tests compare). */
const devWithout = (change: (raw: any) => void): SynthResult =>
  synthesizedDevWith((c) => {
    change(c);
    delete c.vps.hostKeySha256;
  });

/** What deploying `head` over `base` does to the resources of one stack, per lib/diff (cloudformation-diff + service spec). */
function impacts(base: SynthResult, head: SynthResult, part: string): Record<string, string> {
  const pick = (r: SynthResult) => Object.fromEntries(Object.entries(r.templates).filter(([name]) => name.endsWith(`-${part}`)));
  const [diff] = compareAssemblies({ dev: pick(base) }, { dev: pick(head) });
  return Object.fromEntries((diff?.change.resources ?? []).map((r) => [`${r.type} ${r.logicalId}`, r.impact]));
}

const fingerprints = (t: Template) => new Set(Object.values(t.toJSON().Resources).map((r: any) => r.Metadata?.[GPU_FINGERPRINT_METADATA]));

describe('alarms and dashboard follow the fleet across replacements', () => {
  // Fn::GetStackOutput is resolved only when the Observability stack is updated, and cdk deploy skips a stack
  // whose template did not change: a replaced fleet must change this template, a capacity change must not.
  const base = () => synthesized('dev');

  test('every resource carries one replacement fingerprint of the Gpu stack', () => {
    const values = fingerprints(obs);
    expect(values.size).toBe(1);
    expect([...values][0]).toMatch(/^[0-9a-f]{12}$/);
  });

  test.each([
    ['the instance types', (c: any) => (c.gpu = { ...c.gpu, instanceTypes: ['g5.xlarge'] }), /AWS::EC2::SpotFleet/],
    ['the VPC CIDR', (c: any) => (c.network = { ...c.network, vpcCidr: '10.41.0.0/16' }), /AWS::EC2::Subnet/],
    ['the max Spot price', (c: any) => (c.gpu = { ...c.gpu, maxSpotPriceUsd: 0.5 }), /AWS::EC2::SpotFleet/],
    ['the cost-center tag', (c: any) => (c.costCenter = 'Research'), /AWS::EC2::SpotFleet/],
  ])('changing %s replaces the fleet (or what it runs in) and changes the Observability template', (_what, change, replaced) => {
    const head = devWithout(change);
    const gpu = Object.entries(impacts(base(), head, 'Gpu'));
    expect(gpu.filter(([, impact]) => impact === 'replace').map(([id]) => id).join('\n')).toMatch(replaced);
    expect(fingerprints(partOf(head, 'Observability'))).not.toEqual(fingerprints(obs));
    expect(impacts(base(), head, 'Observability')).not.toEqual({});
  });

  test('a capacity-only change updates the fleet in place and leaves the Observability template as it was', () => {
    const head = devWithout((c) => (c.gpu = { ...c.gpu, initialCapacity: 1 }));
    expect(Object.values(impacts(base(), head, 'Gpu'))).toEqual(['update']);
    expect(partOf(head, 'Observability').toJSON()).toEqual(obs.toJSON());
  });
});

describe('budget', () => {
  test('a changed alert e-mail replaces the budget under a new name (a replacement under the old name fails); the amount updates in place', () => {
    const name = (t: Template) => Object.values(t.findResources('AWS::Budgets::Budget'))[0].Properties.Budget.BudgetName;
    const base = synthesized('dev');
    const newMail = devWithout((c) => (c.alertEmail = 'oncall@example.com'));
    expect(Object.entries(impacts(base, newMail, 'Observability')).filter(([id]) => id.startsWith('AWS::Budgets::Budget'))).toEqual([
      [expect.any(String), 'replace'],
    ]);
    expect(name(partOf(newMail, 'Observability'))).not.toBe(name(obs));
    expect(name(partOf(newMail, 'Observability'))).toMatch(/^AiAssets-dev-monthly-[0-9a-f]{12}$/);

    const moreMoney = devWithout((c) => (c.monthlyBudgetUsd = 75));
    expect(Object.entries(impacts(base, moreMoney, 'Observability')).filter(([id]) => id.startsWith('AWS::Budgets::Budget'))).toEqual([
      [expect.any(String), 'update'],
    ]);
    expect(name(partOf(moreMoney, 'Observability'))).toBe(name(obs));
  });

  test('monthly cost budget from config, filtered by the cost-allocation tag, e-mails at 80 % and 100 % actual and 100 % forecast', () => {
    obs.hasResourceProperties('AWS::Budgets::Budget', {
      Budget: {
        BudgetName: Match.stringLikeRegexp('^AiAssets-dev-monthly-[0-9a-f]{12}$'),
        BudgetType: 'COST',
        TimeUnit: 'MONTHLY',
        BudgetLimit: { Amount: 50, Unit: 'USD' },
        FilterExpression: { Tags: { Key: 'CostCenter', Values: ['AiAssets-dev'], MatchOptions: ['EQUALS'] } },
      },
    });
    const [budget] = Object.values(obs.findResources('AWS::Budgets::Budget'));
    const notifications = budget.Properties.NotificationsWithSubscribers.map((n: any) => [
      n.Notification.NotificationType,
      n.Notification.Threshold,
      n.Notification.ThresholdType,
      n.Subscribers,
    ]);
    const mail = [{ SubscriptionType: 'EMAIL', Address: 'ops@example.com' }];
    expect(notifications).toEqual([
      ['ACTUAL', 80, 'PERCENTAGE', mail],
      ['ACTUAL', 100, 'PERCENTAGE', mail],
      ['FORECASTED', 100, 'PERCENTAGE', mail],
    ]);
  });

  test('the amount follows the config', () => {
    const bigger = partOf(synthesizedDevWith((c) => (c.monthlyBudgetUsd = 75)), 'Observability');
    bigger.hasResourceProperties('AWS::Budgets::Budget', { Budget: Match.objectLike({ BudgetLimit: { Amount: 75, Unit: 'USD' } }) });
  });
});
