import { Command, CommanderError } from 'commander';
import { registerCostCommands } from './commands/cost';
import { registerDoctorCommand } from './commands/doctor';
import { registerGpuCommands } from './commands/gpu';
import { registerTeardownCommand } from './commands/teardown';
import { registerVpsCommands } from './commands/vps';
import { defaultDeps, type OpsDeps } from './context';
import { ExitCode, toOpsError } from './errors';
import { runInterruptibly } from './interrupt';
import { pollIntervalMs } from './wait';

/** The project's version (package.json), for --version. */
const VERSION = (require('../../package.json') as { version: string }).version;

/** Registers one group of subcommands (gpu, teardown, cost, vps, ...) on the program. */
export type CommandGroup = (program: Command, deps: OpsDeps) => void;

/** Every group of `npm run ops`. A new group lives in lib/ops/commands/<group>.ts and is added here. */
export const COMMAND_GROUPS: readonly CommandGroup[] = [registerGpuCommands, registerTeardownCommand, registerCostCommands, registerVpsCommands, registerDoctorCommand];

const EXIT_CODES_HELP = `
Exit codes:
  0  success                       5  refused or not confirmed (also: VPS host key, deploy lock)
  1  failure (AWS error, ...)      6  no AWS credentials (vps: no SSH key or agent, key rejected)
  2  cost report: over budget      7  no Spot capacity
  3  stack/output/fleet missing    8  teardown failed or incomplete
  4  timeout while waiting        64  bad option or --env, conflicting options
                                 130  interrupted (Ctrl-C); says what is still running

Settings: OPS_POLL_INTERVAL_MS (poll interval, default 5000), OPS_CDK_BIN (cdk executable, default npx cdk),
OPS_DEBUG=1 (stack traces), OPS_COST_TODAY=YYYY-MM-DD (the day cost report treats as today).`;

export function buildProgram(deps: OpsDeps = defaultDeps(), groups: readonly CommandGroup[] = COMMAND_GROUPS): Command {
  const program = new Command('ops')
    .description('Operate an AiAssets environment: the GPU tier, costs, the VPS and teardown. Resources are found through stack outputs.')
    .exitOverride()
    .configureOutput({ writeOut: deps.stdout, writeErr: deps.stderr })
    .showHelpAfterError('(add --help for usage)')
    .version(VERSION, '--version', 'print the version')
    .addHelpText('after', EXIT_CODES_HELP)
    // Settings are checked before any command acts: a bad one must not stop half-way (exit 64).
    .hook('preAction', () => void pollIntervalMs(deps.env));
  // Subcommands copy these settings when created, so configure first, then register.
  for (const register of groups) register(program, deps);
  return program;
}

/** Runs one command line (without node and script) and returns the exit code; never throws. */
export async function runCli(argv: readonly string[], deps: OpsDeps = defaultDeps()): Promise<number> {
  // Ctrl-C: what is still running (lib/ops/interrupt.ts) on stderr, exit 130.
  return runInterruptibly(deps, (runDeps) => runProgram(argv, runDeps));
}

async function runProgram(argv: readonly string[], deps: OpsDeps): Promise<number> {
  const program = buildProgram(deps);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    // Commander has already printed its own message (or the help).
    if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    const opsError = toOpsError(error);
    // Over budget is a verdict, not a failure: the report was printed, the exit code carries it.
    deps.stderr(`${opsError.exitCode === ExitCode.overBudget ? 'over budget' : 'error'}: ${opsError.message}\n`);
    if (opsError.exitCode === ExitCode.failure && deps.env.OPS_DEBUG && error instanceof Error && error.stack) deps.stderr(`${error.stack}\n`);
    return opsError.exitCode;
  }
}
