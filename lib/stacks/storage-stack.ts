import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AssetBucket, assetBucketName } from '../asset-bucket';
import type { EnvironmentConfig } from '../config/load';

export interface StorageStackProps extends StackProps {
  readonly config: EnvironmentConfig;
}

/** Stateful resources only, so stateless stacks can be replaced or destroyed without touching data. */
export class StorageStack extends Stack {
  readonly assets: AssetBucket;

  constructor(scope: Construct, id: string, props: StorageStackProps) {
    super(scope, id, props);
    this.assets = new AssetBucket(this, 'Assets', {
      bucketName: assetBucketName(props.config.appName, props.config.envName, props.config.account),
      storage: props.config.storage,
      removalPolicy: props.config.removalPolicy,
    });
    new CfnOutput(this, 'AssetBucketName', { value: this.assets.bucket.bucketName });
    new CfnOutput(this, 'AccessLogBucketName', { value: this.assets.accessLogs.bucketName });
  }
}
