/**
 * The README's "First deploy of an environment", run top to bottom as a new operator would: every
 * command is taken from the README's text in its order, placeholders filled in, and run by the real
 * tools (the pinned aws-cdk CLI, AWS CLI v1, OpenSSH's ssh-keygen/ssh-keyscan/ssh, `npm run ops`)
 * in a copy of the project whose `lib/config/environments.ts` the test edits as step 2 says.
 *
 * The account is moto (test/support/moto_with_public_dlami.py adds the public DLAMI parameter AWS
 * serves in every region), plus the stand-ins doctor's test uses for Service Quotas and cost
 * allocation tags (moto lacks both: test/ops/doctor-stand-ins.ts). The VPS is a loopback OpenSSH
 * server with its own host key; its host names resolve through a real dnsmasq.
 *
 * Where the walk leaves the README's letter, it says why next to it:
 * - `npx cdk` gets `--no-notices` (the notices fetch would leave loopback); `cdk deploy` gets
 *   `--require-approval never` (the answer an operator types at the IAM prompt, which needs a TTY).
 * - `cdk deploy` also gets `--method=prepare-change-set`: the CLI synthesizes, checks the
 *   bootstrap version, publishes every asset to the staging bucket and creates each stack's change
 *   set in order, but moto 5.2.1 cannot execute ours — its CloudFormation raises KeyError
 *   'LaunchSpecifications' on a Spot Fleet with LaunchTemplateConfigs (moto/ec2/models/
 *   spot_requests.py create_from_cloudformation_json), skips metric-math alarms ("not supported by
 *   moto's CloudFormation implementation") and cannot invoke custom-resource Lambdas without Docker.
 *   The Storage change set, which moto can run, is then executed with the AWS CLI.
 * - The SSH port of the loopback VPS is not 22: `ssh-keyscan -p 22` is run with its port, and step
 *   2 sets `vps.sshPort` (the README says to when SSH is not on 22).
 * - `doctor` gets `--dns-server` (the test's dnsmasq answers for the VPS's host names).
 * - Console-only steps (billing alerts, approving the quota) are done the way AWS records them;
 *   what provision.sh does with the public key is done directly (its own test runs the script).
 * - A documented command the walk does not run is listed in NOT_RUN with the reason.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { SPOT_QUOTAS } from '../lib/ops/doctor/spot-quota';
import { SPOT_SERVICE_LINKED_ROLES } from '../lib/ops/doctor/spot-roles';
import { ISOLATED_AWS_ENV, envWithoutAws, runChild } from './support/child';
import { startMoto, type MotoServer } from './support/moto';
import { startSshd, type SshdFixture } from './vps/support-ssh/sshd';
import { startDnsmasq, type Dnsmasq } from './ops/doctor-dnsmasq';
import { quotaAnswer, startAccountStandIns, tagsAnswer, type AccountStandIns } from './ops/doctor-stand-ins';

const ROOT = path.resolve(__dirname, '..');
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const DOMAIN = 'walk.test';
const G_QUOTA = SPOT_QUOTAS[0];

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** From "First deploy of an environment" to the next `## ` heading (the GPU-only paragraph is its end). */
function firstDeploySection(): string {
  const start = readme.indexOf('First deploy of an environment, in order');
  const end = readme.indexOf('\n## ', start);
  if (start < 0 || end < 0) throw new Error('README: no "First deploy of an environment" section followed by a "## " heading');
  const section = readme.slice(start, end);
  // Code spans are read by backtick pairs: a fenced block would hide the commands in it.
  if (section.includes('```')) throw new Error('README: the first-deploy section has a fenced block; write its commands as `code spans` so this walk sees them');
  return section;
}

/**
 * The section's commands, in order: every code span with a space in it (a span may wrap lines).
 * Single words (`vps.host`, `lib/config/environments.ts`) are names, not commands.
 */
function documentedCommands(): string[] {
  return [...firstDeploySection().matchAll(/`([^`]+)`/g)].map((m) => m[1].replace(/\s*\n\s*/g, ' ')).filter((span) => span.includes(' '));
}

/** Commands of the section this walk does not run, with the reason and where they are tested instead. */
const NOT_RUN: Record<string, string> = {
  'npm run ops -- gpu start --env dev --wait':
    'needs the Gpu stack executed, which moto cannot (see above); test/ops/gpu.test.ts runs it against a moto Spot Fleet',
};

let moto: MotoServer;
let sshd: SshdFixture;
let dnsmasq: Dnsmasq;
let standIns: AccountStandIns;
let work: string;
let checkout: string;
let home: string;

beforeAll(async () => {
  [moto, sshd, standIns, dnsmasq] = await Promise.all([
    startMoto({ forCdkDeploy: true }),
    startSshd(),
    startAccountStandIns(G_QUOTA),
    startDnsmasq(DOMAIN, Object.fromEntries(['n8n', 'sim', 'gateway'].map((n) => [`${n}.${DOMAIN}`, ['127.0.0.1']]))),
  ]);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'first-deploy-'));
  home = path.join(work, 'home');
  checkout = path.join(work, 'aiassets');
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  // A clone as the operator has it: the sources (node_modules linked, not reinstalled).
  fs.mkdirSync(checkout);
  for (const entry of ['bin', 'lib', 'assets', 'cdk.json', 'package.json', 'tsconfig.json']) {
    fs.cpSync(path.join(ROOT, entry), path.join(checkout, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(checkout, 'node_modules'));
}, 120_000);

afterAll(async () => {
  await Promise.all([moto?.stop(), sshd?.stop(), dnsmasq?.stop(), standIns?.close()]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The operator's shell: the AWS CLI and SDK talk to moto and the stand-ins only; HOME is the test's. */
function operatorEnv(): NodeJS.ProcessEnv {
  return {
    ...envWithoutAws(),
    ...ISOLATED_AWS_ENV,
    HOME: home,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ENDPOINT_URL_SERVICE_QUOTAS: standIns.serviceQuotas.endpoint,
    AWS_ENDPOINT_URL_COST_EXPLORER: standIns.costExplorer.endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    CDK_DISABLE_VERSION_CHECK: '1',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
}

/** One command line in bash in the checkout, bounded in time; the output is stdout then stderr. */
async function sh(line: string, timeoutMs = 240_000): Promise<{ code: number | null; output: string }> {
  const result = await runChild('bash', ['-c', line], { cwd: checkout, env: operatorEnv(), timeoutMs });
  return { code: result.code, output: `${result.stdout}${result.stderr}` };
}

/** Runs a command that must succeed; the failure names the step and shows what the operator would have seen. */
async function succeeds(step: string, line: string, timeoutMs?: number): Promise<string> {
  const result = await sh(line, timeoutMs);
  if (result.code !== 0) throw new Error(`step ${step}: \`${line}\` exited ${result.code}\n${result.output}`);
  return result.output;
}

/** Walks the documented commands in order: each take() must name the next one not yet run. */
class Walk {
  private readonly commands = documentedCommands();
  private next = 0;

  take(prefix: string): string {
    const index = this.commands.findIndex((c, i) => i >= this.next && c.startsWith(prefix));
    if (index < 0) throw new Error(`README: no command starting "${prefix}" after "${this.commands[this.next - 1] ?? 'the start'}"; the section has:\n${this.commands.join('\n')}`);
    const skipped = this.commands.slice(this.next, index).filter((c) => !(c in NOT_RUN));
    if (skipped.length > 0) throw new Error(`README order: "${prefix}" comes after commands this walk did not run: ${skipped.join(' | ')}`);
    this.next = index + 1;
    return this.commands[index];
  }

  remaining(): string[] {
    return this.commands.slice(this.next).filter((c) => !(c in NOT_RUN));
  }
}

/** Step 2 as the README says: edit dev in lib/config/environments.ts (only dev's block). */
function editDev(edit: (devBlock: string) => string): void {
  const file = path.join(checkout, 'lib', 'config', 'environments.ts');
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf('  dev: {');
  const end = text.indexOf('  staging: {', start);
  if (start < 0 || end < 0) throw new Error('environments.ts: no dev block before staging');
  fs.writeFileSync(file, text.slice(0, start) + edit(text.slice(start, end)) + text.slice(end));
}

function replaceOnce(text: string, from: RegExp, to: string): string {
  if (!from.test(text)) throw new Error(`environments.ts dev: nothing matches ${from}`);
  return text.replace(from, to);
}

const cdk = (line: string) => `${line} --no-notices`;

/** A documented command with its placeholders filled; fails if one is left (a renamed placeholder). */
function filled(command: string, values: Record<string, string>): string {
  let line = command;
  for (const [placeholder, value] of Object.entries(values)) line = line.split(placeholder).join(value);
  const left = /<[A-Za-z]+>|\b(ACCOUNT|REGION|HOST)\b/.exec(line);
  if (left) throw new Error(`README command still has the placeholder ${left[0]} after filling: ${line}`);
  return line;
}

test('the README first-deploy steps, top to bottom, against moto and a loopback VPS', async () => {
  const walk = new Walk();

  // Step 1: account set-up.
  await succeeds('1 bootstrap', cdk(filled(walk.take('npx cdk bootstrap'), { ACCOUNT, REGION })));
  for (const service of ['spot.amazonaws.com', 'spotfleet.amazonaws.com']) {
    await succeeds('1 service-linked role', walk.take(`aws iam create-service-linked-role --aws-service-name ${service}`));
  }
  // moto names a service-linked role after the service's first label (AWSServiceRoleForspot);
  // AWS names these two AWSServiceRoleForEC2Spot and AWSServiceRoleForEC2SpotFleet (IAM user
  // guide, "AWS services that work with IAM"), which is what doctor looks for: made as AWS would.
  const iam = new IAMClient({ region: REGION, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  for (const { roleName, serviceName } of SPOT_SERVICE_LINKED_ROLES) {
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: serviceName }, Action: 'sts:AssumeRole' }] };
    await iam.send(new CreateRoleCommand({ RoleName: roleName, Path: `/aws-service-role/${serviceName}/`, AssumeRolePolicyDocument: JSON.stringify(trust) }));
  }

  // A fresh account has no value of its own for the quota (GetServiceQuota: NoSuchResourceException,
  // the stand-in's default), so the README's second command reads AWS's default: 0.
  const own = await sh(filled(walk.take('aws service-quotas get-service-quota'), { '<region>': REGION }));
  expect(own.code).not.toBe(0);
  expect(own.output).toContain('NoSuchResourceException');
  const fallback = await succeeds('1 default quota', filled(walk.take('aws service-quotas get-aws-default-service-quota'), { '<region>': REGION }));
  expect(fallback.trim()).toMatch(/^0(\.0)?$/);
  // One g4dn.xlarge (4 vCPUs) times dev's gpu.maxInstances; the README says what to put in.
  const request = filled(walk.take('aws service-quotas request-service-quota-increase'), { '<vCPUs>': '4', '<region>': REGION });
  await succeeds('1 quota request', request);
  const requested = standIns.serviceQuotas.requests.find((r) => r.operation === 'RequestServiceQuotaIncrease');
  expect(requested?.body).toEqual({ ServiceCode: 'ec2', QuotaCode: G_QUOTA.code, DesiredValue: 4 });
  // Approval (a day, in AWS): the applied quota is now 4 vCPUs.
  standIns.quotaAnswers.GetServiceQuota = quotaAnswer(G_QUOTA.code, G_QUOTA.name, 4);
  // Billing alerts are a console preference; once on, AWS publishes EstimatedCharges in us-east-1.
  await new CloudWatchClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }).send(
    new PutMetricDataCommand({ Namespace: 'AWS/Billing', MetricData: [{ MetricName: 'EstimatedCharges', Value: 0.5, Dimensions: [{ Name: 'Currency', Value: 'USD' }] }] }),
  );

  // Step 2: config. The host key fingerprint as the README gets it.
  const keyscan = filled(walk.take('ssh-keyscan'), { '-p 22': `-p ${sshd.port}`, HOST: sshd.host });
  const scanned = await succeeds('2 host key', keyscan, 30_000);
  const fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(scanned)?.[0];
  expect(fingerprint).toBe(sshd.fingerprint);
  editDev((dev) => {
    let out = replaceOnce(dev, /alertEmail: '[^']*'/, "alertEmail: 'walker@example.org'");
    out = replaceOnce(out, /comfyuiIngressCidr: '[^']*'/, `comfyuiIngressCidr: '${sshd.host}/32'`);
    out = replaceOnce(out, /host: '[^']*'/, `host: '${sshd.host}', sshPort: ${sshd.port}`);
    out = replaceOnce(out, /hostKeySha256: [A-Z_]+/, `hostKeySha256: '${fingerprint}'`);
    return replaceOnce(out, /hostnames: \{[^}]*\}/, `hostnames: { n8n: 'n8n.${DOMAIN}', sim: 'sim.${DOMAIN}', gateway: 'gateway.${DOMAIN}' }`);
  });

  // Step 3: the deploy key, the VPS provisioned with its public half, the private half in Secrets Manager.
  await succeeds('3 deploy key', walk.take('ssh-keygen -t ed25519'));
  const keyFile = path.join(home, '.ssh', 'aiassets-dev');
  expect(fs.existsSync(keyFile) && fs.existsSync(`${keyFile}.pub`)).toBe(true);
  // What provision.sh does with the public half (its own test runs it): the key may log in.
  fs.appendFileSync(path.join(sshd.dir, 'authorized_keys'), fs.readFileSync(`${keyFile}.pub`));
  // ssh reads ~ from the password database, not $HOME: its files are named explicitly.
  const knownHosts = path.join(home, '.ssh', 'known_hosts');
  fs.writeFileSync(knownHosts, await succeeds('3 known host', `ssh-keyscan -p ${sshd.port} ${sshd.host} 2>/dev/null`, 30_000));
  const sshOptions = `-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHosts}`;
  const login = await succeeds('3 login', `ssh ${sshOptions} -i ${keyFile} -p ${sshd.port} ${sshd.username}@${sshd.host} echo logged-in`, 30_000);
  expect(login).toContain('logged-in');
  await succeeds('3 secret', walk.take('aws secretsmanager create-secret'));
  const stored = await succeeds('3 secret read back', `aws secretsmanager get-secret-value --region ${REGION} --secret-id AiAssets/dev/vps-ssh-key --query SecretString --output text`);
  expect(stored.trim()).toBe(fs.readFileSync(keyFile, 'utf8').trim());

  // Step 4: doctor (host names through the test's DNS server), then deploy.
  const doctor = await succeeds('4 doctor', `${walk.take('npm run ops -- doctor')} --dns-server ${dnsmasq.server}`, 120_000);
  expect(doctor).not.toMatch(/^fail /m);
  for (const check of ['credentials', 'cdk-bootstrap', 'spot-service-linked-roles', 'spot-vcpu-quota', 'ssh-key-secret', 'billing-alerts', 'vps-host-key', ...['n8n', 'sim', 'gateway'].map((n) => `dns vps.hostnames.${n}`)]) {
    expect(doctor).toMatch(new RegExp(`^ok +${check.replace(/\./g, '\\.')}: `, 'm'));
  }
  // The tag is seen on resources only after the first deploy: step 5.
  expect(doctor).toMatch(/^warn +cost-allocation-tag: /m);

  const deployed = await succeeds('4 deploy', cdk(`${walk.take('npx cdk deploy -c env=dev --all')} --require-approval never --method=prepare-change-set`), 300_000);
  expect(deployed).not.toMatch(/GPU only|not synthesized/i);
  const stacks = JSON.parse(await succeeds('4 stacks', 'aws cloudformation list-stacks --query "StackSummaries[].[StackName,StackStatus]" --output json')) as string[][];
  expect(Object.fromEntries(stacks)).toEqual({
    CDKToolkit: 'CREATE_COMPLETE',
    'AiAssets-dev-Storage': 'REVIEW_IN_PROGRESS',
    'AiAssets-dev-Gpu': 'REVIEW_IN_PROGRESS',
    'AiAssets-dev-Observability': 'REVIEW_IN_PROGRESS',
    'AiAssets-dev-Vps': 'REVIEW_IN_PROGRESS',
  });
  // By the ARN the CLI printed: moto 5.2.1 looks a change set name up across all stacks (the
  // last one wins: Vps's) and its ListChangeSets ignores the stack name.
  const changeSet = /AiAssets-dev-Storage: creating CloudFormation changeset\.\.\.\s+Changeset (arn:\S+) created/.exec(deployed)?.[1];
  expect(changeSet).toMatch(/:changeSet\/cdk-deploy-change-set\//);
  await succeeds('4 storage', `aws cloudformation execute-change-set --change-set-name ${changeSet}`);
  const storage = await succeeds('4 storage status', 'aws cloudformation describe-stacks --stack-name AiAssets-dev-Storage --query "Stacks[0].StackStatus" --output text');
  expect(storage.trim()).toBe('CREATE_COMPLETE');
  const buckets = await succeeds('4 buckets', 'aws s3api list-buckets --query "Buckets[].Name" --output text');
  expect(buckets).toContain(`aiassets-dev-assets-${ACCOUNT}-${REGION}`);

  // Step 5: the cost-allocation tag, once Billing has seen it.
  standIns.tagAnswers.ListCostAllocationTags = tagsAnswer('Inactive');
  await succeeds('5 tag', walk.take('aws ce update-cost-allocation-tags-status'));
  const update = standIns.costExplorer.requests.find((r) => r.operation === 'UpdateCostAllocationTagsStatus');
  expect(update?.body).toEqual({ CostAllocationTagsStatus: [{ TagKey: 'CostCenter', Status: 'Active' }] });

  // GPU only, in a fresh account (bootstrapped again): without the host key the Vps stack is not
  // synthesized, and --all deploys the other three.
  await moto.reset();
  await succeeds('GPU only bootstrap', cdk(`npx cdk bootstrap aws://${ACCOUNT}/${REGION}`));
  editDev((dev) => replaceOnce(dev, /hostKeySha256: '[^']*', /, ''));
  const gpuOnly = await succeeds('GPU only', cdk(`${walk.take('npx cdk deploy -c env=dev --all')} --require-approval never --method=prepare-change-set`), 300_000);
  expect(gpuOnly).toMatch(/AiAssets-dev-Observability/);
  expect(gpuOnly).toContain('AiAssets-dev-Vps is not synthesized: set vps.hostKeySha256 for dev');
  expect([...gpuOnly.matchAll(/(AiAssets-dev-\w+): creating CloudFormation changeset/g)].map((m) => m[1])).toEqual([
    'AiAssets-dev-Storage',
    'AiAssets-dev-Gpu',
    'AiAssets-dev-Observability',
  ]);
  expect(walk.remaining()).toEqual([]);
}, 1_500_000);
