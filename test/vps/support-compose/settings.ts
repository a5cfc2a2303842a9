import type { GatewayBundleSettings, VpsBundleSettings } from '../../../lib/vps/bundle';

/** The gateway settings of dev with the config's defaults. */
export const GATEWAY_DEFAULTS: GatewayBundleSettings = {
  controlFunctionName: 'AiAssets-dev-gpu-control',
  region: 'us-east-1',
  maxQueue: 100,
  holdTimeoutSeconds: 900,
  promptsPerInstance: 4,
  maxAttempts: 3,
  outputCacheMb: 2000,
};

/** The bundle settings the real-tool tests render: dev, with and without the gateway's public site. */
export const WITH_GATEWAY: VpsBundleSettings = {
  appName: 'AiAssets',
  envName: 'dev',
  hostnames: { n8n: 'n8n.dev.example.com', sim: 'sim.dev.example.com', gateway: 'gpu.dev.example.com' },
  letsEncryptEmail: 'ops@example.com',
  gateway: GATEWAY_DEFAULTS,
};

export const NO_GATEWAY: VpsBundleSettings = {
  ...WITH_GATEWAY,
  hostnames: { n8n: 'n8n.dev.example.com', sim: 'sim.dev.example.com' },
};
