import { randomBytes } from 'node:crypto';
import { inspectionFrom, type Inspection } from './deployer-compose';
import { sq, type Layout } from './deployer-input';
import { VERIFY_RELEASE_FN } from './deployer-manifest';
import { DeployError, type LastRun, type LogFn, type SshConnection } from './deployer-types';
import { DIAGNOSE_SECONDS, gateStepSeconds } from './gate-budget';
import { openSession, type SshSession } from './ssh-session';

/**
 * The switch, the health gate and the return to the previous release run on the
 * VPS as ONE supervised step (setsid + nohup, so it outlives the SSH session; each
 * docker call under `timeout`). Whatever happens to the client, the step ends in
 * one of its outcomes on its own, writes it to `.run-<id>.result` and `.last-run`,
 * and releases the deploy lock. The client follows its log and reads the result,
 * reconnecting when the connection drops.
 */

export type GateOutcome =
  /** The release passed `up --wait` and is current. */
  | 'serving'
  /** It failed; the release that was current before is current again (and was converged). */
  | 'restored'
  /** It failed and nothing could be restored: it was stopped and `current` removed. */
  | 'stopped'
  /** It failed but was current before this run already: it stays. */
  | 'stayed'
  /** It did not pass its manifest check: nothing was switched. */
  | 'refused';

export interface GatePlan {
  release: string;
  before: { current: string | null; previous: string | null };
  /** `up --wait --wait-timeout` seconds. */
  waitSeconds: number;
  /** Extra seconds for container churn before compose starts waiting. */
  upGraceSeconds: number;
  /** Recorded as the owner of what runs once the release serves. */
  owner?: string;
  /** Releases removed once the release serves (keep-N). */
  prune: string[];
}

export interface GateReport {
  outcome: GateOutcome;
  current: string | null;
  upExit: string;
  /** yes/no for `restored`; '-' otherwise. */
  restoredHealthy: string;
  detail: string;
  /** Services and containers of the failed release, taken before anything was restored. */
  inspection: Inspection | null;
  /** Its last log lines (all services; raw: the caller redacts). */
  logs: string[];
  /** Everything the step logged (its own `gate: ` lines and compose's output). */
  output: string[];
}


/** Seconds the remote step may take at most (gate-budget.ts). */
export function stepSeconds(plan: Pick<GatePlan, 'waitSeconds' | 'upGraceSeconds'>): number {
  return gateStepSeconds(plan.waitSeconds, plan.upGraceSeconds);
}

const STEP_LINE = 'gate: ';

/** The supervised step (POSIX sh). Arguments: see launchScript(). Every line it logs starts with STEP_LINE. */
export const GATE_SCRIPT = [
  'set -u',
  'env_dir=$1 project=$2 release=$3 before_current=$4 before_previous=$5 up_timeout=$6 wait_timeout=$7 token=$8 owner=$9',
  'shift 9',
  'run=$1',
  'shift',
  'cd "$env_dir" || exit 1',
  'trap "" HUP',
  VERIFY_RELEASE_FN,
  `say() { printf '${STEP_LINE}%s\\n' "$*"; }`,
  'up_exit=- restored=-',
  'release_lock() {',
  '  if grep -qsF -- "token=$token" .deploy-lock/owner; then rm -rf -- .deploy-lock && say "deploy lock released"; fi',
  '}',
  'finish() { # outcome current detail',
  `  printf 'outcome=%s\\ncurrent=%s\\nrelease=%s\\nup_exit=%s\\nrestored_healthy=%s\\nrun=%s\\nat=%s\\ndetail=%s\\n' \\`,
  '    "$1" "$2" "$release" "$up_exit" "$restored" "$run" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$3" > ".run-$run.result.tmp" &&',
  '    mv -f ".run-$run.result.tmp" ".run-$run.result"',
  '  cp -f ".run-$run.result" .last-run.tmp && mv -f .last-run.tmp .last-run',
  '  say "finished: $1 (current: $2)"',
  '  release_lock',
  '  exit 0',
  '}',
  'link() { # name release|-',
  '  if [ "$2" = - ]; then rm -f -- "$1"; else ln -sfn "releases/$2" ".$1.tmp-$run" && mv -T -- ".$1.tmp-$run" "$1"; fi',
  '}',
  'links() { # current previous',
  '  link previous "$2" && link current "$1" && if [ "$1" != - ]; then touch -c "releases/$1"; fi',
  '}',
  'dc() { # release seconds args...',
  '  r=$1 t=$2',
  '  shift 2',
  '  (cd "releases/$r" && timeout -k 5 "$t" docker compose -p "$project" "$@")',
  '}',
  'up() { dc "$1" "$up_timeout" up -d --remove-orphans --wait --wait-timeout "$wait_timeout"; }',
  'printf "%s\\n" "$$" > ".run-$run.pid"',
  // The lock now belongs to this step: a client reconnecting to clean up must leave it.
  'if grep -qsF -- "token=$token" .deploy-lock/owner; then',
  '  { head -n 1 .deploy-lock/owner | tr -d "\\n"; printf " gate=%s release=%s\\n" "$run" "$release"; } > .deploy-lock/owner.tmp && mv -f .deploy-lock/owner.tmp .deploy-lock/owner',
  'fi',
  'if ! why=$(verify_release "releases/$release"); then',
  '  say "release $release failed its manifest check: $why"',
  '  finish refused "$before_current" "$why"',
  'fi',
  'prev=$before_previous',
  'if [ "$before_current" != - ] && [ "$before_current" != "$release" ]; then prev=$before_current; fi',
  'if links "$release" "$prev"; then',
  '  say "current -> releases/$release (previous: $prev)"',
  '  up "$release"',
  '  up_exit=$?',
  'else',
  '  up_exit=switch-failed',
  'fi',
  'if [ "$up_exit" = 0 ]; then',
  '  say "release $release is up and healthy"',
  '  if [ "$owner" != - ]; then printf "%s\\n" "$owner" > .owner.tmp && mv -f .owner.tmp .owner; fi',
  '  for r in "$@"; do',
  '    mv -T -- "releases/$r" "releases/.trash-$r-$run" && rm -rf -- "releases/.trash-$r-$run" && say "pruned release $r"',
  '  done',
  '  finish serving "$release" ""',
  'fi',
  'say "release $release failed the health gate (exit $up_exit)"',
  `{ echo @@services; dc "$release" 20 config --services; echo @@ps; dc "$release" 20 ps -a --format json; } > ".run-$run.inspect" 2>/dev/null`,
  `dc "$release" ${DIAGNOSE_SECONDS - 40} logs --no-color --tail 50 > ".run-$run.logs" 2>&1`,
  'if [ "$before_current" != - ] && [ "$before_current" != "$release" ]; then',
  '  why=$(verify_release "releases/$before_current")',
  '  case $? in',
  '    0) ;;',
  '    *) if [ -L "releases/$before_current" ] || [ ! -d "releases/$before_current" ] || [ -f "releases/$before_current/.manifest" ]; then',
  '         say "previous release $before_current failed its manifest check ($why): not restoring it"',
  '         dc "$release" "$up_timeout" down --remove-orphans',
  '         links - "$before_previous"',
  '         finish stopped - "previous release $before_current failed its manifest check ($why), so $release was stopped instead"',
  '       fi',
  // A release from before manifests existed: restoring it unchecked beats an outage.
  '       say "previous release $before_current has no manifest (deployed before manifests existed): restoring it unchecked" ;;',
  '  esac',
  '  links "$before_current" "$before_previous"',
  '  say "health gate failed: current -> releases/$before_current again"',
  '  if up "$before_current"; then restored=yes; else restored=no; fi',
  '  finish restored "$before_current" ""',
  'elif [ "$before_current" = - ]; then',
  '  if dc "$release" "$up_timeout" down --remove-orphans; then d="done"; else d="failed, exit $?"; fi',
  '  links - "$before_previous"',
  '  finish stopped - "docker compose down $d"',
  'fi',
  'finish stayed "$release" ""',
].join('\n');

function keyValues(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !map.has(line.slice(0, eq))) map.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return map;
}

export function lastRunFrom(text: string): LastRun | null {
  const v = keyValues(text);
  const outcome = v.get('outcome');
  if (!outcome) return null;
  const current = v.get('current');
  return { outcome, release: v.get('release') ?? '', current: !current || current === '-' ? null : current, at: v.get('at') ?? '', detail: v.get('detail') ?? '' };
}

function launchScript(L: Layout, plan: GatePlan, token: string, run: string): string {
  const upTimeout = plan.waitSeconds + plan.upGraceSeconds;
  const args = [L.envDir, L.project, plan.release, plan.before.current ?? '-', plan.before.previous ?? '-', String(upTimeout), String(plan.waitSeconds), token, plan.owner ?? '-', run, ...plan.prune];
  // setsid + nohup + full redirection: the step holds none of this channel's streams and survives its end.
  return `cd ${sq(L.envDir)} && rm -f ${sq(`.run-${run}.result`)} && setsid nohup sh -c ${sq(GATE_SCRIPT)} gate ${args.map(sq).join(' ')} > ${sq(`.run-${run}.log`)} 2>&1 < /dev/null &`;
}

const POLL_INTERVAL_MS = 1000;
const POLL_TIMEOUT_MS = 15_000;
/** How long a lost connection is retried before the client leaves the step to itself: three handshake timeouts, within 15 to 60 s. */
function reconnectSeconds(conn: SshConnection): number {
  return Math.min(60, Math.max(15, Math.ceil((3 * (conn.readyTimeoutMs ?? 20_000)) / 1000)));
}
/** A step that wrote no pid within this long did not start. */
const START_SECONDS = 15;

export interface GateCtx {
  session: SshSession;
  connection: SshConnection;
  L: Layout;
  log: LogFn;
  lockToken: string;
  /** Called once the step runs: from then on the step releases the lock. */
  handOver: () => void;
}

/** Starts the remote step and follows it to its result. */
export async function runGate(ctx: GateCtx, plan: GatePlan): Promise<GateReport> {
  const { L, log } = ctx;
  const run = randomBytes(6).toString('hex');
  const started = await ctx.session.run(launchScript(L, plan, ctx.lockToken, run), { timeoutMs: 30_000 });
  if (started.code !== 0) throw new DeployError('REMOTE_COMMAND_FAILED', `could not start the gate of release ${plan.release} on ${ctx.session.where}: ${started.stderr.trim()}`);
  ctx.handOver();
  log(`gate of release ${plan.release} started on the VPS (run ${run}); it finishes on its own even if this connection drops`);

  const deadline = Date.now() + (stepSeconds(plan) + 60) * 1000;
  const startBy = Date.now() + START_SECONDS * 1000;
  const files = (ext: string) => sq(`.run-${run}.${ext}`);
  let session = ctx.session;
  const opened: SshSession[] = [];
  let offset = 0;
  const output: string[] = [];
  try {
    for (;;) {
      // Done: the result is written and the lock no longer names this run (the step released it).
      const done = `[ -f ${files('result')} ] && ! grep -qsF ${sq(`gate=${run} `)} ${sq(`${L.lockDir}/owner`)}`;
      const poll =
        `cd ${sq(L.envDir)} && if ${done}; then echo state=done; ` +
        `elif [ -f ${files('pid')} ] && kill -0 "$(cat ${files('pid')})" 2>/dev/null; then echo state=running; ` +
        // Looked at again: the step may have finished and exited since the first look.
        `elif ${done}; then echo state=done; elif [ -f ${files('pid')} ]; then echo state=dead; else echo state=starting; fi; ` +
        `tail -c +${offset + 1} ${files('log')} 2>/dev/null; true`;
      let out: string;
      try {
        out = (await session.run(poll, { timeoutMs: POLL_TIMEOUT_MS })).stdout;
      } catch (err) {
        if (!(err instanceof DeployError) || !['SSH_FAILED', 'TIMEOUT'].includes(err.code)) throw err;
        session = await reconnect(ctx, plan, err.message, deadline);
        opened.push(session);
        continue;
      }
      const newline = out.indexOf('\n');
      const state = out.slice(0, newline).replace('state=', '');
      const logText = out.slice(newline + 1);
      const complete = logText.slice(0, logText.lastIndexOf('\n') + 1);
      offset += Buffer.byteLength(complete);
      for (const line of complete.split('\n').slice(0, -1)) {
        output.push(line);
        if (line.trim()) log(line.startsWith(STEP_LINE) ? line : `  | ${line}`);
      }
      if (state === 'done') {
        const report = await readReport(session, L, run, offset);
        for (const line of report.rest) if (line.trim()) log(line.startsWith(STEP_LINE) ? line : `  | ${line}`);
        return { ...report, output: [...output, ...report.rest] };
      }
      if (state === 'dead' || (state === 'starting' && Date.now() > startBy)) {
        throw new DeployError('REMOTE_COMMAND_FAILED', `the gate step of release ${plan.release} on ${session.where} ended without a result (killed?); see ${L.envDir}/.run-${run}.log`);
      }
      if (Date.now() > deadline) {
        throw new DeployError('TIMEOUT', `the gate step of release ${plan.release} on ${session.where} gave no result within ${stepSeconds(plan) + 60}s; see ${L.envDir}/.run-${run}.log`);
      }
      await sleep(POLL_INTERVAL_MS);
    }
  } finally {
    for (const s of opened) s.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A new session after the old one dropped, or GATE_DETACHED once reconnectSeconds() have passed. */
async function reconnect(ctx: GateCtx, plan: GatePlan, reason: string, deadline: number): Promise<SshSession> {
  ctx.log(`lost the connection while the gate runs on the VPS (${reason}); reconnecting`);
  const window = reconnectSeconds(ctx.connection);
  const giveUp = Math.min(deadline, Date.now() + window * 1000);
  let last = reason;
  while (Date.now() < giveUp) {
    try {
      const session = await openSession({ ...ctx.connection, readyTimeoutMs: Math.min(ctx.connection.readyTimeoutMs ?? 10_000, 10_000, Math.max(1000, giveUp - Date.now())) });
      ctx.log('reconnected; still following the gate');
      return session;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
      await sleep(2000);
    }
  }
  const back = plan.before.current && plan.before.current !== plan.release ? `returns to release ${plan.before.current}` : plan.before.current ? 'keeps it current' : 'stops it (there is no earlier release)';
  throw new DeployError(
    'GATE_DETACHED',
    `lost the SSH connection to ${ctx.session.where} while release ${plan.release} was being gated there, and could not reconnect within ${window}s (${last}). ` +
      `The gate goes on without this client: within ${stepSeconds(plan)}s of its start the VPS either serves ${plan.release} (healthy) or ${back}, ` +
      `writes the outcome to ${ctx.L.envDir}/.last-run and releases the deploy lock. Read the outcome with the status command (lastRun) once the VPS is reachable, then deploy again if needed.`,
  );
}

/** The step's result, diagnosis and the rest of its log (from byte `offset`); then its files go. */
async function readReport(session: SshSession, L: Layout, run: string, offset: number): Promise<Omit<GateReport, 'output'> & { rest: string[] }> {
  const f = (ext: string) => sq(`.run-${run}.${ext}`);
  const read = await session.run(
    `cd ${sq(L.envDir)} && cat ${f('result')} && echo @@inspect && (cat ${f('inspect')} 2>/dev/null || true) && echo @@logs && (cat ${f('logs')} 2>/dev/null || true) && ` +
      `echo @@rest && (tail -c +${offset + 1} ${f('log')} 2>/dev/null || true); rm -f .run-${run}.*`,
    { timeoutMs: POLL_TIMEOUT_MS },
  );
  const [resultText, afterResult = ''] = read.stdout.split(/^@@inspect$/m);
  const [inspectText, afterInspect = ''] = afterResult.split(/^@@logs$/m);
  const [logsText, restText = ''] = afterInspect.split(/^@@rest$/m);
  const v = keyValues(resultText);
  const current = v.get('current');
  return {
    outcome: (v.get('outcome') ?? 'stopped') as GateOutcome,
    current: !current || current === '-' ? null : current,
    upExit: v.get('up_exit') ?? '-',
    restoredHealthy: v.get('restored_healthy') ?? '-',
    detail: v.get('detail') ?? '',
    inspection: inspectText.includes('@@ps') ? inspectionFrom(inspectText) : null,
    logs: logsText.split('\n').filter((l) => l.trim() !== ''),
    rest: restText.split('\n').filter((l) => l.trim() !== ''),
  };
}
