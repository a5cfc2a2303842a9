import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Synth output goes to stderr, so `--json` on stdout stays parseable. */
const TO_STDERR: SpawnSyncOptions = { stdio: ['ignore', 2, 2] };

function run(command: string, args: string[], cwd: string, what: string): void {
  const result = spawnSync(command, args, { ...TO_STDERR, cwd });
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status ?? result.signal}): ${command} ${args.join(' ')} in ${cwd}`);
}

function git(args: string[], cwd: string): string {
  const result = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${(result.stderr || '').trim()}`);
  return result.stdout.trim();
}

function readIf(file: string): string | undefined {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

/** Hard-links a folder tree (symlinks copied as links); throws EXDEV across file systems. */
function linkTree(from: string, to: string): void {
  fs.mkdirSync(to);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dest = path.join(to, entry.name);
    if (entry.isDirectory()) linkTree(src, dest);
    else if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dest);
    else fs.linkSync(src, dest);
  }
}

/**
 * Gives the base checkout its dependencies. When both lock files agree, the working tree's
 * node_modules is hard-linked in (about a second). Not symlinked: esbuild would then resolve
 * packages to their real path outside the checkout, the Lambda bundles would differ in their
 * path comments, and every asset hash would show up as a change. Otherwise `npm ci`.
 */
function installDependencies(root: string, tree: string): void {
  const lock = readIf(path.join(tree, 'package-lock.json'));
  const modules = path.join(root, 'node_modules');
  if (fs.existsSync(modules) && lock === readIf(path.join(root, 'package-lock.json'))) {
    try {
      linkTree(modules, path.join(tree, 'node_modules'));
      return;
    } catch {
      fs.rmSync(path.join(tree, 'node_modules'), { recursive: true, force: true });
    }
  }
  if (lock !== undefined) run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], tree, "installing the base ref's dependencies");
}

/** The top folder of the git checkout that holds `dir`. */
export function repoRoot(dir: string): string {
  return git(['rev-parse', '--show-toplevel'], dir);
}

/** `npm run synth -- <outdir>` in a checkout: every environment into `<outdir>/<env>/`. */
export function synthesizeTree(tree: string, outdir: string, what: string): void {
  run('npm', ['run', '--silent', 'synth', '--', outdir], tree, `synthesizing ${what}`);
}

/**
 * Synthesizes a git ref (a branch, tag or commit) into `outdir` from a temporary worktree
 * that is removed again; the repository's own checkout and index are not touched.
 */
export function synthesizeRef(ref: string, repoDir: string, outdir: string): void {
  const root = repoRoot(repoDir);
  let commit: string;
  try {
    commit = git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], root);
  } catch {
    throw new Error(`unknown git ref ${JSON.stringify(ref)} in ${root} (in CI, check out with fetch-depth: 0)`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'diff-base-'));
  const tree = path.join(tmp, 'tree');
  git(['worktree', 'add', '--detach', tree, commit], root);
  try {
    installDependencies(root, tree);
    synthesizeTree(tree, outdir, `base ref ${ref} (${commit.slice(0, 12)})`);
  } finally {
    git(['worktree', 'remove', '--force', tree], root);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
