import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeSpotFleetRequestsCommand } from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { handleControlRequest } from '../../lib/gpu-control/actions';
import { budgetSpentMessage } from '../../lib/gpu-control/budget';
import { monthOf } from '../../lib/gpu-control/month';
import { GATEWAY_METRICS } from '../../lib/gpu-control/names';
import { runCli } from '../../lib/ops/cli';
import type { GpuStatus } from '../../lib/ops/gpu-status';
import { addBudgetOutputs, contextFor, G4DN_PRICE, motoControlClients, settingsFor } from '../gpu-control/support';
import { useMoto } from '../support/moto';
import { cliEnv, deployEnvironment, inProcessDeps, motoClients, runOps } from './fixtures';

// `gpu start` and `gpu status` with the budget guard, against moto: the ledger metric in CloudWatch,
// the override parameter in SSM, the allowance and prices from the Gpu stack's outputs.
const moto = useMoto();
const env = (): NodeJS.ProcessEnv => cliEnv(moto().endpoint);
const OVERRIDE = '/AiAssets/dev/gpu/budget-override';
const month = () => monthOf(new Date());

async function deploy(capacity: number, allowanceUsd: number, ledgerSeconds: number) {
  const clients = motoClients(moto().endpoint);
  const deployed = await deployEnvironment(clients, 'dev', { capacity });
  await addBudgetOutputs(clients.cloudFormation, 'AiAssets-dev-Gpu', { allowanceUsd, spotPrices: { 'g4dn.xlarge': G4DN_PRICE } });
  const control = motoControlClients(moto().endpoint);
  await control.ssm.send(new PutParameterCommand({ Name: OVERRIDE, Value: 'none', Type: 'String' }));
  if (ledgerSeconds > 0) {
    await clients.cloudWatch.send(
      new PutMetricDataCommand({
        Namespace: 'AiAssets/Gateway',
        MetricData: [{ MetricName: GATEWAY_METRICS.gpuSeconds, Dimensions: [{ Name: 'Environment', Value: 'dev' }, { Name: 'InstanceType', Value: 'g4dn.xlarge' }], Value: ledgerSeconds, Timestamp: new Date(), Unit: 'Seconds' }],
      }),
    );
  }
  return { clients, control, fleetId: deployed.fleetId! };
}

async function target(fleetId: string): Promise<number> {
  const out = await motoClients(moto().endpoint).ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }));
  return out.SpotFleetRequestConfigs![0].SpotFleetRequestConfig!.TargetCapacity!;
}

describe('gpu start', () => {
  test('refuses to raise the target once the allowance is spent (exit 5), with the control function\'s message', async () => {
    const { fleetId } = await deploy(0, 0.1, 3600);
    const result = await runOps(['gpu', 'start', '--env', 'dev'], env());
    expect(result.code).toBe(5);
    expect(result.stdout).toContain('GPU allowance: $0.18 of $0.10 used this month, $0.00 (0 h) left; spent: waking the GPU is refused');
    const budget = { month: month(), allowanceUsd: 0.1, usedUsd: 0.18, leftUsd: 0, hoursLeft: 0, spent: true, overridden: false };
    expect(result.stderr).toBe(`error: ${budgetSpentMessage(budget, 'dev')}\n`);
    expect(result.stderr).toContain('npm run ops -- gpu start --env dev --over-budget');
    expect(await target(fleetId)).toBe(0);
  });

  test("--over-budget first sets the month's override, says so, then raises; the control function then lets the gateway raise too", async () => {
    const { control, fleetId } = await deploy(0, 0.1, 3600);
    const run = inProcessDeps(motoClients(moto().endpoint), env());
    expect(await runCli(['gpu', 'start', '--env', 'dev', '--over-budget', '--json'], run.deps)).toBe(0);
    expect(run.stderr()).toContain(`Budget override set: ${OVERRIDE} = ${month()}; the GPU may wake past its allowance until ${month()} ends`);
    expect(JSON.parse(run.stdout())).toMatchObject({ targetCapacity: 1, budget: { spent: true, overridden: true } });
    expect((await control.ssm.send(new GetParameterCommand({ Name: OVERRIDE }))).Parameter!.Value).toBe(month());
    expect(await target(fleetId)).toBe(1);

    const gateway = await handleControlRequest({ action: 'set-capacity', capacity: 2, reason: 'queue' }, contextFor(control, settingsFor(fleetId, { allowanceUsd: 0.1 })).ctx);
    expect(gateway).toMatchObject({ ok: true, status: { targetCapacity: 2 } });
  });

  test('within the allowance it raises and prints what is left', async () => {
    const { fleetId } = await deploy(0, 30, 7200);
    const result = await runOps(['gpu', 'start', '--env', 'dev'], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // 2 h x $0.1766 = $0.35; $29.65 left is 167.8 h at $0.1766.
    expect(result.stdout).toContain('GPU allowance: $0.35 of $30.00 used this month, $29.65 (167.8 h) left\n');
    expect(await target(fleetId)).toBe(1);
  });

  test('a start that raises nothing is not refused, even when spent', async () => {
    await deploy(1, 0.1, 3600);
    const result = await runOps(['gpu', 'start', '--env', 'dev'], env());
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('GPU allowance');
  });

  test('a Gpu stack deployed before the budget guard: a warning, and the start goes on', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
    const result = await runOps(['gpu', 'start', '--env', 'dev'], env());
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      'warning: GPU budget not checked: stack AiAssets-dev-Gpu has no outputs GpuAllowanceUsd and GpuSpotPricesUsd (deployed before the budget guard): redeploy it with npx cdk deploy -c env=dev --all\n',
    );
    expect(await target(fleetId!)).toBe(1);
  });
});

describe('gpu status', () => {
  test('prints the allowance line and gives the BudgetStatus in --json, counting the ledger and the running instance', async () => {
    await deploy(1, 30, 7200);
    const table = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(table.code).toBe(0);
    // The running instance adds a few seconds at most.
    expect(table.stdout).toMatch(/^GPU allowance: \$0\.35 of \$30\.00 used this month, \$29\.65 \(167\.8 h\) left$/m);
    const json = await runOps(['gpu', 'status', '--env', 'dev', '--json'], env());
    const status = JSON.parse(json.stdout) as GpuStatus;
    expect(status.budget).toEqual({ month: month(), allowanceUsd: 30, usedUsd: 0.35, leftUsd: 29.65, hoursLeft: 167.8, spent: false, overridden: false });
  });

  test('says when the month is overridden', async () => {
    const { control } = await deploy(0, 0.1, 3600);
    await control.ssm.send(new PutParameterCommand({ Name: OVERRIDE, Value: month(), Type: 'String', Overwrite: true }));
    const table = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(table.stdout).toContain(`GPU allowance: $0.18 of $0.10 used this month, $0.00 (0 h) left; an operator override allows waking past it in ${month()}`);
  });
});
