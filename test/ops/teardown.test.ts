import { DescribeSpotFleetRequestsCommand } from '@aws-sdk/client-ec2';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../../lib/ops/cli';
import { bucketPresence } from '../../lib/ops/buckets';
import { describeStack } from '../../lib/ops/stack-outputs';
import { RETAINED_OF_DELETED_STACKS, type TeardownReport } from '../../lib/ops/teardown';
import { TEARDOWN_ORDER } from '../../lib/ops/stack-outputs';
import type { CfnTemplate } from '../../lib/synth';
import { startMoto, type MotoServer } from '../support/moto';
import { ENVS, synthesized } from '../support/synth';
import { cliEnv, deployEnvironment, inProcessDeps, motoClients, runOps, writeCdkStandIn, type CdkStandIn } from './fixtures';

// teardown against moto, with a recording stand-in for `npx cdk` (OPS_CDK_BIN).
let moto: MotoServer;
let dir: string;
let cdk: CdkStandIn;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-teardown-'));
  cdk = writeCdkStandIn(dir);
  moto = await startMoto();
});

afterAll(async () => {
  await moto?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await moto.reset();
  cdk.clear();
});

const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => cliEnv(moto.endpoint, { ...cdk.env, ...extra });

async function fleetTarget(fleetId: string | undefined): Promise<number> {
  const { SpotFleetRequestConfigs } = await motoClients(moto.endpoint).ec2.send(
    new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId!] }),
  );
  return SpotFleetRequestConfigs![0].SpotFleetRequestConfig!.TargetCapacity!;
}

describe('refusals (nothing is touched)', () => {
  test('prod without --allow-prod is refused (exit 5)', async () => {
    const { fleetId } = await deployEnvironment(motoClients(moto.endpoint), 'prod', { capacity: 1 });
    const result = await runOps(['teardown', '--env', 'prod'], env());
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('Refusing to tear down prod: it is a production environment (removalPolicy retain). Pass --allow-prod');
    expect(result.stderr).toContain('Nothing was changed.');
    expect(cdk.calls()).toEqual([]);
    expect(await fleetTarget(fleetId)).toBe(1);
  });

  test('prod with --allow-prod --yes is refused: prod needs the typed name', async () => {
    const { fleetId } = await deployEnvironment(motoClients(moto.endpoint), 'prod', { capacity: 1 });
    const result = await runOps(['teardown', '--env', 'prod', '--allow-prod', '--yes'], env());
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('Refusing --yes for prod');
    expect(cdk.calls()).toEqual([]);
    expect(await fleetTarget(fleetId)).toBe(1);
  });

  test('dev without --yes and without a terminal is refused', async () => {
    await deployEnvironment(motoClients(moto.endpoint), 'dev', { capacity: 1 });
    const result = await runOps(['teardown', '--env', 'dev'], env(), { stdin: 'dev\n' });
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('stdin is not a terminal. Run teardown in a terminal or pass --yes.');
    expect(cdk.calls()).toEqual([]);
  });

  test('a typed name that does not match changes nothing', async () => {
    const clients = motoClients(moto.endpoint);
    const { fleetId } = await deployEnvironment(clients, 'staging', { capacity: 1 });
    const run = inProcessDeps(clients, env(), { isTTY: true, answer: 'prod' });
    expect(await runCli(['teardown', '--env', 'staging'], run.deps)).toBe(5);
    expect(run.prompts).toEqual(['Type the environment name (staging) to delete the above: ']);
    expect(run.stderr()).toContain('Confirmation "prod" does not match "staging". Nothing was changed.');
    expect(cdk.calls()).toEqual([]);
    expect(await fleetTarget(fleetId)).toBe(1);
  });
});

describe('dev teardown', () => {
  test('--yes: fleet to 0, cdk destroy of the deployed stacks dependents first, buckets deleted, report', async () => {
    const clients = motoClients(moto.endpoint);
    const fixture = await deployEnvironment(clients, 'dev', { parts: ['Storage', 'Gpu', 'Vps'], capacity: 1 });

    const result = await runOps(['teardown', '--env', 'dev', '--yes'], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(cdk.calls()).toEqual([['destroy', 'AiAssets-dev-Vps', 'AiAssets-dev-Gpu', 'AiAssets-dev-Storage', '--force', '-c', 'env=dev']]);
    expect(await fleetTarget(fixture.fleetId)).toBe(0);

    const out = result.stdout;
    expect(out).toContain('Teardown of dev in us-east-1 (removalPolicy destroy)');
    expect(out).toContain(
      [
        'Will delete, in this order:',
        '  1. stack AiAssets-dev-Vps',
        '  2. stack AiAssets-dev-Gpu (its Spot Fleet is scaled to 0 first)',
        '  3. stack AiAssets-dev-Storage',
        `     bucket ${fixture.assetBucket}, with all its objects`,
        `     bucket ${fixture.logBucket}, with all its objects`,
        'Will keep:',
        '  (nothing)',
        'Not deployed, skipped: AiAssets-dev-Observability',
      ].join('\n'),
    );
    expect(out).toContain(`Scaled Spot Fleet ${fixture.fleetId} to 0 (was 1).`);
    expect(out).toContain('Running: ');
    expect(out).toContain('  | stand-in cdk destroy AiAssets-dev-Vps AiAssets-dev-Gpu AiAssets-dev-Storage --force -c env=dev');
    expect(out).toContain('Left behind:\n  nothing\nTeardown of dev complete.');
    // The fleet went to 0 before cdk ran.
    expect(out.indexOf('Scaled Spot Fleet')).toBeLessThan(out.indexOf('Running: '));
    // Credentials travel in the environment, never on the command line.
    expect(JSON.stringify(cdk.calls())).not.toContain('testing');
    for (const stack of fixture.stacks) expect(await describeStack(clients.cloudFormation, stack)).toBeUndefined();
    expect(await bucketPresence(clients.s3, fixture.assetBucket!)).toBe('gone');
  });

  test('a failing cdk destroy stops the teardown: exit 8, what is left is reported', async () => {
    await deployEnvironment(motoClients(moto.endpoint), 'dev', { capacity: 0 });
    const result = await runOps(['teardown', '--env', 'dev', '--yes'], env({ CDK_STANDIN_FAIL: '1' }));
    expect(result.code).toBe(8);
    expect(cdk.calls()).toHaveLength(1);
    expect(result.stdout).toContain('  | stand-in: simulated CloudFormation failure');
    expect(result.stdout).toContain('Left behind:\n  stack AiAssets-dev-Gpu (still present)\n  stack AiAssets-dev-Storage (still present)\n');
    expect(result.stdout).toMatch(/bucket aiassets-dev-assets-\S+ \(still present\)/);
    expect(result.stdout).not.toContain('complete');
    expect(result.stderr).toBe('error: cdk destroy failed (exit 1); teardown stopped. Fix the cause shown above and run teardown again.\n');
  });

  test('nothing deployed: nothing to do, cdk is not run', async () => {
    const result = await runOps(['teardown', '--env', 'dev', '--yes'], env());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Will delete, in this order:\n  (nothing)');
    expect(result.stdout).toContain('Not deployed, skipped: AiAssets-dev-Vps, AiAssets-dev-Observability, AiAssets-dev-Gpu, AiAssets-dev-Storage');
    expect(result.stdout).toContain('Nothing to tear down in dev.');
    expect(cdk.calls()).toEqual([]);
  });
});

describe('prod teardown', () => {
  test('--allow-prod and the typed name: stateless stacks go, the Storage stack and buckets are kept', async () => {
    const clients = motoClients(moto.endpoint);
    const fixture = await deployEnvironment(clients, 'prod', { parts: ['Storage', 'Gpu', 'Observability'], capacity: 1 });
    const run = inProcessDeps(clients, env(), { isTTY: true, answer: 'prod\n' });

    const code = await runCli(['teardown', '--env', 'prod', '--allow-prod', '--json'], run.deps);
    expect(run.stderr()).toContain([
        'Will keep:',
        '  stack AiAssets-prod-Storage (removalPolicy retain: the stateful stack is never destroyed by teardown)',
        `  bucket ${fixture.assetBucket}, with its objects (removalPolicy retain)`,
        `  bucket ${fixture.logBucket}, with its objects (removalPolicy retain)`,
        '  of stack AiAssets-prod-Observability: its function log group, if any (expires after its retention)',
        '  of stack AiAssets-prod-Gpu: its host, flow and function log groups (expire after their retention)',
        '  of stack AiAssets-prod-Gpu: its dead-letter queue of undelivered alerts (free while empty; messages expire)',
      ].join('\n'));
    expect(code).toBe(0);
    expect(run.prompts).toEqual(['Type the environment name (prod) to delete the above: ']);
    expect(cdk.calls()).toEqual([['destroy', 'AiAssets-prod-Observability', 'AiAssets-prod-Gpu', '--force', '-c', 'env=prod']]);
    expect(await fleetTarget(fixture.fleetId)).toBe(0);

    const report = JSON.parse(run.stdout()) as TeardownReport;
    expect(report).toEqual({
      env: 'prod',
      region: 'us-east-1',
      removalPolicy: 'retain',
      delete: { stacks: ['AiAssets-prod-Observability', 'AiAssets-prod-Gpu'], buckets: [] },
      keep: {
        stacks: ['AiAssets-prod-Storage'],
        buckets: [fixture.assetBucket, fixture.logBucket],
        resources: [
          'AiAssets-prod-Observability: its function log group, if any (expires after its retention)',
          'AiAssets-prod-Gpu: its host, flow and function log groups (expire after their retention)',
          'AiAssets-prod-Gpu: its dead-letter queue of undelivered alerts (free while empty; messages expire)',
        ],
      },
      notDeployed: ['AiAssets-prod-Vps'],
      dryRun: false,
      confirmed: true,
      fleetScaledToZero: true,
      cdk: { command: [cdk.bin, 'destroy', 'AiAssets-prod-Observability', 'AiAssets-prod-Gpu', '--force', '-c', 'env=prod'], exitCode: 0 },
      leftBehind: {
        stacks: ['AiAssets-prod-Storage'],
        buckets: [
          { name: fixture.assetBucket, presence: 'exists', expected: true },
          { name: fixture.logBucket, presence: 'exists', expected: true },
        ],
      },
      completed: true,
      error: null,
    });
    expect(await bucketPresence(clients.s3, fixture.assetBucket!)).toBe('exists');
  });
});

describe('--dry-run', () => {
  test('prod without --allow-prod or a terminal: exactly the plan teardown prints, no prompt, fleet, stacks and cdk untouched', async () => {
    const clients = motoClients(moto.endpoint);
    const fixture = await deployEnvironment(clients, 'prod', { parts: ['Storage', 'Gpu', 'Observability'], capacity: 1 });
    const dry = inProcessDeps(clients, env());

    expect(await runCli(['teardown', '--env', 'prod', '--dry-run'], dry.deps)).toBe(0);
    expect(dry.stderr()).toBe('');
    expect(dry.prompts).toEqual([]);
    expect(cdk.calls()).toEqual([]);
    expect(await fleetTarget(fixture.fleetId)).toBe(1);
    for (const stack of fixture.stacks) expect(await describeStack(clients.cloudFormation, stack)).toBeDefined();
    expect(dry.stdout()).toMatch(/^Teardown of prod in us-east-1 \(removalPolicy retain\)\nWill delete, in this order:\n/);
    expect(dry.stdout()).toMatch(/\ndry run: nothing changed\n$/);

    // The real teardown prints the same plan before it asks.
    const plan = dry.stdout().replace(/dry run: nothing changed\n$/, '');
    const real = inProcessDeps(clients, env(), { isTTY: true, answer: 'prod' });
    expect(await runCli(['teardown', '--env', 'prod', '--allow-prod'], real.deps)).toBe(0);
    expect(real.stdout().startsWith(plan)).toBe(true);
    expect(real.stdout().slice(plan.length)).toMatch(/^Scaled Spot Fleet /);
  });

  test('--dry-run --yes --json in dev: the report says dryRun, nothing confirmed, scaled or run', async () => {
    const clients = motoClients(moto.endpoint);
    const fixture = await deployEnvironment(clients, 'dev', { parts: ['Storage', 'Gpu', 'Vps'], capacity: 1 });
    const run = inProcessDeps(clients, env(), { isTTY: true, answer: 'dev' });
    expect(await runCli(['teardown', '--env', 'dev', '--dry-run', '--yes', '--json'], run.deps)).toBe(0);
    expect(run.prompts).toEqual([]);
    expect(run.stderr()).toContain('Will delete, in this order:\n  1. stack AiAssets-dev-Vps\n  2. stack AiAssets-dev-Gpu (its Spot Fleet is scaled to 0 first)\n');
    expect(run.stderr()).toMatch(/\ndry run: nothing changed\n$/);
    const report = JSON.parse(run.stdout()) as TeardownReport;
    expect(report).toMatchObject({
      dryRun: true,
      confirmed: false,
      fleetScaledToZero: false,
      cdk: null,
      completed: false,
      error: null,
      delete: { stacks: ['AiAssets-dev-Vps', 'AiAssets-dev-Gpu', 'AiAssets-dev-Storage'], buckets: [fixture.assetBucket, fixture.logBucket] },
    });
    expect(cdk.calls()).toEqual([]);
    expect(await fleetTarget(fixture.fleetId)).toBe(1);
    expect(await bucketPresence(clients.s3, fixture.assetBucket!)).toBe('exists');
  });
});

describe('teardown then redeploy (synthesized templates)', () => {
  // A resource that outlives its stack (DeletionPolicy Retain) with a fixed physical name makes the next
  // deploy of that stack fail with "already exists"; a retained KMS key bills $1 a month per teardown.
  const RETAINED = ['Retain', 'RetainExceptOnCreate'];
  type Resource = CfnTemplate['Resources'][string];
  const retained = (r: Resource) => RETAINED.includes(r.DeletionPolicy as string);
  /** Top-level name properties (LogGroupName, BucketName, Name, ...) that do not vary with the stack's id. */
  const fixedNames = (r: Resource) =>
    Object.entries(r.Properties ?? {})
      .filter(([key]) => /Name$/.test(key) && key !== 'DisplayName')
      .filter(([, value]) => !JSON.stringify(value).includes('"AWS::StackId"'))
      .map(([key, value]) => `${key}=${JSON.stringify(value)}`);

  /** The stacks teardown deletes: all, but the Storage stack in a retain environment. */
  const deletedStacks = (env: string) => {
    const result = synthesized(env);
    const retain = Object.values(result.templates).some((t) => Object.values(t.Resources).some((r) => r.Type === 'AWS::S3::Bucket' && retained(r)));
    return Object.entries(result.templates).filter(([name]) => !(retain && name.endsWith('-Storage')));
  };

  test.each(ENVS)('%s: no resource of a stack teardown deletes is retained under a fixed name', (env) => {
    const offenders = deletedStacks(env).flatMap(([stack, t]) =>
      Object.entries(t.Resources)
        .filter(([, r]) => retained(r) && fixedNames(r).length > 0)
        .map(([id, r]) => `${stack} ${id} ${r.Type} ${fixedNames(r).join(' ')}`),
    );
    expect(offenders).toEqual([]);
  });

  test.each(ENVS)('%s: no KMS key is retained (it holds no data once its topic is gone)', (env) => {
    const keys = Object.values(synthesized(env).templates).flatMap((t) => Object.values(t.Resources).filter((r) => r.Type === 'AWS::KMS::Key'));
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key.DeletionPolicy).toBe('Delete');
  });

  test('the GPU host log group is named per stack: /aiassets/<env>/gpu/<stack uuid>', () => {
    const gpu = synthesized('prod').templates['AiAssets-prod-Gpu'];
    const [host] = Object.values(gpu.Resources).filter((r) => r.Type === 'AWS::Logs::LogGroup' && JSON.stringify(r.Properties).includes('/aiassets/prod/gpu'));
    expect(host.DeletionPolicy).toBe('Retain');
    expect(host.Properties!.LogGroupName).toEqual({
      'Fn::Join': ['', ['/aiassets/prod/gpu/', { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] }]],
    });
  });

  test("teardown's \"Will keep\" names every type of resource that outlives a stack it deletes (prod)", () => {
    for (const [stack, t] of deletedStacks('prod')) {
      const part = TEARDOWN_ORDER.find((p) => stack.endsWith(`-${p}`))!;
      const types = [...new Set(Object.values(t.Resources).filter(retained).map((r) => r.Type))].sort();
      expect([stack, types.filter((type) => !(type in RETAINED_OF_DELETED_STACKS[part]))]).toEqual([stack, []]);
    }
  });
});
