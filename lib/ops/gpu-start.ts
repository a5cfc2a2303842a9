import { ModifySpotFleetRequestCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { budgetSpentMessage, formatBudgetLine } from '../gpu-control/budget';
import type { BudgetStatus } from '../gpu-control/protocol';
import { probeComfyUi } from './comfyui';
import type { OpsDeps, Reporter } from './context';
import { ExitCode, OpsError } from './errors';
import { formatBootPhases } from '../gpu-instance-tags';
import { describeFleet, describeInstances, fleetHistory, fleetInstances, isActiveInstance, isDeadFleet, setTargetCapacity, type FleetInstance } from './fleet';
import { readGpuBudget, setBudgetOverride } from './gpu-budget';
import type { GpuTarget } from './gpu-target';
import { stillRunningOf } from './interrupt';
import { formatDuration, pollIntervalMs, pollUntil } from './wait';

export interface StartOptions {
  readonly count: number;
  readonly wait: boolean;
  /** Probe ComfyUI at this URL (e.g. an SSM port forward on localhost) instead of waiting for the boxes' ready tag. */
  readonly comfyUiUrl?: string;
  readonly timeoutMs: number;
  /** Set the month's budget override first, so raising past a spent GPU allowance is allowed (the gateway's wakes too). */
  readonly overBudget?: boolean;
  /** When the wait fails, set the target back to what it was and terminate the instances this start launched. */
  readonly stopOnFailure?: boolean;
}

export type Phase = 'capacity' | 'running' | 'comfyui';

const PHASE_LABELS: Record<Phase, string> = {
  capacity: '1/3 fleet capacity',
  running: '2/3 instance running',
  comfyui: '3/3 ComfyUI ready',
};

/** The `gpu start --json` document. */
export interface StartResult {
  readonly fleetId: string;
  readonly previousTargetCapacity: number;
  readonly targetCapacity: number;
  readonly waited: boolean;
  readonly phases: { phase: Phase; label: string; seconds: number }[];
  readonly instances: string[];
  /** Each instance's boot phases as the box reported them (seconds after its kernel booted). */
  readonly bootPhases: Record<string, Record<string, number>>;
  readonly seconds: number;
  /** The month's GPU budget when the target was raised (null when it could not be read). */
  readonly budget: BudgetStatus | null;
}

type Deps = Pick<OpsDeps, 'sleep' | 'now' | 'env' | 'stillRunning'>;

/**
 * A failed wait: `core` says what went wrong, `kept` what the fleet is left with and what to do,
 * which --stop-on-failure replaces by what it set back.
 */
class WaitFailure extends OpsError {
  constructor(
    readonly core: string,
    kept: string,
    exitCode: number,
  ) {
    super(`${core} ${kept}`.trim(), exitCode);
  }
}

const seconds = (ms: number): number => Math.round(ms / 100) / 10;

export async function startGpu(target: GpuTarget, options: StartOptions, deps: Deps, reporter: Reporter): Promise<StartResult> {
  const { ec2 } = target.clients;
  const started = deps.now();
  const deadline = started + options.timeoutMs;
  const intervalMs = pollIntervalMs(deps.env);
  const fleet = await describeFleet(ec2, target.fleetId, target.fleetSource);
  if (isDeadFleet(fleet)) {
    throw new OpsError(`Spot Fleet ${target.fleetId} is ${fleet.state} and cannot launch instances: redeploy the Gpu stack.`, ExitCode.notDeployed);
  }
  // Never lower the target here: that would terminate an instance someone is using (gpu stop is explicit).
  const targetCapacity = Math.max(fleet.targetCapacity, options.count);
  if (options.overBudget) {
    const override = await setBudgetOverride(target, new Date(deps.now()));
    reporter.line(`Budget override set: ${override.parameter} = ${override.month}; the GPU may wake past its allowance until ${override.month} ends (gateway wakes too).`);
  }
  // The same rule as the control function's: raising is refused once the allowance is spent.
  const budget = targetCapacity !== fleet.targetCapacity ? await checkBudget(target, deps, reporter) : null;
  // What --stop-on-failure must never terminate: the boxes there before this start.
  const launchedBefore =
    options.wait && options.stopOnFailure ? (await fleetInstances(ec2, target.fleetId)).filter(isActiveInstance).map((i) => i.instanceId) : [];
  if (targetCapacity !== fleet.targetCapacity) {
    await setTargetCapacity(ec2, target.fleetId, targetCapacity);
    reporter.line(`Target capacity of ${target.fleetId}: ${fleet.targetCapacity} -> ${targetCapacity}`);
  } else {
    const note = fleet.targetCapacity > options.count ? ` (start never lowers it to ${options.count}; use gpu stop)` : '';
    reporter.line(`Target capacity of ${target.fleetId} is already ${fleet.targetCapacity}${note}.`);
  }
  const result: Omit<StartResult, 'seconds'> = {
    fleetId: target.fleetId,
    previousTargetCapacity: fleet.targetCapacity,
    targetCapacity,
    waited: options.wait,
    phases: [],
    instances: [],
    bootPhases: {},
    budget,
  };
  if (!options.wait) {
    reporter.line(`Not waiting: follow with npm run ops -- gpu status --env ${target.config.envName} (or use --wait).`);
    return { ...result, seconds: seconds(deps.now() - started) };
  }

  reporter.line(`Waiting up to ${formatDuration(options.timeoutMs)} for ComfyUI (poll every ${formatDuration(intervalMs)}).`);
  const wait = (): Promise<StartResult> => waitUntilReady(target, options, { started, deadline, intervalMs, targetCapacity }, result, deps, reporter);
  try {
    if (targetCapacity === fleet.targetCapacity) return await wait();
    const stop = `npm run ops -- gpu stop --env ${target.config.envName}`;
    return await stillRunningOf(deps).during(`target capacity of ${target.fleetId} is still ${targetCapacity} (${fleet.targetCapacity} before this start): run ${stop}`, wait);
  } catch (error) {
    if (!options.stopOnFailure || !(error instanceof WaitFailure)) throw error;
    const setBack = await setTargetBack(target, fleet.targetCapacity, launchedBefore, reporter);
    throw new OpsError(`${error.core} ${setBack}`, error.exitCode);
  }
}

interface WaitPlan {
  readonly started: number;
  readonly deadline: number;
  readonly intervalMs: number;
  readonly targetCapacity: number;
}

/** The three phases of --wait; a failure is a WaitFailure (exit code of its kind). */
async function waitUntilReady(
  target: GpuTarget,
  options: StartOptions,
  plan: WaitPlan,
  result: Omit<StartResult, 'seconds'>,
  deps: Deps,
  reporter: Reporter,
): Promise<StartResult> {
  const { ec2 } = target.clients;
  const { started, targetCapacity } = plan;
  const stopHint = `npm run ops -- gpu stop --env ${target.config.envName}`;
  const poll = (phase: Phase): Poll => ({
    deadline: plan.deadline,
    intervalMs: plan.intervalMs,
    deps,
    progress: { label: `[${PHASE_LABELS[phase]}]`, reporter },
  });
  const timedOut = (phase: Phase, detail: string): WaitFailure =>
    new WaitFailure(
      `Timed out after ${formatDuration(deps.now() - started)} in phase ${PHASE_LABELS[phase]}: ${detail}.`,
      `The fleet keeps its target capacity ${targetCapacity}; ${target.hostLogGroup ? `see the host log group ${target.hostLogGroup}, ` : ''}` +
        `or stop it with: ${stopHint}`,
      ExitCode.timeout,
    );
  const phases: StartResult['phases'] = [];
  let phaseStart = deps.now();
  const finishPhase = (phase: Phase, note: string): void => {
    const ms = deps.now() - phaseStart;
    phases.push({ phase, label: PHASE_LABELS[phase], seconds: seconds(ms) });
    reporter.line(`[${PHASE_LABELS[phase]}] done in ${formatDuration(ms)}: ${note}`);
    phaseStart = deps.now();
  };

  // Phase 1: the fleet has got Spot capacity for the whole target.
  let fulfilled = 0;
  let lastShown = '';
  const capacity = await pollUntil(async () => {
    const now = await describeFleet(ec2, target.fleetId, target.fleetSource);
    if (isDeadFleet(now)) throw new WaitFailure(`Spot Fleet ${target.fleetId} became ${now.state} while starting.`, '', ExitCode.failure);
    fulfilled = now.fulfilledCapacity;
    const shown = `fulfilled ${fulfilled}/${targetCapacity} (${now.state}${now.activityStatus ? `, ${now.activityStatus}` : ''})`;
    if (shown !== lastShown) reporter.line(`  [${PHASE_LABELS.capacity}] ${shown}`);
    lastShown = shown;
    return fulfilled >= targetCapacity ? { done: true, value: undefined } : { done: false };
  }, poll('capacity'));
  if (!capacity.done) {
    const history = await fleetHistory(ec2, target.fleetId, new Date(started - 60_000));
    const events = !history.available
      ? `fleet history unavailable (${history.reason})`
      : history.events.length > 0
        ? `fleet history:\n  ${history.events.join('\n  ')}`
        : 'no error or information events in the fleet history';
    throw new WaitFailure(
      `No Spot capacity: the fleet stayed at fulfilled ${fulfilled} of target ${targetCapacity} for ${formatDuration(deps.now() - started)} ` +
        `(phase ${PHASE_LABELS.capacity} did not finish); ${events}. Try again later or add instance types to gpu.instanceTypes;`,
      `the target stays ${targetCapacity} until: ${stopHint}`,
      ExitCode.noCapacity,
    );
  }
  finishPhase('capacity', `fulfilled ${fulfilled}/${targetCapacity}`);

  // Phase 2: the instances are running (none still pending).
  lastShown = '';
  const running = await pollUntil<FleetInstance[]>(async () => {
    const instances = (await fleetInstances(ec2, target.fleetId)).filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down');
    const shown = instances.map((i) => `${i.instanceId} ${i.state}`).join(', ') || 'no instance listed yet';
    if (shown !== lastShown) reporter.line(`  [${PHASE_LABELS.running}] ${shown}`);
    lastShown = shown;
    const up = instances.filter((i) => i.state === 'running');
    return up.length > 0 && !instances.some((i) => i.state === 'pending') ? { done: true, value: up } : { done: false };
  }, poll('running'));
  if (!running.done) throw timedOut('running', lastShown);
  const up = running.value;
  const instances = up.map((i) => i.instanceId);
  finishPhase('running', up.map((i) => `${i.instanceId} (${i.instanceType}, ${i.availabilityZone ?? '?'})`).join(', '));

  // Phase 3: ComfyUI is ready. It listens on the box's loopback only (the gateway reaches it over
  // SSH), so by default the box says so itself: comfyui-ready.service adds `ready` to its
  // boot-phases tag once GET /system_stats answers there. --comfyui-url probes a URL instead
  // (an SSM port forward, e.g. gpu connect).
  const ready = options.comfyUiUrl ? await probeUntilReady(options.comfyUiUrl, poll('comfyui'), reporter) : await bootTagsUntilReady(ec2, up, poll('comfyui'), reporter);
  if (!ready.done) throw timedOut('comfyui', ready.last);
  finishPhase('comfyui', options.comfyUiUrl ?? Object.entries(ready.phases).map(([id, p]) => `${id} (${formatBootPhases(p)} after boot)`).join(', '));

  const total = deps.now() - started;
  reporter.line(
    options.comfyUiUrl
      ? `ComfyUI is ready after ${formatDuration(total)}: ${options.comfyUiUrl}`
      : `ComfyUI is ready after ${formatDuration(total)}; open it with: npm run ops -- gpu connect --env ${target.config.envName}`,
  );
  return { ...result, phases, instances, bootPhases: ready.phases, seconds: seconds(total) };
}

/**
 * --stop-on-failure: the target back to what it was before this start (never lower, and left alone
 * when something else has lowered it since), then the instances this start launched terminated
 * (as many as exceed that target): on a lower target the fleet itself terminates none. Returns what it did.
 */
async function setTargetBack(target: GpuTarget, previous: number, launchedBefore: readonly string[], reporter: Reporter): Promise<string> {
  const { ec2 } = target.clients;
  let note: string;
  try {
    const now = await describeFleet(ec2, target.fleetId, target.fleetSource);
    if (isDeadFleet(now)) {
      note = `--stop-on-failure: Spot Fleet ${target.fleetId} is ${now.state}, nothing to set back.`;
    } else if (now.targetCapacity <= previous) {
      note = `--stop-on-failure: the target capacity of ${target.fleetId} is ${now.targetCapacity} already (${previous} before this start), left as is.`;
    } else {
      const active = (await fleetInstances(ec2, target.fleetId)).filter(isActiveInstance);
      // noTermination, as in the template and the idle watcher: this start chooses which boxes go.
      await ec2.send(
        new ModifySpotFleetRequestCommand({ SpotFleetRequestId: target.fleetId, TargetCapacity: previous, ExcessCapacityTerminationPolicy: 'noTermination' }),
      );
      const launched = active.filter((i) => !launchedBefore.includes(i.instanceId)).map((i) => i.instanceId);
      const ended = launched.slice(0, Math.max(0, active.length - previous));
      if (ended.length > 0) await ec2.send(new TerminateInstancesCommand({ InstanceIds: ended }));
      note =
        `--stop-on-failure: target capacity of ${target.fleetId} set back to ${previous} (was ${now.targetCapacity})` +
        `${ended.length > 0 ? `; terminated ${ended.join(', ')}, launched by this start` : ''}.`;
    }
  } catch (error) {
    note = `--stop-on-failure could not set the target back (${(error as Error).message}): run npm run ops -- gpu stop --env ${target.config.envName}`;
  }
  reporter.line(note);
  return note;
}

/** The month's budget before a raise: refused (exit 5) when spent without override; a budget that cannot be read is a warning. */
async function checkBudget(target: GpuTarget, deps: Deps, reporter: Reporter): Promise<BudgetStatus | null> {
  let reason: string;
  try {
    const read = await readGpuBudget(target, new Date(deps.now()));
    if (read.available) {
      reporter.line(formatBudgetLine(read.budget));
      if (read.budget.spent && !read.budget.overridden) throw new OpsError(budgetSpentMessage(read.budget, target.config.envName), ExitCode.refused);
      return read.budget;
    }
    reason = read.reason;
  } catch (error) {
    if (error instanceof OpsError) throw error;
    reason = (error as Error).message;
  }
  reporter.warn(`GPU budget not checked: ${reason}`);
  return null;
}

interface ReadyWait {
  readonly done: boolean;
  readonly phases: Record<string, Record<string, number>>;
  /** What the last poll saw, for a timeout message. */
  readonly last: string;
}

type Poll = Parameters<typeof pollUntil>[1];

async function probeUntilReady(url: string, poll: Poll, reporter: Reporter): Promise<ReadyWait> {
  let last = 'nothing';
  const ready = await pollUntil(async () => {
    const probe = await probeComfyUi(url, Math.min(5_000, Math.max(100, poll.deadline - poll.deps.now())));
    if (probe.detail !== last) reporter.line(`  [${PHASE_LABELS.comfyui}] ${url}/system_stats: ${probe.detail}`);
    last = probe.detail;
    return probe.ready ? { done: true, value: undefined } : { done: false };
  }, poll);
  return { done: ready.done, phases: {}, last: `${url}/system_stats last answered ${last}` };
}

/** Waits until every instance's boot-phases tag holds `ready`, printing the phases as they come. */
async function bootTagsUntilReady(ec2: GpuTarget['clients']['ec2'], up: FleetInstance[], poll: Poll, reporter: Reporter): Promise<ReadyWait> {
  const ids = up.map((i) => i.instanceId);
  const shown = new Map<string, string>();
  let phases: Record<string, Record<string, number>> = {};
  const ready = await pollUntil(async () => {
    const now = await describeInstances(ec2, ids);
    phases = Object.fromEntries(now.flatMap((i) => (i.bootPhases ? [[i.instanceId, i.bootPhases]] : [])));
    for (const i of now) {
      const text = i.bootPhases ? formatBootPhases(i.bootPhases) : 'no boot phase reported yet';
      if (shown.get(i.instanceId) !== text) reporter.line(`  [${PHASE_LABELS.comfyui}] ${i.instanceId}: ${text}`);
      shown.set(i.instanceId, text);
    }
    return ids.every((id) => phases[id]?.ready !== undefined) ? { done: true, value: undefined } : { done: false };
  }, poll);
  const last = ids.map((id) => `${id} reported ${shown.get(id) ?? 'nothing'}`).join('; ');
  return { done: ready.done, phases, last: `${last} (the box tags ready once /system_stats answers on it)` };
}
