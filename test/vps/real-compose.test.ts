import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTools, TOOLS } from './support-compose/real-tools';
import { type StackOnDisk, stackOnDisk } from './support-compose/stack-on-disk';
import { NO_GATEWAY, WITH_GATEWAY } from './support-compose/settings';

/**
 * The rendered bundles through a real Compose v2: `docker compose config`
 * (needs no daemon) parses, validates against the compose-spec schema and
 * interpolates .env the way `up` will on the VPS. Debian 13's docker-compose
 * 2.26.1 (compose-go 2.4.8); the VPS gets the newest plugin from Docker's
 * repository (provision.sh), so a file this version accepts is accepted there.
 */

beforeAll(() => requireTools('compose'));

/** `docker compose config` in the release folder, .env written beside the file as the deployer does (0600). */
function config(stack: StackOnDisk, secrets: Record<string, string> | null): { status: number | null; stdout: string; stderr: string } {
  const env = path.join(stack.dir, '.env');
  if (secrets) fs.writeFileSync(env, Object.entries(secrets).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
  else fs.rmSync(env, { force: true });
  const run = spawnSync(TOOLS.compose, ['config', '--format', 'json'], { cwd: stack.dir, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH ?? '', HOME: stack.dir } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

interface Resolved {
  name: string;
  services: Record<string, { environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; healthcheck?: { test: string[] } }>;
}

describe.each([
  ['with the gateway\'s public site', WITH_GATEWAY],
  ['without the gateway\'s public site', NO_GATEWAY],
])('docker compose config on the bundle %s', (_label, settings) => {
  const stack = stackOnDisk(settings);

  test('accepts the file and resolves every secret and host name', () => {
    const run = config(stack, stack.secrets);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const resolved = JSON.parse(run.stdout) as Resolved;
    expect(resolved.name).toBe('aiassets-dev');
    const n8n = resolved.services.n8n.environment ?? {};
    expect([n8n.N8N_HOST, n8n.WEBHOOK_URL]).toEqual(['n8n.dev.example.com', 'https://n8n.dev.example.com/']);
    expect(resolved.services['sim-cron'].environment?.CRON_SECRET).toBe(stack.secrets.SIM_CRON_SECRET);
    expect(resolved.services.sim.environment?.REDIS_URL).toBe(`redis://default:${stack.secrets.REDIS_PASSWORD}@redis:6379/1`);
    expect(resolved.services.sim.depends_on?.['sim-migrations']).toMatchObject({ condition: 'service_completed_successfully' });
    expect(resolved.services.gateway.environment?.REDIS_URL).toBe(`redis://default:${stack.secrets.REDIS_PASSWORD}@redis:6379/2`);
    expect(resolved.services.gateway.environment?.AWS_ACCESS_KEY_ID).toBe(stack.secrets.GATEWAY_AWS_ACCESS_KEY_ID);
    expect(resolved.services.nginx.environment?.GATEWAY_TOKEN).toBe(settings.hostnames.gateway ? stack.secrets.GATEWAY_TOKEN : undefined);
    expect(run.stdout).not.toMatch(/\{\{|\$\{/);
  });

  test('refuses to start without .env, naming the missing variable', () => {
    const run = config(stack, null);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/required variable \w+ is missing a value: set \w+ in \.env/);
  });
});
