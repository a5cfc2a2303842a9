import type { EnvironmentConfig } from '../config/load';
import { gpuControlFunctionName } from '../gpu-control-names';
import type { VpsBundleSettings } from './bundle';

/** The rendering settings of an environment's VPS bundle, taken from its config. */
export function bundleSettingsFor(config: EnvironmentConfig): VpsBundleSettings {
  const gateway = config.vps.gateway;
  return {
    appName: config.appName,
    envName: config.envName,
    hostnames: { ...config.vps.hostnames },
    letsEncryptEmail: config.vps.letsEncryptEmail,
    gateway: {
      controlFunctionName: gpuControlFunctionName(config),
      region: config.region,
      maxQueue: gateway.maxQueue,
      holdTimeoutSeconds: gateway.holdTimeoutMinutes * 60,
      promptsPerInstance: gateway.promptsPerInstance,
      maxAttempts: gateway.maxAttempts,
      outputCacheMb: gateway.outputCacheMb,
      ...(gateway.fallbackComfyuiUrl ? { fallbackComfyuiUrl: gateway.fallbackComfyuiUrl } : {}),
    },
  };
}
