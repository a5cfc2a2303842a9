import { ENVIRONMENT_NAMES, environments } from '../lib/config/environments';
import { ConfigError, loadEnvironment, validateEnvironment } from '../lib/config/load';
import { isCidr } from '../lib/config/rules';

/** dev's raw config with one change applied, validated as environment "dev". */
function devWith(change: (raw: any) => void) {
  const raw = structuredClone(environments.dev) as any;
  change(raw);
  return () => validateEnvironment('dev', raw);
}

/** Expects exactly one bad field, named with its value and what is allowed, in one message. */
function expectRejected(run: () => unknown, field: string, value: string, allowed: RegExp) {
  expect(run).toThrow(ConfigError);
  let message = '';
  try {
    run();
  } catch (error) {
    message = (error as Error).message;
  }
  expect(message).toContain('environment "dev"');
  const line = message.split('\n').find((l) => l.includes(`- ${field} = `));
  expect(line).toBeDefined();
  expect(line).toContain(`${field} = ${value}: allowed is `);
  expect(line).toMatch(allowed);
}

describe('environments', () => {
  test.each(ENVIRONMENT_NAMES)('%s loads with defaults applied', (name) => {
    const config = loadEnvironment(name);
    expect(config.envName).toBe(name);
    expect(config.appName).toBe('AiAssets');
    expect(config.costCenter).toBe(`AiAssets-${name}`);
    expect(config.network.azCount).toBe(2);
    expect(config.gpu.idleMinutes).toBe(15);
    expect(config.storage.infrequentAccessDays).toBe(30);
    expect(config.vps.letsEncryptEmail).toBe('ops@example.com');
    expect(config.vps.sshKeySecretName).toBe(`AiAssets/${name}/vps-ssh-key`);
    expect(config.costProfile.gpuHoursPerDay).toBe(8);
  });

  test('dev and staging are disposable, prod is retained', () => {
    expect(loadEnvironment('dev').removalPolicy).toBe('destroy');
    expect(loadEnvironment('staging').removalPolicy).toBe('destroy');
    expect(loadEnvironment('prod').removalPolicy).toBe('retain');
  });

  test('an unknown environment names the allowed ones', () => {
    expect(() => loadEnvironment('qa')).toThrow('Unknown environment "qa" (from -c env=qa); allowed: dev, staging, prod.');
  });
});

describe('validation rejects bad input with field, value and what is allowed', () => {
  test('a non-GPU instance type', () =>
    expectRejected(devWith((c) => (c.gpu = { instanceTypes: ['t3.large'] })), 'gpu.instanceTypes.0', '"t3.large"', /GPU instance type of family g4dn/));

  test('an ARM GPU type the x86 DLAMI cannot boot', () =>
    expectRejected(devWith((c) => (c.gpu = { instanceTypes: ['g5g.xlarge'] })), 'gpu.instanceTypes.0', '"g5g.xlarge"', /x86_64 NVIDIA/));

  test('a p3 (V100), which the Base OSS Nvidia Driver DLAMI does not support, with the reason', () => {
    expectRejected(
      devWith((c) => (c.gpu = { instanceTypes: ['g4dn.xlarge', 'p3.2xlarge'] })),
      'gpu.instanceTypes.1',
      '"p3.2xlarge"',
      /family g4dn, g5, g6, g6e, gr6, p4d, p5 .*; not p3: its NVIDIA V100 .* needs a Turing \(g4dn\) or newer GPU/,
    );
  });

  test.each([4, 241, 7.5])('idle minutes %p', (minutes) =>
    expectRejected(devWith((c) => (c.gpu = { idleMinutes: minutes })), 'gpu.idleMinutes', String(minutes), /a whole number from 5 to 240 minutes/));

  test.each([0, -10])('a budget of %p', (budget) =>
    expectRejected(devWith((c) => (c.monthlyBudgetUsd = budget)), 'monthlyBudgetUsd', String(budget), /greater than 0/));

  test.each(['ops', 'ops@example', 'ops @example.com'])('the e-mail %p', (address) =>
    expectRejected(devWith((c) => (c.alertEmail = address)), 'alertEmail', JSON.stringify(address), /an e-mail address/));

  test.each(['203.0.113.10', '203.0.113.10/24', '203.0.113.300/32', '0.0.0.0/0'])('the ComfyUI ingress CIDR %p', (cidr) =>
    expectRejected(devWith((c) => (c.network.comfyuiIngressCidr = cidr)), 'network.comfyuiIngressCidr', JSON.stringify(cidr), /prefix from \/32 to \/32/));

  test('a VPC CIDR with host bits set', () =>
    expectRejected(devWith((c) => (c.network.vpcCidr = '10.40.1.0/16')), 'network.vpcCidr', '"10.40.1.0/16"', /no host bits set/));

  test.each(['-vps.example.com', 'vps_1.example.com', 'localhost'])('the host name %p', (host) =>
    expectRejected(devWith((c) => (c.vps.host = host)), 'vps.host', JSON.stringify(host), /a DNS host name/));

  test('a public host name', () =>
    expectRejected(devWith((c) => (c.vps.hostnames.n8n = 'n8n..example.com')), 'vps.hostnames.n8n', '"n8n..example.com"', /a DNS host name/));

  test('an MCP gateway image that is not pinned', () =>
    expectRejected(devWith((c) => (c.vps.mcpGatewayImage = 'ghcr.io/acme/mcp-gateway')), 'vps.mcpGatewayImage', '"ghcr.io/acme/mcp-gateway"', /pinned to a version/));

  test('GPU hours a day beyond 24', () =>
    expectRejected(devWith((c) => (c.costProfile = { gpuHoursPerDay: 25 })), 'costProfile.gpuHoursPerDay', '25', /from 0 to 24/));

  test('a converge timeout the gate and a rollback could not both use within one Lambda run', () =>
    expectRejected(devWith((c) => (c.vps = { ...c.vps, convergeTimeoutSeconds: 300 })), 'vps.convergeTimeoutSeconds', '300', /a whole number from 60 to 240 seconds/));

  test('GPU days a month beyond the 30.4-day month the estimate prices', () =>
    expectRejected(devWith((c) => (c.costProfile = { gpuDaysPerMonth: 31 })), 'costProfile.gpuDaysPerMonth', '31', /a number of days from 0 to 30.4/));

  test('a transition to STANDARD_IA before 30 days', () =>
    expectRejected(devWith((c) => (c.storage = { infrequentAccessDays: 10 })), 'storage.infrequentAccessDays', '10', /from 30 to 3650 days/));

  test('an archive transition less than 30 days after STANDARD_IA', () =>
    expectRejected(devWith((c) => (c.storage = { infrequentAccessDays: 45, generatedArchiveDays: 60 })), 'storage.generatedArchiveDays', '60', /at least infrequentAccessDays \+ 30 \(75\)/));

  test('noncurrent versions expiring before they are archived', () =>
    expectRejected(devWith((c) => (c.storage = { noncurrentArchiveDays: 30, noncurrentExpirationDays: 30 })), 'storage.noncurrentExpirationDays', '30', /greater than noncurrentArchiveDays \(30\)/));

  test('a day count that is not a whole number', () =>
    expectRejected(devWith((c) => (c.storage = { abortMultipartDays: 0.5 })), 'storage.abortMultipartDays', '0.5', /a whole number from 1 to 365 days/));

  test('an image tag that is not pinned', () =>
    expectRejected(
      devWith((c) => (c.vps = { ...c.vps!, mcpGatewayImage: 'example/gateway:latest', hostnames: { ...c.vps!.hostnames!, mcp: 'mcp.example.com' } })),
      'vps.mcpGatewayImage',
      '"example/gateway:latest"',
      /never latest/,
    ));

  test('the ComfyUI image is no longer configurable (it is built from assets/comfyui/, pinned there): an old config says so', () => {
    const run = devWith((c) => (c.gpu = { comfyuiImage: 'yanwk/comfyui-boot:cu124-slim-20241021' } as never));
    expect(run).toThrow(/gpu: unknown field\(s\) "comfyuiImage"/);
  });

  test('a missing required field', () =>
    expectRejected(devWith((c) => delete c.alertEmail), 'alertEmail', 'missing', /an e-mail address/));

  test('a misspelt field is not silently ignored', () => {
    const run = devWith((c) => (c.gpu = { idelMinutes: 20 }));
    expect(run).toThrow(/gpu: unknown field\(s\) "idelMinutes"/);
  });

  test('every bad field is listed in the one message', () => {
    const run = devWith((c) => {
      c.monthlyBudgetUsd = 0;
      c.alertEmail = 'nobody';
    });
    expect(run).toThrow(/alertEmail = "nobody"[\s\S]*monthlyBudgetUsd = 0/);
  });
});

describe('isCidr', () => {
  test.each([
    ['10.0.0.0/16', 16, 24, true],
    ['10.0.0.0/8', 16, 24, false],
    ['10.0.0.1/32', 32, 32, true],
    ['256.0.0.0/16', 16, 24, false],
    ['10.0.0/16', 16, 24, false],
  ])('%s within /%i-/%i is %p', (cidr, min, max, ok) => expect(isCidr(cidr as string, min as number, max as number)).toBe(ok));
});

test('an AZ count outside 2..3', () =>
  expectRejected(devWith((c) => (c.network.azCount = 4)), 'network.azCount', '4', /from 2 to 3 availability zones/));
