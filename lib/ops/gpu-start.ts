import { budgetSpentMessage, formatBudgetLine } from '../gpu-control/budget';
import type { BudgetStatus } from '../gpu-control/protocol';
import { comfyUiUrl, probeComfyUi } from './comfyui';
import type { OpsDeps, Reporter } from './context';
import { ExitCode, OpsError } from './errors';
import { formatBootPhases } from '../gpu-instance-tags';
import { describeFleet, describeInstances, fleetHistory, fleetInstances, isDeadFleet, setTargetCapacity, type FleetInstance } from './fleet';
import { readGpuBudget, setBudgetOverride } from './gpu-budget';
import type { GpuTarget } from './gpu-target';
import { formatDuration, pollIntervalMs, pollUntil } from './wait';

export interface StartOptions {
  readonly count: number;
  readonly wait: boolean;
  /** Overrides http://<public ip>:<port>, e.g. an SSM port forward on localhost. */
  readonly comfyUiUrl?: string;
  readonly timeoutMs: number;
  /** Set the month's budget override first, so raising past a spent GPU allowance is allowed (the gateway's wakes too). */
  readonly overBudget?: boolean;
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
  readonly comfyUiUrls: string[];
  /** Each instance's boot phases as the box reported them (seconds after its kernel booted). */
  readonly bootPhases: Record<string, Record<string, number>>;
  readonly seconds: number;
  /** The month's GPU budget when the target was raised (null when it could not be read). */
  readonly budget: BudgetStatus | null;
}

type Deps = Pick<OpsDeps, 'sleep' | 'now' | 'env'>;

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
  if (targetCapacity !== fleet.targetCapacity) {
    await setTargetCapacity(ec2, target.fleetId, targetCapacity);
    reporter.line(`Target capacity of ${target.fleetId}: ${fleet.targetCapacity} -> ${targetCapacity}`);
  } else {
    const note = fleet.targetCapacity > options.count ? ` (start never lowers it to ${options.count}; use gpu stop)` : '';
    reporter.line(`Target capacity of ${target.fleetId} is already ${fleet.targetCapacity}${note}.`);
  }
  const result = {
    fleetId: target.fleetId,
    previousTargetCapacity: fleet.targetCapacity,
    targetCapacity,
    waited: options.wait,
    phases: [] as StartResult['phases'],
    instances: [] as string[],
    comfyUiUrls: [] as string[],
    bootPhases: {} as Record<string, Record<string, number>>,
    budget,
  };
  if (!options.wait) {
    reporter.line(`Not waiting: follow with npm run ops -- gpu status --env ${target.config.envName} (or use --wait).`);
    return { ...result, seconds: seconds(deps.now() - started) };
  }

  reporter.line(`Waiting up to ${formatDuration(options.timeoutMs)} for ComfyUI (poll every ${formatDuration(intervalMs)}).`);
  const poll = { deadline, intervalMs, deps };
  const timedOut = (phase: Phase, detail: string): OpsError =>
    new OpsError(
      `Timed out after ${formatDuration(deps.now() - started)} in phase ${PHASE_LABELS[phase]}: ${detail}. ` +
        `The fleet keeps its target capacity ${targetCapacity}; ${target.hostLogGroup ? `see the host log group ${target.hostLogGroup}, ` : ''}` +
        `or stop it with: npm run ops -- gpu stop --env ${target.config.envName}`,
      ExitCode.timeout,
    );
  let phaseStart = deps.now();
  const finishPhase = (phase: Phase, note: string): void => {
    const ms = deps.now() - phaseStart;
    result.phases.push({ phase, label: PHASE_LABELS[phase], seconds: seconds(ms) });
    reporter.line(`[${PHASE_LABELS[phase]}] done in ${formatDuration(ms)}: ${note}`);
    phaseStart = deps.now();
  };

  // Phase 1: the fleet has got Spot capacity for the whole target.
  let fulfilled = fleet.fulfilledCapacity;
  let lastShown = '';
  const capacity = await pollUntil(async () => {
    const now = await describeFleet(ec2, target.fleetId, target.fleetSource);
    if (isDeadFleet(now)) throw new OpsError(`Spot Fleet ${target.fleetId} became ${now.state} while starting.`, ExitCode.failure);
    fulfilled = now.fulfilledCapacity;
    const shown = `fulfilled ${fulfilled}/${targetCapacity} (${now.state}${now.activityStatus ? `, ${now.activityStatus}` : ''})`;
    if (shown !== lastShown) reporter.line(`  [${PHASE_LABELS.capacity}] ${shown}`);
    lastShown = shown;
    return fulfilled >= targetCapacity ? { done: true, value: undefined } : { done: false };
  }, poll);
  if (!capacity.done) {
    const history = await fleetHistory(ec2, target.fleetId, new Date(started - 60_000));
    const events = !history.available
      ? `fleet history unavailable (${history.reason})`
      : history.events.length > 0
        ? `fleet history:\n  ${history.events.join('\n  ')}`
        : 'no error or information events in the fleet history';
    throw new OpsError(
      `No Spot capacity: the fleet stayed at fulfilled ${fulfilled} of target ${targetCapacity} for ${formatDuration(deps.now() - started)} ` +
        `(phase ${PHASE_LABELS.capacity} did not finish); ${events}. ` +
        `Try again later or add instance types to gpu.instanceTypes; the target stays ${targetCapacity} until: npm run ops -- gpu stop --env ${target.config.envName}`,
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
  }, poll);
  if (!running.done) throw timedOut('running', lastShown);
  const up = running.value;
  result.instances = up.map((i) => i.instanceId);
  finishPhase('running', up.map((i) => `${i.instanceId} (${i.instanceType}, ${i.availabilityZone ?? '?'})`).join(', '));

  // Phase 3: ComfyUI is ready. The security group admits only the VPS, so by default the box
  // says so itself: comfyui-ready.service adds `ready` to its boot-phases tag once GET
  // /system_stats answers there. --comfyui-url probes a URL instead (an SSM port forward).
  result.comfyUiUrls = options.comfyUiUrl
    ? [options.comfyUiUrl]
    : up.flatMap((i) => (i.publicIp ? [comfyUiUrl(i.publicIp, target.comfyUiPort) as string] : []));
  const ready = options.comfyUiUrl ? await probeUntilReady(options.comfyUiUrl, poll, reporter) : await bootTagsUntilReady(ec2, up, poll, reporter);
  result.bootPhases = ready.phases;
  if (!ready.done) throw timedOut('comfyui', ready.last);
  finishPhase('comfyui', options.comfyUiUrl ?? Object.entries(ready.phases).map(([id, p]) => `${id} (${formatBootPhases(p)} after boot)`).join(', '));

  const total = deps.now() - started;
  reporter.line(`ComfyUI is ready after ${formatDuration(total)}${result.comfyUiUrls.length > 0 ? `: ${result.comfyUiUrls.join(', ')}` : ''}`);
  return { ...result, seconds: seconds(total) };
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
