import { Command, CommanderError } from 'commander';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readAssemblies } from './assemblies';
import { repoRoot, synthesizeRef, synthesizeTree } from './base-ref';
import { renderMarkdown } from './markdown';
import { buildReport, destructiveCount, exitCode } from './report';

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly cwd: string;
}

interface Options {
  base?: string;
  baseRef?: string;
  head?: string;
  out?: string;
  allowDestructive?: boolean;
  json?: boolean;
}

export const USAGE = `Exit codes: 0 no destructive change (or --allow-destructive), 3 destructive change, 1 error.`;

function program(io: Io): Command {
  return new Command('diff-report')
    .description('Diff the synthesized templates of two versions of the app: flags, cost change, per-stack changes (Markdown).')
    .option('--base <dir>', 'folder of per-environment cloud assemblies (<dir>/<env>/manifest.json) of the base')
    .option('--base-ref <ref>', 'git ref to synthesize as the base (temporary worktree) instead of --base')
    .option('--head <dir>', 'cloud assemblies of the head; with --base-ref, defaults to synthesizing the working tree')
    .option('--out <file>', 'also write the Markdown report to this file')
    .option('--allow-destructive', 'exit 0 even on a destructive change (it is still flagged)', false)
    .option('--json', 'print the report as JSON instead of Markdown')
    .addHelpText('after', `\n${USAGE}`)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
}

/** Resolves base and head to folders of cloud assemblies, synthesizing refs into `tmp` when asked. */
function resolveInputs(o: Options, io: Io, tmp: () => string): { base: string; head: string } {
  if (!o.base === !o.baseRef) throw new Error('give exactly one of --base <dir> and --base-ref <ref>');
  if (o.base) {
    if (!o.head) throw new Error('--base needs --head <dir>');
    return { base: path.resolve(io.cwd, o.base), head: path.resolve(io.cwd, o.head) };
  }
  const base = path.join(tmp(), 'base');
  synthesizeRef(o.baseRef!, io.cwd, base);
  if (o.head) return { base, head: path.resolve(io.cwd, o.head) };
  const head = path.join(tmp(), 'head');
  synthesizeTree(repoRoot(io.cwd), head, 'the working tree');
  return { base, head };
}

/** Runs the command; returns its exit code instead of exiting (tests call it in-process). */
export async function runDiffReport(argv: string[], io: Io): Promise<number> {
  const cmd = program(io);
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 1;
    throw error;
  }
  const o = cmd.opts<Options>();
  let tmpDir: string | undefined;
  const tmp = (): string => (tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'diff-report-')));
  try {
    const { base, head } = resolveInputs(o, io, tmp);
    const report = buildReport(readAssemblies(base), readAssemblies(head), { allowDestructive: o.allowDestructive ?? false });
    const markdown = renderMarkdown(report);
    if (o.out) fs.writeFileSync(path.resolve(io.cwd, o.out), markdown);
    const code = exitCode(report);
    io.stdout(o.json ? `${JSON.stringify({ ...report, destructive: destructiveCount(report), exitCode: code }, null, 2)}\n` : markdown);
    const n = destructiveCount(report);
    io.stderr(
      report.empty
        ? 'diff-report: no infrastructure changes\n'
        : `diff-report: ${report.stacks.length} stack(s) changed, ${report.flags.length} flag(s), ${n} destructive${n > 0 && code === 0 ? ' (allowed)' : ''}\n`,
    );
    return code;
  } catch (error) {
    io.stderr(`diff-report: error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}
