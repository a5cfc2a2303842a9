import { Aws, Duration } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { StorageSettings } from './config/schema';
import { acknowledge } from './nag';
import { removalPolicyOf, type RemovalSetting } from './removal';

/**
 * The key prefixes of the asset bucket (seed 000): models in, images out, workflow definitions,
 * and a cache of derived data that can always be rebuilt (the ComfyUI image).
 */
export const ASSET_PREFIXES = { models: 'models/', generated: 'generated/', workflows: 'workflows/', cache: 'cache/' } as const;

/**
 * Days a cache object (one per ComfyUI image release) is kept after it was written. An
 * expired cache only costs the next wake a rebuild; without expiry every release's image
 * (several GB) would stay billed forever.
 */
export const CACHE_EXPIRATION_DAYS = 60;

/**
 * The asset bucket's name: `<app>-<env>-assets-<account>-<region>`, at most 63
 * characters. A fixed name lets the GPU stack and the ops commands address the
 * bucket without a cross-stack export that would pin the stacks together.
 */
export function assetBucketName(appName: string, envName: string, account?: string): string {
  return `${appName.toLowerCase()}-${envName}-assets-${account ?? Aws.ACCOUNT_ID}-${Aws.REGION}`;
}

export interface AssetBucketProps {
  readonly bucketName: string;
  readonly storage: StorageSettings;
  /** `destroy` deletes the buckets and their objects with the stack; `retain` keeps them. */
  readonly removalPolicy: RemovalSetting;
}

/**
 * The S3 asset bucket (models in, generated images out) and the bucket that
 * receives its server access logs.
 */
export class AssetBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: AssetBucketProps) {
    super(scope, id);
    const destroy = props.removalPolicy === 'destroy';
    const common = {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: removalPolicyOf(props.removalPolicy),
      autoDeleteObjects: destroy,
    };
    const s = props.storage;

    // Access-log targets must use SSE-S3 (S3 cannot deliver logs to SSE-KMS buckets).
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      ...common,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(s.accessLogRetentionDays) }],
    });
    acknowledge(this.accessLogs, {
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log target of the asset bucket; logging it to itself would loop and a third bucket adds cost without audit value.',
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...common,
      bucketName: props.bucketName,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'asset-bucket/',
      lifecycleRules: assetLifecycleRules(s),
    });
  }
}
/**
 * models/ is deliberately never moved to STANDARD_IA: every GPU boot syncs the
 * whole prefix, and IA's per-GB retrieval fee would cost more than it saves.
 * generated/ goes to GLACIER_IR, which keeps millisecond reads (old images stay
 * viewable without a restore job) at about a sixth of the STANDARD price.
 */
export function assetLifecycleRules(s: StorageSettings): s3.LifecycleRule[] {
  return [
    {
      id: 'generated-to-ia-then-glacier-ir',
      prefix: ASSET_PREFIXES.generated,
      transitions: [
        { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(s.infrequentAccessDays) },
        { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(s.generatedArchiveDays) },
      ],
    },
    {
      id: 'workflows-to-ia',
      prefix: ASSET_PREFIXES.workflows,
      transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(s.infrequentAccessDays) }],
    },
    {
      // Overwritten cache objects are identical rebuilds: no point in keeping old versions.
      id: 'cache-expires',
      prefix: ASSET_PREFIXES.cache,
      expiration: Duration.days(CACHE_EXPIRATION_DAYS),
      noncurrentVersionExpiration: Duration.days(1),
    },
    {
      id: 'noncurrent-versions-and-multipart',
      abortIncompleteMultipartUploadAfter: Duration.days(s.abortMultipartDays),
      noncurrentVersionTransitions: [
        { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(s.noncurrentArchiveDays) },
      ],
      noncurrentVersionExpiration: Duration.days(s.noncurrentExpirationDays),
    },
  ];
}
