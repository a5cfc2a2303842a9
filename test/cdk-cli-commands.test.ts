/**
 * Every `npx cdk ...` command the README, the workflows and the ops commands document, run
 * through the pinned aws-cdk CLI (node_modules/.bin/cdk). The CLI checks its options before it
 * runs the app, so each command runs with `--app 'exit 3'`: a valid command gets as far as the app
 * (and fails there, touching no AWS account); an option this CLI does not know is reported first
 * (`Unknown option(s): --all`). No credentials, no network: the app never starts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const CDK = path.join(ROOT, 'node_modules', '.bin', 'cdk');

/** `npx cdk <verb> <args>` in a text, up to a backtick, a comment, a pipe or the end of the line. */
function documented(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/npx cdk ([a-z]+(?: +[^`#|\n]+?)?)\s*(?=`|#|\||2>|\n|$)/g)].map((m) => m[1].replace(/\s+/g, ' ').trim());
}

/** Placeholders as the docs write them, made concrete. */
function concrete(args: string): string[] {
  return args
    .replace(/<env>|"\$env"|\$env/g, 'dev')
    .replace(/<Vps Observability Gpu Storage, those deployed>/g, 'AiAssets-dev-Vps')
    .split(' ');
}

const COMMANDS = [
  ...['README.md', '.github/workflows/diff.yml', '.github/workflows/ci.yml'].flatMap((file) => documented(file).map((args) => ({ file, args }))),
  // What `ops teardown` runs (lib/ops/cdk.ts).
  { file: 'lib/ops/cdk.ts', args: 'destroy AiAssets-dev-Vps --force -c env=dev' },
];

test('the docs name the commands users run', () => {
  const verbs = new Set(COMMANDS.map((c) => c.args.split(' ')[0]));
  for (const verb of ['diff', 'deploy', 'destroy']) expect(verbs).toContain(verb);
});

// bootstrap with an explicit environment does not run the app: it would go to AWS, so it is not run here.
test.each(COMMANDS.filter((c) => !c.args.startsWith('bootstrap')).map((c) => [c.file, c.args]))('%s: npx cdk %s is a command the pinned CLI accepts', (_file, args) => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-cli-'));
  try {
    const result = spawnSync(CDK, [...concrete(args), '--app', 'exit 3', '--no-notices'], {
      cwd,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: cwd, CDK_DISABLE_VERSION_CHECK: '1', AWS_EC2_METADATA_DISABLED: 'true', AWS_ACCESS_KEY_ID: 'none', AWS_SECRET_ACCESS_KEY: 'none', AWS_REGION: 'us-east-1' },
    });
    const out = `${result.stdout}${result.stderr}`;
    expect(out).not.toMatch(/Unknown (option|argument|command)/i);
    // It got as far as the app, which is where every valid command of these verbs goes first.
    expect(out).toContain('exit 3: Subprocess exited with error 3');
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});
