import type { Command } from 'commander';
import { Reporter, type OpsDeps } from '../context';
import { collectGpuStatus, renderGpuStatus } from '../gpu-status';
import { startGpu } from '../gpu-start';
import { stopGpu } from '../gpu-stop';
import { loadGpuTarget } from '../gpu-target';
import { loadEnvOption, parseCount, parseHttpUrl, parseMinutes, withEnvOption } from './options';

/** How long `gpu stop` waits for the instances to terminate unless --timeout-minutes says otherwise. */
const STOP_TIMEOUT_MINUTES = 10;

interface StatusOptions {
  env: string;
  json?: boolean;
}
interface StartOptions extends StatusOptions {
  count: number;
  wait?: boolean;
  comfyuiUrl?: string;
  timeoutMinutes?: number;
  overBudget?: boolean;
}
interface StopOptions extends StatusOptions {
  timeoutMinutes: number;
}

/** `gpu status | start | stop`: the ComfyUI GPU, found through the `<App>-<env>-Gpu` stack outputs. */
export function registerGpuCommands(program: Command, deps: OpsDeps): void {
  const gpu = program.command('gpu').description('inspect, start and stop the ComfyUI GPU (EC2 Spot Fleet)');

  withEnvOption(gpu.command('status'))
    .description("show the fleet, its capacity, the month's GPU allowance and each instance (address, idle minutes, Spot price)")
    .option('--json', 'print a JSON document instead of a table')
    .action(async (opts: StatusOptions) => {
      const config = loadEnvOption(opts.env);
      const reporter = new Reporter(deps, opts.json === true);
      const target = await loadGpuTarget(config, deps.clients(config.region));
      const status = await collectGpuStatus(target, deps, reporter);
      if (reporter.json) reporter.data(status);
      else for (const line of renderGpuStatus(status)) reporter.line(line);
    });

  withEnvOption(gpu.command('start'))
    .description('raise the target capacity (refused once the GPU allowance is spent, unless --over-budget); with --wait, wait until ComfyUI answers')
    .option('--count <n>', 'target capacity (never lowered by start)', parseCount, 1)
    .option('--wait', 'wait for capacity, a running instance and ComfyUI /system_stats = 200')
    .option('--comfyui-url <url>', 'probe this URL instead of http://<public ip>:<port> (e.g. an SSM port forward)', parseHttpUrl)
    .option('--timeout-minutes <m>', 'give up waiting after m minutes (default: gpu.readyTimeoutMinutes of the env)', parseMinutes)
    .option('--over-budget', "allow waking past this month's spent GPU allowance (sets the month's override, which the gateway's wakes follow too)")
    .option('--json', 'print a JSON summary on stdout (progress goes to stderr)')
    .action(async (opts: StartOptions) => {
      const config = loadEnvOption(opts.env);
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
      const config = loadEnvOption(opts.env);
      const reporter = new Reporter(deps, opts.json === true);
      const target = await loadGpuTarget(config, deps.clients(config.region));
      const result = await stopGpu(target, opts.timeoutMinutes * 60_000, deps, reporter);
      if (reporter.json) reporter.data(result);
    });
}
