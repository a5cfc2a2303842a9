/**
 * cloudwatch-agent.sh: the pinned agent package from a loopback stand-in of AWS's download bucket
 * (the paths of the CloudWatch User Guide: `<bucket>/ubuntu/amd64/<version>/amazon-cloudwatch-agent.deb`
 * with a detached `.sig` beside it and the signing key at `<bucket>/assets/amazon-cloudwatch-agent.gpg`),
 * verified by the real GnuPG. Test keys stand in for AWS's key; the pinned fingerprint is overridden to
 * the test key's, exactly as the script compares it. dpkg and the agent's ctl are recorded stand-ins.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { envFile, run, Sandbox, SCRIPTS } from './harness';

const SCRIPT = path.join(SCRIPTS, 'cloudwatch-agent.sh');
const VERSION = '1.300062.0b1304';

interface Key {
  home: string;
  fingerprint: string;
  armored: string;
}

function gpg(home: string, args: string[], input?: Buffer | string): { stdout: string; status: number | null } {
  const result = spawnSync('gpg', ['--batch', '--homedir', home, ...args], { input, encoding: 'utf8' });
  return { stdout: result.stdout, status: result.status };
}

function makeKey(name: string): Key {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cwagent-key-'));
  fs.chmodSync(home, 0o700);
  expect(gpg(home, ['--passphrase', '', '--quick-gen-key', `${name} <${name}@example.com>`, 'ed25519', 'sign', 'never']).status).toBe(0);
  const fingerprint = gpg(home, ['--with-colons', '--fingerprint']).stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9];
  return { home, fingerprint, armored: gpg(home, ['--armor', '--export']).stdout };
}

function sign(key: Key, file: string): Buffer {
  const sig = `${file}.${path.basename(key.home)}.sig`;
  expect(spawnSync('gpg', ['--batch', '--homedir', key.home, '--yes', '--output', sig, '--detach-sign', file]).status).toBe(0);
  return fs.readFileSync(sig);
}

let aws: Key;
let attacker: Key;
let deb: string;
const files = new Map<string, Buffer | number>();
const hits: string[] = [];
const server = http.createServer((req, res) => {
  hits.push(req.url ?? '');
  const body = files.get(req.url ?? '');
  if (typeof body === 'number') return void res.writeHead(body).end();
  if (!body) return void res.writeHead(404).end('NoSuchKey');
  res.writeHead(200).end(body);
});

beforeAll(async () => {
  aws = makeKey('aws');
  attacker = makeKey('attacker');
  deb = path.join(aws.home, 'amazon-cloudwatch-agent.deb');
  fs.writeFileSync(deb, `!<arch>\ndebian-binary agent ${VERSION}\n`);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  for (const key of [aws, attacker]) fs.rmSync(key.home, { recursive: true, force: true });
});

let sb: Sandbox;
beforeEach(() => {
  hits.length = 0;
  files.clear();
  files.set('/assets/amazon-cloudwatch-agent.gpg', Buffer.from(aws.armored));
  files.set(`/ubuntu/amd64/${VERSION}/amazon-cloudwatch-agent.deb`, fs.readFileSync(deb));
  files.set(`/ubuntu/amd64/${VERSION}/amazon-cloudwatch-agent.deb.sig`, sign(aws, deb));
  sb = new Sandbox();
  sb.stub('dpkg', 'echo "$AGENT_VERSION" >"$AGENT_VERSION_FILE"');
  sb.stub('amazon-cloudwatch-agent-ctl');
});
afterEach(() => sb.cleanup());

function start() {
  const env = sb.env({
    COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(8188)),
    AGENT_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    AGENT_KEY_FINGERPRINT: aws.fingerprint,
    AGENT_CTL: path.join(sb.bin, 'amazon-cloudwatch-agent-ctl'),
    AGENT_VERSION_FILE: sb.path('CWAGENT_VERSION'),
    AGENT_CONFIG: '/opt/aws/amazon-cloudwatch-agent/etc/comfyui-agent.json',
    RETRY_SLEEP_SECONDS: '0',
  });
  return run(SCRIPT, env, 60_000);
}

const installs = () => sb.calls('dpkg').map((c) => c.args);
const loads = () => sb.calls('amazon-cloudwatch-agent-ctl').map((c) => c.args);

test('installs the pinned version after checking its signature against the pinned key, then loads our config', async () => {
  const result = await start();
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(installs()).toEqual([['-i', expect.stringMatching(/agent\.deb$/)]]);
  expect(loads()).toEqual([['-a', 'fetch-config', '-m', 'ec2', '-s', '-c', 'file:/opt/aws/amazon-cloudwatch-agent/etc/comfyui-agent.json']]);
  expect(hits).toContain(`/ubuntu/amd64/${VERSION}/amazon-cloudwatch-agent.deb`);
});

test('a package signed by another key is refused, even when the key file also carries the pinned key', async () => {
  files.set('/assets/amazon-cloudwatch-agent.gpg', Buffer.from(aws.armored + attacker.armored));
  files.set(`/ubuntu/amd64/${VERSION}/amazon-cloudwatch-agent.deb.sig`, sign(attacker, deb));
  const result = await start();
  expect(result.code).not.toBe(0);
  expect(result.stdout).toContain(`is not signed by the pinned key ${aws.fingerprint} (signer: '${attacker.fingerprint}')`);
  expect(installs()).toEqual([]);
  expect(loads()).toEqual([]);
});

test('a package that does not match its signature is refused', async () => {
  files.set(`/ubuntu/amd64/${VERSION}/amazon-cloudwatch-agent.deb`, Buffer.from('tampered'));
  const result = await start();
  expect(result.code).not.toBe(0);
  expect(result.stdout).toContain("(signer: 'none')");
  expect(installs()).toEqual([]);
});

test('the pinned version already installed: nothing is downloaded, the config is loaded', async () => {
  fs.writeFileSync(sb.path('CWAGENT_VERSION'), `${VERSION}\n`);
  const result = await start();
  expect(result.code).toBe(0);
  expect(hits).toEqual([]);
  expect(loads()).toHaveLength(1);
});

test('a download that keeps failing is tried three times, then the unit fails without installing', async () => {
  files.set(`/ubuntu/amd64/${VERSION}/amazon-cloudwatch-agent.deb`, 503);
  const result = await start();
  expect(result.code).not.toBe(0);
  expect(hits.filter((h) => h.endsWith('.deb')).length).toBeGreaterThanOrEqual(3);
  expect(installs()).toEqual([]);
});
