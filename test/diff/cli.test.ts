import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../support/synth';
import { diffReport, fixturePair, fixtureTemplates, writeAssembly, writePair, type Run } from './support';

const NO_CHANGES = '## Infrastructure diff\n\nNo infrastructure changes.\n';

describe('bin/diff-report.ts as a child process', () => {
  const renamed = writePair(fixturePair('bucket-renamed'), 'renamed-');
  const same = writePair(fixturePair(), 'same-');
  const opened = writePair(fixturePair('security-group-opened'), 'opened-');
  const outFile = path.join(tempDir('out-'), 'report.md');
  let runs: Record<'destructive' | 'allowed' | 'none' | 'json' | 'noHead' | 'noAssembly', Run>;

  beforeAll(async () => {
    // Independent processes: start them together (each loads tsx and the spec database).
    const [destructive, allowed, none, json, noHead, noAssembly] = await Promise.all([
      diffReport(['--base', renamed.base, '--head', renamed.head]),
      diffReport(['--base', renamed.base, '--head', renamed.head, '--allow-destructive']),
      diffReport(['--base', same.base, '--head', same.head]),
      diffReport(['--base', opened.base, '--head', opened.head, '--json', '--out', outFile]),
      diffReport(['--base', same.base]),
      diffReport(['--base', tempDir('empty-'), '--head', same.head]),
    ]);
    runs = { destructive: destructive!, allowed: allowed!, none: none!, json: json!, noHead: noHead!, noAssembly: noAssembly! };
  });

  test('a renamed bucket exits 3 with the replacement flagged', () => {
    const r = runs.destructive;
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('⛔ **destructive** `dev` / `AiAssets-dev-Storage` / `AssetsBucket252B3DF7` (AWS::S3::Bucket): S3 bucket will be replaced');
    expect(r.stderr).toBe('diff-report: 1 stack(s) changed, 1 flag(s), 1 destructive\n');
  });

  test('--allow-destructive exits 0 and still shows the flag', () => {
    const r = runs.allowed;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('⛔ **destructive** `dev` / `AiAssets-dev-Storage` / `AssetsBucket252B3DF7`');
    expect(r.stdout).toContain('**1 destructive change**, allowed');
    expect(r.stderr).toContain('1 destructive (allowed)');
  });

  test('no change prints the empty report and exits 0', () => {
    expect(runs.none).toMatchObject({ code: 0, stdout: NO_CHANGES, stderr: 'diff-report: no infrastructure changes\n' });
  });

  test('--json prints the report as JSON; --out still writes the Markdown', () => {
    const r = runs.json;
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ empty: false, destructive: 0, exitCode: 0, flags: [{ kind: 'security-group', destructive: false }] });
    expect(json.flags[0].message).toContain('Everyone (IPv4)');
    expect(fs.readFileSync(outFile, 'utf8')).toContain('OPEN TO THE INTERNET');
  });

  test('bad input exits 1 with a message, never 0', () => {
    expect(runs.noHead.code).toBe(1);
    expect(runs.noHead.stderr).toContain('--base needs --head <dir>');
    expect(runs.noAssembly.code).toBe(1);
    expect(runs.noAssembly.stderr).toMatch(/no cloud assembly in .*expected <dir>\/<env>\/manifest.json/);
  });
});

describe('--base-ref', () => {
  /** A tiny repository whose `npm run synth -- <dir>` writes templates/ as the dev assembly. */
  function repoWithTwoCommits(): string {
    const repo = tempDir('repo-');
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], { cwd: repo, encoding: 'utf8' });
    const synth = `
      const fs = require('fs'), path = require('path');
      // The worktree gets the working tree's node_modules (the lock files match) as real files:
      // through a symlink, esbuild would bundle real paths and every asset hash would differ.
      if (!fs.existsSync('node_modules/marker.txt')) { console.error('no node_modules'); process.exit(1); }
      if (fs.lstatSync('node_modules').isSymbolicLink()) { console.error('node_modules is a symlink'); process.exit(1); }
      const out = path.join(process.argv[2], 'dev'); fs.mkdirSync(out, { recursive: true });
      const artifacts = {};
      for (const f of fs.readdirSync('templates')) {
        fs.copyFileSync(path.join('templates', f), path.join(out, f));
        const stack = f.replace('.template.json', '');
        artifacts[stack] = { type: 'aws:cloudformation:stack', properties: { templateFile: f }, displayName: stack };
      }
      fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({ version: '55.0.0', artifacts }));
    `;
    fs.writeFileSync(path.join(repo, 'synth.js'), synth);
    fs.writeFileSync(path.join(repo, 'package.json'), JSON.stringify({ name: 'fixture', private: true, scripts: { synth: 'node synth.js' } }));
    fs.writeFileSync(path.join(repo, 'package-lock.json'), JSON.stringify({ name: 'fixture', lockfileVersion: 3, packages: {} }));
    fs.writeFileSync(path.join(repo, '.gitignore'), 'node_modules/\n');
    fs.mkdirSync(path.join(repo, 'node_modules'));
    fs.writeFileSync(path.join(repo, 'node_modules', 'marker.txt'), 'kept');
    const templates = path.join(repo, 'templates');
    writeAssembly(templates, fixtureTemplates('baseline'));
    fs.rmSync(path.join(templates, 'manifest.json'));
    git('init', '--quiet');
    git('add', '.');
    git('commit', '--quiet', '-m', 'base');
    for (const [stack, t] of Object.entries(fixtureTemplates('bucket-renamed'))) {
      fs.writeFileSync(path.join(templates, `${stack}.template.json`), JSON.stringify(t));
    }
    git('commit', '--quiet', '-am', 'rename the bucket');
    return repo;
  }

  test('synthesizes the ref in a temporary worktree and the head from the working tree, then cleans up', async () => {
    const repo = repoWithTwoCommits();
    const [changed, unknown] = await Promise.all([diffReport(['--base-ref', 'HEAD~1'], repo), diffReport(['--base-ref', 'no-such-ref'], repo)]);
    expect(changed.stderr).toContain('diff-report: 1 stack(s) changed, 1 flag(s), 1 destructive');
    expect(changed.code).toBe(3);
    expect(changed.stdout).toContain('S3 bucket will be replaced (changed: BucketName)');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown git ref "no-such-ref"');
    // The worktree is gone, the shared node_modules survived, and the checkout is untouched.
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });
    expect(git('worktree', 'list', '--porcelain').match(/^worktree /gm)).toHaveLength(1);
    expect(fs.readFileSync(path.join(repo, 'node_modules', 'marker.txt'), 'utf8')).toBe('kept');
    expect(git('status', '--porcelain')).toBe('');
  });
});
