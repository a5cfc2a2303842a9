import { WebSocket } from 'ws';
import type { GatewayMetrics } from '../../lib/gpu-control/protocol';
import { historyOf, postPrompt, waitFor, workflow } from './support/comfy-api-client';
import { useGatewayWorld, type World } from './support/gateway-world';

/** No job is lost: the box running a prompt dies (instance terminated, ComfyUI gone) and the prompt runs again elsewhere. */
jest.setTimeout(120_000);
const world = useGatewayWorld();

async function runningOn(w: World, promptId: string): Promise<string> {
  return waitFor(`${promptId} running on a box`, async () => {
    const job = await w.gateway!.api.job(promptId);
    return job?.state === 'running' && job.instanceId ? job.instanceId : undefined;
  });
}

test('the instance killed mid-job: the prompt completes on the next one with the same prompt_id, the socket follows it', async () => {
  const w = await world({ boxes: { standIn: { msPerPrompt: 2500, steps: 5 } }, settings: { metricsIntervalSeconds: 1 } });
  const events: Array<{ type: string; data: { prompt_id?: string } }> = [];
  const ws = new WebSocket(`${w.gateway!.url.replace('http', 'ws')}/ws?clientId=c-kill`);
  ws.on('message', (data, binary) => binary || events.push(JSON.parse(data.toString())));
  await new Promise((resolve) => ws.once('open', resolve));

  await postPrompt(w.comfy, { prompt: workflow(), prompt_id: 'survivor', client_id: 'c-kill' });
  const first = await runningOn(w, 'survivor');
  await waitFor('a progress message from the first box', () => (events.some((e) => e.type === 'progress') ? true : undefined));
  await w.boxes.kill(first); // Spot interruption: EC2 terminates it, its ComfyUI dies mid-prompt

  const entry = await historyOf(w.comfy, 'survivor');
  expect(entry.status.status_str).toBe('success');
  expect(entry.prompt[1]).toBe('survivor');
  const job = (await w.gateway!.api.job('survivor'))!;
  expect(job.attempts).toBe(2);
  expect(job.instanceId).not.toBe(first);
  expect(w.boxes.boxes.get(job.instanceId!)!.standIn.received.map((r) => r.promptId)).toEqual(['survivor']);
  // The socket was reconnected to the second box: its run ended with execution_success for the same id.
  await waitFor('execution_success relayed from the second box', () => (events.some((e) => e.type === 'execution_success') ? true : undefined));
  expect(events.filter((e) => e.type === 'execution_start').map((e) => e.data.prompt_id)).toEqual(['survivor', 'survivor']);
  ws.close();

  const reports = () => w.control.calls.flatMap((c) => (c.action === 'report' ? [c.metrics] : []));
  const total = (pick: (m: GatewayMetrics) => number) => reports().reduce((sum, m) => sum + pick(m), 0);
  await waitFor('a report with the completion', () => (total((m) => m.jobsCompleted) === 1 ? true : undefined), 10_000);
  expect([total((m) => m.jobsResubmitted), total((m) => m.jobsFailed), total((m) => m.wakes)]).toEqual([1, 0, 1]);
  expect(reports().flatMap((m) => m.wakeToReadySeconds)).toHaveLength(1);
});

test('after MAX_ATTEMPTS submissions the prompt fails, saying why', async () => {
  const w = await world({ boxes: { standIn: { msPerPrompt: 5000 } }, settings: { maxAttempts: 1 } });
  await postPrompt(w.comfy, { prompt: workflow(), prompt_id: 'doomed' });
  const box = await runningOn(w, 'doomed');
  await w.boxes.kill(box);
  const entry = await historyOf(w.comfy, 'doomed');
  // Whether the status read after the kill still lists the box as terminated or no longer lists it is EC2's (moto's) timing.
  expect(entry.status.messages[0][1].exception_message).toMatch(
    new RegExp(`^gave up after 1 submissions \\(MAX_ATTEMPTS=1\\): instance ${box} is gone \\((no longer in the fleet|terminated)\\)$`),
  );
});
