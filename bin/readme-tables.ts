#!/usr/bin/env node
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONFIG_TABLE, withBlock } from '../lib/config/readme-table';
import { costEstimateBlock } from '../lib/cost/readme-estimate';
import { synthEnvironment } from '../lib/synth';

// Regenerates the README's generated tables (config fields, dev cost estimate); a test keeps them equal.
const readmePath = path.join(__dirname, '..', 'README.md');
const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'aiassets-readme-'));
try {
  const dev = synthEnvironment('dev', outdir);
  let readme = fs.readFileSync(readmePath, 'utf8');
  for (const block of [CONFIG_TABLE, costEstimateBlock(dev.templates)]) readme = withBlock(readme, block);
  fs.writeFileSync(readmePath, readme);
  console.log('README.md: config table and cost estimate refreshed');
} finally {
  fs.rmSync(outdir, { recursive: true, force: true });
}
