import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { ModelFile, WorkflowTemplate } from './protocol';

/**
 * What the gateway may know of the asset bucket: the model files (names and sizes) and the
 * workflow templates. The prefixes are ASSET_PREFIXES' (lib/asset-bucket.ts, which this bundle
 * cannot import: it pulls in aws-cdk-lib); a test checks they agree.
 */
export const MODELS_PREFIX = 'models/';
export const WORKFLOWS_PREFIX = 'workflows/';

export const MAX_MODELS = 10_000;
export const MAX_WORKFLOWS = 100;
export const MAX_WORKFLOW_BYTES = 1024 * 1024;
/** A synchronous Lambda answer holds at most 6 MB; the workflows stop short of it. */
export const MAX_WORKFLOWS_TOTAL_BYTES = 5 * 1024 * 1024;

type Log = (line: string) => void;

export async function listModels(s3: S3Client, bucket: string, log: Log): Promise<ModelFile[]> {
  const models: ModelFile[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: MODELS_PREFIX, ContinuationToken: token, MaxKeys: Math.min(1000, MAX_MODELS - models.length) }),
    );
    for (const o of out.Contents ?? []) {
      // "Folders" made in the console are empty objects ending in '/': not files.
      if (!o.Key || o.Key.endsWith('/')) continue;
      models.push({ path: o.Key.slice(MODELS_PREFIX.length), bytes: o.Size ?? 0 });
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token && models.length < MAX_MODELS);
  if (token) log(`list-models: stopped at ${MAX_MODELS} files; ${MODELS_PREFIX} holds more`);
  return models.slice(0, MAX_MODELS);
}

/** Every `workflows/<name>.json` (not in subfolders) that is a JSON object; others are skipped with a log line. */
export async function listWorkflows(s3: S3Client, bucket: string, log: Log): Promise<WorkflowTemplate[]> {
  const keys: { key: string; size: number }[] = [];
  let token: string | undefined;
  let more = false;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: WORKFLOWS_PREFIX, Delimiter: '/', ContinuationToken: token }));
    for (const o of out.Contents ?? []) {
      if (!o.Key?.endsWith('.json') || o.Key.length === WORKFLOWS_PREFIX.length + '.json'.length) continue;
      if (keys.length === MAX_WORKFLOWS) {
        more = true;
        break;
      }
      keys.push({ key: o.Key, size: o.Size ?? 0 });
    }
    token = out.IsTruncated && !more ? out.NextContinuationToken : undefined;
  } while (token);
  if (more) log(`list-workflows: read the first ${MAX_WORKFLOWS} templates; ${WORKFLOWS_PREFIX} holds more`);

  const workflows: WorkflowTemplate[] = [];
  let total = 0;
  for (const { key, size } of keys) {
    if (size > MAX_WORKFLOW_BYTES) {
      log(`list-workflows: skipped ${key}: ${size} bytes, more than ${MAX_WORKFLOW_BYTES}`);
      continue;
    }
    if (total + size > MAX_WORKFLOWS_TOTAL_BYTES) {
      log(`list-workflows: skipped ${key} and the rest: together more than ${MAX_WORKFLOWS_TOTAL_BYTES} bytes (a Lambda answer holds at most 6 MB)`);
      break;
    }
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const body = (await out.Body?.transformToString('utf8')) ?? '';
    let workflow: unknown;
    try {
      workflow = JSON.parse(body);
    } catch (error) {
      log(`list-workflows: skipped ${key}: not valid JSON (${(error as Error).message})`);
      continue;
    }
    if (typeof workflow !== 'object' || workflow === null || Array.isArray(workflow)) {
      log(`list-workflows: skipped ${key}: not a JSON object of ComfyUI nodes (API format)`);
      continue;
    }
    total += Buffer.byteLength(body);
    workflows.push({ name: key.slice(WORKFLOWS_PREFIX.length, -'.json'.length), workflow: workflow as Record<string, unknown> });
  }
  return workflows;
}
