#!/usr/bin/env node
import * as path from 'node:path';
import { ENVIRONMENT_NAMES } from '../lib/config/environments';
import { ConfigError } from '../lib/config/load';
import { synthEnvironment } from '../lib/synth';

// Synthesizes every environment into cdk.out/<env>/ in one process (what CI keeps as an artifact).
const root = path.resolve(process.argv[2] ?? 'cdk.out');
let failed = false;
for (const envName of ENVIRONMENT_NAMES) {
  const started = process.hrtime.bigint();
  try {
    const result = synthEnvironment(envName, path.join(root, envName));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const stacks = Object.keys(result.templates).join(', ');
    console.log(`${envName}: ${stacks} -> ${path.relative(process.cwd(), result.outdir)} (${ms.toFixed(0)} ms)`);
    for (const a of result.annotations) console.warn(`  warning at ${a.path}: ${a.description}`);
    for (const v of result.violations) {
      failed = true;
      console.error(`  cdk-nag ${v.rule} at ${v.path}: ${v.description}`);
    }
  } catch (error) {
    failed = true;
    console.error(error instanceof ConfigError ? error.message : error);
  }
}
process.exit(failed ? 1 : 0);
