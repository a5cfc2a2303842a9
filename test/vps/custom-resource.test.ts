import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadEnvironment } from '../../lib/config/load';
import { deriveSecrets } from '../../lib/vps/app-secrets';
import { renderBundle, requiredSecrets } from '../../lib/vps/bundle';
import { bundleSettingsFor } from '../../lib/vps/bundle-settings';
import type { VpsResourceProperties } from '../../lib/vps/custom-resource/properties';
import { motoEnv, startMoto, type MotoServer } from '../support/moto';
import { DockerRecorder, linkTarget } from './support-ssh/remote-fs';
import { startSshd, type SshdFixture } from './support-ssh/sshd';
import { TEST_GATEWAY_CREDENTIAL } from './support-compose/stack-on-disk';

// The CDK driver's Lambda handlers, end to end: Secrets Manager and S3 from moto,
// a real OpenSSH server on loopback, and the docker stand-in on its PATH.
let moto: MotoServer;
let sshd: SshdFixture;
let docker: DockerRecorder;
let handler: typeof import('../../assets/lambda/vps-deployment/index');
const saved = { ...process.env };
const SEED = 'seed-'.repeat(13);
const config = loadEnvironment('dev');
const settings = bundleSettingsFor(config);
const v1 = renderBundle(settings);
const v2 = renderBundle({ ...settings, hostnames: { ...settings.hostnames, sim: 'studio.dev.example.com' } });
let props: VpsResourceProperties;

beforeAll(async () => {
  [moto, sshd] = await Promise.all([startMoto(), startSshd()]);
  docker = new DockerRecorder(sshd.stubDir);
  Object.assign(process.env, motoEnv(moto.endpoint));
  handler = require('../../assets/lambda/vps-deployment/index');
  const sm = new SecretsManagerClient({});
  const key = await sm.send(new CreateSecretCommand({ Name: 'AiAssets/dev/vps-ssh-key', SecretString: sshd.clientKey }));
  const app = await sm.send(new CreateSecretCommand({ Name: 'app-secrets', SecretString: JSON.stringify({ seed: SEED }) }));
  // What the Gpu stack stores (lib/gpu-control.ts): the gateway's access key as JSON.
  const credential = await sm.send(
    new CreateSecretCommand({
      Name: 'AiAssets/dev/gateway-aws-credential',
      SecretString: JSON.stringify({ accessKeyId: TEST_GATEWAY_CREDENTIAL.GATEWAY_AWS_ACCESS_KEY_ID, secretAccessKey: TEST_GATEWAY_CREDENTIAL.GATEWAY_AWS_SECRET_ACCESS_KEY }),
    }),
  );
  const s3 = new S3Client({ forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: 'assets' }));
  for (const b of [v1, v2]) await s3.send(new PutObjectCommand({ Bucket: 'assets', Key: `${b.hash}.json`, Body: JSON.stringify(b) }));
  props = {
    AppName: 'AiAssets',
    EnvName: 'dev',
    Host: sshd.host,
    Port: String(sshd.port),
    User: sshd.username,
    HostKeySha256: sshd.fingerprint,
    BundleHash: v1.hash,
    BundleBucket: 'assets',
    BundleKey: `${v1.hash}.json`,
    SshKeySecretArn: key.ARN!,
    AppSecretsArn: app.ARN!,
    SecretNames: requiredSecrets(settings),
    GatewayCredentialSecretArn: credential.ARN!,
    BaseDir: sshd.baseDir,
    KeepReleases: '3',
    ConvergeTimeoutSeconds: '60',
    RemoveVolumesOnDelete: 'false',
  };
});

afterAll(async () => {
  process.env = saved;
  await Promise.all([moto?.stop(), sshd?.stop()]);
});

const envDir = () => path.join(sshd.baseDir, 'AiAssets', 'dev');

/**
 * The reason the Provider framework sends CloudFormation for a failed handler (framework.js,
 * invokeUserFunction): the message, a Logs line, then the stack lines after the first.
 */
const reasonOf = (e: Error): string => [e.message, '', 'Logs: /aws/lambda/AiAssets-dev-Vps-IsComplete0123456789AB', '', ...(e.stack ?? '').split('\n').slice(1)].join('\n');

test('a failure reason fits CloudFormation\'s 4,096-byte response, multi-byte text and all', () => {
  const long = new Error(`gate failed:\n${'ünïcödé log line → ✗\n'.repeat(400)}`);
  long.stack = `Error: ${long.message}\n    at deploy (deployer.ts:1:1)\n`.repeat(3);
  const e = handler.forCloudFormation(long);
  expect(Buffer.byteLength(reasonOf(e))).toBeLessThan(3000);
  expect(e.message.startsWith('gate failed:\nünïcödé log line')).toBe(true);
  expect(e.message.endsWith("... (the rest is in the function's CloudWatch log)")).toBe(true);
  expect(e.message).not.toContain('\uFFFD'); // no character cut in half
  const shortOne = handler.forCloudFormation(new Error('host key mismatch'));
  expect(reasonOf(shortOne)).toBe('host key mismatch\n\nLogs: /aws/lambda/AiAssets-dev-Vps-IsComplete0123456789AB\n');
});
const withBundle = (b: typeof v1): VpsResourceProperties => ({ ...props, BundleHash: b.hash, BundleKey: `${b.hash}.json` });

/** Runs onEvent, then isComplete until done, as the Provider framework's waiter does (bounded). */
async function provision(requestType: 'Create' | 'Update', p: VpsResourceProperties) {
  const started = await handler.onEvent({ RequestType: requestType, ResourceProperties: p, PhysicalResourceId: 'vps:AiAssets/dev' });
  for (let i = 0; i < 40; i += 1) {
    const done = await handler.isComplete({ RequestType: requestType, ResourceProperties: p, PhysicalResourceId: started.PhysicalResourceId });
    if (done.IsComplete) return { started, done };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('isComplete never completed');
}

test('create: uploads the release, pulls in the background, then deploys through the health gate', async () => {
  const { started, done } = await provision('Create', props);
  expect(started.PhysicalResourceId).toBe(`vps:AiAssets/dev@127.0.0.1:${sshd.port}`);
  expect(done.Data).toEqual({ Release: v1.hash, Action: 'deployed' });
  expect(linkTarget(path.join(envDir(), 'current'))).toBe(v1.hash);
  const env = path.join(envDir(), 'releases', v1.hash, '.env');
  expect(fs.statSync(env).mode & 0o777).toBe(0o600);
  const expected = deriveSecrets(SEED, requiredSecrets(settings));
  expect(fs.readFileSync(env, 'utf8')).toContain(`POSTGRES_PASSWORD='${expected.POSTGRES_PASSWORD}'`);
  expect(fs.readFileSync(env, 'utf8')).toContain(`GATEWAY_AWS_SECRET_ACCESS_KEY='${TEST_GATEWAY_CREDENTIAL.GATEWAY_AWS_SECRET_ACCESS_KEY}'`);
  expect(fs.readFileSync(path.join(envDir(), 'releases', v1.hash, 'docker-compose.yml'), 'utf8')).toContain('n8n.dev.example.com');
  const calls = docker.calls().map((c) => c.args);
  expect(calls.filter((a) => a.endsWith(' pull')).length).toBeGreaterThanOrEqual(1);
  expect(calls.some((a) => a.includes(' up -d --remove-orphans --wait'))).toBe(true);
  // Pulled once, in the background; the gated deploy does not pull again.
  expect(calls.filter((a) => a.endsWith(' pull'))).toHaveLength(1);
  expect(fs.readFileSync(path.join(envDir(), '.owner'), 'utf8')).toBe(`${started.PhysicalResourceId}\n`);
});

/** Polls isComplete, as the waiter does, until it fails; returns that error (bounded). */
async function failure(requestType: 'Create' | 'Update', p: VpsResourceProperties): Promise<Error> {
  for (let i = 0; i < 40; i += 1) {
    try {
      const done = await handler.isComplete({ RequestType: requestType, ResourceProperties: p });
      if (done.IsComplete) throw new Error('the failing release completed');
    } catch (e) {
      return e as Error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('isComplete never failed');
}

test('an update whose health gate fails leaves the previous release serving and fails the resource', async () => {
  docker.reset();
  docker.control('fail-up', v2.hash);
  await handler.onEvent({ RequestType: 'Update', ResourceProperties: withBundle(v2), PhysicalResourceId: 'x' });
  const error = await failure('Update', withBundle(v2));
  expect(error?.message).toContain('failed the health gate');
  expect(error?.message).not.toContain(deriveSecrets(SEED, ['POSTGRES_PASSWORD']).POSTGRES_PASSWORD);
  expect(Buffer.byteLength(reasonOf(error!))).toBeLessThan(3000);
  expect(linkTarget(path.join(envDir(), 'current'))).toBe(v1.hash);
  expect(docker.projectState('aiassets-dev')).toBe(`healthy:${v1.hash}`);
});

test("CloudFormation's rollback re-applies the previous bundle: a no-op on the VPS that needs no registry", async () => {
  docker.reset();
  docker.control('fail-pull', '*'); // the outage that may have failed the update
  const { done } = await provision('Update', props);
  expect(done.Data).toEqual({ Release: v1.hash, Action: 'unchanged' });
  expect(docker.calls().some((c) => c.args.includes(' up ') || c.args.endsWith(' pull'))).toBe(false);
});

test('an app secret that is not JSON fails with its ARN only, never a piece of its value', async () => {
  const sm = new SecretsManagerClient({});
  const plain = 'Zq8v3XwPseNotJsonButASecretValue0123456789';
  const bad = await sm.send(new CreateSecretCommand({ Name: 'plain-app-secret', SecretString: plain }));
  const failure = await handler.onEvent({ RequestType: 'Update', ResourceProperties: { ...props, AppSecretsArn: bad.ARN! } }).catch((e: Error) => e);
  expect((failure as Error).message).toBe(`the app secret ${bad.ARN} is not a JSON object like {"seed": "..."}`);
  expect(`${(failure as Error).message}${(failure as Error).stack}`).not.toContain(plain.slice(0, 5));
});

test('a wrong host key is refused before anything is written', async () => {
  docker.reset();
  const before = fs.readdirSync(path.join(envDir(), 'releases')).sort();
  await expect(handler.onEvent({ RequestType: 'Update', ResourceProperties: { ...withBundle(v2), HostKeySha256: sshd.otherFingerprint } })).rejects.toThrow(
    /host key/i,
  );
  expect(fs.readdirSync(path.join(envDir(), 'releases')).sort()).toEqual(before);
  expect(docker.calls()).toEqual([]);
});

test('a delete by a resource that did not deploy what runs there leaves it running', async () => {
  // E.g. the old resource after Host changed from the IP to a DNS name of the same VPS.
  docker.reset();
  const result = await handler.onEvent({ RequestType: 'Delete', ResourceProperties: props, PhysicalResourceId: `vps:AiAssets/dev@10.0.0.9:22` });
  expect(result.PhysicalResourceId).toBe('vps:AiAssets/dev@10.0.0.9:22');
  expect(docker.calls().some((c) => c.args.includes(' down'))).toBe(false);
  expect(linkTarget(path.join(envDir(), 'current'))).toBe(v1.hash);
  expect(docker.projectState('aiassets-dev')).toBe(`healthy:${v1.hash}`);
});

test('delete tears the stack down and keeps named volumes unless the removal policy is destroy', async () => {
  docker.reset();
  await handler.onEvent({ RequestType: 'Delete', ResourceProperties: props, PhysicalResourceId: `vps:AiAssets/dev@127.0.0.1:${sshd.port}` });
  const down = docker.calls().map((c) => c.args).filter((a) => a.includes(' down'));
  expect(down).toEqual([expect.stringMatching(/down --remove-orphans$/)]);
  // Releases, owner record and pull logs all gone, so the emptied environment dir is removed too.
  expect(fs.existsSync(envDir())).toBe(false);
  expect(await handler.isComplete({ RequestType: 'Delete', ResourceProperties: props })).toEqual({ IsComplete: true });
});

test("a failed first create is its resource's own: CloudFormation's rollback delete removes it, volumes too where the policy is destroy", async () => {
  docker.reset();
  docker.control('fail-up', v1.hash);
  const p = { ...props, RemoveVolumesOnDelete: 'true' };
  const started = await handler.onEvent({ RequestType: 'Create', ResourceProperties: p });
  expect((await failure('Create', p)).message).toContain('failed the health gate');
  expect(fs.existsSync(path.join(envDir(), 'current'))).toBe(false); // nothing claims to be current
  expect(fs.readFileSync(path.join(envDir(), '.owner'), 'utf8')).toBe(`${started.PhysicalResourceId}\n`);

  docker.reset();
  await handler.onEvent({ RequestType: 'Delete', ResourceProperties: p, PhysicalResourceId: started.PhysicalResourceId });
  expect(docker.calls().map((c) => c.args).filter((a) => a.includes(' down'))).toEqual([expect.stringMatching(/down --remove-orphans --volumes$/)]);
  expect(fs.existsSync(envDir())).toBe(false);
});
