import { Template } from 'aws-cdk-lib/assertions';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { environments } from '../../lib/config/environments';
import { validateEnvironment } from '../../lib/config/load';
import { readSynthResult, synthConfig, synthEnvironment, type SynthResult } from '../../lib/synth';

const cache = new Map<string, SynthResult>();
let workdir: string | undefined;

/** A fresh temporary folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  workdir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'aiassets-test-'));
  return fs.mkdtempSync(path.join(workdir, prefix));
}
process.on('exit', () => workdir && fs.rmSync(workdir, { recursive: true, force: true }));

/** An environment synthesized by the real app (cdk.json context, cdk-nag): once per run (global setup), else once per file. */
export function synthesized(envName: string): SynthResult {
  let result = cache.get(envName);
  if (!result) {
    const shared = process.env.AIASSETS_SYNTH_DIR;
    result = shared ? readSynthResult(envName, path.join(shared, envName)) : synthEnvironment(envName, tempDir(`${envName}-`));
    cache.set(envName, result);
  }
  return result;
}

/** The assertion template of one part (`Storage`, `Gpu`, ...) of an environment. */
export function templateOf(envName: string, part: string): Template {
  const result = synthesized(envName);
  const name = Object.keys(result.templates).find((n) => n.endsWith(`-${envName}-${part}`));
  if (!name) throw new Error(`no ${part} stack in ${envName}: ${Object.keys(result.templates).join(', ')}`);
  return Template.fromJSON(result.templates[name]);
}

export const ENVS = ['dev', 'staging', 'prod'] as const;

/** Synthesizes dev with one change to its raw config (for "what does this change do" tests). */
export function synthesizedDevWith(change: (raw: any) => void): SynthResult {
  const raw = structuredClone(environments.dev) as any;
  change(raw);
  return synthConfig(validateEnvironment('dev', raw), tempDir('dev-variant-'));
}

/** The template of one part of a synth result. */
export function partOf(result: SynthResult, part: string): Template {
  const name = Object.keys(result.templates).find((n) => n.endsWith(`-${part}`));
  if (!name) throw new Error(`no ${part} stack: ${Object.keys(result.templates).join(', ')}`);
  return Template.fromJSON(result.templates[name]);
}
