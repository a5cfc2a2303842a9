import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUCKET, delay, envFile, FakeServer, INSTANCE_ID, killGroup, Sandbox, SCRIPTS, startDetached, waitFor } from './harness';

const SCRIPT = path.join(SCRIPTS, 'spot-interruption.sh');
const NOTICE = '{"action": "stop", "time": "2030-01-01T12:02:00Z"}';
const ACTION_PATH = 'GET /latest/meta-data/spot/instance-action';

const server = new FakeServer();
let sb: Sandbox;
const children: ChildProcess[] = [];

beforeAll(() => server.start());
afterAll(() => server.close());
beforeEach(() => {
  server.reset();
  sb = new Sandbox();
  for (const cmd of ['aws', 'docker', 'systemctl']) sb.stub(cmd);
  fs.mkdirSync(sb.path('data/output'), { recursive: true });
});
afterEach(async () => {
  await Promise.all(children.splice(0).map(killGroup));
  sb.cleanup();
});

function start(): ChildProcess {
  const child = startDetached(
    SCRIPT,
    sb.env({
      COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(server.port)),
      IMDS_URL: server.url,
      SPOT_POLL_SECONDS: '0.05',
      RETRY_SLEEP_SECONDS: '0',
      RUN_DIR: sb.path('run'),
      DATA_DIR: sb.path('data'),
    }),
  );
  children.push(child);
  return child;
}

/** Every recorded call, in order, as "cmd arg1 arg2 ...". */
const calls = () => sb.calls().map((call) => [call.cmd, ...call.args].join(' '));
const FLUSH = 'aws s3 sync ';

test('polls until a notice, then flushes outputs once, stops ComfyUI once and keeps idling', async () => {
  // No notice (404), an IMDS hiccup (500), no notice, then the notice on every later poll.
  server.instanceAction = (n) => (n === 2 ? { status: 500, body: 'oops' } : n < 4 ? { status: 404, body: 'Not Found' } : { status: 200, body: NOTICE });
  const child = start();
  await waitFor(() => calls().some((c) => c.startsWith('docker stop')), 5_000, 'docker stop');
  await delay(300); // six more poll intervals: time enough for a second flush, if there were one
  expect(child.exitCode).toBeNull();
  expect(calls()).toEqual([
    `aws s3 sync ${sb.path('data/output')}/ s3://${BUCKET}/generated/${INSTANCE_ID}/ --no-follow-symlinks --no-progress --only-show-errors`,
    'docker stop --time 30 comfyui',
    'systemctl stop --no-block comfyui.service',
  ]);
  expect(server.hits.get(ACTION_PATH)).toBe(4);
});

test('a restarted handler does not flush a second time during the same boot', async () => {
  server.instanceAction = () => ({ status: 200, body: NOTICE });
  const first = start();
  await waitFor(() => calls().length === 3, 5_000, 'the first flush');
  await killGroup(first);
  const second = start();
  await delay(300);
  expect(second.exitCode).toBeNull(); // started and idling, not crashed
  expect(calls().filter((c) => c.startsWith(FLUSH))).toHaveLength(1);
  expect(calls().filter((c) => c.startsWith('docker stop'))).toHaveLength(1);
  expect(server.hits.get(ACTION_PATH)).toBe(1);
});

test('without a notice nothing is flushed or stopped', async () => {
  start();
  await waitFor(() => (server.hits.get(ACTION_PATH) ?? 0) >= 5, 5_000, 'five polls');
  expect(calls()).toEqual([]);
});
