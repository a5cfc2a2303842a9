import { DeleteParameterCommand, GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { loadEnvironment } from '../../lib/config/load';
import { autoStopParameterName } from '../../lib/gpu-auto-stop-names';
import { runCli } from '../../lib/ops/cli';
import type { AutoStopChange } from '../../lib/ops/gpu-autostop';
import { useMoto } from '../support/moto';
import { cliEnv, inProcessDeps, motoClients } from './fixtures';

// `gpu autostop` against moto's SSM: the parameter as the Gpu stack creates it (lib/gpu-auto-stop-setting.ts).
const moto = useMoto();
const PARAMETER = autoStopParameterName({ appName: 'AiAssets', envName: 'dev' });
let ssm: SSMClient;

beforeEach(async () => {
  ssm = new SSMClient({ endpoint: moto().endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  await ssm.send(new PutParameterCommand({ Name: PARAMETER, Value: 'default', Type: 'String' }));
});
afterEach(() => ssm.destroy());

const valueNow = async (): Promise<string | undefined> => (await ssm.send(new GetParameterCommand({ Name: PARAMETER }))).Parameter?.Value;

async function autostop(args: string[], loadConfig?: typeof loadEnvironment) {
  const run = inProcessDeps(motoClients(moto().endpoint), cliEnv(moto().endpoint));
  const code = await runCli(['gpu', 'autostop', ...args, '--env', 'dev'], { ...run.deps, ...(loadConfig ? { loadConfig } : {}) });
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

test('a value outside 1..1440 or default is refused (exit 64) naming the argument, the value and what is allowed; nothing is written', async () => {
  for (const bad of ['0', '1441', '1.5', 'soon', '']) {
    const result = await autostop([bad]);
    expect([bad, result.code]).toEqual([bad, 64]);
    expect(result.stderr).toContain(
      `error: command-argument value '${bad}' is invalid for argument 'minutes'. allowed is a whole number of minutes from 1 to 1440, or default (gpu.idleMinutes).`,
    );
  }
  expect(await valueNow()).toBe('default');
});

test('30: the parameter is set, old -> new is printed with what it means; the same value again changes nothing', async () => {
  const set = await autostop(['30']);
  expect(set.code).toBe(0);
  expect(await valueNow()).toBe('30');
  expect(set.stdout).toContain(`Auto-stop of dev: default (gpu.idleMinutes = 5 idle minutes) -> 30 idle minutes, in ${PARAMETER}.\n`);
  expect(set.stdout).toContain('Each GPU box reads it at its next idle check (every minute, also after a reboot and on new boxes); a box idle 30 minutes or more by then leaves its fleet.');
  expect(set.stderr).toBe('');

  const again = await autostop(['30', '--json']);
  expect(again.code).toBe(0);
  expect(again.stderr).toContain(`Auto-stop of dev is already 30 idle minutes, in ${PARAMETER}.`);
  const doc = JSON.parse(again.stdout) as AutoStopChange;
  expect(doc).toEqual({
    env: 'dev',
    parameter: PARAMETER,
    changed: false,
    previous: { parameter: PARAMETER, value: '30', thresholdMinutes: 30, source: 'parameter', note: null },
    current: { parameter: PARAMETER, value: '30', thresholdMinutes: 30, source: 'parameter', note: null },
  });
});

test('default goes back to gpu.idleMinutes, with no warning', async () => {
  await ssm.send(new PutParameterCommand({ Name: PARAMETER, Value: '8', Type: 'String', Overwrite: true }));
  const back = await autostop(['default', '--json']);
  expect(back.code).toBe(0);
  expect(await valueNow()).toBe('default');
  expect(JSON.parse(back.stdout)).toMatchObject({ changed: true, previous: { value: '8', thresholdMinutes: 8 }, current: { value: 'default', thresholdMinutes: 5, source: 'gpu.idleMinutes' } });
  expect(back.stderr).toContain('Auto-stop of dev: 8 idle minutes -> default (gpu.idleMinutes = 5 idle minutes)');
  expect(back.stderr).not.toContain('warning');

  const ten = await autostop(['10']);
  expect(ten.code).toBe(0);
  expect(ten.stderr).toBe('');
});

test('a threshold far above 2 x gpu.idleMinutes warns of nothing, also with observability.autoStopOnWatcherFailure: WatcherFailed follows the threshold the box publishes', async () => {
  const withAutoStop = (name: string) => {
    const config = loadEnvironment(name);
    return { ...config, observability: { ...config.observability, autoStopOnWatcherFailure: true } };
  };
  const result = await autostop(['60'], withAutoStop);
  expect(result.code).toBe(0);
  expect(result.stderr).not.toContain('warning');
});

test('a Gpu stack deployed before gpu autostop: exit 3 with the deploy command, and no parameter is created (the deploy would then fail)', async () => {
  await ssm.send(new DeleteParameterCommand({ Name: PARAMETER }));
  const result = await autostop(['30']);
  expect(result.code).toBe(3);
  expect(result.stderr).toBe(
    `error: Cannot set the auto-stop of dev: ${PARAMETER} does not exist (a Gpu stack deployed before gpu autostop): redeploy it with npx cdk deploy -c env=dev --all\n`,
  );
  await expect(valueNow()).rejects.toMatchObject({ name: 'ParameterNotFound' });
});
