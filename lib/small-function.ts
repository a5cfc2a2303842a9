import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import * as path from 'node:path';
import { acknowledge, wildcardResourceFinding } from './nag';
import { removalPolicyOf, type RemovalSetting } from './removal';

export interface SmallFunctionProps {
  /** Folder under assets/lambda/ holding index.js (plain Node.js, SDK v3 from the runtime), or ready-made code. */
  readonly code: string | lambda.Code;
  /** Default `index.handler`. */
  readonly handler?: string;
  /** Default 30 seconds. */
  readonly timeout?: Duration;
  readonly description: string;
  readonly environment: Record<string, string>;
  readonly removalPolicy: RemovalSetting;
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
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: props.handler ?? 'index.handler',
      code: typeof props.code === 'string' ? lambda.Code.fromAsset(path.join(__dirname, '..', 'assets', 'lambda', props.code)) : props.code,
      description: props.description,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: 128,
      role: this.role,
      logGroup,
      environment: props.environment,
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
