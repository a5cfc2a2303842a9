import { Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createApp } from '../lib/app';
import { ENVS, synthesized, tempDir } from './support/synth';

describe('cdk-nag AwsSolutions', () => {
  test.each(ENVS)('%s: every stack passes with no unacknowledged finding', (envName) => {
    const result = synthesized(envName);
    expect(Object.keys(result.templates).length).toBeGreaterThanOrEqual(2);
    expect(result.violations).toEqual([]);
  });

  test.each(ENVS)('%s: every acknowledgement carries a reason a reviewer can read', (envName) => {
    const acks = Object.values(synthesized(envName).templates).flatMap((t) =>
      Object.values(t.Resources).flatMap((r: any) => r.Metadata?.cdk_nag?.rules_to_suppress ?? []),
    );
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) expect(ack.reason.length).toBeGreaterThan(40);
  });

  test('a deliberately non-compliant construct is caught', () => {
    const outdir = tempDir('nag-');
    const app = createApp({ outdir });
    new s3.Bucket(new Stack(app, 'NonCompliant'), 'PlainBucket');
    expect(() => app.synth()).toThrow(/AwsSolutions-S1/);
    const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
    const rules = report.pluginReports.flatMap((p: any) => p.violations.map((v: any) => v.ruleName));
    expect(rules).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']));
  });
});
