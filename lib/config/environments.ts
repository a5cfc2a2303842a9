import type { EnvironmentInput } from './schema';

/**
 * Every environment of the app, in one place. Only values that differ from the
 * schema's defaults are written here; the README's config table (`npm run docs`) lists all fields.
 *
 * The addresses below are documentation placeholders (RFC 5737 / example.com)
 * and the host-key fingerprint matches no server: replace them with your VPS,
 * its pinned fingerprint and your mailbox before the first deploy.
 */
/** Well-formed but matches no host: a deploy with it is refused before any byte is written. */
const PLACEHOLDER_HOST_KEY = 'SHA256:REPLACEwithTheVpsHostKeyFingerprint00000000';

export const environments = {
  dev: {
    removalPolicy: 'destroy',
    alertEmail: 'ops@example.com',
    monthlyBudgetUsd: 50,
    network: { vpcCidr: '10.40.0.0/16', comfyuiIngressCidr: '203.0.113.10/32' },
    vps: { host: 'vps-dev.example.com', hostKeySha256: PLACEHOLDER_HOST_KEY, hostnames: { n8n: 'n8n.dev.example.com', sim: 'sim.dev.example.com', gateway: 'gateway.dev.example.com' } },
  },
  staging: {
    removalPolicy: 'destroy',
    alertEmail: 'ops@example.com',
    monthlyBudgetUsd: 50,
    gpu: { instanceTypes: ['g4dn.xlarge', 'g5.xlarge'] },
    network: { vpcCidr: '10.41.0.0/16', comfyuiIngressCidr: '203.0.113.20/32' },
    vps: { host: 'vps-staging.example.com', hostKeySha256: PLACEHOLDER_HOST_KEY, hostnames: { n8n: 'n8n.staging.example.com', sim: 'sim.staging.example.com', gateway: 'gateway.staging.example.com' } },
  },
  prod: {
    removalPolicy: 'retain',
    alertEmail: 'ops@example.com',
    monthlyBudgetUsd: 50,
    gpu: { instanceTypes: ['g4dn.xlarge', 'g5.xlarge', 'g6.xlarge'] },
    storage: { noncurrentExpirationDays: 187 },
    network: { vpcCidr: '10.42.0.0/16', comfyuiIngressCidr: '203.0.113.30/32' },
    vps: { host: 'vps.example.com', hostKeySha256: PLACEHOLDER_HOST_KEY, hostnames: { n8n: 'n8n.example.com', sim: 'sim.example.com', gateway: 'gateway.example.com' } },
  },
} as const satisfies Record<string, EnvironmentInput>;

export type EnvironmentName = keyof typeof environments;
export const ENVIRONMENT_NAMES = Object.keys(environments) as EnvironmentName[];
