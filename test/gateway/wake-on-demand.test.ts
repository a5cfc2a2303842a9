import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { WebSocket } from 'ws';
import { BUSY_UNTIL_TAG } from '../../lib/gpu-control/protocol';
import { historyOf, postPrompt, request, waitFor, workflow } from './support/comfy-api-client';
import { signedOutputPath } from '../../assets/gateway/output-links';
import { LINK_SECRET, useGatewayWorld } from './support/gateway-world';

/**
 * Wake on demand through the gateway's ComfyUI API, with the real control function over moto,
 * real Redis and ComfyUI stand-ins (v0.3.64 server.py) on the instances the fleet launches.
 */
jest.setTimeout(120_000);
const world = useGatewayWorld();

test('a ComfyUI-API client (POST /prompt, poll /history) completes with the fleet at 0; outputs outlive the box', async () => {
  const w = await world();
  const events: Array<{ type: string; data: Record<string, unknown> }> = [];
  const ws = new WebSocket(`${w.gateway!.url.replace('http', 'ws')}/comfyui/ws?clientId=client-1`);
  ws.on('message', (data, binary) => binary || events.push(JSON.parse(data.toString())));
  await new Promise((resolve) => ws.once('open', resolve));

  const promptId = '6b0f7f4e-2d55-4b7e-9a8e-3f1f3b0c9d21';
  const posted = await postPrompt(w.comfy, { prompt: workflow(), prompt_id: promptId, client_id: 'client-1' });
  expect(posted.status).toBe(200);
  expect(posted.body).toEqual({ prompt_id: promptId, number: 1, node_errors: {} });
  // Held: ComfyUI's answers for a prompt that has no history yet, and the queue shows it.
  expect((await request(`${w.comfy}/history/${promptId}`)).body).toEqual({});
  const queue = (await request<{ queue_pending: unknown[][] }>(`${w.comfy}/queue`)).body;
  expect(queue.queue_pending.map((item) => item[1])).toEqual([promptId]);

  const entry = await historyOf(w.comfy, promptId);
  expect(entry.status).toMatchObject({ status_str: 'success', completed: true });
  const image = entry.outputs['9'].images![0];
  expect(w.control.capacityChanges()).toEqual([1]);
  const [box] = w.boxes.launched;
  expect(w.boxes.boxes.get(box)!.standIn.received.map((r) => [r.promptId, r.clientId])).toEqual([[promptId, 'client-1']]);

  // The client saw ComfyUI's lifecycle for its prompt, in order, relayed from the box.
  await waitFor('execution_success on the socket', () => (events.some((e) => e.type === 'execution_success') ? true : undefined));
  expect(events[0]).toEqual({ type: 'status', data: { status: { exec_info: { queue_remaining: 0 } }, sid: 'client-1' } });
  const lifecycle = events.filter((e) => e.type !== 'status').map((e) => e.type);
  expect(lifecycle).toEqual(['execution_start', 'execution_cached', 'executing', 'progress', 'progress', 'progress', 'progress', 'executed', 'execution_success', 'executing']);
  expect(events.filter((e) => e.type !== 'status').every((e) => e.data.prompt_id === promptId)).toBe(true);
  ws.close();

  // The job's record and its signed output link; then the box dies and the outputs are still served.
  const job = await waitFor('the job to complete', async () => {
    const view = await w.gateway!.api.job(promptId);
    return view?.state === 'completed' ? view : undefined;
  });
  expect(job).toMatchObject({ promptId, state: 'completed', attempts: 1, instanceId: box, error: null });
  expect(job.outputs).toHaveLength(1);
  const link = new URL(job.outputs[0].url);
  expect(link.origin).toBe('https://gateway.example.com');
  const original = Buffer.from(await (await fetch(`${w.boxes.urlOf(box)}/view?filename=${image.filename}&type=output`)).arrayBuffer());
  // Its last job done, the gateway ends the box's lease at once (1 s) instead of letting 180 s run
  // out, so the idle tail starts now (README, Cost: idle waste).
  await waitFor('the lease to end', async () => {
    const out = await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: [box] }));
    const tag = out.Reservations?.[0]?.Instances?.[0]?.Tags?.find((t) => t.Key === BUSY_UNTIL_TAG)?.Value;
    return tag !== undefined && Number(tag) <= Date.now() / 1000 + 2 ? true : undefined;
  });
  await w.boxes.kill(box);
  const local = `${w.gateway!.url}${link.pathname}${link.search}`;
  const viaLink = await fetch(local);
  expect(viaLink.status).toBe(200);
  expect(Buffer.from(await viaLink.arrayBuffer()).equals(original)).toBe(true);
  const viaView = await fetch(`${w.comfy}/view?filename=${image.filename}&subfolder=&type=output`);
  expect([viaView.status, viaView.headers.get('content-type')]).toEqual([200, 'image/png']);
  expect(Buffer.from(await viaView.arrayBuffer()).equals(original)).toBe(true);
  const forged = local.replace(/sig=[0-9a-f]{4}/, 'sig=0000');
  expect((await request(forged)).status).toBe(403);
  const [, , id, file] = link.pathname.split('/');
  const expired = await request<{ error: { type: string } }>(`${w.gateway!.url}${signedOutputPath(LINK_SECRET, id, file, Math.floor(Date.now() / 1000) - 1)}`);
  expect([expired.status, expired.body.error.type]).toEqual([410, 'LINK_EXPIRED']);
});

test('50 concurrent prompts while asleep cause one capacity change, and all complete', async () => {
  const w = await world({ boxes: { standIn: { msPerPrompt: 20, steps: 1 } } });
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => postPrompt(w.comfy, { prompt: workflow(i) })));
  expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
  const ids = answers.map((a) => a.body.prompt_id!);
  expect(new Set(ids).size).toBe(50);
  expect(new Set(answers.map((a) => a.body.number)).size).toBe(50);
  for (const id of ids) expect((await historyOf(w.comfy, id)).status.status_str).toBe('success');
  expect(w.control.capacityChanges()).toEqual([1]);
});

test('calls that need a live GPU answer 503 with Retry-After while it wakes (one wake for all), then reach the box', async () => {
  const w = await world({ boxes: { bootDelayMs: 1500 } });
  const answers = await Promise.all(['/object_info', '/system_stats', '/object_info', '/api/system_stats'].map((p) => request<{ error: { type: string; message: string } }>(`${w.comfy}${p}`)));
  for (const answer of answers) {
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('30');
    expect(answer.body.error.type).toBe('GPU_WAKING');
    expect(answer.body.error.message).toMatch(/^no GPU is ready.*retry in 30 s$/);
  }
  const stats = await waitFor('system_stats from the box', async () => {
    const answer = await request<{ devices: Array<{ name: string }> }>(`${w.comfy}/system_stats`);
    return answer.status === 200 ? answer.body : undefined;
  });
  expect(stats.devices[0].name).toMatch(/stand-in/);
  expect(w.control.capacityChanges()).toEqual([1]);
  // The same API at the root paths, for in-network clients.
  expect((await request(`${w.gateway!.url}/object_info`)).status).toBe(200);
});
