import { Command } from 'commander';
import type { AccountTotal } from '../../lib/cost/account-total';
import type { CostEstimate } from '../../lib/cost/estimate';
import { registerCostCommands, type CostIo } from '../../lib/ops/commands/cost';

/** What `cost estimate --json` prints. */
export interface EstimateJson {
  environments: CostEstimate[];
  accounts: AccountTotal[];
}

/** Runs `cost ...` in-process and captures what it writes; stdout is not a terminal unless `io` says so. */
export async function cost(args: string[], io: Partial<CostIo> = {}): Promise<{ stdout: string; stderr: string; error?: unknown }> {
  let stdout = '';
  let stderr = '';
  const program = new Command('cost-tool').exitOverride().configureOutput({ writeOut: (t) => (stdout += t), writeErr: (t) => (stderr += t) });
  registerCostCommands(program, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, stdoutIsTTY: false, ...io });
  try {
    await program.parseAsync(args, { from: 'user' });
    return { stdout, stderr };
  } catch (error) {
    return { stdout, stderr, error };
  }
}

