import { Match } from 'aws-cdk-lib/assertions';
import { synthesized, templateOf } from './support/synth';

const BUCKET = { VersioningConfiguration: { Status: 'Enabled' } };

describe('asset bucket', () => {
  const storage = templateOf('dev', 'Storage');

  test('is versioned, SSE-S3 encrypted, fully private, owner-enforced and logs access', () => {
    storage.hasResourceProperties('AWS::S3::Bucket', {
      ...BUCKET,
      BucketName: { 'Fn::Join': ['', ['aiassets-dev-assets-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]] },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: { DestinationBucketName: { Ref: Match.stringLikeRegexp('^AssetsAccessLogs') }, LogFilePrefix: 'asset-bucket/' },
    });
  });

  test('denies every request that does not use TLS', () => {
    storage.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^AssetsBucket') },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Principal: { AWS: '*' } }),
        ]),
      },
    });
  });

  test('lifecycle: generated/ to IA at 30 then Glacier IR at 90, workflows/ to IA, the image cache expires, models/ untouched', () => {
    const rules = storage.findResources('AWS::S3::Bucket', { Properties: BUCKET });
    const [bucket] = Object.values(rules);
    const lifecycle = (bucket.Properties.LifecycleConfiguration as { Rules: any[] }).Rules;
    expect(lifecycle).toEqual([
      {
        Id: 'generated-to-ia-then-glacier-ir',
        Prefix: 'generated/',
        Status: 'Enabled',
        Transitions: [
          { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
          { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
        ],
      },
      { Id: 'workflows-to-ia', Prefix: 'workflows/', Status: 'Enabled', Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }] },
      { Id: 'cache-expires', Prefix: 'cache/', Status: 'Enabled', ExpirationInDays: 60, NoncurrentVersionExpiration: { NoncurrentDays: 1 } },
      {
        Id: 'noncurrent-versions-and-multipart',
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
        NoncurrentVersionTransitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 7 }],
        NoncurrentVersionExpiration: { NoncurrentDays: 97 },
      },
    ]);
    expect(JSON.stringify(lifecycle)).not.toContain('models/');
  });

  test('the noncurrent expiration follows the environment config (prod keeps versions longer)', () => {
    templateOf('prod', 'Storage').hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 187 } })]),
      },
    });
  });

  test('the access-log bucket is private, TLS-only and expires logs', () => {
    storage.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      LifecycleConfiguration: { Rules: [{ Id: 'expire-access-logs', ExpirationInDays: 90, Status: 'Enabled' }] },
      VersioningConfiguration: Match.absent(),
    });
    storage.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^AssetsAccessLogs') },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject' }),
        ]),
      },
    });
  });

  test('exports the bucket name for the ops commands', () => {
    storage.hasOutput('AssetBucketName', { Value: { Ref: Match.stringLikeRegexp('^AssetsBucket') } });
  });
});

describe('removal policy per environment', () => {
  test('dev: buckets are deleted with their objects, no termination protection', () => {
    const storage = templateOf('dev', 'Storage');
    storage.allResources('AWS::S3::Bucket', { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    storage.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
    expect(terminationProtection('dev')).toBe(false);
  });

  test('prod: buckets are retained, nothing auto-deletes, the stack is termination-protected', () => {
    const storage = templateOf('prod', 'Storage');
    storage.allResources('AWS::S3::Bucket', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    storage.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    expect(terminationProtection('prod')).toBe(true);
  });
});

function terminationProtection(envName: string): boolean {
  const { outdir } = synthesized(envName);
  const manifest = require(`${outdir}/manifest.json`);
  return manifest.artifacts[`AiAssets-${envName}-Storage`].properties.terminationProtection === true;
}
