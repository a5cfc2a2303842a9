import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { handleMcpRequest, MCP_MAX_BODY_BYTES, type McpDeps } from '../../assets/gateway/mcp';
import { BUNDLED_WORKFLOWS, WorkflowCatalog } from '../../assets/gateway/workflows';
import type { WorkflowTemplate } from '../../lib/gpu-control/protocol';
import { budget, controlStatus, FakeControlClient, FakeGatewayApi } from './support/fake-gateway-api';

/**
 * The MCP endpoint on a loopback port, driven by the official SDK's Client over its
 * StreamableHTTPClientTransport, with the gateway core and the control function faked
 * (test/gateway/support/fake-gateway-api.ts).
 */

type Graph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }>;

let api: FakeGatewayApi;
let control: FakeControlClient;
let deps: McpDeps;
let logged: string[];
let server: http.Server;
let endpoint: URL;
const clients: Client[] = [];

beforeAll(async () => {
  // Each test sets `deps`; the server reads it per request.
  server = http.createServer((req, res) => void handleMcpRequest(req, res, deps));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  api = new FakeGatewayApi();
  control = new FakeControlClient();
  logged = [];
  deps = { api, control, workflows: new WorkflowCatalog(control), pollIntervalMs: 10, log: (line) => logged.push(line) };
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function connect(): Promise<Client> {
  const client = new Client({ name: 'gateway-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(endpoint));
  clients.push(client);
  return client;
}

async function call(name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await (await connect()).callTool({ name, arguments: args })) as CallToolResult;
}

const text = (result: CallToolResult): string => result.content.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('\n');

/** Polls `check` until it holds; fails with `what` after the deadline (no fixed sleeps). */
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const submittedGraph = (index = 0): Graph => api.submitted[index].prompt as Graph;

test('lists the eight tools with descriptions and zod-derived input schemas', async () => {
  const { tools } = await (await connect()).listTools();
  expect(tools.map((t) => t.name).sort()).toEqual(['budget_status', 'generate_image', 'get_job', 'gpu_start', 'gpu_status', 'gpu_stop', 'list_models', 'list_workflows']);
  for (const tool of tools) expect(tool.description?.length).toBeGreaterThan(40);
  const generate = tools.find((t) => t.name === 'generate_image');
  expect(generate?.inputSchema.required).toEqual(['prompt']);
  expect(generate?.inputSchema.properties).toMatchObject({
    workflow: { type: 'string', default: 'txt2img-sdxl' },
    wait_seconds: { type: 'integer', minimum: 0, maximum: 300, default: 0 },
    width: { type: 'integer', multipleOf: 8 },
  });
  expect(Object.keys(generate?.inputSchema.properties ?? {}).sort()).toEqual(
    ['batch_size', 'cfg', 'checkpoint', 'height', 'negative_prompt', 'prompt', 'seed', 'steps', 'wait_seconds', 'width', 'workflow'],
  );
  expect(tools.find((t) => t.name === 'get_job')?.inputSchema.required).toEqual(['job_id']);
  expect(tools.find((t) => t.name === 'gpu_stop')?.annotations?.destructiveHint).toBe(true);
});

describe('generate_image', () => {
  test('binds the parameters into the named template and answers the job id at once', async () => {
    const result = await call('generate_image', {
      workflow: 'txt2img-sd15',
      prompt: 'a lighthouse at dusk',
      negative_prompt: 'blurry',
      width: 768,
      height: 512,
      steps: 30,
      seed: 42,
    });
    expect(result.isError).toBeFalsy();
    expect(api.submitted).toHaveLength(1);
    const graph = submittedGraph();
    expect(graph['6'].inputs.text).toBe('a lighthouse at dusk');
    expect(graph['7'].inputs.text).toBe('blurry');
    expect(graph['5'].inputs).toEqual({ width: 768, height: 512, batch_size: 1 });
    expect(graph['3'].inputs).toMatchObject({ steps: 30, seed: 42, cfg: 8 });
    expect(graph['4'].inputs.ckpt_name).toBe('v1-5-pruned-emaonly.safetensors');
    const [id] = api.ids();
    expect(text(result)).toContain(`job_id: ${id}`);
    expect(text(result)).toContain('is held: no GPU instance is ready yet');
    expect(text(result)).toContain('workflow: txt2img-sd15 (bundled), seed: 42');
    expect(result.structuredContent).toMatchObject({ job_id: id, state: 'held', seed: 42 });
  });

  test('without a workflow it uses the SDXL default, and without a seed it picks one and says which', async () => {
    const result = await call('generate_image', { prompt: 'a fox in snow', checkpoint: 'sd_xl_turbo_1.0.safetensors' });
    const graph = submittedGraph();
    expect(graph['4'].inputs.ckpt_name).toBe('sd_xl_turbo_1.0.safetensors');
    expect(graph['5'].inputs).toMatchObject({ width: 1024, height: 1024 });
    const seed = graph['3'].inputs.seed;
    expect(typeof seed).toBe('number');
    expect(text(result)).toContain(`workflow: txt2img-sdxl (bundled), seed: ${String(seed)}`);
  });

  test('with wait_seconds it waits, sends progress, and answers the image URLs as text and resource links once the job completes', async () => {
    const client = await connect();
    let progressSeen = 0;
    const pending = client.callTool({ name: 'generate_image', arguments: { prompt: 'two cats', batch_size: 2, wait_seconds: 120 } }, undefined, {
      onprogress: () => {
        progressSeen++;
      },
      resetTimeoutOnProgress: true,
    });
    await until('the submission and a progress notification', () => api.submitted.length === 1 && progressSeen > 0);
    const [id] = api.ids();
    api.complete(id, ['ComfyUI_00001_.png', 'ComfyUI_00002_.png']);
    const result = (await pending) as CallToolResult;
    expect(result.isError).toBeFalsy();
    const urls = [1, 2].map((n) => `http://127.0.0.1:8188/outputs/${id}/ComfyUI_0000${n}_.png?expires=1785000000&sig=test-signature`);
    expect(text(result)).toContain(`Job ${id} completed with 2 output file(s):\n${urls.join('\n')}`);
    expect(result.content.filter((c) => c.type === 'resource_link')).toEqual(
      urls.map((uri, i) => expect.objectContaining({ type: 'resource_link', uri, name: `ComfyUI_0000${i + 1}_.png`, mimeType: 'image/png' })),
    );
    expect(result.structuredContent).toMatchObject({ job_id: id, state: 'completed', outputs: [{ url: urls[0] }, { url: urls[1] }] });
  });

  test('a job that fails while it waits is a tool error with the reason', async () => {
    const pending = call('generate_image', { prompt: 'x', wait_seconds: 120 });
    await until('the submission', () => api.submitted.length === 1);
    api.fail(api.ids()[0], 'no Spot capacity for g5.xlarge within 15 min');
    const result = await pending;
    expect(result.isError).toBe(true);
    expect(text(result)).toContain('failed after 1 attempt(s): no Spot capacity for g5.xlarge within 15 min');
  });

  test('when the wait runs out first, it answers the job id and how to follow it', async () => {
    const result = await call('generate_image', { prompt: 'x', wait_seconds: 1 });
    expect(result.isError).toBeFalsy();
    expect(text(result)).toContain('Still held after 1 s; call get_job with this job_id to follow it.');
  });

  test('a client hanging up mid-wait ends the wait: the tool stops looking at the job', async () => {
    const client = await connect();
    const pending = client.callTool({ name: 'generate_image', arguments: { prompt: 'x', wait_seconds: 300 } }).catch((e: unknown) => e);
    await until('the wait loop to look at the job twice', () => api.lookups >= 2);
    await client.close(); // aborts the POST: the server sees its response closed
    expect(await pending).toBeInstanceOf(Error);
    // The abort reached the handler: its sleep was cut short and the loop left (the log line is written on the way out).
    await until('the tool to give up', () => logged.includes('mcp generate_image: generate_image failed: the client went away'));
    // What is left still serves: the job is held in the core and a new client can follow it.
    expect(text(await call('get_job', { job_id: api.ids()[0] }))).toContain('is held');
  });

  test('arguments outside the schema are tool errors naming the field', async () => {
    const result = await call('generate_image', { prompt: 'x', wait_seconds: 301 });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/wait_seconds/);
    expect(text(result)).toMatch(/300/);
    expect(api.submitted).toHaveLength(0);
  });
});

describe('get_job', () => {
  test('an unknown id is a tool error naming it', async () => {
    const result = await call('get_job', { job_id: 'no-such-job' });
    expect(result.isError).toBe(true);
    expect(text(result)).toBe('no job with id "no-such-job" is known to the gateway');
  });

  test('a completed job gives its URLs; the core failing is a tool error, not a crash', async () => {
    const { promptId } = await api.submitPrompt({ prompt: { '1': { class_type: 'X', inputs: {} } } });
    api.complete(promptId, ['out.webp']);
    const result = await call('get_job', { job_id: promptId });
    expect(result.content[1]).toMatchObject({ type: 'resource_link', mimeType: 'image/webp', uri: expect.stringContaining(`/outputs/${promptId}/out.webp`) });
    api.jobError = new Error('Redis connection lost');
    const failed = await call('get_job', { job_id: promptId });
    expect(failed.isError).toBe(true);
    expect(text(failed)).toBe('get_job failed: Redis connection lost');
  });
});

describe('workflows from the bucket', () => {
  const bundledSdxl = BUNDLED_WORKFLOWS.find((t) => t.name === 'txt2img-sdxl')?.workflow as Graph;
  const bucketSdxl: WorkflowTemplate = {
    name: 'txt2img-sdxl',
    workflow: { ...bundledSdxl, '9': { ...bundledSdxl['9'], inputs: { ...bundledSdxl['9'].inputs, filename_prefix: 'from-bucket' } } },
  };
  // A bucket template without a `negative` node.
  const { '7': _negative, ...noNegative } = BUNDLED_WORKFLOWS.find((t) => t.name === 'txt2img-sd15')?.workflow as Graph;
  const sketch: WorkflowTemplate = { name: 'sketch', workflow: { ...noNegative, '3': { ...noNegative['3'], inputs: { ...noNegative['3'].inputs, negative: ['6', 0] } } } };

  beforeEach(() => {
    control.workflows = [bucketSdxl, sketch];
  });

  test('list_workflows shows bucket and bundled templates, the bucket overriding a bundled name', async () => {
    const result = await call('list_workflows');
    expect(result.isError).toBeFalsy();
    const lines = text(result).split('\n');
    expect(lines[0]).toMatch(/^sketch \(bucket\): takes prompt, width, height, batch_size, steps, seed, cfg, checkpoint; defaults width=512/);
    expect(lines[1]).toMatch(/^txt2img-sd15 \(bundled\): takes prompt, negative_prompt, /);
    expect(lines[2]).toMatch(/^txt2img-sdxl \(bucket, overrides the bundled default\) \[default\]: takes .*checkpoint="sd_xl_base_1.0.safetensors"/);
    expect(result.structuredContent).toMatchObject({
      workflows: [
        { name: 'sketch', source: 'bucket', overrides_bundled: false },
        { name: 'txt2img-sd15', source: 'bundled' },
        { name: 'txt2img-sdxl', source: 'bucket', overrides_bundled: true, default: true },
      ],
      bucket_error: null,
    });
  });

  test('generate_image uses the bucket\'s version of an overridden template', async () => {
    await call('generate_image', { prompt: 'x' });
    expect(submittedGraph()['9'].inputs.filename_prefix).toBe('from-bucket');
  });

  test('a parameter the template has no node for is a tool error naming template and parameter', async () => {
    const result = await call('generate_image', { workflow: 'sketch', prompt: 'x', negative_prompt: 'y' });
    expect(result.isError).toBe(true);
    expect(text(result)).toBe('workflow template "sketch" has no node titled "negative" to take negative_prompt; leave negative_prompt out, or title a node "negative" in the template');
    expect(api.submitted).toHaveLength(0);
  });

  test('an unknown template is a tool error listing the ones there are', async () => {
    const result = await call('generate_image', { workflow: 'nope', prompt: 'x' });
    expect(result.isError).toBe(true);
    expect(text(result)).toBe('no workflow template "nope"; there are: sketch, txt2img-sd15, txt2img-sdxl');
  });

  test('with the bucket unreadable, the bundled templates are still listed, with the reason', async () => {
    control.failure = new Error('Lambda invoke failed: ECONNRESET');
    const result = await call('list_workflows');
    expect(result.isError).toBeFalsy();
    expect(text(result)).toContain('txt2img-sdxl (bundled) [default]');
    expect(text(result)).toContain('Note: the bucket\'s templates could not be read (Lambda invoke failed: ECONNRESET).');
  });
});

test('list_models lists the bucket\'s models; a refusal of the control function is a tool error with its code', async () => {
  control.models = [
    { path: 'checkpoints/sd_xl_base_1.0.safetensors', bytes: 6_938_078_334 },
    { path: 'loras/pixel-art.safetensors', bytes: 170_000_000 },
  ];
  const result = await call('list_models');
  expect(text(result)).toBe('checkpoints/sd_xl_base_1.0.safetensors (6.94 GB)\nloras/pixel-art.safetensors (0.17 GB)');
  expect(result.structuredContent).toEqual({ models: control.models });
  control.refusal = { ok: false, code: 'BAD_REQUEST', message: 'the asset bucket is not configured' };
  const refused = await call('list_models');
  expect(refused.isError).toBe(true);
  expect(text(refused)).toBe('the control function refused list-models: the asset bucket is not configured (BAD_REQUEST)');
});

test('budget_status and gpu_status show the allowance used and left, and the fleet', async () => {
  api.status = controlStatus({
    targetCapacity: 1,
    fulfilledCapacity: 1,
    instances: [
      {
        instanceId: 'i-0123456789abcdef0',
        instanceType: 'g5.xlarge',
        state: 'running',
        publicIp: null,
        privateIp: null,
        launchTime: '2026-07-14T09:00:00.000Z',
        ready: true,
        leaving: false,
        busyUntil: null,
        hostKeySha256: null,
      },
    ],
  });
  const budgetResult = await call('budget_status');
  expect(text(budgetResult)).toBe(
    'GPU allowance for 2026-07: $12.25 used of $38.50, $26.25 left (about 48.6 instance-hours at the dearest configured Spot price); available.',
  );
  expect(budgetResult.structuredContent).toEqual(budget());
  const status = text(await call('gpu_status'));
  expect(status).toContain('Spot Fleet sfr-0a1b2c3d-test: target capacity 1, fulfilled 1, at most 3.');
  expect(status).toContain('i-0123456789abcdef0 g5.xlarge running, ready, launched 2026-07-14T09:00:00.000Z');
  expect(status).toContain('$26.25 left');
});

test('gpu_start refused because the allowance is spent is a tool error carrying the message; gpu_stop passes force', async () => {
  api.status = controlStatus({ budget: budget({ usedUsd: 38.5, leftUsd: 0, hoursLeft: 0, spent: true }) });
  const refused = await call('gpu_start');
  expect(refused.isError).toBe(true);
  expect(text(refused)).toBe(
    'The GPU allowance for 2026-07 is spent ($38.50 of $38.50); an operator can allow more with: npm run ops -- gpu start --over-budget (BUDGET_SPENT)',
  );
  expect(api.starts).toBe(1);
  expect(text(await call('budget_status'))).toContain('spent: waking the GPU is refused');

  api.status = controlStatus();
  const started = await call('gpu_start');
  expect(started.isError).toBeFalsy();
  expect(text(started)).toContain('target capacity 1');
  const stopped = await call('gpu_stop', { force: true });
  expect(text(stopped)).toContain('Stopping the GPU now (forced).');
  await call('gpu_stop');
  expect(api.stops).toEqual([true, false]);
});

describe('the HTTP edge', () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(new URL(path, endpoint), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
      body,
    });
  const initialize = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

  test('other paths are 404 and GET or DELETE on /mcp are 405 (stateless: no stream, no session)', async () => {
    const other = await post('/mcp/extra', initialize);
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { message: 'Not found: /mcp/extra; the MCP endpoint is /mcp' } });
    expect((await post('/prompt', initialize)).status).toBe(404);
    for (const method of ['GET', 'DELETE']) {
      const response = await fetch(endpoint, { method, headers: { Accept: 'text/event-stream' } });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
    }
    // No session id is handed out: every POST stands alone.
    const ok = await post('/mcp', initialize);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('mcp-session-id')).toBeNull();
    await ok.text();
  });

  test('a body over 1 MiB is refused with 413, declared or streamed', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { pad: 'x'.repeat(MCP_MAX_BODY_BYTES) } });
    const declared = await post('/mcp', big);
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { message: string } }).error.message).toBe(`Request body of ${Buffer.byteLength(big)} bytes is over the limit of 1048576 bytes`);

    // Chunked, no Content-Length: the SDK transport's own bound (maxRequestBodySize) refuses it.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const streamed = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    await streamed.text();
    expect(api.submitted).toHaveLength(0);
  });
});
