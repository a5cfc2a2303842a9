import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { bundleFunction, FUNCTION_RUNTIME } from '../../lib/function-bundle';
import { STATE_CHANGE_DETAIL_TYPE } from '../../lib/gpu-control/ledger';
import { settingsToEnvironment } from '../../lib/gpu-control/settings';
import { runFunction } from '../support/lambda-runtime-api';
import { motoEnv, useMoto } from '../support/moto';
import { BUCKET, createEnvironment, fleetWithInstances, motoControlClients, settingsFor } from './support';

// The function's bundle as Lambda runs it (the runtime interface client under the runtime's
// Node.js, test/support/lambda-runtime-api.ts), its SDK clients reaching moto through
// AWS_ENDPOINT_URL as in the Lambda environment: the gateway's requests and EventBridge's events.
const moto = useMoto();

const run = (environment: Record<string, string>, events: unknown[]) =>
  runFunction({ codeDir: bundleFunction('gpu-control'), handler: 'index.handler', runtime: FUNCTION_RUNTIME.name, environment: { ...motoEnv(moto().endpoint), ...environment } }, events);

test('answers the gateway and records a run once when EventBridge hands its event over twice', async () => {
  const c = motoControlClients(moto().endpoint);
  const { fleetId, instanceIds: [id] } = await fleetWithInstances(c.ec2, 1);
  const settings = settingsFor(fleetId);
  await createEnvironment(c, settings);
  await c.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'workflows/txt2img.json', Body: Buffer.from('{"3":{"class_type":"KSampler","inputs":{}}}') }));
  await c.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'models/checkpoints/a.safetensors', Body: Buffer.from('weights') }));
  await c.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  const ended = { source: 'aws.ec2', 'detail-type': STATE_CHANGE_DETAIL_TYPE, time: new Date().toISOString(), detail: { 'instance-id': id, state: 'shutting-down' } };

  const result = await run(settingsToEnvironment(settings), [
    { action: 'status' },
    { action: 'list-models' },
    { action: 'list-workflows' },
    { action: 'set-capacity', capacity: 9, reason: 'too many' },
    ended,
    ended,
  ]);
  expect(result.initError).toBeUndefined();
  const [status, models, workflows, tooMany, first, second] = result.results.map((r) => r.response as any);
  expect(status).toMatchObject({ ok: true, status: { fleetId, maxInstances: 3, budget: { allowanceUsd: 30 } } });
  expect(models).toEqual({ ok: true, models: [{ path: 'checkpoints/a.safetensors', bytes: 7 }] });
  expect(workflows).toEqual({ ok: true, workflows: [{ name: 'txt2img', workflow: { '3': { class_type: 'KSampler', inputs: {} } } }] });
  expect(tooMany).toEqual({ ok: false, code: 'OUT_OF_RANGE', message: 'capacity is 9: allowed is a whole number from 0 to 3 (gpu.maxInstances)' });
  expect(first).toMatchObject({ recorded: true, instanceId: id });
  expect(second).toMatchObject({ recorded: false, reason: expect.stringMatching(/is already recorded/) });
  expect(result.output).toMatch(/recorded \d+ s of i-\w+ \(g4dn\.xlarge, shutting-down\)/);
});

test('the sample for test/lambda-runtime.test.ts: an unknown action is BAD_REQUEST with no resource but the variables', async () => {
  // The variables as the template gives them: references to other resources are unresolved placeholders there.
  const environment = { ...settingsToEnvironment(settingsFor('unresolved:{"Ref":"SpotFleet"}')), ASSET_BUCKET: 'unresolved:{"Fn::Join":[]}' };
  const result = await run(environment, [{ action: 'no-such-action' }]);
  expect(result.initError).toBeUndefined();
  expect(result.results).toEqual([
    { response: { ok: false, code: 'BAD_REQUEST', message: 'action is "no-such-action": allowed is status, set-capacity, lease, register-link-key, report, list-models, list-workflows' } },
  ]);
});

test('a missing setting fails the invocation, naming the variable', async () => {
  const { FLEET_ID: _dropped, ...environment } = settingsToEnvironment(settingsFor('sfr-1'));
  const result = await run(environment, [{ action: 'status' }]);
  expect(result.initError).toBeUndefined();
  expect(result.results[0].error?.errorMessage).toMatch(/^FLEET_ID is not set: the control function needs/);
});
