import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { historyOf, postPrompt, waitFor, workflow } from './support/comfy-api-client';
import { useGatewayWorld, type World } from './support/gateway-world';
import { IdleWatcherBox, type Step } from './support/idle-watcher-box';

/**
 * The scale-down race of issue 13 item 4, with the box's real idle-watcher.sh (AWS CLI v1 on
 * moto) against the gateway and the real control function: the box decides to leave at the
 * moment a prompt arrives. The gateway has read the box as not leaving and picked it; its lease
 * is held until the box has tagged itself leaving, so the gateway's read after its lease sees
 * the tag. Either order of the box's lease read and the gateway's lease write must end with no
 * prompt sent to a box that is leaving, and the prompt completed.
 */
jest.setTimeout(600_000);
const world = useGatewayWorld();
const boxes: IdleWatcherBox[] = [];
afterEach(async () => {
  for (const box of boxes.splice(0)) await box.cleanup();
});

/** One ready box with its watcher about to leave; the gateway's first lease on it waits for `leaseAfter`. */
async function raceSetUp(holds: Step[], leaseAfter: Step): Promise<{ w: World; box: string; watcher: IdleWatcherBox }> {
  const w = await world({ initialCapacity: 1 });
  const box = await waitFor('a ready box', () => w.boxes.launched.find((id) => w.boxes.boxes.has(id)), 30_000);
  const standIn = w.boxes.boxes.get(box)!.standIn;
  const watcher = new IdleWatcherBox(w.moto.endpoint, box, Number(new URL(standIn.url).port), holds);
  boxes.push(watcher);
  await watcher.start();
  standIn.probe = () => ({ tagged: watcher.marked('tagged-leaving'), untagged: watcher.marked('untagged-leaving') });
  let first = true;
  w.control.beforeLease = async (ids) => {
    if (!first || !ids.includes(box)) return;
    first = false;
    watcher.release('tag-leaving');
    await watcher.reached(leaseAfter);
  };
  return { w, box, watcher };
}

const skipped = (w: World, box: string) => w.logs.some((l) => l.includes(`no dispatch to ${box}: after the lease it is leaving`));
/** The v1 CLI takes a second or more per call, several on a loaded machine: the box's steps get a generous bound. */
const CLI_BOUND_MS = 180_000;

test('the box tags itself leaving, then finds the new lease: it stays, and the prompt runs there only after the tag is gone', async () => {
  const { w, box, watcher } = await raceSetUp(['tag-leaving', 'reread-lease'], 'reread-lease');
  const check = watcher.check();
  await watcher.reached('tag-leaving'); // idle, no lease: it has decided to leave
  const { body } = await postPrompt(w.comfy, { prompt: workflow(), prompt_id: 'race-stays' });
  await waitFor('the gateway to skip the leaving box', () => (skipped(w, box) ? true : undefined), CLI_BOUND_MS);
  expect(w.boxes.boxes.get(box)!.standIn.received).toEqual([]);

  watcher.release('reread-lease');
  const result = await check;
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toMatch(/gateway lease until \S+ appeared while leaving: removed comfyui:leaving, staying/);

  expect((await historyOf(w.comfy, body.prompt_id!)).status.status_str).toBe('success');
  // Sent there once, after the box had tagged itself leaving and the gateway had skipped it. Whether
  // the harness has read the watcher's "untagged" line by then is the harness's own timing (the gateway
  // dispatches as soon as the fleet status shows the tag gone), so only the tagged step is asserted.
  const received = w.boxes.boxes.get(box)!.standIn.received;
  expect(received.map((r) => [r.promptId, (r.probe as { tagged: boolean }).tagged])).toEqual([['race-stays', true]]);
  expect(w.control.capacityChanges()).toEqual([]);
});

test('the box reads no lease and leaves: the gateway, whose lease came too late, sends it nothing; the prompt runs on a new box', async () => {
  const { w, box, watcher } = await raceSetUp(['tag-leaving', 'set-target'], 'set-target');
  const check = watcher.check();
  await watcher.reached('tag-leaving');
  const { body } = await postPrompt(w.comfy, { prompt: workflow(), prompt_id: 'race-leaves' });
  await waitFor('the gateway to skip the leaving box', () => (skipped(w, box) ? true : undefined), CLI_BOUND_MS);
  const leaving = w.boxes.boxes.get(box)!.standIn;

  watcher.release('set-target');
  const result = await check;
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toMatch(new RegExp(`scale-down: ${box} leaves`));

  expect((await historyOf(w.comfy, body.prompt_id!)).status.status_str).toBe('success');
  expect(leaving.received).toEqual([]);
  const job = (await w.gateway!.api.job('race-leaves'))!;
  expect(job.instanceId).not.toBe(box);
  expect(job.attempts).toBe(1);
  const state = (await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: [box] }))).Reservations![0].Instances![0].State!.Name;
  expect(state).toBe('terminated');
});
