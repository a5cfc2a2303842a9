import { DescribeInstancesCommand, DescribeSpotFleetRequestsCommand } from '@aws-sdk/client-ec2';
import { historyOf, postPrompt, request, waitFor, workflow } from './support/comfy-api-client';
import { useGatewayWorld } from './support/gateway-world';
import { IdleWatcherBox } from './support/idle-watcher-box';

/**
 * Scale-out to gpu.maxInstances under a burst, least-loaded dispatch, then scale-in by the boxes
 * themselves: once the gateway's leases have lapsed, each box's real idle-watcher.sh leaves.
 */
jest.setTimeout(600_000);
const world = useGatewayWorld();
const watchers: IdleWatcherBox[] = [];
afterEach(async () => {
  for (const watcher of watchers.splice(0)) await watcher.cleanup();
});

test('6 prompts at 2 per instance raise the fleet to 3, each box gets work; idle, the three leave on their own', async () => {
  const w = await world({
    maxInstances: 3,
    boxes: { standIn: { msPerPrompt: 3000, steps: 3 } },
    settings: { promptsPerInstance: 2, leaseSeconds: 3, leaseRenewSeconds: 1 },
  });
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => postPrompt(w.comfy, { prompt: workflow(i), prompt_id: `burst-${i}` })));
  expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
  for (let i = 0; i < 6; i++) expect((await historyOf(w.comfy, `burst-${i}`, 120_000)).status.status_str).toBe('success');

  const changes = w.control.capacityChanges();
  expect(Math.max(...changes)).toBe(3);
  expect(changes).toEqual([...changes].sort((a, b) => a - b)); // only ever raised
  expect(w.boxes.launched).toHaveLength(3);
  const perBox = w.boxes.launched.map((id) => w.boxes.boxes.get(id)!.standIn.received.length);
  expect(perBox.every((n) => n >= 1)).toBe(true);
  expect(perBox.reduce((a, b) => a + b, 0)).toBe(6);

  // Back to 0: no gateway call lowers capacity; the leases lapse and every box leaves by itself.
  await waitFor(
    'the leases to lapse',
    async () => ((await w.gateway!.api.gpuStatus()).instances.every((i) => (i.busyUntil ?? 0) < Date.now() / 1000) ? true : undefined),
    30_000,
    250,
  );
  for (const id of w.boxes.launched) {
    const watcher = new IdleWatcherBox(w.moto.endpoint, id, Number(new URL(w.boxes.urlOf(id)).port));
    watchers.push(watcher);
    await watcher.start();
  }
  const results = await Promise.all(watchers.map((watcher) => watcher.check()));
  for (const [i, r] of results.entries()) {
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(new RegExp(`scale-down: ${watchers[i].instanceId} leaves`));
  }
  const fleet = (await w.ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [w.fleetId] }))).SpotFleetRequestConfigs![0];
  expect(fleet.SpotFleetRequestConfig!.TargetCapacity).toBe(0);
  const states = (await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: w.boxes.launched }))).Reservations!.flatMap((r) => r.Instances!.map((i) => i.State!.Name));
  expect(states).toEqual(['terminated', 'terminated', 'terminated']);
  expect(w.control.capacityChanges()).toEqual(changes);
  await w.gateway!.api.gpuStatus(); // an idle gateway reads the fleet only at its next report: ask now
  const health = await request<{ readyInstances: string[]; targetCapacity: number; queueDepth: number; running: number }>(`${w.gateway!.url}/health`);
  expect(health.body).toMatchObject({ readyInstances: [], targetCapacity: 0, queueDepth: 0, running: 0 });
});
