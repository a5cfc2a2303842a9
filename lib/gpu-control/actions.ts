import { PutMetricDataCommand, StandardUnit, type CloudWatchClient, type MetricDatum } from '@aws-sdk/client-cloudwatch';
import { CreateTagsCommand, ModifySpotFleetRequestCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { ParameterType, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { budgetSpentMessage, readBudget } from './budget';
import { listModels, listWorkflows } from './bucket-listings';
import { readFleetCapacity, readFleetMembers, toControlInstance } from './fleet';
import { parseLinkKey } from './link-key';
import { budgetOverrideParameterName, GATEWAY_METRICS, gatewayMetricNamespace, linkKeyParameterName } from './names';
import { BUSY_UNTIL_TAG, type BudgetStatus, type ControlRequest, type ControlResponse, type ControlStatus, type GatewayMetrics } from './protocol';
import { parseRequest } from './request';
import type { ControlSettings } from './settings';

/** The longest lease: a lease is renewed while work is queued, so a gateway that dies frees the box soon. */
export const MAX_LEASE_SECONDS = 900;

/** Instance states in which a box can take work (and so a lease). */
const ACTIVE_STATES = new Set(['pending', 'running']);

export interface ControlClients {
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly cloudWatch: CloudWatchClient;
  readonly s3: S3Client;
}

export interface ControlContext {
  readonly clients: ControlClients;
  readonly settings: ControlSettings;
  readonly now: () => Date;
  readonly log: (line: string) => void;
}

type Failure = Extract<ControlResponse, { ok: false }>;

class Refusal extends Error {
  constructor(readonly response: Failure) {
    super(response.message);
  }
}

/** One request from the gateway, answered as the protocol says; AWS failures other than a gone fleet are thrown. */
export async function handleControlRequest(event: unknown, ctx: ControlContext): Promise<ControlResponse> {
  const parsed = parseRequest(event);
  if (!parsed.ok) return { ok: false, code: 'BAD_REQUEST', message: parsed.message };
  try {
    return await run(parsed.request, ctx);
  } catch (error) {
    if (error instanceof Refusal) return error.response;
    throw error;
  }
}

async function run(request: ControlRequest, ctx: ControlContext): Promise<ControlResponse> {
  switch (request.action) {
    case 'status':
      return { ok: true, status: await readStatus(ctx) };
    case 'set-capacity':
      return setCapacity(request.capacity, request.reason, ctx);
    case 'lease':
      return lease(request.instanceIds, request.seconds, ctx);
    case 'register-link-key':
      return registerLinkKey(request.publicKey, ctx);
    case 'report':
      return report(request.metrics, ctx);
    case 'list-models':
      return { ok: true, models: await listModels(ctx.clients.s3, ctx.settings.assetBucket, ctx.log) };
    case 'list-workflows':
      return { ok: true, workflows: await listWorkflows(ctx.clients.s3, ctx.settings.assetBucket, ctx.log) };
  }
}

/** The fleet, its instances and the month's budget; a fleet that is gone is refused as FLEET_GONE. */
export async function readStatus(ctx: ControlContext): Promise<ControlStatus> {
  const { ec2 } = ctx.clients;
  const s = ctx.settings;
  const capacity = await readFleetCapacity(ec2, s.fleetId);
  if (capacity.gone) throw new Refusal({ ok: false, code: 'FLEET_GONE', message: `${capacity.reason}: redeploy the Gpu stack` });
  const members = await readFleetMembers(ec2, s.fleetId);
  const budget = await readBudget(budgetSources(ctx), members, ctx.now());
  return {
    fleetId: s.fleetId,
    targetCapacity: capacity.targetCapacity,
    fulfilledCapacity: capacity.fulfilledCapacity,
    maxInstances: s.maxInstances,
    instances: members.map(toControlInstance),
    budget,
  };
}

function budgetSources(ctx: ControlContext) {
  const s = ctx.settings;
  return {
    cloudWatch: ctx.clients.cloudWatch,
    ssm: ctx.clients.ssm,
    ledger: { namespace: gatewayMetricNamespace(s.appName), envName: s.envName },
    overrideParameter: budgetOverrideParameterName(s),
    allowanceUsd: s.allowanceUsd,
    spotPrices: s.spotPrices,
  };
}

async function setCapacity(capacity: number, reason: string, ctx: ControlContext): Promise<ControlResponse> {
  const max = ctx.settings.maxInstances;
  if (capacity < 0 || capacity > max) {
    return { ok: false, code: 'OUT_OF_RANGE', message: `capacity is ${capacity}: allowed is a whole number from 0 to ${max} (gpu.maxInstances)` };
  }
  const before = await readStatus(ctx);
  // Lowering is always allowed: it only stops launching more (idle boxes leave by themselves).
  if (capacity > before.targetCapacity && spentWithoutOverride(before.budget)) {
    ctx.log(`refused set-capacity ${before.targetCapacity} -> ${capacity} (${reason}): allowance spent`);
    return { ok: false, code: 'BUDGET_SPENT', message: budgetSpentMessage(before.budget, ctx.settings.envName), status: before };
  }
  if (capacity !== before.targetCapacity) {
    // noTermination: a lower target must not pick a busy box; each idle box leaves on its own
    // (assets/user-data/idle-watcher.sh), the same policy the fleet is created with.
    await ctx.clients.ec2.send(
      new ModifySpotFleetRequestCommand({ SpotFleetRequestId: ctx.settings.fleetId, TargetCapacity: capacity, ExcessCapacityTerminationPolicy: 'noTermination' }),
    );
    ctx.log(`set target capacity of ${ctx.settings.fleetId} ${before.targetCapacity} -> ${capacity}: ${reason}`);
  }
  return { ok: true, status: await readStatus(ctx) };
}

function spentWithoutOverride(budget: BudgetStatus): boolean {
  return budget.spent && !budget.overridden;
}

async function lease(instanceIds: readonly string[], seconds: number, ctx: ControlContext): Promise<ControlResponse> {
  if (seconds < 1 || seconds > MAX_LEASE_SECONDS) {
    return { ok: false, code: 'OUT_OF_RANGE', message: `seconds is ${seconds}: allowed is a whole number from 1 to ${MAX_LEASE_SECONDS}` };
  }
  const members = await readFleetMembers(ctx.clients.ec2, ctx.settings.fleetId);
  const active = new Set(members.filter((m) => ACTIVE_STATES.has(m.state)).map((m) => m.instanceId));
  const strangers = instanceIds.filter((id) => !active.has(id));
  if (strangers.length > 0) {
    return {
      ok: false,
      code: 'BAD_REQUEST',
      message: `instanceIds has ${strangers.join(', ')}: allowed are active instances of fleet ${ctx.settings.fleetId} (${[...active].join(', ') || 'none now'})`,
    };
  }
  const until = Math.floor(ctx.now().getTime() / 1000) + seconds;
  await ctx.clients.ec2.send(new CreateTagsCommand({ Resources: [...new Set(instanceIds)], Tags: [{ Key: BUSY_UNTIL_TAG, Value: String(until) }] }));
  return { ok: true, status: await readStatus(ctx) };
}

async function registerLinkKey(publicKey: string, ctx: ControlContext): Promise<ControlResponse> {
  const parsed = parseLinkKey(publicKey);
  if (!parsed.ok) return { ok: false, code: 'BAD_REQUEST', message: parsed.message };
  const name = linkKeyParameterName(ctx.settings);
  await ctx.clients.ssm.send(new PutParameterCommand({ Name: name, Value: parsed.key, Type: ParameterType.STRING, Overwrite: true }));
  ctx.log(`stored the gateway's link key in ${name}`);
  return { ok: true, status: await readStatus(ctx) };
}

async function report(metrics: GatewayMetrics, ctx: ControlContext): Promise<ControlResponse> {
  const s = ctx.settings;
  const dimensions = [{ Name: 'Environment', Value: s.envName }];
  const at = ctx.now();
  const count = (name: string, value: number): MetricDatum => ({ MetricName: name, Dimensions: dimensions, Timestamp: at, Value: value, Unit: StandardUnit.Count });
  const data: MetricDatum[] = [
    count(GATEWAY_METRICS.queueDepth, metrics.queueDepth),
    count(GATEWAY_METRICS.running, metrics.running),
    count(GATEWAY_METRICS.wakes, metrics.wakes),
    count(GATEWAY_METRICS.jobsCompleted, metrics.jobsCompleted),
    count(GATEWAY_METRICS.jobsFailed, metrics.jobsFailed),
    count(GATEWAY_METRICS.jobsResubmitted, metrics.jobsResubmitted),
  ];
  if (metrics.wakeToReadySeconds.length > 0) {
    data.push({ MetricName: GATEWAY_METRICS.wakeToReadySeconds, Dimensions: dimensions, Timestamp: at, Values: [...metrics.wakeToReadySeconds], Unit: StandardUnit.Seconds });
  }
  const status = await readStatus(ctx);
  // The budget as computed now, so the dashboard can show allowance and use without the prices.
  data.push(
    { MetricName: GATEWAY_METRICS.allowanceUsd, Dimensions: dimensions, Timestamp: at, Value: status.budget.allowanceUsd, Unit: StandardUnit.None },
    { MetricName: GATEWAY_METRICS.allowanceUsedUsd, Dimensions: dimensions, Timestamp: at, Value: status.budget.usedUsd, Unit: StandardUnit.None },
  );
  await ctx.clients.cloudWatch.send(new PutMetricDataCommand({ Namespace: gatewayMetricNamespace(s.appName), MetricData: data }));
  return { ok: true, status };
}
