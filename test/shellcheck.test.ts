import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './support/synth';

const ROOT = path.join(__dirname, '..');
const SCRIPT_DIRS = ['assets', 'scripts', '.ci'];

/** Every shell script in the repo: *.sh files and files with a sh/bash shebang. */
function shellScripts(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (file.endsWith('.sh') || /^#!.*\b(ba)?sh\b/.test(fs.readFileSync(file, 'utf8').split('\n', 1)[0])) found.push(file);
    }
  };
  for (const dir of SCRIPT_DIRS) if (fs.existsSync(path.join(ROOT, dir))) walk(path.join(ROOT, dir));
  return found;
}

const shellcheck = (files: string[]) => spawnSync('shellcheck', ['--external-sources', ...files], { encoding: 'utf8', cwd: ROOT });

test('every shell script passes shellcheck', () => {
  const files = shellScripts();
  expect(files.map((f) => path.relative(ROOT, f))).toContain('.ci/run');
  const run = shellcheck(files);
  expect(run.error).toBeUndefined();
  expect(run.stdout).toBe('');
  expect(run.status).toBe(0);
});

test('shellcheck catches an unquoted expansion', () => {
  const bad = path.join(tempDir('sc-'), 'bad.sh');
  fs.writeFileSync(bad, '#!/bin/bash\nrm -rf $1/*\n');
  const run = shellcheck([bad]);
  expect(run.status).not.toBe(0);
  expect(run.stdout).toContain('SC2086');
});
