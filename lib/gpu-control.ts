import { RemovalPolicy, SecretValue, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { GpuAllowance } from './cost/gpu-allowance';
import { gatewayCredentialSecretName, gpuControlFunctionName } from './gpu-control-names';
import { MODELS_PREFIX, WORKFLOWS_PREFIX } from './gpu-control/bucket-listings';
import { RUN_ENDING_STATES, STATE_CHANGE_DETAIL_TYPE } from './gpu-control/ledger';
import {
  BILLED_TAG,
  BUDGET_OVERRIDE_NONE,
  budgetOverrideParameterName,
  FLEET_TAG,
  gatewayMetricNamespace,
  LINK_KEY_UNSET,
  linkKeyParameterName,
} from './gpu-control/names';
import { BUSY_UNTIL_TAG } from './gpu-control/protocol';
import { settingsToEnvironment } from './gpu-control/settings';
import { acknowledge, wildcardResourceFinding } from './nag';
import type { RemovalSetting } from './removal';
import { SmallFunction } from './small-function';

export interface GpuControlProps {
  readonly appName: string;
  readonly envName: string;
  readonly fleetId: string;
  readonly fleetArn: string;
  readonly assetBucket: s3.IBucket;
  /** config gpu.maxInstances: the highest capacity the function sets. */
  readonly maxInstances: number;
  readonly allowance: GpuAllowance;
  readonly removalPolicy: RemovalSetting;
}

/**
 * Bump to rotate the gateway's access key: CloudFormation creates a new key (and secret value)
 * and deletes the old one; the next VPS deploy hands the new one to the gateway.
 */
const CREDENTIAL_SERIAL = 1;

/**
 * The GPU control path of the gateway (issue 13): a function the VPS may invoke and nothing else.
 * IAM cannot bound a capacity value, so the function does ([0, gpu.maxInstances], and no raise
 * once the month's GPU allowance is spent unless an operator set the month's override). It also
 * keeps the GPU-time ledger: EC2 state changes of this fleet's instances invoke it.
 *
 * The VPS gets an IAM user whose only permission is invoking this function; its access key goes
 * into a Secrets Manager secret by reference (never into the template), for the VPS deploy.
 */
export class GpuControl extends Construct {
  readonly function: lambda.Function;
  readonly linkKeyParameter: ssm.StringParameter;
  readonly budgetOverrideParameter: ssm.StringParameter;
  readonly gatewayUser: iam.User;
  readonly credentialSecret: secretsmanager.Secret;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: GpuControlProps) {
    super(scope, id);
    const names = { appName: props.appName, envName: props.envName };
    const namespace = gatewayMetricNamespace(props.appName);

    this.linkKeyParameter = new ssm.StringParameter(this, 'LinkKey', {
      parameterName: linkKeyParameterName(names),
      stringValue: LINK_KEY_UNSET,
      description: "The gateway's SSH public key (ssh-ed25519) that GPU boxes authorize for forwarding to ComfyUI; written by the control function",
    });
    this.budgetOverrideParameter = new ssm.StringParameter(this, 'BudgetOverride', {
      parameterName: budgetOverrideParameterName(names),
      stringValue: BUDGET_OVERRIDE_NONE,
      description: 'YYYY-MM: the month in which the GPU may wake past its allowance (ops gpu start --over-budget); anything else: no override',
    });

    const control = new SmallFunction(this, 'Function', {
      code: 'gpu-control',
      description: 'GPU control for the gateway: fleet status, capacity within bounds and budget, leases, link key, metrics, model and workflow lists',
      environment: settingsToEnvironment({
        appName: props.appName,
        envName: props.envName,
        fleetId: props.fleetId,
        maxInstances: props.maxInstances,
        assetBucket: props.assetBucket.bucketName,
        allowanceUsd: props.allowance.allowanceUsd,
        spotPrices: props.allowance.spotPrices,
      }),
      removalPolicy: props.removalPolicy,
    });
    this.function = control.function;
    // A fixed name: the Vps stack names it without a cross-stack export (gpu-control-names.ts).
    (this.function.node.defaultChild as lambda.CfnFunction).functionName = gpuControlFunctionName(names);
    this.allowControl(control, props, namespace);

    this.rule = new events.Rule(this, 'RunEnded', {
      description: 'GPU-time ledger: an instance starts stopping or shutting down (the control function keeps only this fleet\'s)',
      eventPattern: { source: ['aws.ec2'], detailType: [STATE_CHANGE_DETAIL_TYPE], detail: { state: [...RUN_ENDING_STATES] } },
      // EventBridge's defaults (185 tries over 24 hours) to hand the event over; the function ends the run at the event's time.
      targets: [new targets.LambdaFunction(this.function)],
    });

    this.gatewayUser = new iam.User(this, 'GatewayUser');
    this.gatewayUser.addToPolicy(
      new iam.PolicyStatement({ sid: 'InvokeGpuControlOnly', actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }),
    );
    const key = new iam.AccessKey(this, 'GatewayAccessKey', { user: this.gatewayUser, serial: CREDENTIAL_SERIAL });
    this.credentialSecret = new secretsmanager.Secret(this, 'GatewayCredential', {
      secretName: gatewayCredentialSecretName(names),
      description: "The gateway's AWS access key (it may only invoke the GPU control function), for the VPS deploy",
      // References to the key's attributes: CloudFormation fills them in; no value is in the template.
      secretObjectValue: {
        accessKeyId: SecretValue.resourceAttribute(key.accessKeyId),
        secretAccessKey: key.secretAccessKey,
      },
      // A credential without its key is worthless, and a retained one would block a redeploy under its name.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(this.credentialSecret, {
      id: 'AwsSolutions-SMG4',
      reason: `An IAM access key is rotated by replacing it (bump CREDENTIAL_SERIAL in lib/gpu-control.ts and deploy), not by a rotation function; the key may only invoke the GPU control function.`,
    });
  }

  private allowControl(control: SmallFunction, props: GpuControlProps, namespace: string): void {
    const stack = Stack.of(this);
    const instances = stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
    const ownAccount = { StringEquals: { 's3:ResourceAccount': stack.account } };
    const workflows = props.assetBucket.arnForObjects(`${WORKFLOWS_PREFIX}*`);
    const statements = [
      new iam.PolicyStatement({ sid: 'SetOwnFleetCapacity', actions: ['ec2:ModifySpotFleetRequest'], resources: [props.fleetArn] }),
      new iam.PolicyStatement({
        sid: 'ReadFleet',
        actions: ['ec2:DescribeSpotFleetRequests', 'ec2:DescribeSpotFleetInstances', 'ec2:DescribeInstances'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'TagOwnFleetInstances',
        actions: ['ec2:CreateTags'],
        resources: [instances],
        conditions: {
          StringEquals: { [`ec2:ResourceTag/${FLEET_TAG}`]: props.fleetId },
          'ForAllValues:StringEquals': { 'aws:TagKeys': [BUSY_UNTIL_TAG, BILLED_TAG] },
        },
      }),
      // Put only the link key, read only the override: the VPS must never be able to set an override.
      new iam.PolicyStatement({ sid: 'WriteLinkKey', actions: ['ssm:PutParameter'], resources: [this.linkKeyParameter.parameterArn] }),
      new iam.PolicyStatement({ sid: 'ReadBudgetOverride', actions: ['ssm:GetParameter'], resources: [this.budgetOverrideParameter.parameterArn] }),
      new iam.PolicyStatement({
        sid: 'GatewayMetrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': namespace } },
      }),
      new iam.PolicyStatement({ sid: 'ReadLedger', actions: ['cloudwatch:GetMetricData'], resources: ['*'] }),
      new iam.PolicyStatement({
        sid: 'ListModelsAndWorkflows',
        actions: ['s3:ListBucket'],
        resources: [props.assetBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${MODELS_PREFIX}*`, `${WORKFLOWS_PREFIX}*`] }, ...ownAccount },
      }),
      new iam.PolicyStatement({ sid: 'ReadWorkflows', actions: ['s3:GetObject'], resources: [workflows], conditions: ownAccount }),
    ];
    for (const statement of statements) control.allow(statement);
    acknowledge(
      control.role.node.findChild('DefaultPolicy'),
      {
        id: wildcardResourceFinding(this, '*'),
        reason:
          'ec2:Describe* (spot fleet requests and instances, instances), cloudwatch:GetMetricData and cloudwatch:PutMetricData have no resource-level permissions; PutMetricData is limited to the gateway namespace by condition.',
      },
      {
        id: wildcardResourceFinding(this, instances),
        reason: 'Instance ids are not known ahead; CreateTags is limited by condition to the instances of this fleet and to the lease and ledger tag keys.',
      },
      {
        id: wildcardResourceFinding(this, workflows),
        reason: 'Object wildcard limited to workflows/ of the asset bucket: the gateway lists every workflow template there, of names it cannot know ahead.',
      },
    );
  }
}
