import * as fs from 'node:fs';
import * as path from 'node:path';
import { withConfigTable } from '../lib/config/readme-table';

const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

test('the README config table lists every field as the schema defines it (npm run config:table -- --write)', () => {
  expect(readme).toBe(withConfigTable(readme));
  expect(readme).toContain('| `gpu.idleMinutes` | integer | `15` |');
});

test('the README gives the two set-up commands, and CI runs the test one', () => {
  expect(readme).toContain('npm ci && npm run synth');
  expect(readme).toContain('bash scripts/test-all.sh');
  expect(fs.readFileSync(path.join(__dirname, '..', '.ci', 'run'), 'utf8')).toContain('bash scripts/test-all.sh');
});
