import { App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
// cdk-nag's own formatter for intrinsic references, so computed finding ids match its findings exactly.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference';
import type { IConstruct } from 'constructs';

/** One cdk-nag acknowledgement: the rule (or `Rule[Finding]`) and why a reviewer accepts it. */
export interface NagAcknowledgement {
  readonly id: string;
  readonly reason: string;
}

/** Acknowledges cdk-nag findings on one construct, each with its own reason. */
export function acknowledge(scope: IConstruct, ...acks: NagAcknowledgement[]): void {
  for (const ack of acks) Validations.of(scope).acknowledge(ack);
}

/** The finding id of an AWS managed policy attached to a role (AwsSolutions-IAM4). */
export function managedPolicyFinding(policyName: string): string {
  return `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policyName}]`;
}

/** The finding id of a wildcard resource in a policy (AwsSolutions-IAM5), tokens resolved as cdk-nag does. */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenCfnReference(Stack.of(scope).resolve(resource))}]`;
}

/** The finding id of a wildcard action (AwsSolutions-IAM5). */
export function wildcardActionFinding(action: string): string {
  return `AwsSolutions-IAM5[Action::${action}]`;
}

/**
 * Runs the AwsSolutions pack over every stack of the app. Acknowledged rules are
 * also written into template metadata so reviewers see them in `cdk diff`.
 */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
}
