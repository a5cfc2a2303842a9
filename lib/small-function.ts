import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { bundleFunction, FUNCTION_RUNTIME } from './function-bundle';
import { acknowledge, wildcardResourceFinding } from './nag';
import { removalPolicyOf, type RemovalSetting } from './removal';

export interface SmallFunctionProps {
  /** The function's folder under assets/lambda/ (its index.ts is bundled by esbuild; SDK v3 from the runtime). */
  readonly code: string;
  /** Default `index.handler`. */
  readonly handler?: string;
  /** Default 30 seconds. */
  readonly timeout?: Duration;
  readonly description: string;
  readonly environment: Record<string, string>;
  readonly removalPolicy: RemovalSetting;
  /** Where an asynchronous invocation goes after Lambda's two retries failed (event plus error attributes). */
  readonly deadLetterQueue?: sqs.IQueue;
}

/**
 * A small Node.js function with its own role and log group: no AWS managed
 * policy (the role may write only its own log group), a retention on the logs,
 * and the latest runtime.
 */
export class SmallFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: SmallFunctionProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: removalPolicyOf(props.removalPolicy),
    });
    this.role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: props.description });
    this.function = new lambda.Function(this, 'Function', {
      runtime: FUNCTION_RUNTIME,
      handler: props.handler ?? 'index.handler',
      code: lambda.Code.fromAsset(bundleFunction(props.code)),
      description: props.description,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: 128,
      role: this.role,
      logGroup,
      environment: props.environment,
      deadLetterQueue: props.deadLetterQueue,
    });
    logGroup.grantWrite(this.role);
    acknowledge(this.role.node.findChild('DefaultPolicy'), {
      id: wildcardResourceFinding(this, `${logGroup.logGroupArn}:*`),
      reason: "Log streams of the function's own log group; Lambda generates the stream names.",
    });
  }

  /** Adds a statement to the function's role. */
  allow(statement: iam.PolicyStatement): void {
    this.role.addToPrincipalPolicy(statement);
  }
}
