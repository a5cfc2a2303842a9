import type { EnvironmentConfig } from '../config/load';
import type { VpsBundleSettings } from './bundle';

/** The rendering settings of an environment's VPS bundle, taken from its config. */
export function bundleSettingsFor(config: EnvironmentConfig): VpsBundleSettings {
  return {
    appName: config.appName,
    envName: config.envName,
    hostnames: { ...config.vps.hostnames },
    letsEncryptEmail: config.vps.letsEncryptEmail,
    mcpGatewayImage: config.vps.mcpGatewayImage,
  };
}
