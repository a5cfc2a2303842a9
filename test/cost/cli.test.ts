import { envWithoutAws, ISOLATED_AWS_ENV, runTsx } from '../support/child';
import * as path from 'node:path';
import { loadEnvironment } from '../../lib/config/load';
import { estimateEnvironment } from '../../lib/cost/estimate';
import { OpsError } from '../../lib/ops/errors';
import { synthesized, tempDir } from '../support/synth';
import { fixtureCdkOut } from './fixture-cdk-out';
import { cost, type EstimateJson } from './run-cost';

/** `tsx bin/ops.ts <args>` as a child process with no credentials and no reachable AWS endpoint: estimate is offline. */
function child(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runTsx('bin/ops.ts', args, { env: { ...envWithoutAws(), ...ISOLATED_AWS_ENV } });
}

describe('cost estimate (CLI)', () => {
  it('as a child process: --json and --markdown over a synthesized dev, no credentials needed', async () => {
    const dev = synthesized('dev');
    const [json, markdown] = await Promise.all([
      child(['cost', 'estimate', '--env', 'dev', '--cdk-out', dev.outdir, '--json']),
      child(['cost', 'estimate', '--env', 'dev', '--cdk-out', dev.outdir, '--markdown']),
    ]);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const { environments: estimates, accounts } = JSON.parse(json.stdout) as EstimateJson;
    const inProcess = estimateEnvironment(loadEnvironment('dev'), dev.templates);
    expect(estimates).toHaveLength(1);
    // One environment: its account total is its own total.
    expect(accounts).toMatchObject([{ account: null, environments: ['dev'], totalUsd: estimates[0].totalUsd, sharedFreeTierUsd: 0 }]);
    expect(estimates[0].totalUsd).toBe(Math.round(inProcess.totalUsd * 100) / 100); // the JSON carries cents
    expect(estimates[0].lines.map((l) => l.item)).toEqual(inProcess.lines.map((l) => l.item));
    expect(markdown.code).toBe(0);
    expect(markdown.stdout).toMatch(/^#### Estimated monthly cost of dev \(us-east-1\): \$\d+\.\d\d, /);
    expect(markdown.stdout).toContain('| item | quantity | unit | unit price | USD/month | basis |');
    // The README's table: one environment's markdown is the estimate alone, no account section.
    expect(markdown.stdout).not.toContain('Account total');
  });

  it('without --env it estimates every environment; --cdk-out reads <dir>/<env>', async () => {
    const run = await cost(['cost', 'estimate', '--cdk-out', fixtureCdkOut(), '--json']);
    expect(run.error).toBeUndefined();
    const estimates = (JSON.parse(run.stdout) as EstimateJson).environments;
    expect(estimates.map((e) => e.envName)).toEqual(['dev', 'staging', 'prod']);
    // Same templates, same default profile: the same total for each.
    expect(new Set(estimates.map((e) => e.totalUsd.toFixed(6))).size).toBe(1);
    expect(estimates.every((e) => e.freeTierApplied)).toBe(true);
    // Money in the JSON is in cents, as a bill shows it; unit prices keep their precision.
    const amounts = [...run.stdout.matchAll(/"(\w*(?:Usd|usd))": (-?[\d.]+)/g)].filter(([, key]) => key !== 'unitPriceUsd');
    expect(amounts.length).toBeGreaterThan(20);
    for (const [, key, value] of amounts) expect({ key, value }).toEqual({ key, value: String(Math.round(Number(value) * 100) / 100) });
    expect(run.stdout).toContain('"unitPriceUsd": 0.1766');

    const noFree = await cost(['cost', 'estimate', '--env', 'prod', '--cdk-out', fixtureCdkOut(), '--no-free-tier', '--json']);
    const [prod] = (JSON.parse(noFree.stdout) as EstimateJson).environments;
    expect(prod.freeTierApplied).toBe(false);
    expect(prod.totalUsd).toBeGreaterThan(estimates[2].totalUsd);
  });

  it('synthesizes in-process when there is no --cdk-out (staging: two fleet types, the cheaper one priced), saying so on stderr', async () => {
    const clock = [1_000, 5_200];
    const run = await cost(['cost', 'estimate', '--env', 'staging'], { now: () => clock.shift() ?? 5_200 });
    expect(run.error).toBeUndefined();
    expect(run.stderr.split('\n')[0]).toBe('synthesizing staging (1/1)… 4.2 s');
    expect(run.stdout).not.toContain('synthesizing');
    expect(run.stdout.split('\n')[0]).toMatch(/^Estimated monthly cost of staging \(us-east-1\): \$\d+\.\d\d/);
    expect(run.stdout).toMatch(/EC2 Spot GPU \(g4dn\.xlarge\).*g4dn\.xlarge \$0\.1766 \(on-demand \$0\.526\), g5\.xlarge \$0\.3939/);
    expect(run.stdout).toMatch(/^total\s+\$\d+\.\d\d$/m);
  });

  it('says clearly what is wrong with the options', async () => {
    const both = await cost(['cost', 'estimate', '--env', 'dev', '--json', '--markdown']);
    expect(both.error).toEqual(new OpsError('Choose one of --json and --markdown.', 64));
    expect((both.error as OpsError).exitCode).toBe(64);
    const missing = await cost(['cost', 'estimate', '--env', 'dev', '--cdk-out', tempDir('empty-')]);
    expect((missing.error as Error).message).toMatch(/^No cloud assembly for dev in .*empty-.* run "npm run synth" first\.$/);
    expect((missing.error as OpsError).exitCode).toBe(64);
    const absent = await cost(['cost', 'estimate', '--env', 'dev', '--cdk-out', path.join(tempDir('gone-'), 'no-such-folder')]);
    expect((absent.error as OpsError).exitCode).toBe(64);
    const unknown = await cost(['cost', 'estimate', '--env', 'qa']);
    expect(unknown.stderr).toContain("error: option '--env <name>' argument 'qa' is invalid. allowed: dev, staging, prod.");
    const inList = await cost(['cost', 'estimate', '--env', 'dev,qa,stage']);
    expect(inList.stderr).toContain(`error: option '--env <name>' argument 'dev,qa,stage' is invalid. "qa", "stage" are not environments; allowed: dev, staging, prod.`);
    expect(inList.stdout).toBe('');
  });
});
