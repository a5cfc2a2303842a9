/**
 * Names shared by the control function, its construct (lib/gpu-control.ts) and the ops commands,
 * so the three cannot drift. The function's own name and the gateway's credential secret are in
 * lib/gpu-control-names.ts (the Vps stack needs them too).
 */

type Names = { readonly appName: string; readonly envName: string };

/** CloudWatch namespace of the gateway's counters and of the GPU-time ledger (dimension Environment). */
export function gatewayMetricNamespace(appName: string): string {
  return `${appName}/Gateway`;
}

/** The SSM String parameter holding the gateway's SSH public key (`unset` until it registers one). */
export function linkKeyParameterName(config: Names): string {
  return `/${config.appName}/${config.envName}/gpu/link-public-key`;
}

/** The SSM String parameter an operator sets to the month (`YYYY-MM`) to allow waking past the allowance. */
export function budgetOverrideParameterName(config: Names): string {
  return `/${config.appName}/${config.envName}/gpu/budget-override`;
}

/** Initial values of the two parameters (SSM String parameters cannot be empty). */
export const LINK_KEY_UNSET = 'unset';
export const BUDGET_OVERRIDE_NONE = 'none';

/**
 * Tag the ledger writes on an instance once its run time is recorded: `<seconds>@<launch epoch s>`,
 * the seconds recorded for the run that started at that launch time (a stopped and restarted
 * instance has a new launch time, and so a new run to record).
 */
export const BILLED_TAG = 'comfyui:billed';

/** EC2 tags every Spot Fleet instance with its request id. */
export const FLEET_TAG = 'aws:ec2spot:fleet-request-id';

/** The gateway's metrics (report action) and the ledger's, by name. */
export const GATEWAY_METRICS = {
  queueDepth: 'QueueDepth',
  running: 'Running',
  wakes: 'Wakes',
  jobsCompleted: 'JobsCompleted',
  jobsFailed: 'JobsFailed',
  jobsResubmitted: 'JobsResubmitted',
  wakeToReadySeconds: 'WakeToReadySeconds',
  /** Instance run time recorded when an instance stops or terminates (dimensions Environment, InstanceType). */
  gpuSeconds: 'GpuSeconds',
  /** The budget as the function computed it at each report, for the dashboard. */
  allowanceUsd: 'GpuAllowanceUsd',
  allowanceUsedUsd: 'GpuAllowanceUsedUsd',
} as const;

/** Custom metrics the gateway path publishes: every GATEWAY_METRICS name, GpuSeconds once per instance type. */
export function gatewayCustomMetricCount(instanceTypes: number): number {
  return Object.keys(GATEWAY_METRICS).length - 1 + instanceTypes;
}
