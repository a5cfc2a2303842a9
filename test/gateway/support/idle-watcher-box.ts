import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { motoEnv } from '../../support/moto';
import { envFile, FakeServer, run, Sandbox, SCRIPTS, type RunResult } from '../../gpu-scripts/harness';
import { waitFor } from './comfy-api-client';

/**
 * One real idle check of a box (assets/user-data/idle-watcher.sh, with the gateway-lease
 * protocol) at its last idle minute, with the real AWS CLI v1 against moto, the box's ComfyUI
 * stand-in as the /queue it reads, and an IMDS stand-in for its instance id (the gpu-scripts
 * harness). The AWS CLI is wrapped so a test can stop the script at the protocol's steps:
 *   tag-leaving     before it tags itself comfyui:leaving
 *   reread-lease    after that tag, before it reads the gateway's lease again
 *   set-target      before it lowers the fleet's target (it has decided to leave)
 * The wrapper leaves marks: at-<step> when held there, tagged-leaving / untagged-leaving after
 * those tag writes succeeded; release(step) lets it go on.
 */
const REAL_AWS = spawnSync('bash', ['-c', 'command -v aws'], { encoding: 'utf8' }).stdout.trim();

const AWS_WRAPPER = `op="$1-$2"
hold() {
  case " $HOLDS " in *" $1 "*) ;; *) return 0 ;; esac
  touch "$MARKS/at-$1"
  for _ in $(seq 6000); do [ -f "$MARKS/go-$1" ] && return 0; sleep 0.05; done
}
case "$op" in
  ec2-create-tags) [[ "$*" == *comfyui:leaving* ]] && hold tag-leaving ;;
  ec2-describe-tags) [[ "$*" == *comfyui:busy-until* && -f "$MARKS/tagged-leaving" ]] && hold reread-lease ;;
  ec2-modify-spot-fleet-request) hold set-target ;;
esac
"$REAL_AWS" "$@"; rc=$?
if [ $rc = 0 ] && [ "$op" = ec2-create-tags ] && [[ "$*" == *comfyui:leaving* ]]; then touch "$MARKS/tagged-leaving"; fi
if [ $rc = 0 ] && [ "$op" = ec2-delete-tags ]; then touch "$MARKS/untagged-leaving"; fi
exit $rc`;

export type Step = 'tag-leaving' | 'reread-lease' | 'set-target';

export class IdleWatcherBox {
  private readonly sandbox = new Sandbox();
  private readonly imds = new FakeServer();
  private env: NodeJS.ProcessEnv = {};

  constructor(
    private readonly motoEndpoint: string,
    readonly instanceId: string,
    private readonly comfyuiPort: number,
    private readonly holds: readonly Step[] = [],
  ) {}

  async start(): Promise<void> {
    if (!REAL_AWS) throw new Error('the AWS CLI v1 (aws) is not on PATH: bash scripts/test-all.sh installs it');
    this.imds.instanceId = this.instanceId;
    await this.imds.start();
    const sb = this.sandbox;
    sb.stub('nvidia-smi', 'echo 0');
    sb.stub('pgrep', 'exit 1');
    sb.stub('aws', AWS_WRAPPER);
    fs.mkdirSync(sb.path('marks'));
    fs.mkdirSync(sb.path('state'));
    sb.write('state/idle-minutes', '14\n'); // IDLE_MINUTES is 15: this check is the one that leaves
    this.env = sb.env({
      ...motoEnv(this.motoEndpoint),
      COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(this.comfyuiPort)),
      STATE_DIR: sb.path('state'),
      UPTIME_FILE: sb.write('uptime', '3600.00 7000.00\n'),
      IMDS_URL: this.imds.url,
      RETRY_SLEEP_SECONDS: '0',
      MARKS: sb.path('marks'),
      HOLDS: this.holds.join(' '),
      REAL_AWS,
    });
  }

  /** One idle check; each CLI call costs the v1 CLI about a second, so the bound is generous. */
  check(): Promise<RunResult> {
    const result = run(path.join(SCRIPTS, 'idle-watcher.sh'), this.env, 240_000);
    result.catch(() => undefined); // a test that failed first never awaits it
    return result;
  }

  marked(mark: string): boolean {
    return fs.existsSync(this.sandbox.path('marks', mark));
  }

  async reached(step: Step): Promise<void> {
    await waitFor(`${this.instanceId}'s idle watcher at ${step}`, () => (this.marked(`at-${step}`) ? true : undefined), 180_000, 50);
  }

  release(step: Step): void {
    fs.writeFileSync(this.sandbox.path('marks', `go-${step}`), '');
  }

  /** Lets a held check run on (into a removed sandbox, where it ends at once). */
  async cleanup(): Promise<void> {
    for (const step of ['tag-leaving', 'reread-lease', 'set-target'] as const) if (fs.existsSync(this.sandbox.path('marks'))) this.release(step);
    await this.imds.close();
    this.sandbox.cleanup();
  }
}
