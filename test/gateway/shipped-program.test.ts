import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GATEWAY_PROGRAM_FILE } from '../../lib/vps/gateway-program';
import { freePort, motoEnv, startMoto, type MotoServer } from '../support/moto';
import { envOf, stackOnDisk } from '../vps/support-compose/stack-on-disk';
import { WITH_GATEWAY } from '../vps/support-compose/settings';
import { waitFor } from './support/comfy-api-client';
import { startRedis, type RedisServer } from './support/redis-server';

/**
 * The program a release ships (gateway/gateway.cjs, the esbuild bundle) run as the compose file
 * runs it: `node /opt/gateway/gateway.cjs` with the gateway service's environment as rendered,
 * under Node 24 (the pinned image's major). Only what cannot exist here is replaced: Redis is
 * Debian's real redis-server on loopback (compose's `redis` host name does not resolve here),
 * the data volume a temp folder, the Lambda API moto's (it cannot run functions, so the link key
 * registration fails and is retried, as on a first boot before the Gpu stack exists).
 */
jest.setTimeout(120_000);

let moto: MotoServer;
let redis: RedisServer;
let child: ChildProcess | undefined;
beforeAll(async () => {
  [moto, redis] = await Promise.all([startMoto(), startRedis()]);
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await Promise.all([moto?.stop(), redis?.stop()]);
});

test('starts from the rendered compose environment, answers /health, makes its link key 0600, stops on SIGTERM', async () => {
  const stack = stackOnDisk(WITH_GATEWAY);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-data-'));
  const port = await freePort();
  const composed = envOf(stack, 'gateway');
  expect(composed.DATA_DIR).toBe('/home/node');
  const env = { PATH: process.env.PATH ?? '', ...composed, ...motoEnv(moto.endpoint), AWS_REGION: composed.AWS_REGION, REDIS_URL: redis.url, DATA_DIR: dataDir, PORT: String(port) };
  let output = '';
  child = spawn('node', [path.join(stack.dir, GATEWAY_PROGRAM_FILE)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));

  const health = await waitFor(
    'the shipped gateway to answer /health',
    async () => {
      if (child!.exitCode !== null) throw new Error(`the gateway exited with ${child!.exitCode}:\n${output}`);
      const response = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
      return response?.ok ? ((await response.json()) as Record<string, unknown>) : undefined;
    },
    60_000,
  );
  expect(health).toBeDefined();
  const key = path.join(dataDir, fs.readdirSync(dataDir).find((f) => /key/.test(f)) ?? 'missing');
  expect(fs.statSync(key).mode & 0o777).toBe(0o600);
  await waitFor('the first link key registration attempt', () => (/registering the link key failed/.test(output) ? true : undefined), 30_000);
  // No secret of its environment reaches its log.
  for (const name of ['OUTPUT_LINK_SECRET', 'AWS_SECRET_ACCESS_KEY']) expect(output).not.toContain(composed[name]);

  const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
});
