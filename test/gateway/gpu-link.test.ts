/**
 * The gateway's SSH link (assets/gateway/gpu-link.ts) against a real OpenSSH sshd on 127.0.0.1
 * set up as a GPU box sets itself up: the gateway's key (link-key.ts) registered in SSM (moto),
 * the box's link-access.sh run against it (the authorized_keys line it writes, the host key tag
 * it writes) and its sshd drop-in included. ComfyUI is the gateway tests' stand-in (written from
 * ComfyUI v0.3.64 server.py), listening on 127.0.0.1 as on the box's loopback.
 */
import { DescribeImagesCommand, DescribeTagsCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'ssh2';
import { WebSocket } from 'ws';
import { SshUpstream, type SshUpstreamOptions } from '../../assets/gateway/gpu-link';
import { loadOrCreateLinkKey, type LinkKey } from '../../assets/gateway/link-key';
import { HOST_KEY_TAG, type ControlInstance } from '../../lib/gpu-control/protocol';
import { FakeServer, LINK_KEY_PARAMETER, SCRIPTS } from '../gpu-scripts/harness';
import { LinkBox } from '../gpu-scripts/link-box';
import { freePort, motoEnv, startMoto } from '../support/moto';
import { startSshd, type SshdFixture } from '../vps/support-ssh/sshd';
import { postPrompt, request, waitFor, workflow } from './support/comfy-api-client';
import { ComfyUiStandIn } from './support/comfyui-stand-in';

let sshd: SshdFixture;
let comfy: ComfyUiStandIn;
let comfyPort: number;
let key: LinkKey;
let tmp: string;
/** What the box tagged itself with (read back from EC2): the fingerprint the gateway pins. */
let taggedFingerprint: string;
const upstreams: SshUpstream[] = [];
const logs: string[] = [];

/** Counts lines of the sshd log matching `pattern`. */
const sshdCount = (pattern: RegExp) => sshd.log().split('\n').filter((line) => pattern.test(line)).length;

/** The box's sshd drop-in, for the fixture's login user instead of comfyui-link. */
function includeBoxDropIn(): void {
  const dropIn = path.join(tmp, 'comfyui-link.conf');
  const text = fs.readFileSync(path.join(SCRIPTS, 'sshd-comfyui-link.conf'), 'utf8');
  expect(text).toContain('\nMatch User comfyui-link\n');
  fs.writeFileSync(dropIn, text.replace('\nMatch User comfyui-link\n', `\nMatch User ${sshd.username}\n`));
  // startSshd's config file; sshd re-reads it on SIGHUP (it re-executes itself, same pid and port).
  fs.appendFileSync(path.join(sshd.dir, 'sshd_config'), `Include ${dropIn}\n`);
}

async function reloadSshd(): Promise<void> {
  const listening = () => sshdCount(/Server listening on 127\.0\.0\.1 port/);
  const before = listening();
  process.kill(sshd.pid, 'SIGHUP');
  await waitFor('sshd to listen again with the new config', () => (listening() > before ? true : undefined), 10_000, 20);
}

/** Sets the box up as on EC2: link-access.sh with the gateway's key in SSM and sshd's host key; returns the tag it wrote. */
async function setUpBox(): Promise<string> {
  const moto = await startMoto();
  const imds = new FakeServer();
  const box = new LinkBox({ comfyuiPort: comfyPort, hostKey: path.join(sshd.dir, 'ssh_host_ed25519_key.pub') });
  try {
    await imds.start();
    const clientOf = { endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const ec2 = new EC2Client(clientOf);
    const ssm = new SSMClient(clientOf);
    const ami = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    imds.instanceId = (await ec2.send(new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1 }))).Instances![0].InstanceId!;
    await ssm.send(new PutParameterCommand({ Name: LINK_KEY_PARAMETER, Value: key.publicKey, Type: 'String', Overwrite: true }));
    const result = await box.run({ ...motoEnv(moto.endpoint), IMDS_URL: imds.url });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    fs.writeFileSync(path.join(sshd.dir, 'authorized_keys'), box.authorizedKeys()!);
    const tags = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [imds.instanceId] }, { Name: 'key', Values: [HOST_KEY_TAG] }] }));
    ec2.destroy();
    ssm.destroy();
    return tags.Tags![0].Value!;
  } finally {
    box.cleanup();
    await imds.close();
    await moto.stop();
  }
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-link-'));
  key = loadOrCreateLinkKey(path.join(tmp, 'gateway', 'gpu-link-key'));
  comfy = new ComfyUiStandIn({ msPerPrompt: 50, steps: 2 });
  comfyPort = Number(new URL(await comfy.start()).port);
  sshd = await startSshd();
  taggedFingerprint = await setUpBox();
  includeBoxDropIn();
  await reloadSshd();
}, 180_000);

afterAll(async () => {
  await Promise.all(upstreams.map((u) => u.close()));
  await sshd?.stop();
  await comfy?.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function instance(id: string, overrides: Partial<ControlInstance> = {}): ControlInstance {
  return {
    instanceId: id,
    instanceType: 'g4dn.xlarge',
    state: 'running',
    publicIp: '127.0.0.1',
    privateIp: '10.40.0.10',
    launchTime: '2026-01-01T00:00:00.000Z',
    ready: true,
    leaving: false,
    busyUntil: null,
    hostKeySha256: taggedFingerprint,
    ...overrides,
  };
}

function upstream(options: Partial<SshUpstreamOptions> = {}): SshUpstream {
  const u = new SshUpstream({
    privateKey: key.privateKey,
    username: sshd.username,
    sshPort: sshd.port,
    remotePort: comfyPort,
    readyTimeoutMs: 5_000,
    log: (line) => logs.push(line),
    ...options,
  });
  upstreams.push(u);
  return u;
}

/** A raw SSH session with the gateway's key, to try what the link user must not do. */
function rawSession(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: sshd.port, username: sshd.username, privateKey: key.privateKey, readyTimeout: 5_000 });
  });
}

test('the box tagged the fingerprint of the host key sshd presents', () => {
  expect(taggedFingerprint).toBe(sshd.fingerprint);
});

test("HTTP (REST, a large /view) and a WebSocket reach ComfyUI through one SSH connection per instance", async () => {
  const u = upstream();
  const logins = sshdCount(/Accepted publickey/);
  const base = await u.baseUrl(instance('i-0000000000000http'));
  expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(base).not.toBe(`http://127.0.0.1:${comfyPort}`);

  const stats = await request<{ system: { comfyui_version: string } }>(`${base}/system_stats`);
  expect(stats.status).toBe(200);
  expect(stats.body.system.comfyui_version).toBe('0.3.64');

  // A prompt's whole lifecycle: the WebSocket first (as a ComfyUI client does), then POST /prompt.
  const ws = new WebSocket(`${base.replace('http:', 'ws:')}/ws?clientId=link-client`);
  const messages: Array<{ type: string; data: Record<string, unknown> }> = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const posted = await postPrompt(base, { prompt: workflow(), client_id: 'link-client', prompt_id: 'link-prompt' });
  expect(posted.status).toBe(200);
  expect(posted.body.prompt_id).toBe('link-prompt');
  await waitFor('execution_success over the linked WebSocket', () => (messages.some((m) => m.type === 'execution_success') ? true : undefined), 10_000, 20);
  expect(messages[0]).toEqual({ type: 'status', data: { status: { exec_info: { queue_remaining: 0 } }, sid: 'link-client' } });
  ws.close();

  // 8 MB, byte for byte, and 20 requests at once over the same connection.
  const big = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
  comfy.putFile('output', '', 'big.png', big);
  const view = await fetch(`${base}/view?filename=big.png&type=output`);
  const body = Buffer.from(await view.arrayBuffer());
  expect(createHash('sha256').update(body).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  const answers = await Promise.all(Array.from({ length: 20 }, () => request(`${base}/queue`)));
  expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));

  expect(await u.baseUrl(instance('i-0000000000000http'))).toBe(base);
  expect(sshdCount(/Accepted publickey/) - logins).toBe(1);
});

test('a host key other than the tagged one is refused during key exchange: nothing is authenticated', async () => {
  const u = upstream();
  const logins = sshdCount(/Accepted publickey|Failed publickey|Postponed publickey/);
  await expect(u.baseUrl(instance('i-00000000000wrongkey', { hostKeySha256: sshd.otherFingerprint }))).rejects.toThrow(
    `refusing the SSH link to i-00000000000wrongkey at ${sshd.username}@127.0.0.1:${sshd.port}: its host key is ${sshd.fingerprint}, but the box tagged ${HOST_KEY_TAG}=${sshd.otherFingerprint}`,
  );
  expect(sshdCount(/Accepted publickey|Failed publickey|Postponed publickey/)).toBe(logins);
});

test('no host key tag yet, or a malformed one: not reachable, and no connection is even attempted', async () => {
  const u = upstream();
  const connections = sshdCount(/Connection from/);
  await expect(u.baseUrl(instance('i-000000000000notag', { hostKeySha256: null }))).rejects.toThrow(
    `instance i-000000000000notag has not tagged its SSH host key (${HOST_KEY_TAG}) yet: not reachable until it does`,
  );
  await expect(u.baseUrl(instance('i-00000000000badtag', { hostKeySha256: 'MD5:00:11' }))).rejects.toThrow(
    `instance i-00000000000badtag has ${HOST_KEY_TAG} "MD5:00:11": allowed is SHA256:<43 base64 characters>`,
  );
  await expect(u.baseUrl(instance('i-0000000000000noip', { publicIp: null }))).rejects.toThrow('instance i-0000000000000noip has no public IP address');
  expect(sshdCount(/Connection from/)).toBe(connections);
});

describe('what the link user may not do (the key line link-access.sh wrote, the sshd drop-in)', () => {
  let session: Client;
  beforeAll(async () => {
    session = await rawSession();
  });
  afterAll(() => session.end());

  const forwardOut = (port: number) =>
    new Promise<void>((resolve, reject) => session.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, channel) => (err ? reject(err) : (channel.close(), resolve()))));

  test('a forward to ComfyUI works; to any other port on the box sshd refuses (permitopen)', async () => {
    await forwardOut(comfyPort);
    let reached = false;
    const other = net.createServer((socket) => ((reached = true), socket.destroy()));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      await expect(forwardOut((other.address() as net.AddressInfo).port)).rejects.toThrow(/administratively prohibited|open failed/);
      await expect(forwardOut(22)).rejects.toThrow(/administratively prohibited|open failed/);
      expect(reached).toBe(false);
      expect(sshd.log()).toMatch(/but the request was denied/);
    } finally {
      other.close();
    }
  });

  test('a Unix socket on the box is refused', async () => {
    const socketPath = path.join(tmp, 'box.sock');
    let reached = false;
    const unix = net.createServer((socket) => ((reached = true), socket.destroy()));
    await new Promise<void>((resolve) => unix.listen(socketPath, resolve));
    try {
      await expect(new Promise((resolve, reject) => session.openssh_forwardOutStreamLocal(socketPath, (err) => (err ? reject(err) : resolve(undefined))))).rejects.toThrow();
      expect(reached).toBe(false);
    } finally {
      unix.close();
    }
  });

  test('a listener on the box (ssh -R) is refused (the key line alone would allow it: the drop-in)', async () => {
    const port = await freePort();
    await expect(new Promise((resolve, reject) => session.forwardIn('127.0.0.1', port, (err) => (err ? reject(err) : resolve(undefined))))).rejects.toThrow();
  });

  test("a command or a shell runs nologin, whatever the account's shell (the drop-in)", async () => {
    const output = await new Promise<string>((resolve, reject) =>
      session.exec('id', (err, stream) => {
        if (err) return reject(err);
        let text = '';
        stream.on('data', (d: Buffer) => (text += d.toString()));
        stream.stderr.on('data', (d: Buffer) => (text += d.toString()));
        stream.on('close', () => resolve(text));
      }),
    );
    expect(output).not.toContain('uid=');
    expect(output).toMatch(/not available/);
  });
});

test('killing the sshd session mid-request fails the request at once; the next baseUrl() reopens the link (same base URL)', async () => {
  const u = upstream();
  const id = 'i-0000000000000kill';
  const base = await u.baseUrl(instance(id));
  const { port } = new URL(base);
  // In flight: a WebSocket, and an HTTP request whose headers ComfyUI is still waiting for.
  const ws = new WebSocket(`${base.replace('http:', 'ws:')}/ws?clientId=kill-client`);
  await new Promise((resolve, reject) => ws.once('message', resolve).once('error', reject));
  const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const pending = net.connect(Number(port), '127.0.0.1');
  pending.on('error', () => undefined);
  await new Promise((resolve) => pending.once('connect', resolve));
  pending.write('GET /system_stats HTTP/1.1\r\nHost: comfyui\r\n');
  const pendingClosed = new Promise<void>((resolve) => pending.once('close', () => resolve()));

  expect(sshd.cutSessions().length).toBeGreaterThan(0);
  expect(await wsClosed).toBe(1006);
  await pendingClosed;
  expect(logs.some((line) => line.startsWith(`link to ${id} (127.0.0.1) lost:`))).toBe(true);

  const logins = sshdCount(/Accepted publickey/);
  expect(await u.baseUrl(instance(id))).toBe(base);
  expect(sshdCount(/Accepted publickey/)).toBe(logins + 1);
  expect((await request(`${base}/system_stats`)).status).toBe(200);
});

test('a box that stops answering is noticed by the keepalive; the next baseUrl() reopens the link', async () => {
  const u = upstream({ keepaliveIntervalMs: 200, keepaliveCountMax: 2 });
  const id = 'i-00000000keepalive';
  const base = await u.baseUrl(instance(id));
  // The session's processes are one process group per connection (sshd calls setsid): stop them all.
  const sessions = execFileSync('pgrep', ['-P', String(sshd.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  for (const pid of sessions) process.kill(-pid, 'SIGSTOP');
  try {
    await waitFor('the keepalive to give up on the stopped box', () => (logs.some((l) => l === `link to ${id} (127.0.0.1) lost: Keepalive timeout; the next request reopens it`) ? true : undefined), 15_000, 20);
  } finally {
    for (const pid of sessions) process.kill(-pid, 'SIGKILL');
  }
  expect(await u.baseUrl(instance(id))).toBe(base);
  expect((await request(`${base}/system_stats`)).status).toBe(200);
});

test('an unreachable box fails within readyTimeout; a refused port at once', async () => {
  const u = upstream({ readyTimeoutMs: 1_000 });
  // The listener stopped: the kernel completes the TCP handshake, no SSH banner ever comes.
  sshd.pause();
  const started = Date.now();
  try {
    await expect(u.baseUrl(instance('i-0000000000silent'))).rejects.toThrow(/could not open the SSH link to i-0000000000silent .*: Timed out while waiting for handshake/);
  } finally {
    sshd.resume();
  }
  expect(Date.now() - started).toBeLessThan(1_000 + 2_000);

  const closed = await freePort();
  await expect(upstream({ sshPort: closed }).baseUrl(instance('i-0000000000refused'))).rejects.toThrow(/ECONNREFUSED/);
});

test('retain() closes the links of instances gone; the others keep working', async () => {
  const u = upstream();
  const keep = await u.baseUrl(instance('i-000000000000keep'));
  const gone = await u.baseUrl(instance('i-000000000000gone'));
  expect(gone).not.toBe(keep);
  u.retain(['i-000000000000keep']);
  await waitFor('the gone link to stop listening', () =>
    new Promise<true | undefined>((resolve) => {
      const probe = http.get(`${gone}/system_stats`, () => resolve(undefined));
      probe.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? true : undefined));
    }),
  );
  expect((await request(`${keep}/system_stats`)).status).toBe(200);

  await u.close();
  await expect(fetch(`${keep}/system_stats`)).rejects.toThrow();
});

test('the link key: 0600, the same pair on the next start, a readable copy refused', () => {
  const file = path.join(tmp, 'gateway', 'gpu-link-key');
  expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');
  expect(key.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+ comfyui-gateway$/);
  expect(key.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  expect(loadOrCreateLinkKey(file)).toEqual(key);
  const copy = path.join(tmp, 'copy-key');
  fs.copyFileSync(file, copy);
  fs.chmodSync(copy, 0o644);
  expect(() => loadOrCreateLinkKey(copy)).toThrow(`link key ${copy} has mode 0644, so other users may read it: allowed is 0600 (owner only)`);
});
