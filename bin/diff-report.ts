#!/usr/bin/env node
// Infrastructure diff report for pull requests (.github/workflows/diff.yml runs it):
//   npx tsx bin/diff-report.ts --base <dir> --head <dir> [--out report.md] [--allow-destructive] [--json]
//   npx tsx bin/diff-report.ts --base-ref origin/main [--head <dir>] ...
// Each dir holds <dir>/<env>/manifest.json as `npm run synth -- <dir>` writes it.
// Exit codes: 0 no destructive change (or --allow-destructive), 3 destructive change, 1 error.
import { runDiffReport } from '../lib/diff/cli';

void runDiffReport(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  cwd: process.cwd(),
}).then((code) => {
  process.exitCode = code;
});
