/**
 * Test harness for the scripts in assets/user-data/: a temp dir with stand-in
 * commands first on PATH (each records its argv), a real HTTP server on
 * 127.0.0.1 playing ComfyUI's /queue and IMDSv2, and an async runner (the
 * server lives in this process, so the scripts must not be run synchronously).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { linkKeyParameterName } from '../../lib/gpu-control/names';

export const SCRIPTS = path.join(__dirname, '..', '..', 'assets', 'user-data');
export const INSTANCE_ID = 'i-0abc1234def567890';
export const FLEET_ID = 'sfr-4a1b2c3d-1234-4e5f-8a9b-0123456789ab';
export const BUCKET = 'aiassets-test-assets-111111111111-us-east-1';
/** The SSM parameter holding the gateway's SSH public key. */
export const LINK_KEY_PARAMETER = linkKeyParameterName({ appName: 'AiAssets', envName: 'test' });
/** A build-context hash, as CDK computes for assets/comfyui/ (sha256 hex). */
export const IMAGE_HASH = 'a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';

export interface Call {
  cmd: string;
  args: string[];
}

/** A temp dir holding stand-in commands (bin/), a call log and whatever a test writes. */
export class Sandbox {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-scripts-'));
  readonly bin = path.join(this.dir, 'bin');
  readonly callsFile = path.join(this.dir, 'calls.log');

  constructor() {
    fs.mkdirSync(this.bin);
  }

  /** A stand-in that appends "name<TAB>arg1<TAB>arg2..." to the call log, then runs body. */
  stub(name: string, body = 'exit 0'): void {
    const file = path.join(this.bin, name);
    const record = `{ printf '%s' '${name}'; printf '\\t%s' "$@"; printf '\\n'; } >>"$CALLS_FILE"`;
    fs.writeFileSync(file, `#!/usr/bin/env bash\n${record}\n${body}\n`, { mode: 0o755 });
  }

  calls(cmd?: string): Call[] {
    if (!fs.existsSync(this.callsFile)) return [];
    return fs
      .readFileSync(this.callsFile, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [name, ...args] = line.split('\t');
        return { cmd: name, args };
      })
      .filter((call) => cmd === undefined || call.cmd === cmd);
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  write(relative: string, content: string): string {
    const file = this.path(relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    return file;
  }

  /** A minimal environment: stand-ins first on PATH, nothing from the host's AWS set-up. */
  env(extra: Record<string, string>): NodeJS.ProcessEnv {
    return { PATH: `${this.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: this.dir, LANG: 'C.UTF-8', CALLS_FILE: this.callsFile, ...extra };
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The env file the user data writes, pointed at the test server's port. */
export function envFile(port: number, overrides: Record<string, string> = {}): string {
  const values: Record<string, string> = {
    APP_NAME: 'AiAssets',
    ENV_NAME: 'test',
    AWS_REGION: 'us-east-1',
    ASSET_BUCKET: BUCKET,
    COMFYUI_IMAGE: `aiassets/comfyui:${IMAGE_HASH.slice(0, 16)}`,
    COMFYUI_IMAGE_HASH: IMAGE_HASH,
    COMFYUI_CONTEXT_URI: `s3://${BUCKET}/context/${IMAGE_HASH}.zip`,
    COMFYUI_UID: '1000',
    COMFYUI_PORT: String(port),
    IDLE_MINUTES: '15',
    IDLE_GPU_UTIL_PERCENT: '5',
    BOOT_GRACE_MINUTES: '10',
    METRIC_NAMESPACE: 'AiAssets/Gpu',
    LOG_GROUP: '/aiassets/test/gpu',
    OUTPUT_SYNC_MINUTES: '5',
    LINK_KEY_PARAMETER,
    ...overrides,
  };
  return Object.entries(values)
    .map(([key, value]) => `${key}=${value}\n`)
    .join('');
}

export interface Reply {
  status: number;
  body: string;
  contentType?: string;
}

/** ComfyUI's /queue and the IMDSv2 paths the scripts use, on 127.0.0.1. */
export class FakeServer {
  /** The id IMDS answers with. */
  instanceId = INSTANCE_ID;
  queue: Reply = emptyQueue();
  /** Answers spot/instance-action; gets the 1-based number of the request. */
  instanceAction: (n: number) => Reply = () => ({ status: 404, body: 'Not Found' });
  readonly hits = new Map<string, number>();
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private readonly token = 'test-imds-token';

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  reset(): void {
    this.queue = emptyQueue();
    this.instanceAction = () => ({ status: 404, body: 'Not Found' });
    this.hits.clear();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const key = `${req.method} ${req.url}`;
    const n = (this.hits.get(key) ?? 0) + 1;
    this.hits.set(key, n);
    const send = (reply: Reply) => {
      res.writeHead(reply.status, { 'Content-Type': reply.contentType ?? 'text/plain' });
      res.end(reply.body);
    };
    if (key === 'GET /queue') return send(this.queue);
    if (key === 'PUT /latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return send({ status: 400, body: 'missing TTL' });
      return send({ status: 200, body: this.token });
    }
    if (req.url?.startsWith('/latest/meta-data/') && req.headers['x-aws-ec2-metadata-token'] !== this.token) {
      return send({ status: 401, body: 'Unauthorized' });
    }
    if (key === 'GET /latest/meta-data/instance-id') return send({ status: 200, body: this.instanceId });
    if (key === 'GET /latest/meta-data/spot/instance-action') return send(this.instanceAction(n));
    send({ status: 404, body: 'Not Found' });
  }
}

export function emptyQueue(running: unknown[] = [], pending: unknown[] = []): Reply {
  return { status: 200, contentType: 'application/json', body: JSON.stringify({ queue_running: running, queue_pending: pending }) };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script with bash; kills it (and fails) if it outlives timeoutMs. */
export function run(script: string, env: NodeJS.ProcessEnv, timeoutMs = 10_000, args: string[] = []): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(script)} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running script in its own process group, so the group can be killed. */
export function startDetached(script: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn('bash', [script], { env, detached: true, stdio: 'ignore' });
}

export function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    process.kill(-(child.pid as number), 'SIGTERM');
  });
}

/** Polls until check() is true, failing after timeoutMs. */
export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Metric {
  name: string;
  value: number;
  namespace: string;
  dimensions: string;
}

/** The datapoints published through `aws cloudwatch put-metric-data`, in order. */
export function metrics(calls: Call[]): Metric[] {
  return calls
    .filter((call) => call.cmd === 'aws' && call.args[0] === 'cloudwatch' && call.args[1] === 'put-metric-data')
    .map((call) => {
      const flag = (name: string) => call.args[call.args.indexOf(name) + 1];
      return { name: flag('--metric-name'), value: Number(flag('--value')), namespace: flag('--namespace'), dimensions: flag('--dimensions') };
    });
}
