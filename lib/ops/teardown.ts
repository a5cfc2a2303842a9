import { stackName } from '../app';
import type { EnvironmentConfig } from '../config/load';
import type { AwsClients } from './aws';
import { bucketPresence, type BucketPresence } from './buckets';
import { cdkDestroy, type CdkRun } from './cdk';
import type { OpsDeps, Reporter } from './context';
import { ExitCode, OpsError, toOpsError } from './errors';
import { describeFleet, fleetInstances, isActiveInstance, isDeadFleet, stopWholeFleet } from './fleet';
import { waitForNoActiveInstances } from './gpu-stop';
import { stillRunningOf } from './interrupt';
import { describeStack, TEARDOWN_ORDER, type DeployedStack, type StackPart } from './stack-outputs';
import { formatDuration } from './wait';

export interface TeardownOptions {
  /** Skip the typed confirmation (never accepted for prod). */
  readonly yes: boolean;
  /** Required to tear down prod at all. */
  readonly allowProd: boolean;
  /** Longest wait for the GPU instances to terminate before cdk runs. */
  readonly drainTimeoutMs: number;
  /** Print the plan only: no confirmation, no GPU scaling, no cdk (allowed in prod without allowProd). */
  readonly dryRun?: boolean;
}

/** The `teardown --json` document. */
export interface TeardownReport {
  readonly env: string;
  readonly region: string;
  readonly removalPolicy: 'destroy' | 'retain';
  /** Stacks in the order given to cdk destroy, and the buckets that go with them. */
  readonly delete: { stacks: string[]; buckets: string[] };
  /** `resources`: what stays of the deleted stacks (retain environments), as `<stack>: <what>`. */
  readonly keep: { stacks: string[]; buckets: string[]; resources: string[] };
  readonly notDeployed: string[];
  /** Only the plan was printed; nothing was asked, scaled or destroyed. */
  readonly dryRun: boolean;
  confirmed: boolean;
  fleetScaledToZero: boolean;
  cdk: CdkRun | null;
  leftBehind: { stacks: string[]; buckets: { name: string; presence: BucketPresence; expected: boolean }[] };
  completed: boolean;
  error: string | null;
}

type Deps = Pick<OpsDeps, 'input' | 'env' | 'sleep' | 'now' | 'stillRunning'>;

/**
 * What a `retain` environment keeps of the stacks its teardown deletes: the resources whose
 * DeletionPolicy is Retain there, by type (test/ops/teardown.test.ts checks this against the
 * synthesized prod templates). None has a fixed name, so a fresh deploy after the teardown
 * creates new ones beside them; the alert topic's KMS key is deleted with its stack everywhere.
 */
export const RETAINED_OF_DELETED_STACKS: Readonly<Record<StackPart, Readonly<Record<string, string>>>> = {
  Vps: {
    'AWS::Logs::LogGroup': 'its deploy functions\' log groups (expire after their retention)',
    'AWS::SecretsManager::Secret': 'its app secret ($0.40 a month; delete it once the VPS data it opens is gone)',
  },
  Observability: { 'AWS::Logs::LogGroup': 'its function log group, if any (expires after its retention)' },
  Gpu: {
    'AWS::Logs::LogGroup': 'its host, flow and function log groups (expire after their retention)',
    'AWS::SQS::Queue': 'its dead-letter queue of undelivered alerts (free while empty; messages expire)',
  },
  Storage: {},
};

/** prod, or any environment whose stateful resources are retained, needs the stricter procedure. */
export function isProductionLike(config: EnvironmentConfig): boolean {
  return config.envName === 'prod' || config.removalPolicy === 'retain';
}

const refused = (message: string): OpsError => new OpsError(`${message} Nothing was changed.`, ExitCode.refused);

/** Refuses before any AWS call when the flags do not allow this environment to go. */
export function checkTeardownAllowed(config: EnvironmentConfig, options: TeardownOptions, input: Deps['input']): void {
  if (options.dryRun) return; // changes nothing, so nothing to refuse or confirm
  const env = config.envName;
  if (isProductionLike(config)) {
    if (!options.allowProd) {
      throw refused(
        `Refusing to tear down ${env}: it is a production environment (removalPolicy ${config.removalPolicy}). ` +
          `Pass --allow-prod and type "${env}" when asked.`,
      );
    }
    if (options.yes) {
      throw refused(`Refusing --yes for ${env}: a production teardown must be confirmed by typing its name; drop --yes.`);
    }
  }
  if (!options.yes && !input.isTTY) {
    throw refused(
      `Cannot ask for confirmation: stdin is not a terminal. Run teardown in a terminal${isProductionLike(config) ? '' : ' or pass --yes'}.`,
    );
  }
}

export async function teardown(
  config: EnvironmentConfig,
  clients: AwsClients,
  options: TeardownOptions,
  deps: Deps,
  reporter: Reporter,
): Promise<TeardownReport> {
  checkTeardownAllowed(config, options, deps.input);
  const env = config.envName;
  const retain = config.removalPolicy === 'retain';

  const existing = new Map<StackPart, DeployedStack>();
  for (const part of TEARDOWN_ORDER) {
    const stack = await describeStack(clients.cloudFormation, stackName(config, part));
    if (stack) existing.set(part, stack);
  }
  const storage = existing.get('Storage');
  const buckets = [storage?.outputs.AssetBucketName, storage?.outputs.AccessLogBucketName].filter((b): b is string => !!b);
  // In a retain environment the Storage stack (termination-protected) and its buckets stay.
  const deleteParts = TEARDOWN_ORDER.filter((p) => existing.has(p) && !(retain && p === 'Storage'));
  const report: TeardownReport = {
    env,
    region: config.region,
    removalPolicy: config.removalPolicy,
    delete: { stacks: deleteParts.map((p) => stackName(config, p)), buckets: retain ? [] : buckets },
    keep: {
      stacks: retain && storage ? [storage.name] : [],
      buckets: retain ? buckets : [],
      resources: retain ? deleteParts.flatMap((p) => Object.values(RETAINED_OF_DELETED_STACKS[p]).map((what) => `${stackName(config, p)}: ${what}`)) : [],
    },
    notDeployed: TEARDOWN_ORDER.filter((p) => !existing.has(p)).map((p) => stackName(config, p)),
    dryRun: options.dryRun === true,
    confirmed: false,
    fleetScaledToZero: false,
    cdk: null,
    leftBehind: { stacks: [], buckets: [] },
    completed: false,
    error: null,
  };
  printPlan(report, existing.has('Gpu'), reporter);
  if (report.dryRun) {
    reporter.line('dry run: nothing changed');
    return report;
  }

  if (report.delete.stacks.length === 0) {
    reporter.line(`Nothing to tear down in ${env}.`);
  } else {
    if (!options.yes) {
      const answer = (await deps.input.ask(`Type the environment name (${env}) to delete the above: `)).trim();
      if (answer !== env) throw refused(`Confirmation ${JSON.stringify(answer)} does not match "${env}".`);
    }
    report.confirmed = true;
    const gpu = existing.get('Gpu');
    if (gpu) report.fleetScaledToZero = await scaleFleetToZero(gpu, clients, options.drainTimeoutMs, deps, reporter);
    report.cdk = await cdkDestroy(report.delete.stacks, env, deps, reporter);
  }

  // What is left, whatever cdk said: an operator must know what still exists (and costs).
  for (const part of TEARDOWN_ORDER) {
    const name = stackName(config, part);
    if (await describeStack(clients.cloudFormation, name)) report.leftBehind.stacks.push(name);
  }
  for (const bucket of buckets) {
    report.leftBehind.buckets.push({ name: bucket, presence: await bucketPresence(clients.s3, bucket), expected: retain });
  }
  printLeftBehind(report, reporter);

  const unexpectedStacks = report.leftBehind.stacks.filter((s) => report.delete.stacks.includes(s));
  const unexpectedBuckets = report.leftBehind.buckets.filter((b) => !b.expected && b.presence !== 'gone');
  if (report.cdk && report.cdk.exitCode !== 0) {
    report.error = `cdk destroy failed (exit ${report.cdk.exitCode ?? 'signal'}); teardown stopped. Fix the cause shown above and run teardown again.`;
  } else if (unexpectedStacks.length > 0 || unexpectedBuckets.length > 0) {
    report.error = `Teardown incomplete: still present ${[...unexpectedStacks, ...unexpectedBuckets.map((b) => `bucket ${b.name}`)].join(', ')}.`;
  } else {
    report.completed = true;
    reporter.line(`Teardown of ${env} complete.`);
  }
  return report;
}

/** Lowers the GPU fleet to 0 and waits (bounded) for its instances; problems are warnings, cdk still removes the fleet. */
async function scaleFleetToZero(gpu: DeployedStack, clients: AwsClients, timeoutMs: number, deps: Deps, reporter: Reporter): Promise<boolean> {
  const fleetId = gpu.outputs.SpotFleetRequestId;
  if (!fleetId) {
    reporter.warn(`stack ${gpu.name} has no output SpotFleetRequestId; not scaling the fleet first.`);
    return false;
  }
  try {
    const fleet = await describeFleet(clients.ec2, fleetId, `output SpotFleetRequestId of stack ${gpu.name}`);
    if (isDeadFleet(fleet)) {
      reporter.line(`Spot Fleet ${fleetId} is already ${fleet.state}.`);
      return true;
    }
    const started = deps.now();
    const before = (await fleetInstances(clients.ec2, fleetId)).filter(isActiveInstance).map((i) => i.instanceId);
    await stopWholeFleet(clients.ec2, fleet, before);
    reporter.line(`Scaled Spot Fleet ${fleetId} to 0 (was ${fleet.targetCapacity}).`);
    const left = await stillRunningOf(deps).during(
      `Spot Fleet ${fleetId} is scaled to 0 and its instances are terminating; no stack was destroyed yet: run the teardown again`,
      () => waitForNoActiveInstances(clients.ec2, fleetId, before, timeoutMs, deps, reporter),
    );
    if (left.length > 0) {
      reporter.warn(`instances still terminating after ${formatDuration(deps.now() - started)}: ${left.map((i) => i.instanceId).join(', ')}; continuing.`);
    } else if (before.length > 0) {
      reporter.line(`GPU instances terminated after ${formatDuration(deps.now() - started)}.`);
    }
    return true;
  } catch (error) {
    const opsError = toOpsError(error);
    if (opsError.exitCode === ExitCode.noCredentials) throw opsError;
    reporter.warn(`could not scale the fleet to 0 (${opsError.message}); cdk destroy removes it anyway.`);
    return false;
  }
}

function printPlan(report: TeardownReport, hasGpu: boolean, reporter: Reporter): void {
  reporter.line(`Teardown of ${report.env} in ${report.region} (removalPolicy ${report.removalPolicy})`);
  reporter.line('Will delete, in this order:');
  if (report.delete.stacks.length === 0) reporter.line('  (nothing)');
  report.delete.stacks.forEach((s, i) => {
    const note = hasGpu && s.endsWith('-Gpu') ? ' (its Spot Fleet is scaled to 0 first)' : '';
    reporter.line(`  ${i + 1}. stack ${s}${note}`);
  });
  for (const b of report.delete.buckets) reporter.line(`     bucket ${b}, with all its objects`);
  reporter.line('Will keep:');
  const { stacks, buckets, resources } = report.keep;
  if (stacks.length === 0 && buckets.length === 0 && resources.length === 0) reporter.line('  (nothing)');
  for (const s of stacks) reporter.line(`  stack ${s} (removalPolicy retain: the stateful stack is never destroyed by teardown)`);
  for (const b of buckets) reporter.line(`  bucket ${b}, with its objects (removalPolicy retain)`);
  for (const r of resources) reporter.line(`  of stack ${r}`);
  if (report.notDeployed.length > 0) reporter.line(`Not deployed, skipped: ${report.notDeployed.join(', ')}`);
}

function printLeftBehind(report: TeardownReport, reporter: Reporter): void {
  reporter.line('Left behind:');
  const { stacks, buckets } = report.leftBehind;
  const present = buckets.filter((b) => b.presence !== 'gone');
  if (stacks.length === 0 && present.length === 0) reporter.line('  nothing');
  for (const s of stacks) reporter.line(`  stack ${s}${report.keep.stacks.includes(s) ? ' (kept)' : ' (still present)'}`);
  for (const b of present) {
    const state = b.presence === 'unknown' ? 'state unknown' : b.expected ? 'kept' : 'still present';
    reporter.line(`  bucket ${b.name} (${state})`);
  }
}
