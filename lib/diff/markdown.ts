import { destructiveCount } from './report';
import type { CostChange, DiffReport, Flag, ResourceChange, StackChange } from './types';

export const NO_CHANGES = 'No infrastructure changes.';
export const ALLOW_LABEL = 'allow-destructive';

/** Stack details longer than this are cut (a PR comment holds 65,536 characters in all). */
const MAX_DETAIL = 6000;

/** Inline code that survives backticks and pipes in the value (template text is untrusted). */
function code(text: string): string {
  const clean = text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
  const ticks = '`'.repeat(Math.max(0, ...(clean.match(/`+/g) ?? []).map((m) => m.length)) + 1);
  return ticks.length > 1 ? `${ticks} ${clean} ${ticks}` : `\`${clean}\``;
}

function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function fence(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const f = '`'.repeat(longest + 1);
  return `${f}text\n${text}\n${f}`;
}

/** A Markdown table of cells that are already escaped (`cell` or `code`). */
function table(rows: string[][]): string[] {
  const [header, ...body] = rows;
  return [`| ${header!.join(' | ')} |`, `| ${header!.map(() => '---').join(' | ')} |`, ...body.map((r) => `| ${r.join(' | ')} |`)];
}

export function usd(n: number): string {
  return `$${Math.abs(n).toFixed(2)}`;
}

export function signedUsd(n: number): string {
  if (Math.abs(n) < 0.005) return '$0.00';
  return `${n > 0 ? '+' : '-'}${usd(n)}`;
}

function flagLine(f: Flag): string[] {
  const icon = f.destructive ? '⛔ **destructive**' : '⚠️';
  const where = [f.env, f.stack, ...(f.logicalId ? [f.logicalId] : [])].map(code).join(' / ');
  const type = f.resourceType ? ` (${f.resourceType})` : '';
  const lines = [`- ${icon} ${where}${cell(type)}: ${cell(f.message).replace(/</g, '&lt;')}`];
  if (f.rows) lines.push('', ...table(f.rows.map((r) => r.map(cell))).map((l) => `  ${l}`), '');
  return lines;
}

function gateLine(report: DiffReport): string[] {
  const n = destructiveCount(report);
  if (n === 0) return ['No destructive change.'];
  const what = `**${n} destructive change${n === 1 ? '' : 's'}**`;
  return report.allowDestructive
    ? [`${what}, allowed (\`--allow-destructive\`, label \`${ALLOW_LABEL}\`).`]
    : [`${what}: the check fails unless the pull request has the label \`${ALLOW_LABEL}\`.`];
}

function costSection(costs: CostChange[]): string[] {
  const rows = [['environment', 'base', 'head', 'change']];
  const notes: string[] = [];
  for (const c of costs) {
    if (c.error !== undefined) {
      rows.push([cell(c.env), 'n/a', 'n/a', 'not estimated']);
      notes.push(`- ${code(c.env)}: not estimated: ${c.error}`);
      continue;
    }
    const delta = c.deltaUsd ?? 0;
    rows.push([cell(c.env), usd(c.baseUsd ?? 0), usd(c.headUsd ?? 0), Math.abs(delta) >= 0.005 ? `**${signedUsd(delta)}**` : signedUsd(delta)]);
    for (const l of c.lines) notes.push(`- ${code(c.env)} ${l.item}: ${usd(l.baseUsd)} → ${usd(l.headUsd)} (${signedUsd(l.headUsd - l.baseUsd)})`);
  }
  return ['#### Monthly cost (offline estimate, head config on both sides)', '', ...table(rows), ...(notes.length ? ['', ...notes] : [])];
}

const IMPACT_TEXT: Record<ResourceChange['impact'], string> = {
  create: 'create',
  import: 'import',
  destroy: '**destroy**',
  orphan: '**remove from stack (retained)**',
  replace: '**replace**',
  'may-replace': '**may replace**',
  update: 'update in place',
  metadata: 'metadata only',
};

const MARK: Record<ResourceChange['action'], string> = { added: '+', removed: '-', changed: '~' };

function stackSection(s: StackChange): string[] {
  const lines = [`**${s.stack}** (${s.status === 'changed' ? 'changed' : `stack ${s.status}`})`, ''];
  const counts = (a: ResourceChange['action']) => s.resources.filter((r) => r.action === a).length;
  lines.push(`${counts('added')} added, ${counts('changed')} changed, ${counts('removed')} removed.`, '');
  if (s.resources.length > 0) {
    const rows = [['', 'resource', 'type', 'impact', 'changed']];
    for (const r of s.resources) {
      rows.push([MARK[r.action], code(r.logicalId), cell(r.type), IMPACT_TEXT[r.impact], r.paths.map(code).join(', ')]);
    }
    lines.push(...table(rows), '');
  }
  if (s.sections.length > 0) lines.push(`Other template changes: ${s.sections.map(code).join(', ')}`, '');
  if (s.detail) {
    const detail = s.detail.length > MAX_DETAIL ? `${s.detail.slice(0, MAX_DETAIL)}\n… (cut; run the report locally for all of it)` : s.detail;
    lines.push('<details><summary>template diff</summary>', '', fence(detail), '', '</details>', '');
  }
  return lines;
}

/** The report as Markdown: flags and cost first, then every environment's stacks. */
export function renderMarkdown(report: DiffReport): string {
  const out = ['## Infrastructure diff', ''];
  if (report.empty) return [...out, NO_CHANGES, ''].join('\n');
  out.push('### Flagged', '');
  if (report.flags.length === 0) out.push('Nothing flagged.', '');
  for (const f of report.flags) out.push(...flagLine(f));
  if (report.flags.length > 0) out.push('');
  out.push(...gateLine(report), '', ...costSection(report.costs), '', '### Changes', '');
  let env: string | undefined;
  for (const s of report.stacks) {
    if (s.env !== env) out.push(`#### ${s.env}`, '');
    env = s.env;
    out.push(...stackSection(s));
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}
