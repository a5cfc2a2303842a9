import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { envWithoutAws, ISOLATED_AWS_ENV, ROOT } from '../support/child';
import { freePort } from '../support/moto';
import { historyOf, postPrompt, request, waitFor, workflow } from './support/comfy-api-client';
import { LINK_SECRET, useGatewayWorld } from './support/gateway-world';
import { LambdaInvokeStandIn } from './support/lambda-invoke-stand-in';

/**
 * Held prompts survive the gateway's death: the gateway runs as its own process (settings from
 * the environment, the control function through the Lambda client and the real SDK), is killed
 * with SIGKILL while prompts wait for a GPU, and a new process finishes them from Redis.
 */
jest.setTimeout(180_000);
const world = useGatewayWorld();
const FUNCTION = 'AiAssets-test-gpu-control';
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) kill(child);
});

function kill(child: ChildProcess): void {
  try {
    process.kill(-(child.pid as number), 'SIGKILL'); // tsx's node and the gateway's: the whole group
  } catch {
    // already gone
  }
}

async function startChild(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(__dirname, 'support', 'gateway-child.ts')], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor('the gateway process to listen', () => {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}:\n${output}`);
    return output.includes('listening ') ? true : undefined;
  }, 60_000);
  return { child, exited };
}

test('the gateway killed with prompts held: a new gateway process submits and completes them', async () => {
  const w = await world({ noGateway: true, boxes: { holdBoots: true } });
  const lambda = new LambdaInvokeStandIn(FUNCTION, w.control, (id) => w.boxes.urlOf(id));
  const lambdaUrl = await lambda.start();
  try {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...envWithoutAws(),
      ...ISOLATED_AWS_ENV,
      AWS_ENDPOINT_URL: lambdaUrl,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      PORT: String(port),
      REDIS_URL: w.redisUrl,
      CONTROL_FUNCTION_NAME: FUNCTION,
      OUTPUT_LINK_SECRET: LINK_SECRET,
      OUTPUT_DIR: w.outputDir,
      PUBLIC_BASE_URL: 'https://gateway.example.com',
      POLL_INTERVAL_MS: '50',
      STATUS_INTERVAL_MS: '150',
      BOXES_URL: lambdaUrl,
    };
    const comfy = `http://127.0.0.1:${port}/comfyui`;
    const first = await startChild(env);
    const ids = ['kept-1', 'kept-2', 'kept-3'];
    for (const id of ids) expect((await postPrompt(comfy, { prompt: workflow(), prompt_id: id })).body).toMatchObject({ prompt_id: id, node_errors: {} });
    await waitFor('the wake', () => (w.control.capacityChanges().length > 0 ? true : undefined));
    expect(lambda.invoked).toContain('set-capacity');

    kill(first.child);
    expect(await first.exited).toBeNull(); // killed by the signal, no exit code
    const redis = new Redis(w.redisUrl);
    expect(await redis.zrange('gw:held', '0', '-1')).toEqual(ids);
    redis.disconnect();

    w.boxes.releaseBoots();
    await startChild(env);
    for (const id of ids) expect((await historyOf(comfy, id)).status.status_str).toBe('success');
    const box = w.boxes.launched[0];
    expect(w.boxes.boxes.get(box)!.standIn.received.map((r) => r.promptId).sort()).toEqual(ids);
    expect(w.control.capacityChanges()).toEqual([1]);
    // /history answers from the box as soon as it has the entry; the queue empties once the gateway recorded each.
    await waitFor('the gateway queue to empty', async () => {
      const queue = await request<{ queue_pending: unknown[]; queue_running: unknown[] }>(`${comfy}/queue`);
      return queue.body.queue_pending.length + queue.body.queue_running.length === 0 ? true : undefined;
    });
  } finally {
    await lambda.stop();
  }
});
