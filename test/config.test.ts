import { ENVIRONMENT_NAMES, environments } from '../lib/config/environments';
import { ConfigError, loadEnvironment, validateAcrossEnvironments, validateEnvironment } from '../lib/config/load';
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
    expect(config.gpu.idleMinutes).toBe(5);
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
    expectRejected(devWith((c) => (c.vps.host = host)), 'vps.host', JSON.stringify(host), /a lower-case DNS host name/));

  test('a public host name', () =>
    expectRejected(devWith((c) => (c.vps.hostnames.n8n = 'n8n..example.com')), 'vps.hostnames.n8n', '"n8n..example.com"', /a lower-case DNS name/));

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

  test('the gateway image is no longer configurable (the gateway is ours, bundled into the release): an old config says so', () => {
    expect(devWith((c) => (c.vps = { ...c.vps, mcpGatewayImage: 'example/gateway:1.2.3' } as never))).toThrow(/vps: unknown field\(s\) "mcpGatewayImage"/);
    expect(devWith((c) => (c.vps.hostnames = { ...c.vps.hostnames, mcp: 'mcp.example.com' } as never))).toThrow(/vps\.hostnames: unknown field\(s\) "mcp"/);
  });

  test('a fallback ComfyUI endpoint that is not a plain https URL (it is written into the compose file)', () =>
    expectRejected(
      devWith((c) => (c.vps.gateway = { fallbackComfyuiUrl: 'http://comfy.example.com/?key=secret' })),
      'vps.gateway.fallbackComfyuiUrl',
      '"http://comfy.example.com/?key=secret"',
      /an https URL .*no user, query or fragment/,
    ));

  test('a gateway queue bound out of range', () =>
    expectRejected(devWith((c) => (c.vps.gateway = { maxQueue: 0 })), 'vps.gateway.maxQueue', '0', /a whole number from 1 to 1000 prompts/));

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

  test.each(['g5.99xlarge', 'g4dn.3xlarge', 'p5.xlarge'])('the GPU instance type %p, which EC2 does not have', (type) =>
    expectRejected(devWith((c) => (c.gpu = { instanceTypes: [type] })), 'gpu.instanceTypes.0', JSON.stringify(type), new RegExp(`; ${type.replace('.', '\\.')} is not an EC2 instance type`)));

  test('p3.xlarge, which neither exists nor runs the DLAMI', () =>
    expectRejected(devWith((c) => (c.gpu = { instanceTypes: ['p3.xlarge'] })), 'gpu.instanceTypes.0', '"p3.xlarge"', /not p3/));

  test('a duplicated instance type', () =>
    expectRejected(
      devWith((c) => (c.gpu = { instanceTypes: ['g5.xlarge', 'g4dn.xlarge', 'g5.xlarge'] })),
      'gpu.instanceTypes.2',
      '"g5.xlarge"',
      /an instance type not already listed \(it is instanceTypes\.0\)/,
    ));

  test.each(['us-east-9', 'mars-north-1'])('the region %p, which aws-cdk-lib does not know', (region) =>
    expectRejected(devWith((c) => (c.region = region)), 'region', JSON.stringify(region), /an AWS region code that aws-cdk-lib knows/));

  test.each(['999.1.1.1', '10.0.0.256', 'VPS.Example.com'])('the VPS host %p', (host) =>
    expectRejected(devWith((c) => (c.vps.host = host)), 'vps.host', JSON.stringify(host), /lower-case DNS host name .* octets from 0 to 255/));

  test('an IPv4 VPS host is accepted', () => expect(devWith((c) => (c.vps.host = '203.0.113.10'))().vps.host).toBe('203.0.113.10'));

  test.each(['203.0.113.10', 'N8N.example.com', 'n8n.example.123'])('the public host name %p (no certificate for an address, lower case only)', (host) =>
    expectRejected(devWith((c) => (c.vps.hostnames.n8n = host)), 'vps.hostnames.n8n', JSON.stringify(host), /a lower-case DNS name .*no certificate for IP addresses/));

  test.each(['8.8.0.0/16', '172.32.0.0/16', '100.64.0.0/16'])('a VPC CIDR %p outside the RFC 1918 ranges', (cidr) =>
    expectRejected(devWith((c) => (c.network.vpcCidr = cidr)), 'network.vpcCidr', JSON.stringify(cidr), /an RFC 1918 private IPv4 CIDR block/));

  test.each(['/', '/opt/../etc', '/opt/./x', '/opt/'])('the base directory %p', (dir) =>
    expectRejected(devWith((c) => (c.vps.baseDir = dir)), 'vps.baseDir', JSON.stringify(dir), /an absolute directory below \/ .* without \. or \.\. parts/));

  test('root as the deploy user', () =>
    expectRejected(devWith((c) => (c.vps.deployUser = 'root')), 'vps.deployUser', '"root"', /other than root/));

  test.each(['', ' ', '  -  '])('the blank cost center %p', (value) =>
    expectRejected(devWith((c) => (c.costCenter = value)), 'costCenter', JSON.stringify(value), /at least one letter or digit/));

  test.each([
    [NaN, 'NaN'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
  ])('a budget of %p is shown as %s, not null', (budget, shown) =>
    expectRejected(devWith((c) => (c.monthlyBudgetUsd = budget)), 'monthlyBudgetUsd', shown, /greater than 0/));

  test('n8n and Sim on the same host name', () =>
    expectRejected(devWith((c) => (c.vps.hostnames.sim = c.vps.hostnames.n8n)), 'vps.hostnames.sim', '"n8n.dev.example.com"', /a host name different from hostnames\.n8n/));

  test('the gateway on the same host name as Sim', () =>
    expectRejected(devWith((c) => (c.vps.hostnames.gateway = c.vps.hostnames.sim)), 'vps.hostnames.gateway', '"sim.dev.example.com"', /a host name different from hostnames\.sim/));

  test.each(['ops@exämple.com', '"ops"@example.com', 'op s@example.com'])('the e-mail %p (written into YAML and shell on the VPS)', (address) =>
    expectRejected(devWith((c) => (c.vps.letsEncryptEmail = address)), 'vps.letsEncryptEmail', JSON.stringify(address), /letters, digits and \. _ % \+ - before the @/));

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

describe('clashes between environments are reported once, naming both environments', () => {
  function expectClash(change: (all: any) => void, line: string) {
    const all = structuredClone(environments) as any;
    change(all);
    let message = '';
    try {
      validateAcrossEnvironments(all);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toContain('Invalid configuration across environments:');
    const lines = message.split('\n').filter((l) => l.startsWith('  - '));
    expect(lines).toEqual([`  - ${line}`]);
  }

  test('the shipped environments do not clash', () => expect(() => validateAcrossEnvironments(environments)).not.toThrow());

  test('the same VPS host in two environments', () =>
    expectClash((all) => (all.prod.vps.host = all.dev.vps.host), 'prod.vps.host = "vps-dev.example.com": allowed is a value no other environment uses (dev.vps.host has it)'));

  test('the same public host name in two environments', () =>
    expectClash(
      (all) => (all.staging.vps.hostnames.sim = all.dev.vps.hostnames.sim),
      'staging.vps.hostnames.sim = "sim.dev.example.com": allowed is a value no other environment uses (dev.vps.hostnames.sim has it)',
    ));

  test('overlapping VPC CIDRs', () =>
    expectClash(
      (all) => (all.prod.network.vpcCidr = '10.40.128.0/17'),
      'prod.network.vpcCidr = "10.40.128.0/17": allowed is a CIDR block that does not overlap dev.network.vpcCidr (10.40.0.0/16)',
    ));

  test('loading any environment refuses a clash', () => {
    const all = environments as any;
    const saved = all.prod.network.vpcCidr;
    all.prod.network = { ...all.prod.network, vpcCidr: all.dev.network.vpcCidr };
    try {
      expect(() => loadEnvironment('dev')).toThrow(/prod\.network\.vpcCidr = "10\.40\.0\.0\/16": allowed is a CIDR block that does not overlap dev\.network\.vpcCidr/);
    } finally {
      all.prod.network = { ...all.prod.network, vpcCidr: saved };
    }
  });
});

describe('gpu.maxInstances (the highest capacity the gateway may set)', () => {
  test('defaults to 1 in every environment', () => {
    for (const name of ENVIRONMENT_NAMES) expect(loadEnvironment(name).gpu.maxInstances).toBe(1);
  });

  test.each([0, 9, 2.5])('%p is out of range', (max) =>
    expectRejected(devWith((c) => (c.gpu = { maxInstances: max })), 'gpu.maxInstances', String(max), /a whole number from 1 to 8 instances/));

  test('below initialCapacity: the error names both fields and both values', () =>
    expectRejected(
      devWith((c) => (c.gpu = { initialCapacity: 3, maxInstances: 2 })),
      'gpu.maxInstances',
      '2',
      /from initialCapacity \(3\) to 8: the fleet starts with initialCapacity instances, and the gateway may set no more than maxInstances/,
    ));

  test('equal to initialCapacity is accepted', () => expect(devWith((c) => (c.gpu = { initialCapacity: 2, maxInstances: 2 }))().gpu.maxInstances).toBe(2));
});
