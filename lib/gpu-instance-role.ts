import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { assetObjectReadStatement } from './asset-access';
import { ASSET_PREFIXES } from './asset-bucket';
import { linkKeyParameterName } from './gpu-control/names';
import { INSTANCE_TAG_KEYS, REMOVABLE_TAG_KEYS } from './gpu-instance-tags';
import { CW_AGENT_NAMESPACE } from './gpu-metrics';
import { acknowledge, wildcardResourceFinding } from './nag';

export interface GpuInstanceRoleProps {
  readonly assetBucket: s3.IBucket;
}

/** Session Manager's instance-side actions (the same five as AWS's AWSCloud9SSMInstanceProfile). */
const SESSION_MANAGER_ACTIONS = [
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
];

/**
 * The role and instance profile of the GPU instances: Session Manager for people
 * (SSH only carries the gateway's link), the CloudWatch agent into one log group and two metric namespaces,
 * read-only models/ and workflows/, and write-only generated/ (no delete: the GPU
 * never removes what it produced). Everything is inline and scoped: the AWS managed
 * policies for SSM and the agent would also let code on the box read every Parameter
 * Store value and write into any log group.
 */
export class GpuInstanceRole extends Construct {
  readonly role: iam.Role;
  readonly instanceProfile: iam.InstanceProfile;

  constructor(scope: Construct, id: string, props: GpuInstanceRoleProps) {
    super(scope, id);
    const bucket = props.assetBucket;
    const { models, workflows, generated } = ASSET_PREFIXES;

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'GPU instances: Session Manager, CloudWatch agent, models/ and workflows/ read, generated/ write',
    });
    // Bucket names are global and S3 ARNs carry no account: should the bucket ever be deleted
    // (dev/staging teardown), a bucket of the same name elsewhere must not be read or written.
    const ownAccount = { StringEquals: { 's3:ResourceAccount': Stack.of(this).account } };
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListOwnPrefixes',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [models, workflows, generated, IMAGE_CACHE_PREFIX].map((p) => `${p}*`) }, ...ownAccount },
      }),
    );
    const readOnly = [bucket.arnForObjects(`${models}*`), bucket.arnForObjects(`${workflows}*`)];
    const writeOnly = [bucket.arnForObjects(`${generated}*`)];
    // The ComfyUI image cache: every wake reads it, the first wake of a release writes it.
    const imageCache = [bucket.arnForObjects(`${IMAGE_CACHE_PREFIX}*`)];
    this.role.addToPolicy(
      new iam.PolicyStatement({ sid: 'ReadModelsAndWorkflows', actions: ['s3:GetObject'], resources: readOnly, conditions: ownAccount }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        // Output sync only uploads (sync compares against the listing), so no GetObject.
        sid: 'WriteGenerated',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: writeOnly,
        conditions: ownAccount,
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ImageCache',
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
        resources: imageCache,
        conditions: ownAccount,
      }),
    );
    this.role.addToPolicy(new iam.PolicyStatement({ sid: 'SessionManager', actions: SESSION_MANAGER_ACTIONS, resources: ['*'] }));
    this.instanceProfile = new iam.InstanceProfile(this, 'InstanceProfile', { role: this.role });

    acknowledge(
      this.role.node.findChild('DefaultPolicy'),
      ...[...readOnly, ...writeOnly, ...imageCache].map((resource) => ({
        id: wildcardResourceFinding(this, resource),
        reason: 'Object wildcard limited to one prefix of the asset bucket: the GPU syncs every model and workflow under it and writes images of names it cannot know ahead.',
      })),
      {
        id: wildcardResourceFinding(this, '*'),
        reason:
          'Session Manager (ssm:UpdateInstanceInformation and the four ssmmessages channel actions, the AWS minimum) and cloudwatch:PutMetricData have no resource-level permissions; PutMetricData is limited to two namespaces by condition.',
      },
    );
  }

  /**
   * The CloudWatch agent and the idle watcher: log streams in the one host log group, and
   * metrics only into the agent's namespace and the app's GPU namespace.
   */
  allowHostTelemetry(logGroup: logs.ILogGroup, metricNamespace: string): void {
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'HostLogs',
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        // The Arn attribute ends in ":*" (the group's streams); the bare group ARN is for the
        // group-level actions (DescribeLogStreams, CreateLogGroup).
        resources: [
          logGroup.logGroupArn,
          Stack.of(this).formatArn({ service: 'logs', resource: 'log-group', resourceName: logGroup.logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
        ],
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'HostMetrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': [CW_AGENT_NAMESPACE, metricNamespace] } },
      }),
    );
  }

  /** Lets the instance download exactly these CDK assets (the scripts and the image's build context; no wildcard). */
  allowBootstrapDownload(...assets: s3assets.Asset[]): void {
    this.role.addToPolicy(assetObjectReadStatement('ReadBootstrapAssets', ...assets));
  }

  /**
   * The gateway's link (assets/user-data/link-access.sh): read the one SSM parameter holding the
   * gateway's SSH public key, which the box authorizes for port forwarding to ComfyUI. Returns the
   * parameter's name for the host settings (LINK_KEY_PARAMETER).
   */
  allowLinkKeyRead(names: { readonly appName: string; readonly envName: string }): string {
    const name = linkKeyParameterName(names);
    this.allowParameterRead('ReadLinkKey', name);
    return name;
  }

  /** The idle watcher's run-time threshold (lib/gpu-auto-stop-setting.ts): read the one parameter, each minute. */
  allowAutoStopRead(parameterName: string): void {
    this.allowParameterRead('ReadAutoStopMinutes', parameterName);
  }

  private allowParameterRead(sid: string, name: string): void {
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid,
        actions: ['ssm:GetParameter'],
        // Parameter ARNs carry the name without its leading slash.
        resources: [Stack.of(this).formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.replace(/^\//, '') })],
      }),
    );
  }

  /**
   * Idle shutdown of one instance (assets/user-data/idle-watcher.sh): the instance tags itself
   * as leaving, sets its fleet's target capacity to the instances that stay (the fleet never
   * terminates on a lower target), then terminates itself. It also tags its boot phases.
   * ModifySpotFleetRequest is allowed on this one fleet request; tags and termination only on
   * instances of this fleet (IAM has no documented key for "the calling instance itself", so a
   * box could end a peer of its own fleet, which the same role could already do through the
   * fleet's capacity), and only the tag keys the scripts write; the one it removes is
   * comfyui:leaving (when a gateway lease appears as it leaves).
   */
  allowLeavingFleet(fleetId: string, fleetArn: string): void {
    // A separate policy, not the role's default one: the launch template depends on the
    // default policy, and the fleet depends on the launch template (that would be a cycle).
    const instances = Stack.of(this).formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
    const ownFleet = { 'ec2:ResourceTag/aws:ec2spot:fleet-request-id': fleetId };
    const policy = new iam.Policy(this, 'IdleShutdown', {
      roles: [this.role],
      statements: [
        new iam.PolicyStatement({ sid: 'SetOwnFleetCapacity', actions: ['ec2:ModifySpotFleetRequest'], resources: [fleetArn] }),
        new iam.PolicyStatement({
          sid: 'FindOwnFleetAndPeers',
          actions: ['ec2:DescribeTags', 'ec2:DescribeSpotFleetInstances'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          sid: 'TagOwnFleetInstances',
          actions: ['ec2:CreateTags'],
          resources: [instances],
          conditions: { StringEquals: ownFleet, 'ForAllValues:StringEquals': { 'aws:TagKeys': [...INSTANCE_TAG_KEYS] } },
        }),
        new iam.PolicyStatement({
          sid: 'UntagOwnFleetInstances',
          actions: ['ec2:DeleteTags'],
          resources: [instances],
          // Null: a DeleteTags call naming no key would remove every tag (ForAllValues holds for none).
          conditions: { StringEquals: ownFleet, 'ForAllValues:StringEquals': { 'aws:TagKeys': [...REMOVABLE_TAG_KEYS] }, Null: { 'aws:TagKeys': 'false' } },
        }),
        new iam.PolicyStatement({
          sid: 'TerminateOwnFleetInstances',
          actions: ['ec2:TerminateInstances'],
          resources: [instances],
          conditions: { StringEquals: ownFleet },
        }),
      ],
    });
    acknowledge(
      policy,
      {
        id: wildcardResourceFinding(this, '*'),
        reason:
          'ec2:DescribeTags and ec2:DescribeSpotFleetInstances have no resource-level permissions; the instance reads its own aws:ec2spot:fleet-request-id tag (not documented in instance metadata) and its peers.',
      },
      {
        id: wildcardResourceFinding(this, instances),
        reason:
          'Instance ids are not known ahead; limited by condition to the instances of this fleet (and to the scripts\' tag keys for CreateTags, to comfyui:leaving for DeleteTags).',
      },
    );
  }
}

/** Where the ComfyUI image cache lives in the asset bucket (assets/user-data/comfyui-image.sh). */
export const IMAGE_CACHE_PREFIX = `${ASSET_PREFIXES.cache}comfyui/`;
