import { stackName } from '../app';
import type { EnvironmentConfig } from '../config/load';
import type { AwsClients } from './aws';
import { requireOutput, requireStack } from './stack-outputs';

/** What the gpu commands need, all read from the `<App>-<env>-Gpu` stack outputs. */
export interface GpuTarget {
  readonly config: EnvironmentConfig;
  readonly clients: AwsClients;
  readonly stackName: string;
  readonly fleetId: string;
  readonly comfyUiPort: string;
  readonly metricNamespace: string;
  readonly hostLogGroup: string | null;
  /** `output SpotFleetRequestId of stack X`, for messages. */
  readonly fleetSource: string;
}

export async function loadGpuTarget(config: EnvironmentConfig, clients: AwsClients): Promise<GpuTarget> {
  const stack = await requireStack(clients.cloudFormation, config, 'Gpu');
  return {
    config,
    clients,
    stackName: stack.name,
    fleetId: requireOutput(stack, 'SpotFleetRequestId', config),
    comfyUiPort: requireOutput(stack, 'ComfyUiPort', config),
    metricNamespace: requireOutput(stack, 'GpuMetricNamespace', config),
    hostLogGroup: stack.outputs.HostLogGroup ?? null,
    fleetSource: `output SpotFleetRequestId of stack ${stackName(config, 'Gpu')}`,
  };
}
