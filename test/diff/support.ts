import { runTsx } from '../support/child';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CfnTemplate } from '../../lib/synth';
import type { AssemblySet } from '../../lib/diff/types';
import { tempDir } from '../support/synth';

export const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');

/** The templates of one fixture folder, keyed by stack name (file name without `.template.json`). */
export function fixtureTemplates(name: string): Record<string, CfnTemplate> {
  const dir = path.join(FIXTURES, name);
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.template.json'))
      .map((f) => [f.replace(/\.template\.json$/, ''), JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CfnTemplate]),
  );
}

/** dev = the baseline on the base side; the head is the baseline with a case's stacks laid over it. */
export function fixturePair(caseName?: string): { base: AssemblySet; head: AssemblySet } {
  const baseline = fixtureTemplates('baseline');
  return { base: { dev: baseline }, head: { dev: { ...structuredClone(baseline), ...(caseName ? fixtureTemplates(caseName) : {}) } } };
}

/** Writes one cloud assembly (manifest.json plus templates) the way `npm run synth` lays it out. */
export function writeAssembly(dir: string, templates: Record<string, CfnTemplate>): void {
  fs.mkdirSync(dir, { recursive: true });
  const artifacts: Record<string, unknown> = {};
  for (const [stack, template] of Object.entries(templates)) {
    const templateFile = `${stack}.template.json`;
    fs.writeFileSync(path.join(dir, templateFile), JSON.stringify(template, null, 1));
    artifacts[stack] = { type: 'aws:cloudformation:stack', environment: 'aws://unknown-account/us-east-1', properties: { templateFile }, displayName: stack };
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ version: '55.0.0', artifacts }, null, 1));
}

/** Writes base and head as `<dir>/<env>/manifest.json` folders; returns their paths. */
export function writePair(pair: { base: AssemblySet; head: AssemblySet }, prefix = 'diff-'): { base: string; head: string } {
  const root = tempDir(prefix);
  for (const side of ['base', 'head'] as const) {
    for (const [env, templates] of Object.entries(pair[side])) writeAssembly(path.join(root, side, env), templates);
  }
  return { base: path.join(root, 'base'), head: path.join(root, 'head') };
}

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `tsx bin/diff-report.ts <args>` as a real child process. */
export function diffReport(args: string[], cwd = ROOT): Promise<Run> {
  return runTsx('bin/diff-report.ts', args, { cwd, env: { ...process.env, FORCE_COLOR: '0' }, timeoutMs: 50_000 });
}
