import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';

export type BucketPresence = 'exists' | 'gone' | 'unknown';

/** Whether a bucket still exists: HeadBucket 404 means gone, 403 means it exists but is not ours to read. */
export async function bucketPresence(s3: S3Client, bucket: string): Promise<BucketPresence> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return 'exists';
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const name = error instanceof Error ? error.name : '';
    if (status === 404 || name === 'NotFound' || name === 'NoSuchBucket') return 'gone';
    if (status === 403) return 'exists';
    return 'unknown';
  }
}
