import { InvalidArgumentError, type Command } from 'commander';
import type { EnvironmentConfig } from '../../config/load';
import { AUTO_STOP_ALLOWED, parseAutoStopValue } from '../../gpu-auto-stop-names';
import { Reporter, type OpsDeps } from '../context';
import { ExitCode, OpsError, toOpsError } from '../errors';
import { setAutoStop } from '../gpu-autostop';
import { ssmClientOf } from '../gpu-budget';
import { connectGpu, parseInstanceId, parsePort, requireSessionTools } from '../gpu-connect';
import { collectGpuStatus, renderGpuStatus } from '../gpu-status';
import { startGpu } from '../gpu-start';
import { stopGpu } from '../gpu-stop';
import { loadGpuTarget } from '../gpu-target';
import { DEFAULT_WATCH_SECONDS, parseIntervalSeconds, watchGpuStatus } from '../gpu-watch';
import { loadEnvOption, parseCount, parseHttpUrl, parseMinutes, withEnvOption } from './options';

/** How long `gpu stop` waits for the instances to terminate unless --timeout-minutes says otherwise. */
const STOP_TIMEOUT_MINUTES = 10;
/** ComfyUI's port, the usual local end of `gpu connect`. */
const DEFAULT_LOCAL_PORT = 8188;

interface StatusOptions {
  env: string;
  json?: boolean;
}
interface WatchOptions extends StatusOptions {
  watch?: boolean;
  intervalSeconds?: number;
}
interface StartOptions extends StatusOptions {
  count: number;
  wait?: boolean;
  comfyuiUrl?: string;
  timeoutMinutes?: number;
  overBudget?: boolean;
  stopOnFailure?: boolean;
}
interface StopOptions extends StatusOptions {
  timeoutMinutes: number;
}
interface ConnectCliOptions {
  env: string;
  instance?: string;
  localPort: number;
}

/** `<minutes|default>` of gpu autostop. */
function parseAutoStopArgument(raw: string): string {
  if (parseAutoStopValue(raw) === null) throw new InvalidArgumentError(`allowed is ${AUTO_STOP_ALLOWED}.`);
  return raw;
}

/** `gpu status | start | stop | connect | autostop`: the ComfyUI GPU, found through the `<App>-<env>-Gpu` stack outputs. */
export function registerGpuCommands(program: Command, deps: OpsDeps): void {
  const gpu = program.command('gpu').description('inspect, start and stop the ComfyUI GPU (EC2 Spot Fleet), connect to it, set its auto-stop');
  // Through the deps seam when tests set one (a changed limit), otherwise as every command loads it.
  const loadConfig = (name: string): EnvironmentConfig => {
    if (!deps.loadConfig) return loadEnvOption(name);
    try {
      return deps.loadConfig(name);
    } catch (error) {
      throw toOpsError(error);
    }
  };

  withEnvOption(gpu.command('status'))
    .description("show the fleet, its capacity, the month's GPU allowance, the auto-stop and each instance (idle minutes, auto-stop countdown, Spot price)")
    .option('--json', 'print a JSON document instead of a table (with --watch: one document per line)')
    .option('--watch', 'show it again every few seconds until Ctrl-C (redrawn in place on a terminal)')
    .option('--interval-seconds <s>', `seconds between two snapshots of --watch (default ${DEFAULT_WATCH_SECONDS})`, parseIntervalSeconds)
    .action(async (opts: WatchOptions) => {
      if (opts.intervalSeconds !== undefined && !opts.watch) {
        throw new OpsError(`--interval-seconds ${opts.intervalSeconds} applies to --watch only: add --watch or drop it`, ExitCode.usage);
      }
      const config = loadConfig(opts.env);
      const reporter = new Reporter(deps, opts.json === true);
      const target = await loadGpuTarget(config, deps.clients(config.region));
      if (opts.watch) return watchGpuStatus(target, (opts.intervalSeconds ?? DEFAULT_WATCH_SECONDS) * 1000, deps, reporter);
      const status = await collectGpuStatus(target, deps, reporter);
      if (reporter.json) reporter.data(status);
      else for (const line of renderGpuStatus(status)) reporter.line(line);
    });

  withEnvOption(gpu.command('start'))
    .description('raise the target capacity (refused once the GPU allowance is spent, unless --over-budget); with --wait, wait until ComfyUI is ready')
    .option('--count <n>', 'target capacity, at most gpu.maxInstances (never lowered by start)', parseCount, 1)
    .option('--wait', "wait for capacity, a running instance and ComfyUI ready (each box's ready tag)")
    .option('--comfyui-url <url>', 'with --wait, probe GET <url>/system_stats instead of the ready tag (e.g. the local end of gpu connect)', parseHttpUrl)
    .option('--timeout-minutes <m>', 'give up waiting after m minutes (default: gpu.readyTimeoutMinutes of the env)', parseMinutes)
    .option('--stop-on-failure', 'when the wait fails, set the target back to what it was and terminate the instances this start launched')
    .option('--over-budget', "allow waking past this month's spent GPU allowance (sets the month's override, which the gateway's wakes follow too)")
    .option('--json', 'print a JSON summary on stdout (progress goes to stderr)')
    .action(async (opts: StartOptions) => {
      if (opts.stopOnFailure && !opts.wait) throw new OpsError('--stop-on-failure acts when the wait fails: add --wait', ExitCode.usage);
      const config = loadConfig(opts.env);
      // The control function refuses more for the gateway too; checked before anything changes.
      if (opts.count > config.gpu.maxInstances) {
        throw new OpsError(
          `--count ${opts.count}: allowed is a whole number from 1 to ${config.gpu.maxInstances} (gpu.maxInstances of ${config.envName})`,
          ExitCode.usage,
        );
      }
      const reporter = new Reporter(deps, opts.json === true);
      const target = await loadGpuTarget(config, deps.clients(config.region));
      const result = await startGpu(
        target,
        {
          count: opts.count,
          wait: opts.wait === true,
          comfyUiUrl: opts.comfyuiUrl,
          timeoutMs: (opts.timeoutMinutes ?? config.gpu.readyTimeoutMinutes) * 60_000,
          overBudget: opts.overBudget === true,
          stopOnFailure: opts.stopOnFailure === true,
        },
        deps,
        reporter,
      );
      if (reporter.json) reporter.data(result);
    });

  withEnvOption(gpu.command('stop'))
    .description('set the target capacity to 0 and wait until no instance is left')
    .option('--timeout-minutes <m>', 'give up waiting after m minutes', parseMinutes, STOP_TIMEOUT_MINUTES)
    .option('--json', 'print a JSON summary on stdout (progress goes to stderr)')
    .action(async (opts: StopOptions) => {
      const config = loadConfig(opts.env);
      const reporter = new Reporter(deps, opts.json === true);
      const target = await loadGpuTarget(config, deps.clients(config.region));
      const result = await stopGpu(target, opts.timeoutMinutes * 60_000, deps, reporter);
      if (reporter.json) reporter.data(result);
    });

  withEnvOption(gpu.command('connect'))
    .description("forward a local port to ComfyUI on the ready GPU instance through Session Manager (needs the AWS CLI and the Session Manager plugin); Ctrl-C ends it")
    .option('--instance <id>', 'the instance to connect to, when several are ready', parseInstanceId)
    .option('--local-port <port>', 'local port of the forward', parsePort, DEFAULT_LOCAL_PORT)
    .action(async (opts: ConnectCliOptions) => {
      const aws = requireSessionTools(deps.env);
      const config = loadConfig(opts.env);
      const target = await loadGpuTarget(config, deps.clients(config.region));
      await connectGpu(target, { instanceId: opts.instance, localPort: opts.localPort, aws }, deps, new Reporter(deps, false));
    });

  withEnvOption(gpu.command('autostop'))
    .description(
      'set the idle minutes after which each GPU box of the env stops itself, at run time (every box reads it each minute, ' +
        'also after a reboot and on new boxes); default returns to gpu.idleMinutes',
    )
    .argument('<minutes>', `idle minutes: ${AUTO_STOP_ALLOWED}`, parseAutoStopArgument)
    .option('--json', 'print the previous and the new setting as JSON on stdout')
    .action(async (minutes: string, opts: StatusOptions) => {
      const config = loadConfig(opts.env);
      const reporter = new Reporter(deps, opts.json === true);
      const change = await setAutoStop(config, ssmClientOf(deps.clients(config.region), config.region), minutes, reporter);
      if (reporter.json) reporter.data(change);
    });
}
