import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { assetObjectReadStatement } from './asset-access';
import { ASSET_PREFIXES } from './asset-bucket';
import { acknowledge, managedPolicyFinding, wildcardResourceFinding } from './nag';

export interface GpuInstanceRoleProps {
  readonly assetBucket: s3.IBucket;
}

/**
 * The role and instance profile of the GPU instances: Session Manager instead
 * of SSH, the CloudWatch agent, read-only models/ and workflows/, and
 * read-write generated/ (no delete: the GPU never removes what it produced).
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
      description: 'GPU instances: SSM, CloudWatch agent, models/ and workflows/ read, generated/ read-write',
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'),
        iam.ManagedPolicy.fromAwsManagedPolicyName('CloudWatchAgentServerPolicy'),
      ],
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListOwnPrefixes',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [models, workflows, generated].map((p) => `${p}*`) } },
      }),
    );
    const readOnly = [bucket.arnForObjects(`${models}*`), bucket.arnForObjects(`${workflows}*`)];
    const readWrite = [bucket.arnForObjects(`${generated}*`)];
    this.role.addToPolicy(
      new iam.PolicyStatement({ sid: 'ReadModelsAndWorkflows', actions: ['s3:GetObject'], resources: readOnly }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadWriteGenerated',
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
        resources: readWrite,
      }),
    );
    this.instanceProfile = new iam.InstanceProfile(this, 'InstanceProfile', { role: this.role });

    acknowledge(
      this.role,
      {
        id: managedPolicyFinding('AmazonSSMManagedInstanceCore'),
        reason: 'AWS-maintained minimum for Session Manager (replaces SSH); its ssm/ssmmessages/ec2messages actions cannot be scoped to one instance ahead of launch.',
      },
      {
        id: managedPolicyFinding('CloudWatchAgentServerPolicy'),
        reason: 'AWS-maintained minimum for the CloudWatch agent (GPU metrics, journal); PutMetricData has no resource-level permissions.',
      },
    );
    acknowledge(
      this.role.node.findChild('DefaultPolicy'),
      ...[...readOnly, ...readWrite].map((resource) => ({
        id: wildcardResourceFinding(this, resource),
        reason: 'Object wildcard limited to one prefix of the asset bucket: the GPU syncs every model and workflow under it and writes images of names it cannot know ahead.',
      })),
    );
  }

  /** Lets the instance download exactly this bootstrap bundle (one object, no wildcard). */
  allowBootstrapDownload(asset: s3assets.Asset): void {
    this.role.addToPolicy(assetObjectReadStatement('ReadBootstrapScripts', asset));
  }

  /**
   * Idle shutdown: the instance finds its fleet through its own tags and lowers
   * that fleet's target capacity. ModifySpotFleetRequest is allowed on this
   * one fleet request ARN and nothing else.
   */
  allowIdleShutdown(fleetArn: string): void {
    // A separate policy, not the role's default one: the launch template depends on the
    // default policy, and the fleet depends on the launch template (that would be a cycle).
    const policy = new iam.Policy(this, 'IdleShutdown', {
      roles: [this.role],
      statements: [
        new iam.PolicyStatement({ sid: 'ScaleOwnFleetToZero', actions: ['ec2:ModifySpotFleetRequest'], resources: [fleetArn] }),
        new iam.PolicyStatement({ sid: 'FindOwnFleet', actions: ['ec2:DescribeTags'], resources: ['*'] }),
      ],
    });
    acknowledge(policy, {
      id: wildcardResourceFinding(this, '*'),
      reason: 'ec2:DescribeTags has no resource-level permissions; the instance reads its own aws:ec2spot:fleet-request-id tag, which instance metadata is not documented to expose.',
    });
  }
}
