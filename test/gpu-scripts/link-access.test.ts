/**
 * The box's side of the gateway link: the real link-access.sh in a temp root (./link-box.ts), the
 * real AWS CLI v1 against moto's SSM and EC2, IMDSv2 from the harness. The gateway's key comes
 * from the gateway's own key maker (assets/gateway/link-key.ts).
 */
import { CreateTagsCommand, DescribeImagesCommand, DescribeTagsCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadOrCreateLinkKey } from '../../assets/gateway/link-key';
import { HOST_KEY_TAG } from '../../lib/gpu-control/protocol';
import { motoEnv, useMoto } from '../support/moto';
import { FakeServer, LINK_KEY_PARAMETER } from './harness';
import { AUTHORIZED_KEYS, fingerprintOf, LinkBox } from './link-box';

const moto = useMoto();
const imds = new FakeServer();
let ec2: EC2Client;
let ssm: SSMClient;
let box: LinkBox;

beforeAll(() => imds.start());
afterAll(() => imds.close());
beforeEach(async () => {
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  ec2 = new EC2Client({ endpoint: moto().endpoint, region: 'us-east-1', credentials });
  ssm = new SSMClient({ endpoint: moto().endpoint, region: 'us-east-1', credentials });
  const ami = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  const run = await ec2.send(new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1, InstanceType: 'g4dn.xlarge' }));
  imds.reset();
  imds.instanceId = run.Instances![0].InstanceId!;
  box = new LinkBox();
});
afterEach(() => {
  ec2.destroy();
  ssm.destroy();
  box.cleanup();
});
jest.setTimeout(300_000);

const setParameter = (value: string) => ssm.send(new PutParameterCommand({ Name: LINK_KEY_PARAMETER, Value: value, Type: 'String', Overwrite: true }));
const linkAccess = () => box.run({ ...motoEnv(moto().endpoint), IMDS_URL: imds.url });
const gatewayKey = (name: string) => loadOrCreateLinkKey(box.sb.path(name)).publicKey;
/** The line the gateway's key gets: forwarding to ComfyUI's loopback port only. */
const keyLine = (publicKey: string) => `restrict,port-forwarding,permitopen="127.0.0.1:8188" ${publicKey.split(' ').slice(0, 2).join(' ')} comfyui-gateway\n`;

async function hostKeyTag(): Promise<string | undefined> {
  const out = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [imds.instanceId] }, { Name: 'key', Values: [HOST_KEY_TAG] }] }));
  return out.Tags?.[0]?.Value;
}

function expectOk(result: { code: number | null; stderr: string }) {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
}

test('first boot, no key registered yet: a no-shell, no-password user that accepts no key, and the host key tagged', async () => {
  await setParameter('unset');
  const result = await linkAccess();
  expectOk(result);
  const passwd = fs.readFileSync(path.join(box.root, 'etc/passwd'), 'utf8');
  expect(passwd).toMatch(/^comfyui-link:x:\d+:\d+::\/var\/lib\/comfyui-link:\/usr\/sbin\/nologin$/m);
  expect(fs.readFileSync(path.join(box.root, 'etc/shadow'), 'utf8')).toMatch(/^comfyui-link:\*:/m);
  expect(box.authorizedKeys()).toBe('');
  expect(result.stdout).toContain(`comfyui-link authorizes no key: no gateway key registered yet (${LINK_KEY_PARAMETER} is 'unset')`);
  // The fingerprint as ssh-keygen -lf prints it, on this instance.
  expect(await hostKeyTag()).toBe(fingerprintOf(box.hostKey));
  expect(result.stdout).toContain(`tagged ${imds.instanceId} ${HOST_KEY_TAG}=${fingerprintOf(box.hostKey)}`);
});

test("the gateway's key is authorized for forwarding to ComfyUI only; an unchanged key is not rewritten, the tag not repeated", async () => {
  const publicKey = gatewayKey('gateway-key');
  await setParameter(publicKey);
  const first = await linkAccess();
  expectOk(first);
  expect(box.authorizedKeys()).toBe(keyLine(publicKey));
  expect(first.stdout).toMatch(/comfyui-link authorizes gateway key SHA256:[A-Za-z0-9+/]{43} from /);
  // Root owns the file and its folders; the link user can read but not change them.
  const file = path.join(box.root, AUTHORIZED_KEYS);
  expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('644');
  for (const dir of [path.dirname(file), path.dirname(path.dirname(file))]) expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe('755');

  const inode = fs.statSync(file).ino;
  // A peer wrote the tag meanwhile: this boot has tagged already and does not write it again.
  await ec2.send(new CreateTagsCommand({ Resources: [imds.instanceId], Tags: [{ Key: HOST_KEY_TAG, Value: 'marker' }] }));
  const second = await linkAccess();
  expectOk(second);
  expect(second.stdout).toBe('');
  expect(fs.statSync(file).ino).toBe(inode);
  expect(await hostKeyTag()).toBe('marker');
});

test('a new key replaces the old one atomically; `unset` again removes it', async () => {
  const oldKey = gatewayKey('old-key');
  const newKey = gatewayKey('new-key');
  await setParameter(oldKey);
  expectOk(await linkAccess());
  await setParameter(newKey);
  expectOk(await linkAccess());
  expect(box.authorizedKeys()).toBe(keyLine(newKey));
  expect(fs.existsSync(path.join(box.root, `${AUTHORIZED_KEYS}.new`))).toBe(false);
  await setParameter('unset');
  const result = await linkAccess();
  expectOk(result);
  expect(box.authorizedKeys()).toBe('');
  expect(result.stdout).toContain('comfyui-link authorizes no key');
});

test('a missing parameter means no key, logged', async () => {
  await ssm.send(new DeleteParameterCommand({ Name: LINK_KEY_PARAMETER })).catch(() => undefined);
  const result = await linkAccess();
  expectOk(result);
  expect(box.authorizedKeys()).toBe('');
  expect(result.stdout).toContain(`comfyui-link authorizes no key: ${LINK_KEY_PARAMETER} does not exist`);
});

describe('a parameter that is not one ssh-ed25519 key authorizes nothing', () => {
  const valid = () => gatewayKey('gateway-key').split(' ').slice(0, 2).join(' ');
  test.each([
    ['another key type', () => 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 gateway'],
    ['key options smuggled in front', () => `command="/bin/sh" ${valid()}`],
    ['a second key on a second line', () => `${valid()} gateway\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA8DreaWV2tXkMp3AYjVKOGnn2D9e2W7129TchNs5J other`],
    ['base64 that is no key', () => 'ssh-ed25519 AAAAbm90IGEga2V5 gateway'],
  ])('%s', async (_name, value) => {
    await setParameter(value());
    const result = await linkAccess();
    expectOk(result);
    expect(box.authorizedKeys()).toBe('');
    expect(result.stdout).toContain(`does not hold an ssh-ed25519 public key (allowed: 'unset' or one 'ssh-ed25519 AAAA...' line)`);
  });
});

test('SSM unreachable: the current key stays, the run fails (the next minute retries), the tag is still written', async () => {
  const publicKey = gatewayKey('gateway-key');
  await setParameter(publicKey);
  expectOk(await linkAccess());
  fs.rmSync(box.sb.path('run'), { recursive: true });
  await ec2.send(new CreateTagsCommand({ Resources: [imds.instanceId], Tags: [{ Key: HOST_KEY_TAG, Value: 'stale' }] }));
  // SSM on a closed port, EC2 still on moto.
  const result = await box.run({ ...motoEnv(moto().endpoint), AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1', IMDS_URL: imds.url });
  expect(result.code).toBe(1);
  expect(result.stdout).toContain(`error: could not read ${LINK_KEY_PARAMETER}`);
  expect(box.authorizedKeys()).toBe(keyLine(publicKey));
  expect(await hostKeyTag()).toBe(fingerprintOf(box.hostKey));
});

test('IMDS unreachable: the key is still kept current, the run fails so the tag is retried', async () => {
  await setParameter(gatewayKey('gateway-key'));
  const result = await box.run({ ...motoEnv(moto().endpoint), IMDS_URL: 'http://127.0.0.1:9' });
  expect(result.code).toBe(1);
  expect(result.stdout).toContain('could not read the instance id from IMDS; host key not tagged');
  expect(box.authorizedKeys()).toMatch(/^restrict,port-forwarding,/);
  expect(await hostKeyTag()).toBeUndefined();
});
