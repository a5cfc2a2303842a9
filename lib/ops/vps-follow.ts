import type { ClientChannel } from 'ssh2';
import { composeScript } from '../vps/deployer-compose';
import { guarded, withSession } from '../vps/deployer';
import { layoutOf, validateSeconds, validateService, type Layout } from '../vps/deployer-input';
import { Redactor } from '../vps/deployer-redact';
import { readEnvValues, readState } from '../vps/deployer-remote';
import { DeployError, type DeployTarget, type Secrets, type SshConnection } from '../vps/deployer-types';
import { LineSplitter, type SshSession } from '../vps/ssh-session';

/**
 * `vps logs --follow`: `docker compose logs --follow` of one service of the current release,
 * streamed over SSH with every secret value masked, until Ctrl-C, the end of the command
 * (Compose stops following once no container of the service runs) or the loss of the connection.
 */

/**
 * Masks secret values per complete line: a value split across two chunks of the stream is only
 * matched once its line is whole, so the unterminated rest is held back until its newline or
 * the end. (A line is as long as the service prints it; Docker splits log lines at 16 KiB.)
 */
export class MaskedLines extends LineSplitter {
  constructor(redactor: Redactor, emit: (line: string) => void) {
    super((line) => emit(redactor.apply(line)), false);
  }
}

export interface FollowOptions {
  readonly service: string;
  /** Lines of history before following (`--tail`). */
  readonly lines: number;
  /** Values to mask besides those of the releases' `.env` files. */
  readonly secrets?: Secrets;
}

export interface FollowOutput {
  /** A log line (compose's stdout), masked. */
  line(text: string): void;
  /** What compose said on stderr, masked, and the follow's own notes. */
  note(text: string): void;
}

/**
 * Where Ctrl-C comes from: the process. The follow's listener goes first (prepended): runCli's
 * own (lib/ops/interrupt.ts) reports what is still running and ends the process at once.
 */
export type Interrupts = Pick<NodeJS.EventEmitter, 'prependOnceListener' | 'off'>;

export interface FollowEnd {
  readonly release: string;
  /** `interrupted`: Ctrl-C (when nothing else ended the process); `ended`: compose exited on its own, with `exitCode`. */
  readonly how: 'interrupted' | 'ended';
  readonly exitCode: number | null;
}

/**
 * The remote script. Closing the SSH channel does not stop a program that is not writing (the
 * server only closes its pipes), so a watcher holds the channel's stdin and, at its end of file
 * (the channel is gone), kills the script's process group: compose never outlives the follow.
 */
export function followScript(L: Layout, release: string, options: Pick<FollowOptions, 'service' | 'lines'>): string {
  return [
    'exec 3<&0',
    `${composeScript(L, release, ['logs', '--no-color', '--follow', '--tail', String(options.lines), options.service])} </dev/null 3<&- &`,
    'pid=$!',
    '{ cat <&3 >/dev/null; kill 0; } >/dev/null 2>&1 &',
    'exec 3<&-',
    'wait "$pid"',
  ].join('\n');
}

export async function followLogs(connection: SshConnection, target: DeployTarget, options: FollowOptions, out: FollowOutput, interrupts: Interrupts): Promise<FollowEnd> {
  const redactor = new Redactor(Object.values(options.secrets ?? {}));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    validateService(options.service);
    validateSeconds('lines', options.lines, 10_000);
    return withSession(connection, async (session) => {
      redactor.add(await readEnvValues(session, L));
      const { current } = await readState(session, L);
      if (!current) throw new DeployError('NO_CURRENT_RELEASE', `${target.appName}/${target.envName} has no current release`);
      out.note(`# ${options.service} of release ${current}: the last ${options.lines} lines, then following (Ctrl-C to stop)`);
      const end = await stream(session, followScript(L, current, options), redactor, out, interrupts);
      return { release: current, ...end };
    });
  });
}

/**
 * Runs the script on its own channel and forwards its output until it ends, Ctrl-C, or the
 * connection is lost (a silent loss shows after ssh2's keepalive: 4 unanswered probes 15 s apart).
 * Ctrl-C flushes the held-back line and closes the channel before anything else runs.
 */
function stream(session: SshSession, script: string, redactor: Redactor, out: FollowOutput, interrupts: Interrupts): Promise<Omit<FollowEnd, 'release'>> {
  const stdout = new MaskedLines(redactor, (line) => out.line(line));
  const stderr = new MaskedLines(redactor, (line) => out.note(line));
  return new Promise((resolve, reject) => {
    let channel: ClientChannel | undefined;
    let exitCode: number | null = null;
    let settled = false;
    let lostReason = 'connection closed';
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      interrupts.off('SIGINT', onInterrupt);
      stopWatchingLoss();
      stdout.end();
      stderr.end();
      settle();
    };
    const lost = () => new DeployError('SSH_FAILED', `SSH connection to ${session.where} lost while following the logs: ${lostReason}`);
    const onInterrupt = () =>
      finish(() => {
        channel?.close();
        resolve({ how: 'interrupted', exitCode: null });
      });
    interrupts.prependOnceListener('SIGINT', onInterrupt);
    const stopWatchingLoss = session.onLost((reason) => {
      lostReason = reason;
      finish(() => reject(lost()));
    });
    session.openChannel(script).then(
      (opened) => {
        if (settled) {
          opened.close();
          return;
        }
        channel = opened;
        opened.on('data', (chunk: Buffer) => stdout.push(chunk));
        opened.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        opened.on('exit', (code: number | null) => (exitCode = code));
        // No exit status: the server went away (the connection's own close may come later).
        opened.on('close', () => finish(() => (exitCode === null ? reject(lost()) : resolve({ how: 'ended', exitCode }))));
      },
      (error: Error) => finish(() => reject(error)),
    );
  });
}
