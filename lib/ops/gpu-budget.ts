import { ParameterType, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { readBudget } from '../gpu-control/budget';
import { readFleetMembers } from '../gpu-control/fleet';
import { monthOf } from '../gpu-control/month';
import { budgetOverrideParameterName, gatewayMetricNamespace } from '../gpu-control/names';
import type { BudgetStatus } from '../gpu-control/protocol';
import type { AwsClients } from './aws';
import type { GpuTarget } from './gpu-target';
import { deployHint, requireStack } from './stack-outputs';

/**
 * The GPU budget as the control function sees it, computed with the operator's credentials by the
 * function's own module (lib/gpu-control/budget.ts): the same ledger metric, override parameter and
 * fleet, with the allowance and Spot prices the Gpu stack was deployed with (its outputs).
 */

export type BudgetRead = { readonly available: true; readonly budget: BudgetStatus } | { readonly available: false; readonly reason: string };

/**
 * The ops clients have no SSM client; this one shares the EC2 client's credentials and, when one
 * is set (AWS_ENDPOINT_URL, a local API in tests), its endpoint.
 */
export function ssmClientOf(clients: AwsClients, region: string): SSMClient {
  const { credentials, endpoint } = clients.ec2.config;
  return new SSMClient({ region, credentials, ...(endpoint ? { endpoint } : {}) });
}

/** The allowance and prices from the Gpu stack's outputs; unavailable (with why) for a stack deployed before the budget guard. */
async function deployedBudgetSettings(target: GpuTarget): Promise<{ allowanceUsd: number; spotPrices: Record<string, number> } | string> {
  const stack = await requireStack(target.clients.cloudFormation, target.config, 'Gpu');
  const allowance = Number(stack.outputs.GpuAllowanceUsd);
  let prices: unknown;
  try {
    prices = JSON.parse(stack.outputs.GpuSpotPricesUsd ?? '');
  } catch {
    prices = undefined;
  }
  const pricesOk = typeof prices === 'object' && prices !== null && Object.values(prices).every((p) => typeof p === 'number');
  if (stack.outputs.GpuAllowanceUsd === undefined || !Number.isFinite(allowance) || !pricesOk) {
    return `stack ${stack.name} has no outputs GpuAllowanceUsd and GpuSpotPricesUsd (deployed before the budget guard): redeploy it with ${deployHint(target.config)}`;
  }
  return { allowanceUsd: allowance, spotPrices: prices as Record<string, number> };
}

export async function readGpuBudget(target: GpuTarget, now: Date): Promise<BudgetRead> {
  const settings = await deployedBudgetSettings(target);
  if (typeof settings === 'string') return { available: false, reason: settings };
  const { config, clients } = target;
  const members = await readFleetMembers(clients.ec2, target.fleetId);
  const budget = await readBudget(
    {
      cloudWatch: clients.cloudWatch,
      ssm: ssmClientOf(clients, config.region),
      ledger: { namespace: gatewayMetricNamespace(config.appName), envName: config.envName },
      overrideParameter: budgetOverrideParameterName(config),
      allowanceUsd: settings.allowanceUsd,
      spotPrices: settings.spotPrices,
    },
    members,
    now,
  );
  return { available: true, budget };
}

/** Sets the month's override (the control function then allows raising capacity past the allowance); returns the parameter's name. */
export async function setBudgetOverride(target: GpuTarget, now: Date): Promise<{ parameter: string; month: string }> {
  const parameter = budgetOverrideParameterName(target.config);
  const month = monthOf(now);
  await ssmClientOf(target.clients, target.config.region).send(
    new PutParameterCommand({ Name: parameter, Value: month, Type: ParameterType.STRING, Overwrite: true }),
  );
  return { parameter, month };
}
