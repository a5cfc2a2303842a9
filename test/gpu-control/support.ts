import { DescribeStacksCommand, UpdateStackCommand, type CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { CreateTagsCommand, DescribeSpotFleetInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { ControlClients, ControlContext } from '../../lib/gpu-control/actions';
import { BUDGET_OVERRIDE_NONE, budgetOverrideParameterName, FLEET_TAG, gatewayMetricNamespace, LINK_KEY_UNSET, linkKeyParameterName } from '../../lib/gpu-control/names';
import type { ControlSettings } from '../../lib/gpu-control/settings';
import { createFleet } from '../support/moto-fleet';

export const BUCKET = 'aiassets-dev-assets-123456789012-us-east-1';
/** dev's typical Spot price of g4dn.xlarge in us-east-1 (lib/cost/prices.ts), the type moto's fleet launches. */
export const G4DN_PRICE = 0.1766;

/** The four clients of the control function, bound to moto explicitly. */
export function motoControlClients(endpoint: string): ControlClients {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const common = { region: 'us-east-1', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  return { ec2: new EC2Client(common), ssm: new SSMClient(common), cloudWatch: new CloudWatchClient(common), s3: new S3Client({ ...common, forcePathStyle: true }) };
}

export function settingsFor(fleetId: string, overrides: Partial<ControlSettings> = {}): ControlSettings {
  return {
    appName: 'AiAssets',
    envName: 'dev',
    fleetId,
    maxInstances: 3,
    assetBucket: BUCKET,
    allowanceUsd: 30,
    spotPrices: { 'g4dn.xlarge': G4DN_PRICE, 'g5.xlarge': 0.3939 },
    ...overrides,
  };
}

/**
 * A fleet as the Gpu stack has it, with `capacity` instances. EC2 tags every instance a Spot Fleet
 * launches with aws:ec2spot:fleet-request-id; moto 5.2.1 does not (moto/ec2/models/spot_requests.py),
 * so the test does.
 */
export async function fleetWithInstances(ec2: EC2Client, capacity: number): Promise<{ fleetId: string; instanceIds: string[] }> {
  const fleetId = await createFleet(ec2, capacity);
  const instanceIds = await tagFleetInstances(ec2, fleetId);
  return { fleetId, instanceIds };
}

/** Gives the fleet's instances the fleet tag EC2 would have given them; returns their ids. */
export async function tagFleetInstances(ec2: EC2Client, fleetId: string): Promise<string[]> {
  const ids = ((await ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances ?? []).map((i) => i.InstanceId!);
  if (ids.length > 0) await ec2.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: FLEET_TAG, Value: fleetId }] }));
  return ids;
}

/** The two parameters the GpuControl construct creates, with their initial values, and the asset bucket. */
export async function createEnvironment(clients: ControlClients, settings: ControlSettings): Promise<void> {
  await clients.ssm.send(new PutParameterCommand({ Name: linkKeyParameterName(settings), Value: LINK_KEY_UNSET, Type: 'String' }));
  await clients.ssm.send(new PutParameterCommand({ Name: budgetOverrideParameterName(settings), Value: BUDGET_OVERRIDE_NONE, Type: 'String' }));
  await clients.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}

export interface TestContext {
  readonly ctx: ControlContext;
  readonly logs: string[];
}

export function contextFor(clients: ControlClients, settings: ControlSettings, now: () => Date = () => new Date()): TestContext {
  const logs: string[] = [];
  return { ctx: { clients, settings, now, log: (line) => logs.push(line) }, logs };
}

/** The input of every command of one kind this client sends from now on. */
export function recordInputs(client: EC2Client, commandName: string): Record<string, unknown>[] {
  const inputs: Record<string, unknown>[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === commandName) inputs.push(structuredClone(args.input as Record<string, unknown>));
      return next(args);
    },
    { step: 'initialize', name: `record${commandName}${Math.random()}` },
  );
  return inputs;
}

/** Sum of one gateway metric of dev in [from, to), as CloudWatch (moto) aggregates it. */
export async function metricSum(
  cloudWatch: CloudWatchClient,
  name: string,
  from: Date,
  to: Date,
  extraDimensions: Record<string, string> = {},
  stat = 'Sum',
): Promise<number> {
  const out = await cloudWatch.send(
    new GetMetricDataCommand({
      StartTime: from,
      EndTime: to,
      MetricDataQueries: [
        {
          Id: 'm',
          MetricStat: {
            Metric: {
              Namespace: gatewayMetricNamespace('AiAssets'),
              MetricName: name,
              Dimensions: [{ Name: 'Environment', Value: 'dev' }, ...Object.entries(extraDimensions).map(([Name, Value]) => ({ Name, Value }))],
            },
            Period: 86_400,
            Stat: stat,
          },
        },
      ],
    }),
  );
  return (out.MetricDataResults?.[0]?.Values ?? []).reduce((a, b) => a + b, 0);
}

/**
 * Adds the outputs the Gpu stack now has for the budget (GpuAllowanceUsd, GpuSpotPricesUsd) to a
 * stand-in Gpu stack in moto (test/ops/fixtures.ts creates it with the older outputs).
 */
export async function addBudgetOutputs(
  cfn: CloudFormationClient,
  stackName: string,
  budget: { allowanceUsd: number; spotPrices: Record<string, number> } = { allowanceUsd: 30, spotPrices: { 'g4dn.xlarge': G4DN_PRICE } },
): Promise<void> {
  const stack = (await cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks![0];
  const outputs: Record<string, string> = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  outputs.GpuAllowanceUsd = String(budget.allowanceUsd);
  outputs.GpuSpotPricesUsd = JSON.stringify(budget.spotPrices);
  const template = {
    Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
    Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
  };
  await cfn.send(new UpdateStackCommand({ StackName: stackName, TemplateBody: JSON.stringify(template) }));
}
