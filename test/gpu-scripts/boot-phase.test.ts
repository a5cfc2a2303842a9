/** boot-phase.sh: each boot phase's time since kernel boot, in a file and in the instance's tag. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { envFile, FakeServer, INSTANCE_ID, run, Sandbox, SCRIPTS } from './harness';

const SCRIPT = path.join(SCRIPTS, 'boot-phase.sh');
const server = new FakeServer();
let sb: Sandbox;

beforeAll(() => server.start());
afterAll(() => server.close());
beforeEach(() => {
  sb = new Sandbox();
  sb.stub('aws', '[ -z "$FAKE_AWS_FAILS" ] || { echo "An error occurred (UnauthorizedOperation)" >&2; exit 254; }');
});
afterEach(() => sb.cleanup());

function phase(name: string, uptime: string, extra: Record<string, string> = {}) {
  const env = sb.env({
    COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(8188)),
    IMDS_URL: server.url,
    RUN_DIR: sb.path('run'),
    UPTIME_FILE: sb.write('uptime', `${uptime} 100.00\n`),
    ...extra,
  });
  return run(SCRIPT, env, 10_000, name === '' ? [] : [name]);
}

const tags = () => sb.calls('aws').map((c) => c.args);

test('records each phase once, in order, and tags the instance with all of them', async () => {
  await phase('bootstrap', '41.20');
  await phase('image', '88.91');
  await phase('models', '102.00');
  await phase('image', '95.00'); // a restarted unit replaces its own figure
  expect(fs.readFileSync(sb.path('run/boot-phases'), 'utf8')).toBe('bootstrap=41\nmodels=102\nimage=95\n');
  expect(tags().at(-1)).toEqual(['ec2', 'create-tags', '--resources', INSTANCE_ID, '--tags', 'Key=comfyui:boot,Value=bootstrap=41 models=102 image=95']);
});

test('a tag that cannot be written is logged, never fatal to the boot', async () => {
  const result = await phase('ready', '60.00', { FAKE_AWS_FAILS: '1' });
  expect(result.code).toBe(0);
  expect(result.stdout).toContain(`warning: could not tag ${INSTANCE_ID} with its boot phases`);
});

test('refuses a phase name that is not a plain word', async () => {
  const result = await phase('../x', '60.00');
  expect(result.code).not.toBe(0);
  expect(result.stdout).toContain("usage: boot-phase.sh NAME (lower-case letters and -), got '../x'");
});
