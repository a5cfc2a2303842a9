import { DescribeStacksCommand, type CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { stackName } from '../app';
import type { EnvironmentConfig } from '../config/load';
import { ExitCode, OpsError, isAwsError } from './errors';

/** Stack parts of one environment, in the order teardown destroys them (dependents first). */
export const TEARDOWN_ORDER = ['Vps', 'Observability', 'Gpu', 'Storage'] as const;
export type StackPart = (typeof TEARDOWN_ORDER)[number];

/** A stack as CloudFormation reports it; outputs by key. */
export interface DeployedStack {
  readonly name: string;
  readonly status: string;
  readonly terminationProtection: boolean;
  readonly outputs: Readonly<Record<string, string>>;
}

/** The stack, or undefined when it does not exist (never created, or deleted). */
export async function describeStack(cfn: CloudFormationClient, name: string): Promise<DeployedStack | undefined> {
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: name }));
    const stack = Stacks?.[0];
    if (!stack || stack.StackStatus === 'DELETE_COMPLETE') return undefined;
    const outputs: Record<string, string> = {};
    for (const o of stack.Outputs ?? []) if (o.OutputKey && o.OutputValue !== undefined) outputs[o.OutputKey] = o.OutputValue;
    return {
      name,
      status: stack.StackStatus ?? 'UNKNOWN',
      terminationProtection: stack.EnableTerminationProtection === true,
      outputs,
    };
  } catch (error) {
    // CloudFormation answers a missing stack with a ValidationError "Stack with id X does not exist".
    if (isAwsError(error, 'ValidationError') && /does not exist/.test(error.message)) return undefined;
    throw error;
  }
}

export function deployHint(config: EnvironmentConfig): string {
  return `npx cdk deploy -c env=${config.envName} --all`;
}

/** The environment's stack `part`, or OpsError(notDeployed) saying how to deploy it. */
export async function requireStack(cfn: CloudFormationClient, config: EnvironmentConfig, part: StackPart): Promise<DeployedStack> {
  const name = stackName(config, part);
  const stack = await describeStack(cfn, name);
  if (!stack) {
    throw new OpsError(`Stack ${name} is not deployed in ${config.region}: run ${deployHint(config)}`, ExitCode.notDeployed);
  }
  return stack;
}

/** One output of a stack; a missing output means a failed or outdated deploy. */
export function requireOutput(stack: DeployedStack, key: string, config: EnvironmentConfig): string {
  const value = stack.outputs[key];
  if (value === undefined || value === '') {
    throw new OpsError(
      `Stack ${stack.name} (${stack.status}) has no output ${key}: redeploy it with ${deployHint(config)}`,
      ExitCode.notDeployed,
    );
  }
  return value;
}
