import { ComfyUiStandIn } from './support/comfyui-stand-in';
import { historyOf, postPrompt, request, waitFor, workflow } from './support/comfy-api-client';
import { useGatewayWorld } from './support/gateway-world';

/** The gateway's bounds and refusals: queue length, hold time, the budget (and its override), the fallback, bad prompts. */
jest.setTimeout(120_000);
const world = useGatewayWorld();

type ErrorBody = { error: { type: string; message: string }; node_errors: unknown };

test('a full queue refuses with 429, Retry-After and a message naming MAX_QUEUE', async () => {
  const w = await world({ boxes: { holdBoots: true }, settings: { maxQueue: 3 } });
  for (let i = 0; i < 3; i++) expect((await postPrompt(w.comfy, { prompt: workflow(i) })).status).toBe(200);
  const refused = await postPrompt(w.comfy, { prompt: workflow(9) });
  expect(refused.status).toBe(429);
  expect(refused.headers.get('retry-after')).toBe('30');
  expect(refused.body.error).toEqual({
    type: 'QUEUE_FULL',
    message: 'the gateway already holds or runs 3 prompts (MAX_QUEUE=3): retry when some have finished',
    details: '',
    extra_info: {},
  });
});

test('a prompt held past HOLD_TIMEOUT_SECONDS fails with the reason, in /history as ComfyUI reports an error', async () => {
  const w = await world({ boxes: { holdBoots: true }, settings: { holdTimeoutSeconds: 2 } });
  const { body } = await postPrompt(w.comfy, { prompt: workflow() });
  const entry = await historyOf(w.comfy, body.prompt_id!);
  expect(entry.status).toMatchObject({ status_str: 'error', completed: false });
  const [event, data] = entry.status.messages[0];
  expect(event).toBe('execution_error');
  expect(data.exception_message).toMatch(/^no GPU became ready within 2 s: 1 instance\(s\) launched, ComfyUI not ready yet$/);
  const job = await w.gateway!.api.job(body.prompt_id!);
  expect(job).toMatchObject({ state: 'failed', attempts: 0, error: data.exception_message });
});

test('a spent budget refuses the wake: held prompts fail at once with the reason, GPU calls get it in the 503; the override wakes', async () => {
  const w = await world({ allowanceUsd: 0 });
  const { body } = await postPrompt(w.comfy, { prompt: workflow() });
  const entry = await historyOf(w.comfy, body.prompt_id!, 10_000);
  expect(entry.status.messages[0][1].exception_message).toMatch(/^no GPU can be woken: The GPU allowance for \d{4}-\d\d is spent: \$0\.00 of \$0\.00 used/);
  const gpuCall = await request<ErrorBody>(`${w.comfy}/object_info`);
  expect([gpuCall.status, gpuCall.headers.get('retry-after'), gpuCall.body.error.type]).toEqual([503, '30', 'BUDGET_SPENT']);
  expect(gpuCall.body.error.message).toMatch(/^no GPU is ready: The GPU allowance .* is spent.*--over-budget; retry in 30 s$/);
  expect(w.control.calls.some((c) => c.action === 'set-capacity')).toBe(true);

  const status = await w.gateway!.api.gpuStatus();
  await w.control.overrideBudget(w.ssm, status.budget.month);
  const next = await postPrompt(w.comfy, { prompt: workflow(2) });
  expect((await historyOf(w.comfy, next.body.prompt_id!)).status.status_str).toBe('success');
});

test('with FALLBACK_COMFYUI_URL, prompts no GPU can take run there with the same prompt_id', async () => {
  const fallback = new ComfyUiStandIn();
  const fallbackUrl = await fallback.start();
  try {
    const w = await world({ allowanceUsd: 0, settings: { fallbackComfyuiUrl: fallbackUrl } });
    const { body } = await postPrompt(w.comfy, { prompt: workflow(), prompt_id: 'fallback-1' });
    expect((await historyOf(w.comfy, 'fallback-1')).status.status_str).toBe('success');
    expect(body.prompt_id).toBe('fallback-1');
    expect(fallback.received.map((r) => r.promptId)).toEqual(['fallback-1']);
    const job = await waitFor('the job to complete', async () => ((await w.gateway!.api.job('fallback-1'))?.state === 'completed' ? true : undefined));
    expect(job).toBe(true);
    expect((await w.gateway!.api.job('fallback-1'))!.instanceId).toBe('fallback');
  } finally {
    await fallback.kill();
  }
});

test("bad prompts get ComfyUI's own answers: no prompt, an unknown node (from the box), a bad prompt_id, a reused one", async () => {
  const w = await world({ initialCapacity: 1 });
  await waitFor('a ready box', async () => ((await w.gateway!.api.gpuStatus()).instances.some((i) => i.ready) ? true : undefined));
  const none = await postPrompt(w.comfy, { client_id: 'x' });
  expect([none.status, none.body]).toEqual([400, { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} }]);
  const unknown = await postPrompt(w.comfy, { prompt: { '1': { class_type: 'NoSuchNode', inputs: {} } } });
  expect([unknown.status, unknown.body.error]).toEqual([400, { type: 'invalid_prompt', message: 'Cannot execute because node NoSuchNode does not exist.', details: "Node ID '#1'", extra_info: {} }]);
  const badId = await postPrompt(w.comfy, { prompt: workflow(), prompt_id: '../../etc' });
  expect([badId.status, badId.body.error?.type]).toEqual([400, 'INVALID_PROMPT_ID']);
  expect((await postPrompt(w.comfy, { prompt: workflow(), prompt_id: 'once' })).status).toBe(200);
  const again = await postPrompt(w.comfy, { prompt: workflow(), prompt_id: 'once' });
  expect([again.status, again.body.error?.type]).toEqual([400, 'DUPLICATE_PROMPT_ID']);
});
