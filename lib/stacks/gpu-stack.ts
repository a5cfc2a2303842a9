import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { assetBucketName } from '../asset-bucket';
import type { Construct } from 'constructs';
import type { EnvironmentConfig } from '../config/load';
import { GpuInstanceRole } from '../gpu-instance-role';

export interface GpuStackProps extends StackProps {
  readonly config: EnvironmentConfig;
}

/** The stateless GPU tier. */
export class GpuStack extends Stack {
  readonly instanceRole: GpuInstanceRole;

  constructor(scope: Construct, id: string, props: GpuStackProps) {
    super(scope, id, props);
    const { appName, envName, account } = props.config;
    // By name, not by export: the stateful stack stays free to change (see assetBucketName).
    const assetBucket = s3.Bucket.fromBucketName(this, 'AssetBucket', assetBucketName(appName, envName, account));
    this.instanceRole = new GpuInstanceRole(this, 'InstanceRole', { assetBucket });
    new CfnOutput(this, 'InstanceRoleArn', { value: this.instanceRole.role.roleArn });
  }
}
