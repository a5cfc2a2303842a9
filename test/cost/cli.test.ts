import { Command } from 'commander';
import { envWithoutAws, ISOLATED_AWS_ENV, runTsx } from '../support/child';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ENVIRONMENT_NAMES } from '../../lib/config/environments';
import { loadEnvironment } from '../../lib/config/load';
import { estimateEnvironment, type CostEstimate } from '../../lib/cost/estimate';
import { registerCostCommands } from '../../lib/ops/commands/cost';
import { OpsError } from '../../lib/ops/errors';
import { synthesized, tempDir } from '../support/synth';

const FIXTURE_DIR = path.join(__dirname, 'fixtures', 'small-env');

/** Runs `cost ...` in-process and captures what it writes. */
async function cost(args: string[]): Promise<{ stdout: string; stderr: string; error?: unknown }> {
  let stdout = '';
  let stderr = '';
  const program = new Command('cost-tool').exitOverride().configureOutput({ writeOut: (t) => (stdout += t), writeErr: (t) => (stderr += t) });
  registerCostCommands(program, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {} });
  try {
    await program.parseAsync(args, { from: 'user' });
    return { stdout, stderr };
  } catch (error) {
    return { stdout, stderr, error };
  }
}

/** `tsx bin/ops.ts <args>` as a child process with no credentials and no reachable AWS endpoint: estimate is offline. */
function child(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runTsx('bin/ops.ts', args, { env: { ...envWithoutAws(), ...ISOLATED_AWS_ENV } });
}

/** A cloud assembly folder per environment (<dir>/<env>/manifest.json) built from the fixture templates. */
function fixtureCdkOut(): string {
  const dir = tempDir('cdk-out-');
  for (const env of ENVIRONMENT_NAMES) {
    const envDir = path.join(dir, env);
    fs.mkdirSync(envDir);
    const artifacts: Record<string, unknown> = {};
    for (const file of fs.readdirSync(FIXTURE_DIR)) {
      const stack = file.replace('Fx-fx-', `AiAssets-${env}-`).replace('.template.json', '');
      fs.copyFileSync(path.join(FIXTURE_DIR, file), path.join(envDir, `${stack}.template.json`));
      artifacts[stack] = { type: 'aws:cloudformation:stack', displayName: stack, properties: { templateFile: `${stack}.template.json` } };
    }
    fs.writeFileSync(path.join(envDir, 'manifest.json'), JSON.stringify({ version: '1', artifacts }));
  }
  return dir;
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
    const estimates = JSON.parse(json.stdout) as CostEstimate[];
    const inProcess = estimateEnvironment(loadEnvironment('dev'), dev.templates);
    expect(estimates).toHaveLength(1);
    expect(estimates[0].totalUsd).toBe(Math.round(inProcess.totalUsd * 100) / 100); // the JSON carries cents
    expect(estimates[0].lines.map((l) => l.item)).toEqual(inProcess.lines.map((l) => l.item));
    expect(markdown.code).toBe(0);
    expect(markdown.stdout).toMatch(/^#### Estimated monthly cost of dev \(us-east-1\): \$\d+\.\d\d, /);
    expect(markdown.stdout).toContain('| item | quantity | unit | unit price | USD/month | basis |');
  });

  it('without --env it estimates every environment; --cdk-out reads <dir>/<env>', async () => {
    const run = await cost(['cost', 'estimate', '--cdk-out', fixtureCdkOut(), '--json']);
    expect(run.error).toBeUndefined();
    const estimates = JSON.parse(run.stdout) as CostEstimate[];
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
    const [prod] = JSON.parse(noFree.stdout) as CostEstimate[];
    expect(prod.freeTierApplied).toBe(false);
    expect(prod.totalUsd).toBeGreaterThan(estimates[2].totalUsd);
  });

  it('synthesizes in-process when there is no --cdk-out (staging: two fleet types, the cheaper one priced)', async () => {
    const run = await cost(['cost', 'estimate', '--env', 'staging']);
    expect(run.error).toBeUndefined();
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
  });
});
