import type { VpsBundleSettings } from '../../../lib/vps/bundle';

/** The bundle settings the real-tool tests render: dev, with and without the MCP gateway. */
export const WITH_GATEWAY: VpsBundleSettings = {
  appName: 'AiAssets',
  envName: 'dev',
  hostnames: { n8n: 'n8n.dev.example.com', sim: 'sim.dev.example.com', mcp: 'mcp.dev.example.com' },
  letsEncryptEmail: 'ops@example.com',
  mcpGatewayImage: 'ghcr.io/example/mcp-gateway:1.4.2',
};

export const NO_GATEWAY: VpsBundleSettings = {
  ...WITH_GATEWAY,
  hostnames: { n8n: 'n8n.dev.example.com', sim: 'sim.dev.example.com' },
  mcpGatewayImage: undefined,
};
