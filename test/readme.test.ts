import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG_TABLE, withBlock } from '../lib/config/readme-table';
import { costEstimateBlock } from '../lib/cost/readme-estimate';
import { synthesized } from './support/synth';

const ROOT = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

test('the README config table lists every field as the schema defines it (npm run docs)', () => {
  expect(readme).toBe(withBlock(readme, CONFIG_TABLE));
  expect(readme).toContain('| `gpu.idleMinutes` | integer | `5` | a whole number from 5 to 240 minutes |');
});

test('the config table says what every field allows and means (a new field needs a rule and a description)', () => {
  const rows = CONFIG_TABLE.render().split('\n').slice(2);
  expect(rows.length).toBeGreaterThan(40);
  for (const row of rows) {
    const [field, , , allowed, meaning] = row.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    expect([field, allowed]).not.toEqual([field, 'any text']);
    expect([field, meaning]).not.toEqual([field, '']);
  }
});

test('the README cost table is the estimate of dev at the seed profile (npm run docs)', () => {
  expect(readme).toBe(withBlock(readme, costEstimateBlock(synthesized('dev').templates)));
  expect(readme).toContain('| EC2 Spot GPU (g4dn.xlarge) | 243.2 |');
});

test('the README lists every stack output of every stack', () => {
  const outputs = Object.entries(synthesized('dev').templates).flatMap(([stack, t]) =>
    Object.keys((t as { Outputs?: Record<string, unknown> }).Outputs ?? {})
      // CDK's own outputs that hand the topic and the fleet to the Observability stack.
      .filter((o) => !/^(PublishOutput|ExportsOutput)/.test(o))
      .map((o) => [stack, o]),
  );
  expect(outputs.length).toBeGreaterThanOrEqual(11);
  for (const [stack, output] of outputs) {
    const part = stack.replace(/^AiAssets-dev-/, '');
    const row = readme.split('\n').find((l) => l.startsWith(`| \`<App>-<env>-${part}\` | \``)) ?? '';
    expect([stack, output, row.includes(`\`${output}\``)]).toEqual([stack, output, true]);
  }
});

test('the README gives the two set-up commands, and CI runs the test one', () => {
  expect(readme).toContain('npm ci && npm run synth');
  expect(readme).toContain('bash scripts/test-all.sh');
  expect(fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8')).toContain('bash scripts/test-all.sh');
});

test('every npm script the README mentions exists', () => {
  const scripts = Object.keys(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts);
  const mentioned = [...readme.matchAll(/npm run ([a-z:]+)/g)].map((m) => m[1]);
  expect(mentioned.length).toBeGreaterThan(3);
  for (const name of new Set(mentioned)) expect(scripts).toContain(name);
});
