import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';

/**
 * Read access to exactly these CDK asset objects. `asset.grantRead` would grant
 * s3:GetObject*, s3:GetBucket* and s3:List* on the whole staging bucket.
 */
export function assetObjectReadStatement(sid: string, ...assets: s3assets.Asset[]): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid, actions: ['s3:GetObject'], resources: assets.map((a) => a.bucket.arnForObjects(a.s3ObjectKey)) });
}
