import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadEnvironment, type EnvironmentConfig } from '../../lib/config/load';
import type { AwsClients } from '../../lib/ops/aws';
import { runCli } from '../../lib/ops/cli';
import { parseDnsServer } from '../../lib/ops/commands/doctor';
import type { OpsDeps } from '../../lib/ops/context';
import { BOOTSTRAP_VERSION_PARAMETER, MIN_BOOTSTRAP_VERSION, TOOLKIT_STACK } from '../../lib/ops/doctor/bootstrap';
import { ACTIVATE_TAG } from '../../lib/ops/doctor/cost-allocation-tag';
import { runChecks } from '../../lib/ops/doctor/runner';
import { SPOT_QUOTAS, spotQuotaCheck } from '../../lib/ops/doctor/spot-quota';
import { SPOT_SERVICE_LINKED_ROLES } from '../../lib/ops/doctor/spot-roles';
import type { CheckContext, CheckResult, DoctorCheck } from '../../lib/ops/doctor/types';
import { ISOLATED_AWS_ENV } from '../support/child';
import { startMoto, type MotoServer } from '../support/moto';
import { synthesized } from '../support/synth';
import { sshdVpsFields, startSshd, type SshdFixture } from '../vps/support-ssh/sshd';
import { startDnsmasq, type Dnsmasq } from './doctor-dnsmasq';
import { quotaAnswer, startAccountStandIns, tagsAnswer, type AccountStandIns } from './doctor-stand-ins';
import { cliEnv, inProcessDeps } from './fixtures';

// `doctor` in-process against real services on loopback: moto (STS, CloudFormation, SSM, IAM,
// Secrets Manager, CloudWatch, EC2), an OpenSSH server with its own host key, dnsmasq for the
// host names, and stand-ins only for Service Quotas (EC2) and cost allocation tags, which moto
// lacks (doctor-stand-ins.ts). The account clients doctor creates itself read the standard SDK
// environment, so this file points AWS_ENDPOINT_URL (and the per-service overrides) at them.

const DOMAIN = 'doctor.test';
const G_QUOTA = SPOT_QUOTAS[0];
const ROOT = path.resolve(__dirname, '..', '..');
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

let moto: MotoServer;
let sshd: SshdFixture;
let dnsmasq: Dnsmasq;
let standIns: AccountStandIns;
let home: string;
const savedEnv = { ...process.env };

/** The SDK settings of the test process while doctor runs (its account clients read them). */
function sdkEnv(): Record<string, string> {
  return {
    ...ISOLATED_AWS_ENV,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ENDPOINT_URL_SERVICE_QUOTAS: standIns.serviceQuotas.endpoint,
    AWS_ENDPOINT_URL_COST_EXPLORER: standIns.costExplorer.endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
  };
}

beforeAll(async () => {
  [moto, sshd, standIns, dnsmasq] = await Promise.all([
    startMoto(),
    startSshd(),
    startAccountStandIns(G_QUOTA),
    startDnsmasq(DOMAIN, {
      ...Object.fromEntries(['n8n', 'sim', 'gateway'].map((n) => [`${n}.ready.${DOMAIN}`, ['127.0.0.1']])),
      [`n8n.stray.${DOMAIN}`]: ['127.0.0.2'],
      [`sim.stray.${DOMAIN}`]: ['127.0.0.1'],
      [`gateway.stray.${DOMAIN}`]: ['127.0.0.1', '::1'],
    }),
  ]);
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-doctor-'));
  Object.assign(process.env, sdkEnv());
}, 60_000);

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([moto?.stop(), sshd?.stop(), dnsmasq?.stop(), standIns?.close()]);
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

beforeEach(async () => {
  await moto.reset();
  standIns.reset();
});

const common = (region: string) => ({ region, endpoint: moto.endpoint, credentials: CREDENTIALS });

/** OpsDeps.clients against moto, in the region asked for (the fixtures' motoClients is us-east-1 only). */
function regionClients(region: string): AwsClients {
  return {
    ec2: new EC2Client(common(region)),
    cloudFormation: new CloudFormationClient(common(region)),
    cloudWatch: new CloudWatchClient(common(region)),
    s3: new S3Client({ ...common(region), forcePathStyle: true }),
    secretsManager: new SecretsManagerClient(common(region)),
  };
}

/** dev's config with the VPS at the sshd fixture and host names under `<hostPrefix>.doctor.test`. */
function configFor(envName: string, region: string, hostPrefix: string, vps: Partial<EnvironmentConfig['vps']> = {}): EnvironmentConfig {
  const base = loadEnvironment('dev');
  return {
    ...base,
    envName,
    region,
    gpu: { ...base.gpu, instanceTypes: ['g4dn.xlarge', 'g5.2xlarge'], maxInstances: 2 },
    vps: {
      ...base.vps,
      ...sshdVpsFields(sshd),
      sshKeySecretName: `AiAssets/${envName}/vps-ssh-key`,
      hostnames: { n8n: `n8n.${hostPrefix}.${DOMAIN}`, sim: `sim.${hostPrefix}.${DOMAIN}`, gateway: `gateway.${hostPrefix}.${DOMAIN}` },
      ...vps,
    },
  };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  checks: Record<string, CheckResult>;
}

/** `ops doctor --env <config.envName> --dns-server <dnsmasq> [--json] ...` in-process with the config injected. */
async function doctor(config: EnvironmentConfig, options: { json?: boolean; args?: string[]; clients?: (region: string) => AwsClients } = {}): Promise<Run> {
  const clients = options.clients ?? regionClients;
  const io = inProcessDeps(clients(config.region), cliEnv(moto.endpoint, { HOME: home }));
  const deps: OpsDeps = {
    ...io.deps,
    clients,
    loadConfig: (name) => {
      if (name !== config.envName) throw new ConfigError(`Unknown environment ${JSON.stringify(name)} in this test`);
      return config;
    },
  };
  const argv = ['doctor', '--env', config.envName, '--dns-server', dnsmasq.server, ...(options.json === false ? [] : ['--json']), ...(options.args ?? [])];
  const code = await runCli(argv, deps);
  const checks: Record<string, CheckResult> = {};
  if (options.json !== false) for (const c of (JSON.parse(io.stdout()) as { checks: CheckResult[] }).checks) checks[c.name] = c;
  return { code, stdout: io.stdout(), stderr: io.stderr(), checks };
}

/** Everything the README's first-deploy steps set up, in moto and the stand-ins. */
async function setUpAccount(config: EnvironmentConfig): Promise<void> {
  const region = config.region;
  const template = { Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } } };
  await new CloudFormationClient(common(region)).send(new CreateStackCommand({ StackName: TOOLKIT_STACK, TemplateBody: JSON.stringify(template) }));
  await new SSMClient(common(region)).send(new PutParameterCommand({ Name: BOOTSTRAP_VERSION_PARAMETER, Value: '30', Type: 'String' }));
  // What CreateServiceLinkedRole makes in AWS: the documented name under /aws-service-role/<service>/.
  // moto's CreateServiceLinkedRole names roles after the service's first label (AWSServiceRoleForspot),
  // so the roles are created with the real names directly.
  const iam = new IAMClient(common('us-east-1'));
  for (const { roleName, serviceName } of SPOT_SERVICE_LINKED_ROLES) {
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: serviceName }, Action: 'sts:AssumeRole' }] };
    await iam.send(new CreateRoleCommand({ RoleName: roleName, Path: `/aws-service-role/${serviceName}/`, AssumeRolePolicyDocument: JSON.stringify(trust) }));
  }
  standIns.quotaAnswers.GetServiceQuota = quotaAnswer(G_QUOTA.code, G_QUOTA.name, 16);
  await new SecretsManagerClient(common(region)).send(new CreateSecretCommand({ Name: config.vps.sshKeySecretName, SecretString: 'a deploy key (never read by doctor)' }));
  // Billing metrics exist in us-east-1 only, whatever the environment's region.
  await new CloudWatchClient(common('us-east-1')).send(
    new PutMetricDataCommand({ Namespace: 'AWS/Billing', MetricData: [{ MetricName: 'EstimatedCharges', Value: 12.5, Dimensions: [{ Name: 'Currency', Value: 'USD' }] }] }),
  );
  standIns.tagAnswers.ListCostAllocationTags = tagsAnswer('Active');
}

/** Runs one printed fix line as an operator would paste it, with the AWS CLI pointed at moto and the stand-ins. */
function runFix(line: string): Promise<{ code: number; output: string }> {
  const env = { ...process.env, ...sdkEnv(), AWS_DEFAULT_REGION: 'us-east-1', HOME: home };
  return new Promise((resolve) => {
    execFile('bash', ['-c', line], { env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

const flat = (text: string) => text.replace(/\s+/g, ' ');

describe('a fresh account', () => {
  it('fails or warns on each missing set-up step with its fix, the README\'s own, and exits 1', async () => {
    const config = configFor('dev', 'us-east-1', 'fresh');
    const run = await doctor(config, { json: false });
    expect(run.code).toBe(1);
    const lines = run.stdout.split('\n');
    const line = (name: string) => lines.find((l) => l.includes(`  ${name}: `)) ?? `(no line for ${name})`;
    const fixes = (name: string) => {
      const out: string[] = [];
      for (let i = lines.indexOf(line(name)) + 1; lines[i]?.startsWith('      fix: '); i++) out.push(lines[i].slice('      fix: '.length));
      return out;
    };

    expect(line('credentials')).toMatch(/^ok {4}credentials: account 123456789012 as arn:aws:sts::123456789012:user\/moto .*region us-east-1/);
    expect(line('cdk-bootstrap')).toBe(`fail  cdk-bootstrap: not bootstrapped: no ${TOOLKIT_STACK} stack and no SSM parameter ${BOOTSTRAP_VERSION_PARAMETER} in us-east-1`);
    expect(fixes('cdk-bootstrap')).toEqual(['npx cdk bootstrap aws://123456789012/us-east-1']);
    expect(line('spot-service-linked-roles')).toMatch(/^fail {2}spot-service-linked-roles: missing AWSServiceRoleForEC2Spot and AWSServiceRoleForEC2SpotFleet/);
    expect(fixes('spot-service-linked-roles')).toEqual([
      'aws iam create-service-linked-role --aws-service-name spot.amazonaws.com',
      'aws iam create-service-linked-role --aws-service-name spotfleet.amazonaws.com',
    ]);
    // No applied quota: GetServiceQuota says NoSuchResource, the default (0) applies.
    expect(line('spot-vcpu-quota')).toContain('fail  spot-vcpu-quota: "All G and VT Spot Instance Requests" (L-3819A6DF) is 0 vCPUs in us-east-1, the fleet needs 16 (g5.2xlarge: 8 vCPUs x gpu.maxInstances 2)');
    expect(fixes('spot-vcpu-quota')).toEqual(['aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-3819A6DF --desired-value 16 --region us-east-1']);
    expect(line('billing-alerts')).toMatch(/^warn {2}billing-alerts: no AWS\/Billing EstimatedCharges metric in us-east-1/);
    expect(fixes('billing-alerts')[0]).toContain('"Receive CloudWatch billing alerts"');
    expect(line('cost-allocation-tag')).toMatch(/^warn {2}cost-allocation-tag: CostCenter is not listed as a cost allocation tag yet .*up to 24 hours after resources carry it/);
    expect(fixes('cost-allocation-tag')).toEqual([ACTIVATE_TAG]);
    expect(line('ssh-key-secret')).toBe('fail  ssh-key-secret: no secret AiAssets/dev/vps-ssh-key in us-east-1: the Vps stack\'s deploy function reads the deploy user\'s private key from it, in the environment\'s region');
    expect(fixes('ssh-key-secret')[1]).toBe('aws secretsmanager create-secret --region us-east-1 --name AiAssets/dev/vps-ssh-key --secret-string file://$HOME/.ssh/aiassets-dev');
    expect(line('vps-host-key')).toBe(`ok    vps-host-key: 127.0.0.1:${sshd.port} answered with the pinned host key ${sshd.fingerprint} (its ED25519 key, the one deploys verify); no login tried, so no SSH key is needed`);
    // Not even a refused login (which the VPS's fail2ban would count): sshd saw handshakes only.
    expect(sshd.log()).toContain('Connection from 127.0.0.1');
    expect(sshd.log()).not.toMatch(/authenticating user|Failed|Invalid user|Accepted/);
    expect(line('dns vps.hostnames.n8n')).toBe(`fail  dns vps.hostnames.n8n: n8n.fresh.${DOMAIN} (vps.hostnames.n8n) has no A or AAAA record`);
    expect(fixes('dns vps.hostnames.n8n')).toEqual([`create an A record n8n.fresh.${DOMAIN} -> 127.0.0.1 (vps.host) at your DNS provider`]);
    expect(run.stdout).toContain('7 failed, 2 warning(s), 2 ok, 0 skipped.');
    expect(run.stderr).toBe(
      'error: 7 of 11 checks failed (cdk-bootstrap, spot-service-linked-roles, spot-vcpu-quota, ssh-key-secret, dns vps.hostnames.n8n, dns vps.hostnames.sim, dns vps.hostnames.gateway): run the fix: lines, then doctor again.\n',
    );

    // The README's first-deploy steps give the same fixes, word for word.
    const readme = flat(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    expect(readme).toContain('`npx cdk bootstrap aws://ACCOUNT/REGION`');
    for (const fix of [...fixes('spot-service-linked-roles'), ...fixes('cost-allocation-tag'), fixes('ssh-key-secret')[1]]) expect(readme).toContain(fix);
  });

  it('the printed fixes are commands the AWS CLI accepts, and they fix what they say', async () => {
    // The AWS CLI takes seconds per call on a busy machine.
    const config = configFor('dev', 'us-east-1', 'fresh');
    const before = await doctor(config);
    const fixes = (name: string) => before.checks[name].fix ?? [];
    // Each as printed, independent ones at once. The deploy key: ssh-keygen then create-secret
    // (HOME is a temp dir with an ~/.ssh, as an operator's has). Quota and tag: the stand-ins record
    // the requests the CLI sent. moto accepts the role commands (it names the roles differently, see setUpAccount).
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
    const inOrder = async (lines: readonly string[]) => {
      const results = [];
      for (const line of lines) results.push(await runFix(line));
      return results;
    };
    const results = await Promise.all([
      inOrder(fixes('ssh-key-secret')),
      ...[...fixes('spot-vcpu-quota'), ...fixes('cost-allocation-tag'), ...fixes('spot-service-linked-roles')].map((line) => inOrder([line])),
    ]);
    for (const result of results.flat()) expect(result).toEqual({ code: 0, output: expect.any(String) });
    expect(results.flat()).toHaveLength(6);
    expect(standIns.serviceQuotas.requests.find((r) => r.operation === 'RequestServiceQuotaIncrease')?.body).toEqual({ ServiceCode: 'ec2', QuotaCode: 'L-3819A6DF', DesiredValue: 16 });
    expect(standIns.costExplorer.requests.find((r) => r.operation === 'UpdateCostAllocationTagsStatus')?.body).toEqual({ CostAllocationTagsStatus: [{ TagKey: 'CostCenter', Status: 'Active' }] });

    const after = await doctor(config);
    expect(after.checks['ssh-key-secret']).toMatchObject({ status: 'ok', found: 'secret AiAssets/dev/vps-ssh-key exists in us-east-1 (its value was not read)' });
  }, 180_000);
});

describe('an account set up as the README says', () => {
  it('passes every check (bootstrap in its region, billing in us-east-1, sshd with the pinned key, DNS at the VPS): exit 0', async () => {
    const config = configFor('ready', 'eu-west-1', 'ready');
    await setUpAccount(config);
    const run = await doctor(config);
    expect(run.code).toBe(0);
    // With --json the lines go to stderr (stdout carries only the document): none warns, fails or errs.
    expect(run.stderr).not.toMatch(/^(warn|fail|skip|error)/m);
    expect(Object.values(run.checks).map((c) => [c.name, c.status])).toEqual([
      ['credentials', 'ok'],
      ['cdk-bootstrap', 'ok'],
      ['spot-service-linked-roles', 'ok'],
      ['spot-vcpu-quota', 'ok'],
      ['billing-alerts', 'ok'],
      ['cost-allocation-tag', 'ok'],
      ['ssh-key-secret', 'ok'],
      ['vps-host-key', 'ok'],
      ['dns vps.hostnames.n8n', 'ok'],
      ['dns vps.hostnames.sim', 'ok'],
      ['dns vps.hostnames.gateway', 'ok'],
    ]);
    expect(run.checks['cdk-bootstrap'].found).toBe(`${TOOLKIT_STACK} CREATE_COMPLETE, bootstrap version 30 in eu-west-1 (the stacks require ${MIN_BOOTSTRAP_VERSION} or later)`);
    expect(run.checks['spot-vcpu-quota'].found).toContain('is 16 vCPUs in eu-west-1, the fleet needs 16');
    expect(run.checks['dns vps.hostnames.n8n'].found).toBe(`n8n.ready.${DOMAIN} (vps.hostnames.n8n) resolves to 127.0.0.1, the VPS (vps.host 127.0.0.1)`);
    expect(JSON.parse(run.stdout)).toMatchObject({ env: 'ready', region: 'eu-west-1', counts: { ok: 11, warn: 0, fail: 0, skip: 0 } });
  });

  it('GPU only (no vps.hostKeySha256): the VPS checks are skipped with the reason, exit 0', async () => {
    const config = configFor('gpuonly', 'eu-west-1', 'fresh', { hostKeySha256: undefined });
    await setUpAccount(config);
    const run = await doctor(config);
    expect(run.code).toBe(0);
    for (const name of ['ssh-key-secret', 'vps-host-key', 'dns vps.hostnames.n8n']) {
      expect(run.checks[name]).toEqual({ name, status: 'skip', found: 'gpuonly has no VPS tier yet (vps.hostKeySha256 is unset: the GPU-only path); pin the VPS host key to check it' });
    }
  });

  it('one check denied (AccessDenied) fails with the permission to grant; every other check still reports', async () => {
    const config = configFor('ready', 'eu-west-1', 'ready');
    await setUpAccount(config);
    standIns.quotaAnswers.GetServiceQuota = {
      error: 'AccessDeniedException',
      message: 'User: arn:aws:sts::123456789012:user/moto is not authorized to perform: servicequotas:GetServiceQuota',
    };
    const run = await doctor(config);
    expect(run.code).toBe(1);
    expect(run.checks['spot-vcpu-quota']).toEqual({
      name: 'spot-vcpu-quota',
      status: 'fail',
      found: 'could not check: AWS error AccessDeniedException: User: arn:aws:sts::123456789012:user/moto is not authorized to perform: servicequotas:GetServiceQuota',
      fix: [
        'allow ec2:DescribeInstanceTypes, servicequotas:GetServiceQuota, servicequotas:GetAWSDefaultServiceQuota for arn:aws:sts::123456789012:user/moto (an IAM policy), or run doctor with credentials that may call them',
      ],
    });
    expect(Object.values(run.checks).filter((c) => c.status !== 'ok').map((c) => c.name)).toEqual(['spot-vcpu-quota']);
    expect(run.stderr).toContain('error: 1 of 11 checks failed (spot-vcpu-quota)');
  });

  it('credentials of another account than the config names fail the credentials check', async () => {
    const config = { ...configFor('ready', 'eu-west-1', 'ready'), account: '111111111111' };
    await setUpAccount(config);
    const run = await doctor(config);
    expect(run.code).toBe(1);
    expect(run.checks.credentials).toMatchObject({
      status: 'fail',
      found: 'the credentials are for account 123456789012 (arn:aws:sts::123456789012:user/moto), but ready deploys to account 111111111111 (its account in lib/config/environments.ts)',
    });
  });

  it('without credentials the credentials check says so and how to fix it; the other AWS checks point there', async () => {
    const config = configFor('ready', 'eu-west-1', 'ready');
    const noCredentials = (region: string): AwsClients => {
      const bare = { region, endpoint: moto.endpoint };
      return { ...regionClients(region), ec2: new EC2Client(bare), cloudFormation: new CloudFormationClient(bare), secretsManager: new SecretsManagerClient(bare) };
    };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    let run: Run;
    try {
      run = await doctor(config, { clients: noCredentials });
    } finally {
      Object.assign(process.env, sdkEnv());
    }
    expect(run.code).toBe(1);
    expect(run.checks.credentials.found).toMatch(/^could not check: No AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/);
    for (const name of ['cdk-bootstrap', 'spot-service-linked-roles', 'spot-vcpu-quota', 'billing-alerts', 'cost-allocation-tag', 'ssh-key-secret']) {
      expect(run.checks[name].found).toBe('not checked: no usable AWS credentials (see credentials)');
      expect(run.checks[name].fix).toEqual(run.checks.credentials.fix);
    }
    // The VPS checks need no AWS credentials.
    expect(run.checks['vps-host-key'].status).toBe('ok');
    expect(run.checks['dns vps.hostnames.n8n'].status).toBe('ok');
  });
});

describe('the VPS', () => {
  it('a wrong pinned host key fails naming the expected and the seen fingerprints', async () => {
    const config = configFor('ready', 'eu-west-1', 'ready', { hostKeySha256: sshd.otherFingerprint });
    await setUpAccount(config);
    const run = await doctor(config);
    expect(run.code).toBe(1);
    const check = run.checks['vps-host-key'];
    expect(check.status).toBe('fail');
    expect(check.found).toContain(`expected ${sshd.otherFingerprint}, received ${sshd.fingerprint}`);
    expect(check.fix?.[0]).toContain('update vps.hostKeySha256 of ready');
  });

  it('a closed SSH port fails with the hint at vps.sshPort and the firewall', async () => {
    const { freePort } = await import('../support/moto');
    const port = await freePort();
    const config = configFor('ready', 'eu-west-1', 'ready', { sshPort: port });
    await setUpAccount(config);
    const run = await doctor(config);
    expect(run.checks['vps-host-key']).toEqual({
      name: 'vps-host-key',
      status: 'fail',
      found: `nothing accepts connections on 127.0.0.1:${port} (connection refused)`,
      fix: ['check vps.sshPort of ready in lib/config/environments.ts and that sshd listens on it and the VPS firewall admits it (provision.sh: ufw allows only 22, 80 and 443)'],
    });
  });

  it('the pin still the checked-in placeholder fails with the ssh-keyscan to run', async () => {
    const config = configFor('ready', 'eu-west-1', 'ready', { hostKeySha256: 'SHA256:REPLACEwithTheVpsHostKeyFingerprint00000000' });
    const run = await doctor(config);
    expect(run.checks['vps-host-key'].status).toBe('fail');
    expect(run.checks['vps-host-key'].fix).toEqual([`ssh-keyscan -p ${sshd.port} 127.0.0.1 | ssh-keygen -lf -   # over a trusted network; pin the printed SHA256:... as vps.hostKeySha256 of ready`]);
  });

  it('a host name pointing elsewhere fails naming the addresses; an AAAA record that cannot be checked warns', async () => {
    const config = configFor('stray', 'eu-west-1', 'stray');
    const run = await doctor(config);
    expect(run.checks['dns vps.hostnames.n8n']).toMatchObject({
      status: 'fail',
      found: `n8n.stray.${DOMAIN} (vps.hostnames.n8n) resolves to 127.0.0.2, not only to the VPS (vps.host 127.0.0.1): 127.0.0.2 is elsewhere, and Let's Encrypt cannot issue its certificate`,
    });
    expect(run.checks['dns vps.hostnames.sim'].status).toBe('ok');
    expect(run.checks['dns vps.hostnames.gateway']).toMatchObject({ status: 'warn' });
    expect(run.checks['dns vps.hostnames.gateway'].found).toContain('the AAAA record ::1 cannot be checked');
  });
});

describe('the runner and the options', () => {
  it('a check that hangs is cut at its own timeout (its calls aborted) while the others report', async () => {
    let aborted = false;
    const hangs: DoctorCheck = {
      name: 'hangs',
      severity: 'fail',
      actions: [],
      timeoutMs: 100,
      run: ({ signal }) => new Promise(() => signal.addEventListener('abort', () => (aborted = true))),
    };
    const quick: DoctorCheck = { name: 'quick', severity: 'warn', actions: [], timeoutMs: 5000, run: async () => ({ status: 'ok', found: 'fine' }) };
    const seen: string[] = [];
    const context = (signal: AbortSignal) => ({ signal, identity: () => Promise.reject(new Error('no STS here')) }) as unknown as CheckContext;
    const results = await runChecks([hangs, quick], context, (r) => seen.push(r.name));
    expect(results).toEqual([
      { name: 'hangs', status: 'fail', found: 'no answer within 0.1 s', fix: ['check the network (and AWS_ENDPOINT_URL, if set), then run doctor again'] },
      { name: 'quick', status: 'ok', found: 'fine' },
    ]);
    expect(seen).toEqual(['hangs', 'quick']);
    expect(aborted).toBe(true);
  });

  it('an instance type the region does not offer fails the quota check with the offerings command', async () => {
    const config = { ...configFor('ready', 'eu-west-1', 'ready'), gpu: { ...configFor('ready', 'eu-west-1', 'ready').gpu, instanceTypes: ['g4dn.xlarge', 'g4dn.nope'] } };
    const check = await runChecks([spotQuotaCheck], (signal) => ({ config, aws: regionClients('eu-west-1'), signal }) as unknown as CheckContext);
    expect(check[0].status).toBe('fail');
    expect(check[0].found).toContain('g4dn.nope');
    expect(check[0].fix?.[0]).toMatch(/^choose gpu\.instanceTypes of ready that eu-west-1 offers: aws ec2 describe-instance-type-offerings --region eu-west-1/);
  });

  it('--dns-server takes IP addresses with an optional port, and refuses the rest (exit 64)', async () => {
    expect(['1.1.1.1', '127.0.0.1:5353', '2606:4700::1111', '[::1]:53'].reduce<string[]>((all, s) => parseDnsServer(s, all), [])).toHaveLength(4);
    for (const bad of ['dns.example.com', '1.1.1.1:0', '[1.1.1.1]:53', '300.1.1.1']) expect(() => parseDnsServer(bad)).toThrow('allowed is an IP address');
    const run = inProcessDeps(regionClients('us-east-1'), cliEnv(moto.endpoint));
    expect(await runCli(['doctor', '--env', 'dev', '--dns-server', 'nope'], run.deps)).toBe(64);
    expect(run.stderr()).toContain("option '--dns-server <address>' argument 'nope' is invalid. allowed is an IP address");
  });

  it('--help lists the options and the exit codes', async () => {
    const run = inProcessDeps(regionClients('us-east-1'), cliEnv(moto.endpoint));
    expect(await runCli(['doctor', '--help'], run.deps)).toBe(0);
    for (const text of ['--env <name>', '--json', '--dns-server <address>', 'Exit codes: 0 no check failed (warnings allowed), 1 a check failed']) expect(run.stdout()).toContain(text);
  });

  it(`the bootstrap doctor requires is what the synthesized stacks require (${BOOTSTRAP_VERSION_PARAMETER} >= ${MIN_BOOTSTRAP_VERSION})`, () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(synthesized('dev').outdir, 'manifest.json'), 'utf8')) as {
      artifacts: Record<string, { properties?: { requiresBootstrapStackVersion?: number; bootstrapStackVersionSsmParameter?: string } }>;
    };
    const required = Object.values(manifest.artifacts).flatMap((a) => (a.properties?.requiresBootstrapStackVersion ? [a.properties] : []));
    expect(required.length).toBeGreaterThan(3);
    expect(Math.max(...required.map((p) => p.requiresBootstrapStackVersion ?? 0))).toBe(MIN_BOOTSTRAP_VERSION);
    expect(new Set(required.map((p) => p.bootstrapStackVersionSsmParameter))).toEqual(new Set([BOOTSTRAP_VERSION_PARAMETER]));
  });
});
