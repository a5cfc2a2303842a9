import type { EnvironmentInput } from './schema';

/**
 * Every environment of the app, in one place. Only values that differ from the
 * schema's defaults are written here; `npm run config:table` lists all fields.
 *
 * The addresses below are documentation placeholders (RFC 5737 / example.com):
 * replace them with your VPS and mailbox before the first deploy.
 */
export const environments = {
  dev: {
    removalPolicy: 'destroy',
    alertEmail: 'ops@example.com',
    monthlyBudgetUsd: 50,
    network: { vpcCidr: '10.40.0.0/16', comfyuiIngressCidr: '203.0.113.10/32' },
    vps: { host: 'vps-dev.example.com', publicHostnames: ['n8n.dev.example.com', 'sim.dev.example.com'] },
  },
  staging: {
    removalPolicy: 'destroy',
    alertEmail: 'ops@example.com',
    monthlyBudgetUsd: 50,
    gpu: { instanceTypes: ['g4dn.xlarge', 'g5.xlarge'] },
    network: { vpcCidr: '10.41.0.0/16', comfyuiIngressCidr: '203.0.113.20/32' },
    vps: { host: 'vps-staging.example.com', publicHostnames: ['n8n.staging.example.com', 'sim.staging.example.com'] },
  },
  prod: {
    removalPolicy: 'retain',
    alertEmail: 'ops@example.com',
    monthlyBudgetUsd: 50,
    gpu: { instanceTypes: ['g4dn.xlarge', 'g5.xlarge', 'g6.xlarge'] },
    storage: { noncurrentExpirationDays: 187 },
    network: { vpcCidr: '10.42.0.0/16', comfyuiIngressCidr: '203.0.113.30/32' },
    vps: { host: 'vps.example.com', publicHostnames: ['n8n.example.com', 'sim.example.com'] },
  },
} as const satisfies Record<string, EnvironmentInput>;

export type EnvironmentName = keyof typeof environments;
export const ENVIRONMENT_NAMES = Object.keys(environments) as EnvironmentName[];
