import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ENVS, synthesized, synthesizedDevWith, tempDir } from './support/synth';

function cfnLint(files: string[]) {
  return spawnSync('cfn-lint', ['--format', 'parseable', '--', ...files], { encoding: 'utf8' });
}

describe('cfn-lint', () => {
  beforeAll(() => {
    // Fails loudly when the linter is missing instead of passing vacuously.
    expect(execFileSync('cfn-lint', ['--version'], { encoding: 'utf8' })).toMatch(/cfn-lint \d/);
  });

  test.each(ENVS)('%s: every template has zero errors and zero warnings', (envName) => {
    const { outdir, templates } = synthesized(envName);
    const files = Object.keys(templates).map((name) => path.join(outdir, `${name}.template.json`));
    expect(files.length).toBeGreaterThanOrEqual(2);
    const run = cfnLint(files);
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  test('every optional feature switched on still lints clean (auto-stop, max price, three instance types, three AZs)', () => {
    const variant = synthesizedDevWith((c) => {
      c.observability = { autoStopOnWatcherFailure: true };
      c.gpu = { maxSpotPriceUsd: 0.4, instanceTypes: ['g4dn.xlarge', 'g5.xlarge', 'g6.xlarge'] };
      c.network.azCount = 3;
    });
    expect(variant.violations).toEqual([]);
    const run = cfnLint(Object.keys(variant.templates).map((name) => path.join(variant.outdir, `${name}.template.json`)));
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  test('the gate catches a broken template', () => {
    const file = path.join(tempDir('lint-'), 'broken.template.json');
    const broken = { Resources: { Bucket: { Type: 'AWS::S3::Bucket', Properties: { VersioningConfiguration: { Status: 'Sometimes' } } } } };
    fs.writeFileSync(file, JSON.stringify(broken));
    const run = cfnLint([file]);
    expect(run.status).not.toBe(0);
    expect(run.stdout).toMatch(/E3030|Sometimes/);
  });
});
