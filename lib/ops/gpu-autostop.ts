import { GetParameterCommand, ParameterType, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { EnvironmentConfig } from '../config/load';
import { AUTO_STOP_ALLOWED, AUTO_STOP_DEFAULT, autoStopParameterName, parseAutoStopValue } from '../gpu-auto-stop-names';
import type { Reporter } from './context';
import { ExitCode, OpsError, isAwsError } from './errors';
import { deployHint } from './stack-outputs';

/** The environment's idle threshold as the boxes' idle watchers apply it (assets/user-data/idle-watcher.sh). */
export interface AutoStopSetting {
  readonly parameter: string;
  /** The parameter's value; null when it does not exist. */
  readonly value: string | null;
  /** Idle minutes after which a box leaves its fleet. */
  readonly thresholdMinutes: number;
  /** Where the threshold comes from: the parameter's number, or the config (`default`, missing, not allowed). */
  readonly source: 'parameter' | 'gpu.idleMinutes';
  /** Why the parameter does not set it although it holds something else than `default`; null otherwise. */
  readonly note: string | null;
}

/** Reads the parameter and applies the watcher's rule; an error other than "not found" is thrown. */
export async function readAutoStop(config: EnvironmentConfig, ssm: SSMClient): Promise<AutoStopSetting> {
  const parameter = autoStopParameterName(config);
  const fallback = { parameter, thresholdMinutes: config.gpu.idleMinutes, source: 'gpu.idleMinutes' as const };
  let value: string;
  try {
    value = (await ssm.send(new GetParameterCommand({ Name: parameter }))).Parameter?.Value ?? '';
  } catch (error) {
    if (!isAwsError(error, 'ParameterNotFound')) throw error;
    return { ...fallback, value: null, note: `${parameter} does not exist (a Gpu stack deployed before gpu autostop): redeploy it with ${deployHint(config)}` };
  }
  const minutes = parseAutoStopValue(value);
  if (minutes === null) return { ...fallback, value, note: `${parameter} = ${JSON.stringify(value)} is not allowed (${AUTO_STOP_ALLOWED}); the boxes ignore it` };
  if (minutes === AUTO_STOP_DEFAULT) return { ...fallback, value, note: null };
  return { parameter, value, thresholdMinutes: minutes, source: 'parameter', note: null };
}

/** `30 idle minutes (set by gpu autostop)`, `5 idle minutes (gpu.idleMinutes)`. */
export function describeAutoStop(setting: AutoStopSetting): string {
  return `${setting.thresholdMinutes} idle minutes (${setting.source === 'parameter' ? 'set by gpu autostop' : 'gpu.idleMinutes'})`;
}

/** The `gpu autostop --json` document. */
export interface AutoStopChange {
  readonly env: string;
  readonly parameter: string;
  readonly previous: AutoStopSetting;
  readonly current: AutoStopSetting;
  readonly changed: boolean;
}

/**
 * Writes `value` (already checked: 1..1440 or `default`). Only an existing parameter is written:
 * one this command created would make the next deploy fail, as CloudFormation cannot create a
 * parameter whose name is taken.
 */
export async function setAutoStop(config: EnvironmentConfig, ssm: SSMClient, value: string, reporter: Reporter): Promise<AutoStopChange> {
  const previous = await readAutoStop(config, ssm);
  if (previous.value === null) throw new OpsError(`Cannot set the auto-stop of ${config.envName}: ${previous.note}`, ExitCode.notDeployed);
  const changed = previous.value !== value;
  if (changed) await ssm.send(new PutParameterCommand({ Name: previous.parameter, Value: value, Type: ParameterType.STRING, Overwrite: true }));
  const current = changed ? await readAutoStop(config, ssm) : previous;

  const shown = (s: AutoStopSetting): string =>
    s.source === 'parameter' ? `${s.thresholdMinutes} idle minutes` : `${s.value} (gpu.idleMinutes = ${s.thresholdMinutes} idle minutes)`;
  reporter.line(
    changed
      ? `Auto-stop of ${config.envName}: ${shown(previous)} -> ${shown(current)}, in ${current.parameter}.`
      : `Auto-stop of ${config.envName} is already ${shown(current)}, in ${current.parameter}.`,
  );
  reporter.line(
    `Each GPU box reads it at its next idle check (every minute, also after a reboot and on new boxes); ` +
      `a box idle ${current.thresholdMinutes} minutes or more by then leaves its fleet.`,
  );
  // No alarm to warn of: the box publishes the threshold it uses, and WatcherFailed compares with twice it (lib/gpu-alarms.ts).
  return { env: config.envName, parameter: current.parameter, previous, current, changed };
}
