#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { benchGateway } from './bench-gateway';

// Wall time of synthesizing every environment and of the whole jest suite (not a timed test:
// figures go into the README's benchmark table). Usage: npm run bench [-- --runs N]
const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 1;

function time(label: string, command: string, args: string[]): void {
  const samples: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const started = process.hrtime.bigint();
    const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${label} failed:\n${result.stderr}`);
    samples.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  const best = Math.min(...samples);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  console.log(`${label.padEnd(36)} best ${best.toFixed(1)} s  mean ${mean.toFixed(1)} s  (${runs} run${runs > 1 ? 's' : ''})`);
}

// --gateway-only: just the gateway's added latency and /view throughput (seconds, not minutes).
if (!process.argv.includes('--gateway-only')) {
  time('synthesize all environments', 'npx', ['tsx', 'bin/synth-all.ts']);
  time('test suite (typecheck + jest)', 'npm', ['test', '--silent']);
}
benchGateway({ requests: 2000, viewMb: 64, runs: Math.max(runs, 3) }).then(
  (lines) => console.log(lines.join('\n')),
  (error: Error) => {
    console.error(error.message);
    process.exitCode = 1;
  },
);
