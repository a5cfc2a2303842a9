import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
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
}
