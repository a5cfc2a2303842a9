/**
 * Custom CloudWatch metrics a running GPU host publishes. They do not appear in any template
 * (the host sends them), so the estimate counts them from here; a test keeps this list in step
 * with assets/user-data (idle-watcher.sh's put_metric calls, install.sh's nvidia_gpu measurements).
 */

/** Published by the idle watcher in `<App>/Gpu` with the Environment dimension. */
export const IDLE_WATCHER_METRICS = ['IdleMinutes', 'IdleShutdownActions', 'IdleShutdownFailures', 'IdleSignalErrors'] as const;

/** Published only while `gpu autostop` overrides gpu.idleMinutes, so the estimate (of the config) leaves it out. */
export const IDLE_WATCHER_OVERRIDE_METRICS = ['IdleThresholdMinutes'] as const;

/** The CloudWatch agent's nvidia_gpu measurements, published as `nvidia_smi_<measurement>` in CWAgent. */
export const NVIDIA_GPU_MEASUREMENTS = [
  'utilization_gpu',
  'utilization_memory',
  'memory_used',
  'memory_total',
  'temperature_gpu',
  'power_draw',
] as const;

export const GPU_HOST_CUSTOM_METRICS: readonly string[] = [
  ...IDLE_WATCHER_METRICS,
  ...NVIDIA_GPU_MEASUREMENTS.map((m) => `nvidia_smi_${m}`),
];
